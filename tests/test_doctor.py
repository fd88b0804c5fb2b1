"""``kundreg doctor``: every check, healthy and not, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from kundreg_tui.__main__ import main
from kundreg_tui.domain import doctor
from kundreg_tui.domain.database import head_revision, make_engine, migrate
from kundreg_tui.domain.register import RegisterService


def url_of(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def levels(report: doctor.Report, check: str) -> list[str]:
    return [f.level for f in report.findings if f.check == check]


def finding(report: doctor.Report, check: str, level: str) -> doctor.Finding:
    found = [f for f in report.findings if f.check == check and f.level == level]
    assert found, report.findings
    return found[0]


def closed_register(folder: Path, customers: int = 3) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "kunder.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    service = RegisterService(engine, actor="test")
    for i in range(customers):
        service.create({"name": f"Kund {i}", "email": f"k{i}@exempel.se", "notes": "n" * 200})
    engine.dispose()
    return path


@pytest.mark.pg
def test_a_healthy_register(engine: sa.Engine) -> None:
    RegisterService(engine, actor="test").create({"name": "Anna Berg"})
    report = doctor.run_checks(url_of(engine))
    assert report.healthy, report.findings
    assert report.exit_code == 0
    checks = {f.check for f in report.findings}
    assert {"migrations", "data", "permissions"} <= checks
    if engine.dialect.name == "sqlite":
        assert {"database", "journal", "wal", "space"} <= checks
    else:
        assert "connection" in checks
    result = CliRunner().invoke(main, ["--db", url_of(engine), "doctor"])
    assert result.exit_code == 0, result.output
    assert "Allt ser bra ut" in result.output and "1 i registret" in result.output


@pytest.mark.pg
def test_migrations_behind_unknown_or_missing(engine: sa.Engine) -> None:
    head = head_revision()
    older = [r for r in doctor._known_revisions() if r != head][0]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": older})
    behind = finding(doctor.run_checks(url_of(engine)), "migrations", doctor.WARNING)
    assert older in behind.message and head in behind.message and "starta sedan kundreg" in behind.fix
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    newer = finding(doctor.run_checks(url_of(engine)), "migrations", doctor.PROBLEM)
    assert "f00dfeed" in newer.message and "nyare kundreg" in newer.fix
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
    report = doctor.run_checks(url_of(engine))
    assert "inget schema" in finding(report, "migrations", doctor.PROBLEM).message
    assert report.exit_code == 1


def test_world_readable_register(tmp_path: Path) -> None:
    path = closed_register(tmp_path / "reg")
    path.chmod(0o644)
    report = doctor.run_checks(str(path))
    warning = finding(report, "permissions", doctor.WARNING)
    assert "personuppgifter" in warning.message and "-rw-r--r--" in warning.message
    assert f"chmod o-rwx {path}" in warning.fix
    assert report.exit_code == 1
    path.chmod(0o600)
    assert doctor.run_checks(str(path)).healthy


def test_register_shared_by_a_group(tmp_path: Path) -> None:
    folder = tmp_path / "reg"
    path = closed_register(folder)
    path.chmod(0o660)
    folder.chmod(0o700)
    report = doctor.run_checks(str(path))
    w = finding(report, "permissions", doctor.WARNING)
    assert "inte skrivbar för samma grupp" in w.message and "chmod 2770" in w.fix and "chgrp kundreg" in w.fix
    folder.chmod(0o770)
    w = finding(doctor.run_checks(str(path)), "permissions", doctor.WARNING)
    assert "setgid" in w.message and w.fix == f"chmod g+s {folder}"
    folder.chmod(0o2770)
    assert doctor.run_checks(str(path)).healthy


def test_operator_who_cannot_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root every file is writable; the check is what ``os.access`` says for the user."""
    path = closed_register(tmp_path / "reg")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == path and mode & os.W_OK
                        else real_access(p, mode, **kw))
    problem = finding(doctor.run_checks(str(path)), "permissions", doctor.PROBLEM)
    assert "får inte skriva i registerfilen" in problem.message
    assert "chgrp kundreg" in problem.fix and "chmod 660" in problem.fix and "chmod 2770" in problem.fix


def test_big_wal_file_and_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "kunder.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    service = RegisterService(engine, actor="test")
    try:
        for i in range(30):
            service.create({"name": f"Kund {i}", "notes": "n" * 1000})
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 50_000
        report = doctor.run_checks(str(path), wal_warn_bytes=50_000)
        w = finding(report, "wal", doctor.WARNING)
        assert "WAL-filen" in w.message and "wal_checkpoint(TRUNCATE)" in w.fix
        result = CliRunner().invoke(main, ["--db", str(path), "doctor", "--checkpoint"])
        assert "WAL-filen är tömd" in result.output, result.output
        assert wal.stat().st_size == 0
        assert levels(doctor.run_checks(str(path), wal_warn_bytes=50_000), "wal") == [doctor.OK]
    finally:
        engine.dispose()


def test_journal_mode_is_not_wal(tmp_path: Path) -> None:
    path = closed_register(tmp_path / "reg")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    w = finding(doctor.run_checks(str(path)), "journal", doctor.WARNING)
    assert "delete" in w.message and "journal_mode=WAL" in w.fix
    # The doctor only looks: the file is still in rollback-journal mode.
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_damaged_file(tmp_path: Path) -> None:
    path = closed_register(tmp_path / "reg", customers=400)
    size = path.stat().st_size
    assert size > 20 * 4096
    with open(path, "r+b") as f:  # scribble over a few pages in the middle
        f.seek(8 * 4096)
        f.write(os.urandom(4 * 4096))
    report = doctor.run_checks(str(path))
    problem = [f for f in report.findings if f.check in ("database", "data", "migrations") and f.level == doctor.PROBLEM]
    assert problem, report.findings
    assert any("skadad" in f.message for f in problem), problem
    assert report.exit_code == 1


def test_missing_register_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "finns-inte.db"
    result = CliRunner().invoke(main, ["--db", str(path), "doctor", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and report["problems"] == 1
    assert "finns inte" in report["findings"][0]["message"]
    assert not path.exists()


def test_postgresql_server_that_cannot_be_reached() -> None:
    report = doctor.run_checks("postgresql://kundreg@127.0.0.1:9/kundreg")
    problem = finding(report, "connection", doctor.PROBLEM)
    assert "Kan inte ansluta" in problem.message
    assert report.exit_code == 1
