"""Many operators, one register: a customer's history, past imports and the trash.

* ``history_count`` / ``history_page``: every change of one customer, newest first, with the batch
  it belonged to (an import's file name). ``revert_change`` undoes one change, itself recorded as a
  new change (source ``revert``), and refuses when the customer changed since in a way that
  conflicts with it. A field revert goes through ``RegisterService.update`` with the version just
  read: optimistic locking, exactly like the form.
* ``imports_count`` / ``list_imports``: the register's past imports (file and paste), newest first;
  ``import_receipt`` rebuilds an import's receipt from its history rows (the rows it skipped were
  never stored: the receipt says so).
* ``trash_count`` / ``trash_page``: the customers moved out of the register (``deleted_at`` set) and
  not erased; ``restore_customers`` moves them back (refused when an e-mail is now used by a live
  customer), ``erase_from_trash`` erases them for good (``erase.py``), in the same transaction as
  the check that they are still in the trash.

Core SQL, short transactions; no UI toolkit here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kundreg_tui.domain.database import current_actor, read_conn, write_tx
from kundreg_tui.domain.erase import ERASE, EraseResult, _erase, _erasing_tx, _finish, erased_marker
from kundreg_tui.domain.fields import FIELD_NAMES
from kundreg_tui.domain.models import batch_table, change_table, customer_table
from kundreg_tui.domain.register import NotFound, RegisterError, RegisterService, now
from kundreg_tui.i18n import _

C = customer_table.c
T = change_table.c
B = batch_table.c
IMPORT_KINDS = ("import", "paste")
REVERT = "revert"
TRASH = "trash"
CHUNK = 500


def local_time(at: datetime | None) -> str:
    """A stored time (UTC; naive from SQLite) as local time, to the minute."""
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone().strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------- history
@dataclass(frozen=True)
class HistoryItem:
    id: int
    at: datetime
    actor: str
    source: str
    action: str
    batch_id: int | None
    batch_kind: str | None
    batch_source: str | None
    changes: dict[str, list[str]]

    @property
    def erased(self) -> bool:
        return self.action == ERASE or self.changes.get("erased") is True  # type: ignore[comparison-overlap]

    def field_changes(self) -> list[tuple[str, str, str]]:
        """(field, old, new) in the order of the form; nothing for an erased entry."""
        if self.erased:
            return []
        order = {n: i for i, n in enumerate(FIELD_NAMES)}
        out: list[tuple[str, str, str]] = []
        for name in sorted(self.changes, key=lambda n: (order.get(n, len(order)), n)):
            pair = self.changes[name]
            if isinstance(pair, list) and len(pair) == 2:
                out.append((name, str(pair[0] or ""), str(pair[1] or "")))
        return out


def _parse(changes: str) -> dict[str, Any]:
    try:
        value = json.loads(changes or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def history_count(engine: Engine, customer_id: int) -> int:
    with read_conn(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(change_table)
                                .where(T.customer_id == customer_id)).scalar_one())


def history_page(engine: Engine, customer_id: int, offset: int = 0, limit: int = 200) -> list[HistoryItem]:
    """One customer's changes, newest first."""
    stmt = (sa.select(T.id, T.at, T.actor, T.source, T.action, T.batch_id, T.changes,
                      B.kind.label("batch_kind"), B.source.label("batch_source"))
            .select_from(change_table.outerjoin(batch_table, B.id == T.batch_id))
            .where(T.customer_id == customer_id)
            .order_by(T.id.desc()).offset(max(offset, 0)).limit(limit))
    with read_conn(engine) as conn:
        return [HistoryItem(r.id, r.at, r.actor, r.source, r.action, r.batch_id, r.batch_kind,
                            r.batch_source, _parse(r.changes)) for r in conn.execute(stmt)]


def customer_title(engine: Engine, customer_id: int) -> tuple[str, str, bool] | None:
    """(number, name, in the trash or erased) of any customer, live or not."""
    with read_conn(engine) as conn:
        row = conn.execute(sa.select(C.number, C.name, C.deleted_at).where(C.id == customer_id)).first()
    return None if row is None else (row.number, row.name, row.deleted_at is not None)


@dataclass(frozen=True)
class RevertResult:
    change_id: int
    action: str  # what was reverted: update | create | delete | restore
    fields: list[str] = field(default_factory=list)


