"""Erasing customers for good: the personal data goes, the customer number stays.

A deleted customer lies in the trash (``deleted_at`` set) and can be restored. ``purge_trash``
(``kundreg purge --older-than DAYS``, for cron) erases those that have lain there longer than
``DAYS``; ``erase_customers`` erases the given ones at once (an erasure request), in the trash or
not. Either is one transaction:

* the row stays as a *tombstone*: the customer number (so that it is never handed out again:
  ``create`` refuses a number any row holds, and the series only moves forward), every other field
  blank, ``deleted_at`` set, and ``delete_batch`` pointing at the erasure's batch (kind ``erase``):
  that is the marker that it was erased, and it takes the row out of its deletion's undo;
* every history row of the customer is rewritten to ``{"erased": true}`` (who changed it and when
  stays, what it held goes), and an ``erase`` row records who erased it and when.

On SQLite the erasing connection runs with ``PRAGMA secure_delete=ON`` (the old record is
overwritten with zeros, not left in the page's free space), and afterwards a
``wal_checkpoint(TRUNCATE)`` copies the pages into the database file and empties the ``-wal``
file, where the old pages were. PostgreSQL keeps dead row versions until (auto)VACUUM reuses the
space, and its WAL until the server recycles it: the data is gone from every query at once, from
the disk when the server has done that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kundreg_tui.domain.database import current_actor, is_sqlite
from kundreg_tui.domain.faults import as_fault
from kundreg_tui.domain.fields import FIELD_NAMES
from kundreg_tui.domain.models import batch_table, change_table, customer_table
from kundreg_tui.domain.register import now

C = customer_table.c
ERASED = {"erased": True}
ERASED_JSON = json.dumps(ERASED)
ERASE = "erase"  # the batch kind and the history action
CHUNK = 500
CHECKPOINT_ATTEMPTS = 3


@dataclass(frozen=True)
class EraseResult:
    batch_id: int | None  # None when there was nothing to erase
    count: int
    numbers: list[str]
    wal_truncated: bool | None = None  # SQLite: was the -wal file emptied? None: not SQLite / nothing done


@dataclass(frozen=True)
class TrashEntry:
    id: int
    number: str
    deleted_at: datetime


def erased_marker() -> sa.ColumnElement[bool]:
    """True for a tombstone: its ``delete_batch`` is an erasure."""
    erasures = sa.select(batch_table.c.id).where(batch_table.c.kind == ERASE)
    return sa.and_(C.delete_batch.is_not(None), C.delete_batch.in_(erasures))


def _not_erased() -> sa.ColumnElement[bool]:
    return sa.not_(erased_marker())


def _cutoff(older_than_days: int, at: datetime | None = None) -> datetime:
    if older_than_days < 0:
        raise ValueError("older_than_days must be 0 or more")
    return (at or now()) - timedelta(days=older_than_days)


def _trash_query(cutoff: datetime) -> sa.Select[Any]:
    return (sa.select(C.id, C.number, C.deleted_at)
            .where(C.deleted_at.is_not(None), C.deleted_at < cutoff, _not_erased())
            .order_by(C.number_key, C.id))


def purgeable(engine: Engine, older_than_days: int, at: datetime | None = None) -> list[TrashEntry]:
    """The customers that have lain in the trash longer than ``older_than_days`` (not yet erased)."""
    from kundreg_tui.domain.database import read_conn

    with read_conn(engine) as conn:
        return [TrashEntry(r.id, r.number, r.deleted_at) for r in conn.execute(_trash_query(_cutoff(older_than_days, at)))]


@contextmanager
def _erasing_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction whose freed space is overwritten with zeros (SQLite)."""
    try:
        with engine.connect() as conn:
            if is_sqlite(engine):
                raw = conn.connection.driver_connection
                if raw is not None:
                    raw.execute("PRAGMA secure_delete=ON")
            conn = conn.execution_options(kundreg_write=True)
            with conn.begin():
                yield conn
    except sa.exc.DBAPIError as exc:
        found = as_fault(exc, engine)
        if found is not None:
            raise found from exc
        raise


