"""Engines, connection settings and migrations.

SQLite: WAL, a busy timeout, ``BEGIN IMMEDIATE`` for writes (the driver is put in autocommit
mode and every transaction is begun by us). PostgreSQL through psycopg 3.
"""

from __future__ import annotations

import getpass
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from platformdirs import user_data_dir
from sqlalchemy.engine import Connection, Engine

BUSY_TIMEOUT_MS = 10_000
PG_WRITE_LOCK = 0x6B756E64726567  # "kundreg": the advisory lock every PostgreSQL writer takes
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseError(Exception):
    """A database problem told in words a user can act on."""


def default_db_path() -> Path:
    return Path(user_data_dir("kundreg", appauthor=False)) / "kundreg.db"


def resolve_url(db: str | None) -> str:
    """``--db`` / ``KUNDREG_DB``: a SQLite path or a PostgreSQL URL; default: the user's data folder."""
    db = db or os.environ.get("KUNDREG_DB") or ""
    if not db:
        path = default_db_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return f"sqlite:///{path}"
    if db.startswith(("postgresql://", "postgres://")):
        rest = db.split("://", 1)[1]
        return f"postgresql+psycopg://{rest}"
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().absolute()}"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_path(url: str) -> Path | None:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _create_private(path: Path) -> None:
    """A new register file is readable by its owner only (0600)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:  # another process created it a moment ago
        return
    os.close(fd)


def make_engine(url: str, *, cache_mib: int = 16) -> Engine:
    path = _sqlite_path(url)
    if path is not None:
        _create_private(path)
        if not os.access(path, os.R_OK):
            from kundreg_tui.domain.faults import permission_advice, write_problem

            raise DatabaseError(f"{write_problem(path)}\n{permission_advice(path)}")
        engine = sa.create_engine(
            url,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=8,
            max_overflow=8,
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
            cur.execute("PRAGMA temp_store=MEMORY")
            # Deleted and overwritten personal data is zeroed, not left in free space (the
            # default of Debian's SQLite, not of every build); ``kundreg purge`` relies on it.
            cur.execute("PRAGMA main.secure_delete=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get("kundreg_write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    if url.startswith("postgresql"):
        engine = sa.create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)

        @sa.event.listens_for(engine, "begin")
        def _on_pg_begin(conn: Connection) -> None:
            # Writers take turns, as BEGIN IMMEDIATE makes them on SQLite: the number series,
            # the e-mail check and the insert of one write then never race another's. A writer
            # waits at most the busy timeout; readers never wait.
            if conn.get_execution_options().get("kundreg_write"):
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {BUSY_TIMEOUT_MS}")
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")

        return engine
    return sa.create_engine(url)


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` on SQLite): all of it lands, or none.

    A busy register, a read-only or full disk etc. raise ``faults.DatabaseFault`` (a
    ``RegisterError`` told for the user), not the driver's error."""
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(kundreg_write=True)
            with conn.begin():
                yield conn
    except sa.exc.DBAPIError as exc:
        _raise_fault(exc, engine)
        raise


@contextmanager
def fill_tx(engine: Engine) -> Iterator[Connection]:
    """The write transaction of a bulk fill (``kundreg demo``).

    On SQLite, into an empty register that no other connection has open, the rows go
    through a rollback journal instead of the WAL: a new page is then written once, to the
    file, rather than to the WAL and again at the checkpoint, and the transaction is still
    all or nothing (the journal keeps the few pages there were before; new pages past the
    old end of the file need no copy). The register is back in WAL before this returns,
    and ``make_engine`` puts it back on opening, should the process die in between.
    Otherwise this is ``write_tx``."""
    if not is_sqlite(engine):
        with write_tx(engine) as conn:
            yield conn
        return
    engine.dispose()  # our own idle connections would keep the register in WAL
    try:
        with engine.connect() as conn:
            dbapi = conn.connection.driver_connection
            assert dbapi is not None
            empty = dbapi.execute("SELECT NOT EXISTS (SELECT 1 FROM customer)").fetchone()[0]
            switched = bool(empty) and _journal_mode(dbapi, "delete")
            dbapi.execute("PRAGMA temp_store=FILE")
            try:
                with conn.execution_options(kundreg_write=True).begin():
                    yield conn
            finally:
                dbapi.execute("PRAGMA temp_store=MEMORY")
                if switched:
                    dbapi.execute("PRAGMA journal_mode=WAL")
    except sa.exc.DBAPIError as exc:
        _raise_fault(exc, engine)
        raise


def _journal_mode(dbapi: Any, mode: str) -> bool:
    """Switch a SQLite connection's journal mode; False when another connection prevents it."""
    try:
        return bool(dbapi.execute(f"PRAGMA journal_mode={mode}").fetchone()[0] == mode)
    except Exception:  # "database is locked": someone else has it open
        return False


@contextmanager
def read_conn(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn:
            with conn.begin():
                yield conn
    except sa.exc.DBAPIError as exc:
        _raise_fault(exc, engine)
        raise


def _raise_fault(exc: sa.exc.DBAPIError, engine: Engine) -> None:
    """Raise ``exc`` told for the user when it is a database fault; return when it is not."""
    from kundreg_tui.domain.faults import as_fault

    found = as_fault(exc, engine)
    if found is not None:
        raise found from exc


def current_actor() -> str:
    """The OS user behind this change (``SUDO_USER`` when run through sudo)."""
    sudo = os.environ.get("SUDO_USER")
    if sudo:
        return sudo
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container
        return str(os.getuid())


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(sa.create_engine("sqlite://"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the register's schema is at (Alembic's ``alembic_version`` table), read
    with plain SQL: opening an up-to-date register does not import Alembic (0.1 s)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    return versions[0] if len(versions) == 1 else None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (fast no-op when it already is)."""
    try:
        if current_revision(engine) == _known_head():
            return
    except sa.exc.OperationalError as exc:
        from kundreg_tui.domain.faults import fault

        raise fault(exc, engine) from exc
    from alembic import command

    command.upgrade(_alembic_config(engine), "head")


def _known_head() -> str:
    # The newest revision id, read from the file names without loading Alembic's script machinery.
    heads = sorted(p.stem.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("*.py"))
    return heads[-1] if heads else ""


def open_engine(db: str | None) -> Engine:
    """Resolve ``--db``, connect, apply migrations."""
    engine = make_engine(resolve_url(db))
    migrate(engine)
    return engine