def revert_change(engine: Engine, change_id: int, actor: str | None = None) -> RevertResult:
    """Undo one change of a customer, recorded as a new change (source ``revert``).

    * update: every field it changed gets its old value back, refused when the field's current
      value is no longer the value the change gave it (someone changed it since); saved with the
      version just read, so a save by someone else in between is refused too (``StaleError``);
    * create / restore: the customer moves to the trash (refused when no longer in the register);
    * delete: the customer comes back from the trash (refused when it is not there any more, or
      its e-mail is used by a live customer now);
    * an erasure cannot be undone.
    """
    service = RegisterService(engine, actor or current_actor())
    with read_conn(engine) as conn:
        row = conn.execute(sa.select(change_table).where(T.id == change_id)).first()
        if row is None:
            raise NotFound(_("Ändringen finns inte."))
        cust = conn.execute(sa.select(C.number, C.deleted_at, C.delete_batch,
                                      erased_marker().label("erased"))
                            .where(C.id == row.customer_id)).first()
    changes = _parse(row.changes)
    if row.action == ERASE or changes.get("erased") is True or cust is None or cust.erased:
        raise RegisterError(_("Kunden är raderad permanent: ändringen kan inte återställas."))
    if row.action == "update":
        current = service.get(row.customer_id)
        if current is None:
            raise RegisterError(_("Kunden ligger i papperskorgen: återställ kunden först."))
        values = current.values()
        names: list[str] = []
        for name, pair in changes.items():
            if name not in values or not isinstance(pair, list) or len(pair) != 2:
                continue
            old, new = str(pair[0] or ""), str(pair[1] or "")
            if values[name] != new:
                from kundreg_tui.domain.fields import field_label

                raise RegisterError(_(
                    "Ändringen kan inte återställas: {field} har ändrats sedan dess "
                    "(nu ”{now}”, ändringen gav ”{new}”).").format(
                        field=field_label(name), now=values[name], new=new))
            values[name] = old
            names.append(name)
        if not names:
            raise RegisterError(_("Ändringen har inget att återställa."))
        service.update(row.customer_id, values, current.version, source=REVERT)
        return RevertResult(change_id, "update", names)
    if row.action in ("create", "restore"):
        if cust.deleted_at is not None:
            raise RegisterError(_("Kunden ligger redan i papperskorgen."))
        result = service.delete([row.customer_id], source=REVERT)
        if result.count != 1:
            raise RegisterError(_("Kunden har tagits bort av någon annan."))
        return RevertResult(change_id, row.action)
    if row.action == "delete":
        if cust.deleted_at is None:
            raise RegisterError(_("Kunden finns redan i kundregistret."))
        restore_customers(engine, [row.customer_id], actor=service.actor, source=REVERT)
        return RevertResult(change_id, "delete")
    raise RegisterError(_("Den här ändringen kan inte återställas."))


# ---------------------------------------------------------------------- imports
@dataclass(frozen=True)
class ImportItem:
    batch_id: int
    kind: str
    at: datetime
    actor: str
    source: str  # the file name, or "klistra in"
    counts: dict[str, int]
    undone_at: datetime | None

    @property
    def undone(self) -> bool:
        return self.undone_at is not None


def _counts(summary: str) -> dict[str, int]:
    counts = _parse(summary).get("counts", {})
    if not isinstance(counts, dict):
        return {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, int)}


def _import_item(r: Any) -> ImportItem:
    return ImportItem(r.id, r.kind, r.at, r.actor, r.source, _counts(r.summary), r.undone_at)


def imports_count(engine: Engine) -> int:
    with read_conn(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(batch_table)
                                .where(B.kind.in_(IMPORT_KINDS))).scalar_one())


def list_imports(engine: Engine, offset: int = 0, limit: int | None = None) -> list[ImportItem]:
    """Past imports (from file and pasted), newest first."""
    stmt = sa.select(batch_table).where(B.kind.in_(IMPORT_KINDS)).order_by(B.id.desc()).offset(max(offset, 0))
    if limit is not None:
        stmt = stmt.limit(limit)
    with read_conn(engine) as conn:
        return [_import_item(r) for r in conn.execute(stmt)]


