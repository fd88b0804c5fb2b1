"""Shared fixtures: every test gets a fresh, migrated register on SQLite, and the tests marked
``pg`` run a second time against a real PostgreSQL 15 server that the session starts itself."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kundreg_tui import i18n
from kundreg_tui.domain.database import make_engine, migrate
from kundreg_tui.domain.register import RegisterService

os.environ.setdefault("KUNDREG_LANG", "sv")
_counter = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that take the ``engine`` fixture run on both databases.
    pass


@pytest.fixture(autouse=True)
def _swedish() -> Iterator[None]:
    i18n.set_language("sv")
    yield
    i18n.set_language("sv")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    from tests import pgserver

    server = pgserver.start_or_skip()
    # A migrated template: each test copies it (CREATE DATABASE ... TEMPLATE is fast).
    url = server.create_database("kundreg_template")
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield server
    server.stop()


def _sqlite_engine(tmp_path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    migrate(engine)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A fresh migrated register, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        eng = _sqlite_engine(tmp_path)
        yield eng
        eng.dispose()
        return
    server = request.getfixturevalue("pg_server")
    name = f"t{os.getpid()}_{next(_counter)}"
    import psycopg

    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE kundreg_template')
    eng = make_engine(server.url_for(name))  # type: ignore[attr-defined]
    yield eng
    eng.dispose()
    server.drop_database(name)  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = _sqlite_engine(tmp_path)
    yield eng
    eng.dispose()


@pytest.fixture
def service(engine: sa.Engine) -> RegisterService:
    return RegisterService(engine, actor="test")


@pytest.fixture
def db_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)
