"""Erasing customers for good: ``purge_trash`` / ``erase_customers`` / ``kundreg purge``.

On both databases: the tombstone keeps the number and nothing else, the history keeps who and
when but not what, the trash younger than the limit and the live register are untouched. On
SQLite, the raw bytes of the database file and its WAL file no longer hold the erased data.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from kundreg_tui.__main__ import main
from kundreg_tui.domain.erase import ERASED, erase_customers, purge, purge_trash, purgeable
from kundreg_tui.domain.fields import FIELD_NAMES
from kundreg_tui.domain.models import batch_table, customer_table
from kundreg_tui.domain.register import RegisterService, ValidationFailed, now

pytestmark = pytest.mark.pg

SECRET = {
    "name": "Hemliga Hansson AB", "email": "hemliga.hansson@exempel.se", "city": "Kiruna",
    "address": "Gömda gränd 7", "phone": "070-765 43 21", "reference": "Greta Hemligsson",
    "notes": "Vill aldrig ha reklam. Portkod 4711.",
}


def backdate(engine: sa.Engine, customer_id: int, days: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(customer_table).where(customer_table.c.id == customer_id)
                     .values(deleted_at=now() - timedelta(days=days)))


def raw_row(engine: sa.Engine, customer_id: int) -> sa.Row[object]:
    with engine.connect() as conn:
        return conn.execute(sa.select(customer_table).where(customer_table.c.id == customer_id)).one()


def test_purge_erases_old_trash_and_keeps_a_tombstone(service: RegisterService) -> None:
    old = service.create(dict(SECRET))
    service.update(old.id, {**old.values(), "city": "Abisko"}, old.version)
    young = service.create({"name": "Ung i korgen AB", "email": "ung@exempel.se"})
    live = service.create({"name": "Levande AB", "email": "levande@exempel.se"})
    deletion = service.delete([old.id, young.id])
    backdate(service.engine, old.id, 40)

    assert [e.number for e in purgeable(service.engine, 30)] == [old.number]
    assert purge_trash(service.engine, 30, actor="admin") == 1

    row = raw_row(service.engine, old.id)
    assert row.number == old.number and row.deleted_at is not None
    assert all(getattr(row, n) == "" for n in FIELD_NAMES if n != "number")
    assert row.email_key is None and row.name_key == "" and row.search_key == ""
    with service.engine.connect() as conn:
        kind = conn.execute(sa.select(batch_table.c.kind).where(batch_table.c.id == row.delete_batch)).scalar()
    assert kind == "erase"
    history = service.history(old.id)
    assert history[0].action == "erase" and history[0].actor == "admin"
    assert [e.action for e in history] == ["erase", "delete", "update", "create"]
    assert all(json.dumps(e.changes) == json.dumps(ERASED) for e in history)  # who and when stay, what it held goes
    assert [e.actor for e in history[1:]] == ["test", "test", "test"]
    # The trash younger than the limit and the live register are untouched.
    assert service.get(live.id) == live
    assert raw_row(service.engine, young.id).email == "ung@exempel.se"
    # The number is never handed out again, nor can it be typed; the e-mail is free again.
    with pytest.raises(ValidationFailed):
        service.create({"number": old.number, "name": "Ny"})
    again = service.create({"name": "Ny med samma e-post", "email": SECRET["email"]})
    assert again.number not in (old.number, young.number, live.number)
    # Undoing the deletion brings back what was not erased, and only that.
    assert service.undo_delete(deletion.batch_id) == 1
    assert service.get(young.id) is not None and service.get(old.id) is None
    # Nothing left to purge.
    assert purge_trash(service.engine, 30, actor="admin") == 0


def test_erase_customers_at_once(service: RegisterService) -> None:
    """An erasure request: the customer goes at once, from the trash or from the register."""
    a = service.create(dict(SECRET))
    b = service.create({"name": "Bo Ek", "email": "bo@exempel.se"})
    c = service.create({"name": "Kvar AB"})
    result = erase_customers(service.engine, [a.id, b.id], actor="dataskydd")
    assert (result.count, sorted(result.numbers)) == (2, sorted([a.number, b.number]))
    assert service.count() == 1 and service.get(c.id) == c
    assert service.get(a.id) is None
    for cid in (a.id, b.id):
        row = raw_row(service.engine, cid)
        assert row.deleted_at is not None and row.name == "" and row.email == ""
    # Erasing again changes nothing and records nothing.
    assert erase_customers(service.engine, [a.id], actor="dataskydd").count == 0
    assert [e.action for e in service.history(a.id)] == ["erase", "create"]


def test_purge_is_one_transaction(service: RegisterService, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure half-way leaves every customer and every history row as it was."""
    import kundreg_tui.domain.erase as erase

    ids = [service.create({"name": f"Kund {i}", "email": f"k{i}@exempel.se"}).id for i in range(3)]
    service.delete(ids)
    monkeypatch.setattr(erase, "CHUNK", 1)
    real_insert = sa.insert

    def failing_insert(table: sa.Table) -> object:
        if table.name == "change":
            raise RuntimeError("avbrott")
        return real_insert(table)

    monkeypatch.setattr(sa, "insert", failing_insert)
    with pytest.raises(RuntimeError):
        purge(service.engine, 0, actor="admin")
    monkeypatch.undo()
    for cid in ids:
        assert raw_row(service.engine, cid).email.startswith("k")
        assert {e.action for e in service.history(cid)} == {"create", "delete"}
    assert len(purgeable(service.engine, 0)) == 3