def get_import(engine: Engine, batch_id: int) -> ImportItem:
    with read_conn(engine) as conn:
        row = conn.execute(sa.select(batch_table).where(B.id == batch_id, B.kind.in_(IMPORT_KINDS))).first()
    if row is None:
        raise NotFound(_("Importen finns inte."))
    return _import_item(row)


@dataclass
class ImportReceipt:
    """An import's receipt rebuilt from its history rows (the skipped rows were never stored)."""

    item: ImportItem
    created: list[str] = field(default_factory=list)  # customer numbers, in input order
    updated: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        c = self.item.counts
        lines = [
            _("Kvittens för import {n}: {label}").format(n=self.item.batch_id, label=self.item.source),
            _("Tid: {at}   Av: {who}").format(at=local_time(self.item.at), who=self.item.actor),
            _("Nya: {new} · Uppdaterade: {upd} · Oförändrade: {same} · Fel (hoppades över): {err}").format(
                new=c.get("new", len(self.created)), upd=c.get("update", len(self.updated)),
                same=c.get("same", 0), err=c.get("error", 0)),
            _("Raderna som hoppades över sparas inte: se kvittensen som visades vid importen."),
        ]
        if self.item.undone_at is not None:
            lines.append(_("Importen ångrades {at}.").format(at=local_time(self.item.undone_at)))
        return lines

    def as_text(self) -> str:
        lines = [*self.summary_lines(), ""]
        if self.created:
            lines.append(_("Skapade kunder (kundnummer):"))
            lines += [f"  {n}" for n in self.created]
        if self.updated:
            lines.append(_("Uppdaterade kunder (kundnummer):"))
            lines += [f"  {n}" for n in self.updated]
        return "\n".join(lines) + "\n"


def import_receipt(engine: Engine, batch_id: int) -> ImportReceipt:
    item = get_import(engine, batch_id)
    receipt = ImportReceipt(item)
    stmt = (sa.select(T.action, C.number)
            .select_from(change_table.join(customer_table, C.id == T.customer_id))
            .where(T.batch_id == batch_id, T.source != "undo", T.action.in_(("create", "update")))
            .order_by(T.id))
    with read_conn(engine) as conn:
        for action, number in conn.execute(stmt):
            (receipt.created if action == "create" else receipt.updated).append(number)
    return receipt


# ---------------------------------------------------------------------- trash
@dataclass(frozen=True)
class TrashItem:
    id: int
    number: str
    name: str
    email: str
    deleted_at: datetime
    deleted_by: str


def _in_trash() -> sa.ColumnElement[bool]:
    return sa.and_(C.deleted_at.is_not(None), sa.not_(erased_marker()))


def trash_count(engine: Engine) -> int:
    with read_conn(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(customer_table)
                                .where(_in_trash())).scalar_one())


def trash_page(engine: Engine, offset: int = 0, limit: int = 200) -> list[TrashItem]:
    """The trash, most recently deleted first."""
    who = (sa.select(T.actor).where(T.customer_id == C.id, T.action == "delete")
           .order_by(T.id.desc()).limit(1).scalar_subquery())
    stmt = (sa.select(C.id, C.number, C.name, C.email, C.deleted_at, who.label("deleted_by"))
            .where(_in_trash()).order_by(C.deleted_at.desc(), C.number_key, C.id)
            .offset(max(offset, 0)).limit(limit))
    with read_conn(engine) as conn:
        return [TrashItem(r.id, r.number, r.name, r.email, r.deleted_at, r.deleted_by or "")
                for r in conn.execute(stmt)]


def trash_ids(engine: Engine) -> list[int]:
    with read_conn(engine) as conn:
        return list(conn.execute(sa.select(C.id).where(_in_trash()).order_by(C.id)).scalars())


def trash_items(engine: Engine, ids: Iterable[int]) -> list[TrashItem]:
    """These customers, as far as they are still in the trash (for a confirmation)."""
    wanted = sorted(set(ids))
    who = (sa.select(T.actor).where(T.customer_id == C.id, T.action == "delete")
           .order_by(T.id.desc()).limit(1).scalar_subquery())
    out: list[TrashItem] = []
    with read_conn(engine) as conn:
        for start in range(0, len(wanted), CHUNK):
            stmt = (sa.select(C.id, C.number, C.name, C.email, C.deleted_at, who.label("deleted_by"))
                    .where(C.id.in_(wanted[start:start + CHUNK]), _in_trash()).order_by(C.number_key, C.id))
            out += [TrashItem(r.id, r.number, r.name, r.email, r.deleted_at, r.deleted_by or "")
                    for r in conn.execute(stmt)]
    return out


