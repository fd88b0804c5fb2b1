"""The throw-away PostgreSQL 15 test server (tests/pgserver.py) itself."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

try:
    from tests import pgserver
except ImportError:  # tests/ is not a package and the repo root is not on sys.path
    import pgserver  # type: ignore[no-redef]

PgNotAvailable = pgserver.PgNotAvailable
PgServer = pgserver.PgServer

pytestmark = pytest.mark.pg


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    srv = pgserver.start_or_skip()
    try:
        yield srv
    finally:
        srv.stop()


def test_psycopg_connects_and_is_version_15(server: PgServer) -> None:
    with psycopg.connect(server.conninfo()) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None
        assert version[0].startswith("15"), version[0]
        assert conn.info.server_version // 10000 == 15
        row = conn.execute("SELECT current_user, current_database()").fetchone()
        assert row == ("kundreg", "kundreg_test")
        # The speed settings are in force, and only loopback is listened on.
        for name, expected in [
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("listen_addresses", "127.0.0.1"),
            ("server_encoding", "UTF8"),
        ]:
            got = conn.execute(f"SHOW {name}").fetchone()
            assert got is not None and got[0] == expected, (name, got)


def test_sqlalchemy_engine(server: PgServer) -> None:
    assert server.url.startswith("postgresql+psycopg://kundreg@127.0.0.1:")
    assert server.url.endswith("/kundreg_test")
    engine = sa.create_engine(server.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id serial PRIMARY KEY, name text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO t (name) VALUES ('Åsa Öberg')"))
        with engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT version()")).scalar_one().startswith("PostgreSQL 15")
            )
            # Non-ASCII case folding works (the cluster's ctype is C.UTF-8, not C).
            name = conn.execute(sa.text("SELECT name FROM t WHERE name ILIKE 'åsa%'")).scalar_one()
            assert name == "Åsa Öberg"
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE t"))
    finally:
        engine.dispose()


def test_create_and_drop_database(server: PgServer) -> None:
    url = server.create_database("kundreg_tmp_db")
    assert url == server.url_for("kundreg_tmp_db")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT current_database()")).scalar_one() == "kundreg_tmp_db"
            )
    finally:
        engine.dispose()
    # Drop works even while a session is still connected (WITH (FORCE)); that session ends.
    lingering = psycopg.connect(server.conninfo("kundreg_tmp_db"), autocommit=True)
    try:
        server.drop_database("kundreg_tmp_db")
        with pytest.raises(psycopg.OperationalError):
            lingering.execute("SELECT 1")
    finally:
        lingering.close()
    with psycopg.connect(server.conninfo("postgres")) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = 'kundreg_tmp_db'"
        ).fetchone()
        assert found == (0,)
    server.drop_database("kundreg_tmp_db")  # dropping a missing database is fine


def test_bad_database_name_is_refused(server: PgServer) -> None:
    with pytest.raises(ValueError):
        server.create_database('x"; DROP DATABASE kundreg_test; --')


def test_start_stop_removes_directory() -> None:
    bin_dir = pgserver.find_pg_bin()
    if bin_dir is None and not pgserver.in_ci():
        pytest.skip(pgserver.missing_message())
    t0 = time.monotonic()
    srv = PgServer(bin_dir).start()
    elapsed = time.monotonic() - t0
    tmpdir = srv.tmpdir
    assert tmpdir is not None and tmpdir.is_dir()
    print(
        f"\nPostgreSQL test server started in {elapsed:.2f} s (initdb {srv.initdb_seconds:.2f} s)"
    )
    if os.geteuid() == 0:
        # PostgreSQL refuses root: the data directory belongs to the server's OS user.
        assert srv.datadir is not None and srv.datadir.stat().st_uid != 0
    srv.stop()
    assert not srv.running
    assert not tmpdir.exists()
    srv.stop()  # idempotent


def test_server_is_stopped_when_python_exits_without_stop(tmp_path: Path) -> None:
    """atexit stops the server and removes its directory even when nobody calls stop()."""
    if pgserver.find_pg_bin() is None and not pgserver.in_ci():
        pytest.skip(pgserver.missing_message())
    root = Path(__file__).resolve().parent.parent
    script = textwrap.dedent(
        """
        import sys
        from tests.pgserver import PgServer
        srv = PgServer().start()
        print(srv.tmpdir, srv.port, flush=True)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    tmpdir, port = out.stdout.split()
    assert not Path(tmpdir).exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            f"host=127.0.0.1 port={port} user=kundreg dbname=postgres connect_timeout=2"
        )


def test_missing_binaries_skip_locally_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUNDREG_PG_BIN", str(tmp_path / "nowhere"))
    assert pgserver.find_pg_bin() is None

    monkeypatch.setenv("CI", "true")
    with pytest.raises(PgNotAvailable, match="must not silently skip in CI"):
        pgserver.start_or_skip()
    with pytest.raises(PgNotAvailable):
        PgServer()

    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="ensure-postgres.sh"):
        pgserver.start_or_skip()