def _erase(conn: Connection, ids: list[int], actor: str, source: str, ts: datetime,
           summary: dict[str, Any]) -> tuple[int | None, list[str]]:
    """Erase ``ids`` (those not erased already) in the open transaction ``conn``."""
    todo: list[tuple[int, str]] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        todo += [(r.id, r.number) for r in conn.execute(
            sa.select(C.id, C.number).where(C.id.in_(chunk), _not_erased()).order_by(C.number_key, C.id))]
    if not todo:
        return None, []
    batch_id = conn.execute(sa.insert(batch_table).values(
        kind=ERASE, at=ts, actor=actor, source=source,
        summary=json.dumps({**summary, "count": len(todo)})).returning(batch_table.c.id)).scalar_one()
    blank: dict[str, Any] = {n: "" for n in FIELD_NAMES if n != "number"}
    blank.update(name_key="", city_key="", email_key=None, search_key="")
    for start in range(0, len(todo), CHUNK):
        chunk_ids = [i for i, _n in todo[start:start + CHUNK]]
        conn.execute(sa.update(customer_table).where(C.id.in_(chunk_ids)).values(
            **blank, deleted_at=sa.func.coalesce(C.deleted_at, ts), delete_batch=batch_id,
            version=C.version + 1, updated_at=ts))
        conn.execute(sa.update(change_table).where(change_table.c.customer_id.in_(chunk_ids))
                     .values(changes=ERASED_JSON))
    conn.execute(sa.insert(change_table), [
        {"at": ts, "actor": actor, "source": source, "batch_id": batch_id, "customer_id": i,
         "action": ERASE, "changes": ERASED_JSON} for i, _n in todo])
    return batch_id, [n for _i, n in todo]


def truncate_wal(engine: Engine) -> bool:
    """Copy the WAL into the database file and empty it (SQLite); False when a reader kept an old
    snapshot open through every attempt (each waits up to the busy timeout)."""
    if not is_sqlite(engine):
        return True
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        if raw is None:
            return False
        for attempt in range(CHECKPOINT_ATTEMPTS):
            busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return True
            time.sleep(0.2 * (attempt + 1))
    return False


def _finish(engine: Engine, batch_id: int | None, numbers: list[str]) -> EraseResult:
    if batch_id is None:
        return EraseResult(None, 0, [])
    truncated = truncate_wal(engine) if is_sqlite(engine) else None
    return EraseResult(batch_id, len(numbers), numbers, truncated)


def erase_customers(engine: Engine, ids: Iterable[int], actor: str | None = None,
                    source: str = ERASE) -> EraseResult:
    """Erase these customers for good (in the trash or not), in one transaction."""
    wanted = sorted(set(ids))
    ts = now()
    with _erasing_tx(engine) as conn:
        batch_id, numbers = _erase(conn, wanted, actor or current_actor(), source, ts, {})
    return _finish(engine, batch_id, numbers)


def purge(engine: Engine, older_than_days: int, actor: str | None = None,
          at: datetime | None = None) -> EraseResult:
    """Erase every customer that has lain in the trash longer than ``older_than_days``."""
    ts = now()
    cutoff = _cutoff(older_than_days, at or ts)
    with _erasing_tx(engine) as conn:
        ids = list(conn.execute(_trash_query(cutoff).with_only_columns(C.id)).scalars())
        batch_id, numbers = _erase(conn, ids, actor or current_actor(), "purge", ts,
                                   {"older_than_days": older_than_days})
    return _finish(engine, batch_id, numbers)


def purge_trash(engine: Engine, older_than_days: int, actor: str | None = None) -> int:
    """``purge``, returning how many customers were erased."""
    return purge(engine, older_than_days, actor).count