@dataclass(frozen=True)
class RestoreResult:
    count: int
    numbers: list[str]


def restore_customers(engine: Engine, ids: Iterable[int], actor: str | None = None,
                      source: str = TRASH) -> RestoreResult:
    """Move customers back from the trash, all or none; each gets a ``restore`` history row.

    Refused (nothing restored) when an e-mail of one of them is used by a live customer now, or
    two of them have the same e-mail."""
    wanted = sorted(set(ids))
    who = actor or current_actor()
    ts = now()
    with write_tx(engine) as conn:
        rows: list[Any] = []
        for start in range(0, len(wanted), CHUNK):
            rows += conn.execute(sa.select(C.id, C.number, C.name, C.email, C.email_key)
                                 .where(C.id.in_(wanted[start:start + CHUNK]), _in_trash())
                                 .order_by(C.number_key, C.id)).all()
        if not rows:
            raise RegisterError(_("Kunderna finns inte längre i papperskorgen."))
        seen: dict[str, Any] = {}
        for r in rows:
            if not r.email_key:
                continue
            if r.email_key in seen:
                first = seen[r.email_key]
                raise RegisterError(_(
                    "Kan inte återställa både {a} och {b}: de har samma e-postadress {e}. "
                    "Återställ en av dem.").format(a=first.number, b=r.number, e=r.email))
            seen[r.email_key] = r
        keys = list(seen)
        for start in range(0, len(keys), CHUNK):
            clash = conn.execute(sa.select(C.number, C.email_key)
                                 .where(C.email_key.in_(keys[start:start + CHUNK]), C.deleted_at.is_(None))
                                 .limit(1)).first()
            if clash is not None:
                mine = seen[clash.email_key]
                raise RegisterError(_(
                    "Kan inte återställa {n} {name}: e-postadressen {e} används nu av kund {other}. "
                    "Inget återställdes.").format(n=mine.number, name=mine.name, e=mine.email,
                                                   other=clash.number))
        row_ids = [r.id for r in rows]
        try:
            for start in range(0, len(row_ids), CHUNK):
                conn.execute(sa.update(customer_table)
                             .where(C.id.in_(row_ids[start:start + CHUNK]), C.deleted_at.is_not(None))
                             .values(deleted_at=None, delete_batch=None, version=C.version + 1, updated_at=ts))
        except sa.exc.IntegrityError as exc:
            raise RegisterError(_("Kan inte återställa: en e-postadress används nu av en annan kund.")) from exc
        conn.execute(sa.insert(change_table), [
            {"at": ts, "actor": who, "source": source, "batch_id": None, "customer_id": i,
             "action": "restore", "changes": "{}"} for i in row_ids])
    return RestoreResult(len(rows), [r.number for r in rows])


def erase_from_trash(engine: Engine, ids: Iterable[int] | None, actor: str | None = None) -> EraseResult:
    """Erase for good the given customers (``None``: every one) that are still in the trash, in one
    transaction with the check that they are (one restored meanwhile is left alone)."""
    ts = now()
    with _erasing_tx(engine) as conn:
        if ids is None:
            todo = list(conn.execute(sa.select(C.id).where(_in_trash()).order_by(C.id)).scalars())
        else:
            wanted = sorted(set(ids))
            todo = []
            for start in range(0, len(wanted), CHUNK):
                todo += conn.execute(sa.select(C.id).where(C.id.in_(wanted[start:start + CHUNK]),
                                                           _in_trash())).scalars()
        batch_id, numbers = _erase(conn, todo, actor or current_actor(), TRASH, ts,
                                   {"trash": True, "all": ids is None})
    return _finish(engine, batch_id, numbers)


__all__ = [
    "ImportItem", "ImportReceipt", "HistoryItem", "RestoreResult", "RevertResult", "TrashItem",
    "customer_title", "erase_from_trash", "get_import", "history_count", "history_page", "import_receipt",
    "imports_count", "list_imports", "local_time", "restore_customers", "revert_change", "trash_count",
    "trash_ids", "trash_items", "trash_page",
]