def test_purge_command(service: RegisterService, db_url: str) -> None:
    a = service.create(dict(SECRET))
    service.delete([a.id])
    backdate(service.engine, a.id, 10)
    runner = CliRunner()
    dry = runner.invoke(main, ["--db", db_url, "purge", "--older-than", "7", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert a.number in dry.output and "Inget raderades" in dry.output
    assert raw_row(service.engine, a.id).email == SECRET["email"]
    none = runner.invoke(main, ["--db", db_url, "purge", "--older-than", "30"])
    assert none.exit_code == 0 and "Inga kunder" in none.output
    done = runner.invoke(main, ["--db", db_url, "purge", "--older-than", "7", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["ok"] and report["count"] == 1 and report["numbers"] == [a.number]
    assert report["wal_truncated"] is (True if service.engine.dialect.name == "sqlite" else None)
    assert raw_row(service.engine, a.id).email == ""
    missing = runner.invoke(main, ["--db", db_url, "purge"])
    assert missing.exit_code == 2  # --older-than is required


# ---------------------------------------------------------------------------- the bytes on disk
def _hits(path: Path, needles: list[bytes]) -> dict[str, int]:
    data = b""
    for f in (path, Path(f"{path}-wal")):
        if f.exists():
            data += f.read_bytes()
    return {n.decode(): data.count(n) for n in needles}


def test_erased_data_is_gone_from_the_file_and_the_wal(sqlite_engine: sa.Engine) -> None:
    path = Path(str(sqlite_engine.url.database))
    service = RegisterService(sqlite_engine, actor="test")
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    for i in range(300):
        service.create({"name": f"Fyllnad {i} AB", "email": f"fyllnad{i}@exempel.se", "notes": "x" * (i % 7) * 100})
    target = service.create(dict(SECRET))
    changed = service.update(target.id, {**target.values(), "name": "Hemligare Hansson AB",
                                         "notes": SECRET["notes"] + " " + "lång anteckning " * 150},
                             target.version)
    for i in range(300, 400):
        service.create({"name": f"Fyllnad {i} AB", "email": f"fyllnad{i}@exempel.se"})
    service.delete([changed.id])
    needles = [b"hemliga.hansson", b"Hemliga Hansson", b"Hemligare", b"hemligare", b"Portkod 4711",
               b"G\xc3\xb6mda gr\xc3\xa4nd", b"Hemligsson", b"765 43 21"]
    before = _hits(path, needles)
    assert all(before.values()), before  # the data was there, in the file or its WAL

    result = purge(sqlite_engine, 0, actor="admin")
    assert result.count == 1 and result.wal_truncated is True
    after = _hits(path, needles)
    assert not any(after.values()), after
    assert Path(f"{path}-wal").stat().st_size == 0
    # The rest of the register is whole.
    assert service.count() == 400
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert _hits(path, [b"fyllnad399@exempel.se"])["fyllnad399@exempel.se"] > 0
