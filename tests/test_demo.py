"""Demo customers (``fill_demo``) on both databases: every row is a customer the register itself
would have stored, numbered after the series, with unique e-mail addresses."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kundreg_tui.domain.database import make_engine, migrate, read_conn
from kundreg_tui.domain.demo import DemoFactory, fill_demo
from kundreg_tui.domain.fields import FIELD_NAMES, KIND_PERSON
from kundreg_tui.domain.keys import derived_columns
from kundreg_tui.domain.models import customer_table
from kundreg_tui.domain.register import RegisterService, Sort
from kundreg_tui.domain.validation import validate_customer

pytestmark = pytest.mark.pg

COUNT = 3000
KEY_COLUMNS = ("number_key", "name_key", "city_key", "email_key", "search_key")


def all_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with read_conn(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(customer_table).order_by(customer_table.c.id))]


@pytest.fixture
def filled(service: RegisterService) -> tuple[RegisterService, list[dict[str, Any]]]:
    first = service.create({"name": "Första Kunden AB", "email": "forsta@exempel.se"})
    assert first.number == "1001"
    progress: list[tuple[int, int]] = []
    assert fill_demo(service.engine, COUNT, progress=lambda done, total: progress.append((done, total))) == COUNT
    assert progress and progress[-1] == (COUNT, COUNT)
    rows = all_rows(service.engine)
    assert len(rows) == COUNT + 1
    return service, rows[1:]


def test_rows_validate_cleanly(filled: tuple[RegisterService, list[dict[str, Any]]]) -> None:
    _service, rows = filled
    problems = []
    for row in rows:
        values = {n: row[n] for n in FIELD_NAMES}
        result = validate_customer(values)
        if result.errors or result.warnings or result.values != values:
            changed = {k: (values[k], v) for k, v in result.values.items() if values[k] != v}
            problems.append((row["number"], result.errors, result.warnings, changed))
    assert problems[:5] == []
    # varied and plausible
    people = [r for r in rows if r["kind"] == KIND_PERSON]
    assert 0.25 < len(people) / len(rows) < 0.55
    for r in people[:100]:
        assert r["name"] == f"{r['first_name']} {r['last_name']}"
        if r["org_number"]:
            assert len(r["org_number"]) == 13  # YYYYMMDD-NNNN
    assert len({r["city"] for r in rows}) > 20
    assert any(r["org_number"] == "" for r in rows)
    assert all(r["country"] == "SE" for r in rows)


def test_stored_keys_equal_derived_columns(filled: tuple[RegisterService, list[dict[str, Any]]]) -> None:
    _service, rows = filled
    wrong = []
    for row in rows:
        derived = derived_columns({n: row[n] for n in FIELD_NAMES})
        stored = {k: row[k] for k in KEY_COLUMNS}
        if stored != derived:
            wrong.append((row["number"], {k: (stored[k], derived[k]) for k in KEY_COLUMNS
                                          if stored[k] != derived[k]}))
    assert wrong[:5] == []
    for row in rows[:200]:
        assert row["version"] == 1
        assert row["deleted_at"] is None and row["delete_batch"] is None
        assert row["created_at"] is not None and row["updated_at"] is not None


def test_numbers_continue_the_series(filled: tuple[RegisterService, list[dict[str, Any]]]) -> None:
    service, rows = filled
    assert [r["number"] for r in rows] == [str(n) for n in range(1002, 1002 + COUNT)]
    assert service.next_number() == str(1002 + COUNT)
    assert service.create({"name": "Efter Demo AB"}).number == str(1002 + COUNT)
    # and a second fill continues after that
    fill_demo(service.engine, 10, seed=2)
    assert service.find_by_number(str(1003 + COUNT)) is not None
    assert service.next_number() == str(1013 + COUNT)


def test_emails_unique(filled: tuple[RegisterService, list[dict[str, Any]]]) -> None:
    service, rows = filled
    keys = Counter(r["email"].casefold() for r in rows if r["email"])
    assert keys, "the demo has e-mail addresses"
    assert keys.most_common(1)[0][1] == 1
    assert "forsta@exempel.se" not in keys


def test_demo_customers_work_in_the_service(filled: tuple[RegisterService, list[dict[str, Any]]]) -> None:
    service, rows = filled
    assert service.count() == COUNT + 1
    page = service.page(sort=Sort("name"), limit=COUNT + 1)
    from kundreg_tui.domain.text import swedish_key

    keys = [swedish_key(r.name) for r in page]
    assert keys == sorted(keys)
    some = rows[17]
    rec = service.get(some["id"])
    assert rec is not None
    updated = service.update(rec.id, {**rec.values(), "city": "Åre"}, rec.version)
    assert updated.version == 2
    assert service.count(some["email"].upper()) == 1
    if some["org_number"]:
        assert service.count(some["org_number"].replace("-", "")) >= 1


def test_same_seed_same_register_sqlite(tmp_path: Path) -> None:
    def make(name: str) -> list[dict[str, Any]]:
        engine = make_engine(f"sqlite:///{tmp_path / name}")
        migrate(engine)
        fill_demo(engine, 200, seed=7)
        rows = [{k: v for k, v in r.items() if k not in ("created_at", "updated_at")}
                for r in all_rows(engine)]
        engine.dispose()
        return rows

    assert make("a.db") == make("b.db")


def _index_names(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'customer'").scalars())


def _customers_as_stored_by_the_register(service: RegisterService, rows: list[dict[str, Any]]) -> None:
    filled = (service, rows)
    test_rows_validate_cleanly(filled)
    test_stored_keys_equal_derived_columns(filled)
    test_emails_unique(filled)


def test_sqlite_indexes_rebuilt_after_bulk_fill(sqlite_engine: sa.Engine) -> None:
    fill_demo(sqlite_engine, 100)  # into an empty register: indexes dropped and built again
    names = _index_names(sqlite_engine)
    for index in customer_table.indexes:
        assert index.name in names


def test_factory_values_validate() -> None:
    factory = DemoFactory(3)
    for number in range(1001, 1301):
        values = factory.values(number)
        result = validate_customer(values)
        assert result.errors == {} and result.warnings == {}, (values, result.errors, result.warnings)
        assert result.values == values


def test_chunks_made_from_the_first_are_customers_too(sqlite_engine: sa.Engine) -> None:
    """On SQLite the chunks after the first are made from it (names, addresses and phones of
    different base rows, each customer with its own number and e-mail): same rules, varied."""
    service = RegisterService(sqlite_engine)
    service.create({"name": "Första Kunden AB", "email": "forsta@exempel.se"})
    count = 2500
    assert fill_demo(sqlite_engine, count, chunk=700) == count
    rows = all_rows(sqlite_engine)[1:]
    assert [r["number"] for r in rows] == [str(n) for n in range(1002, 1002 + count)]
    assert service.next_number() == str(1002 + count)
    _customers_as_stored_by_the_register(service, rows)
    # Not the first chunk again: each later customer combines other rows of it.
    def person(r: dict[str, Any]) -> tuple[str, str, str]:
        return (r["name"], r["address"], r["phone"])

    repeats = sum(person(a) == person(b) for a, b in zip(rows[:700], rows[700:1400], strict=True))
    assert repeats < 10
    assert len({person(r) for r in rows}) > 0.95 * count


def _journal_mode(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())


def test_fill_of_an_empty_register_in_chunks(sqlite_engine: sa.Engine) -> None:
    """Into an empty SQLite register the fill goes through a rollback journal (written once)
    and the indexes are built at the end; afterwards the register is in WAL as always."""
    service = RegisterService(sqlite_engine)
    count = 2500
    journal = Path(f"{sqlite_engine.url.database}-journal")
    seen: list[bool] = []
    assert fill_demo(sqlite_engine, count, chunk=700, progress=lambda *_: seen.append(journal.exists())) == count
    assert seen and all(seen)  # the rollback journal, not the WAL
    assert not journal.exists()
    rows = all_rows(sqlite_engine)
    assert [r["number"] for r in rows] == [str(n) for n in range(1001, 1001 + count)]
    assert service.next_number() == str(1001 + count)
    _customers_as_stored_by_the_register(service, rows)
    assert _journal_mode(sqlite_engine) == "wal"
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2  # MEMORY again
    assert {index.name for index in customer_table.indexes} <= _index_names(sqlite_engine)


def test_fill_that_fails_leaves_the_register_as_it_was(sqlite_engine: sa.Engine) -> None:
    service = RegisterService(sqlite_engine)

    def stop(done: int, _total: int) -> None:
        if done >= 1400:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fill_demo(sqlite_engine, 2500, chunk=700, progress=stop)
    assert all_rows(sqlite_engine) == []
    assert service.next_number() == "1001"
    assert _journal_mode(sqlite_engine) == "wal"
    assert {index.name for index in customer_table.indexes} <= _index_names(sqlite_engine)
    assert fill_demo(sqlite_engine, 300) == 300


def test_fill_while_another_program_has_the_register_open(sqlite_engine: sa.Engine) -> None:
    """Someone else's open connection keeps the register in WAL; the fill goes through it."""
    import sqlite3

    path = sqlite_engine.url.database
    assert path
    other = sqlite3.connect(path)
    try:
        assert other.execute("SELECT count(*) FROM customer").fetchone() == (0,)
        journal = Path(f"{path}-journal")
        seen: list[bool] = []
        assert fill_demo(sqlite_engine, 1500, chunk=700, progress=lambda *_: seen.append(journal.exists())) == 1500
        assert seen and not any(seen)
        assert other.execute("SELECT count(*) FROM customer").fetchone() == (1500,)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        other.close()


def test_demo_killed_while_filling_leaves_an_empty_register(tmp_path: Path) -> None:
    """``kundreg demo`` killed at any moment of a fill through the rollback journal: on opening,
    the register is empty (or complete), in WAL, and whole."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    count = 60_000
    root = Path(__file__).resolve().parent.parent
    outcomes = []
    for delay in (0.4, 1.0, 1.6, 2.4):
        db = tmp_path / f"kill-{delay}.db"
        proc = subprocess.Popen([sys.executable, "-m", "kundreg_tui", "--db", str(db), "demo", "--count", str(count)],
                                cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        engine = make_engine(f"sqlite:///{db}")
        migrate(engine)
        rows = len(all_rows(engine))
        engine.dispose()
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            conn.close()
        assert rows in (0, count)
        outcomes.append(rows)
    assert 0 in outcomes  # at least one kill landed inside the fill
