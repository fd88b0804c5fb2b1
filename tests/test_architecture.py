"""Architecture rules: the domain stays free of the UI toolkit, the migrations build exactly the
models' schema, and register files are private to their owner."""

from __future__ import annotations

import os
import pkgutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import kundreg_tui.domain
from kundreg_tui.domain import models  # noqa: F401  (registers the tables)
from kundreg_tui.domain.database import (
    _known_head,
    current_revision,
    head_revision,
    make_engine,
    migrate,
    open_engine,
    resolve_url,
)
from kundreg_tui.domain.register import RegisterService

ROOT = Path(__file__).resolve().parent.parent
UI_PACKAGES = ("textual", "rich")


def domain_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(kundreg_tui.domain.__path__, "kundreg_tui.domain."):
        if ".migrations" in info.name or info.name.endswith(".migrations"):
            continue
        names.append(info.name)
    return sorted(names)


def test_domain_modules_found() -> None:
    names = domain_modules()
    for expected in ("text", "fields", "validation", "keys", "models", "database", "register", "demo"):
        assert f"kundreg_tui.domain.{expected}" in names
    assert not any("migrations" in n for n in names)


@pytest.mark.parametrize("module", ["kundreg_tui.domain", "kundreg_tui.i18n", *domain_modules()])
def test_domain_module_imports_no_ui_toolkit(module: str) -> None:
    script = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {UI_PACKAGES!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"


def test_all_domain_modules_together_import_no_ui_toolkit() -> None:
    modules = domain_modules()
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {UI_PACKAGES!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


# ------------------------------------------------------------------------------ migrations
@pytest.mark.pg
def test_migrations_match_the_models(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": False})
        diff = compare_metadata(context, SQLModel.metadata)
    if engine.dialect.name == "postgresql":
        # By design (migration 0002): with pg_trgm, PostgreSQL gets a trigram GIN index for
        # substring search in place of the models' covering B-tree index.
        names = {d[1].name for d in diff if d[0] in ("add_index", "remove_index")}
        if "ix_customer_search_trgm" in names:
            diff = [d for d in diff if not (d[0] in ("add_index", "remove_index")
                                            and d[1].name in ("ix_customer_search",
                                                              "ix_customer_search_trgm"))]
    assert diff == []


def test_migrate_fresh_sqlite_then_compare(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert current_revision(engine) is None
    migrate(engine)
    assert current_revision(engine) == head_revision() == _known_head()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                SQLModel.metadata)
    assert diff == []
    migrate(engine)  # a second run is a no-op
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_migrations_have_one_head() -> None:
    from alembic.script import ScriptDirectory

    from kundreg_tui.domain.database import _alembic_config

    script = ScriptDirectory.from_config(_alembic_config(sa.create_engine("sqlite://")))
    assert len(script.get_heads()) == 1


# ------------------------------------------------------------------------------ file permissions
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_database_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "kundreg.db"
    old_umask = os.umask(0o022)  # a permissive umask must not matter
    try:
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        RegisterService(engine, actor="test").create({"name": "Anna"})
        assert path.exists()
        assert _mode(path) == 0o600
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                assert _mode(side) & 0o077 == 0, f"{side.name} is readable by others"
        engine.dispose()
    finally:
        os.umask(old_umask)


def test_open_engine_through_resolve_url(tmp_path: Path) -> None:
    path = tmp_path / "via-cli.db"
    engine = open_engine(str(path))
    assert _mode(path) == 0o600
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_creating_a_file_another_process_just_created(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from kundreg_tui.domain import database

    path = tmp_path / "race.db"
    path.touch(mode=0o600)
    real_exists = Path.exists
    # The file appears between the existence check and the create (two first starts at once).
    monkeypatch.setattr(Path, "exists", lambda self: False if self == path else real_exists(self))
    database._create_private(path)
    assert real_exists(path)


def test_existing_file_permissions_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    assert _mode(path) == 0o640
    engine.dispose()


def test_default_location_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUNDREG_DB", raising=False)
    monkeypatch.setattr("kundreg_tui.domain.database.default_db_path",
                        lambda: tmp_path / "data" / "kundreg" / "kundreg.db")
    url = resolve_url(None)
    assert url == f"sqlite:///{tmp_path / 'data' / 'kundreg' / 'kundreg.db'}"
    assert _mode(tmp_path / "data" / "kundreg") == 0o700


def test_resolve_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUNDREG_DB", raising=False)
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"
    assert resolve_url(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"
    monkeypatch.setenv("KUNDREG_DB", str(tmp_path / "env.db"))
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'env.db'}"
