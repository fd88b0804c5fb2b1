"""The import engine: plan (preview) and commit, shared by the file wizard, paste and the CLI.

A plan streams the input rows into a temporary staging table on a connection of its own,
normalised and validated, then classifies every row with a few indexed SQL statements against
the register (*ny*, *uppdateras*, *oförändrad*, *fel*). The preview pages from that table; the
commit writes only new and changed rows, in one transaction, with bulk SQL, and refuses when the
register changed since the plan was made. Every commit records the previous values so that
``undo_import`` restores exactly what was there before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kundreg_tui.domain.database import current_actor, write_tx
from kundreg_tui.domain.fields import FIELD_BY_NAME, FIELD_NAMES, KIND_COMPANY, KIND_PERSON
from kundreg_tui.domain.keys import derived_columns
from kundreg_tui.domain.models import batch_table, change_table, customer_table, meta_table
from kundreg_tui.domain.register import FIRST_NUMBER, NEXT_NUMBER_KEY, RegisterError, now
from kundreg_tui.domain.text import natural_key
from kundreg_tui.domain.validation import (
    FieldError,
    check_country,
    check_email,
    check_kind,
    check_number,
    check_org_number,
    check_postal_code,
    check_vat,
    clean,
    email_key,
    phone_warning,
)
from kundreg_tui.i18n import _

C = customer_table.c
NEW, UPDATE, SAME, ERROR = "new", "update", "same", "error"
CLASSES = (NEW, UPDATE, SAME, ERROR)
KEY_FIELDS = ("number", "email")
DERIVED = ("number_key", "name_key", "city_key", "email_key", "search_key")
CHUNK = 5000


class ImportError_(RegisterError):
    """The import cannot go on (told in words for the user)."""


class StalePlan(ImportError_):
    """The register changed since the preview was made."""


class Cancelled(ImportError_):
    pass


class RecordLike(Protocol):
    line: int
    values: list[str]
    problem: str | None


@dataclass
class ImportOptions:
    empty_clears: bool = False  # an empty cell clears the stored value instead of keeping it
    all_new: bool = False  # no key column: every row is created as a new customer
    source: str = "import"  # import | paste | cli
    label: str = ""  # the file name, or "klistra in"


@dataclass
class RowResult:
    seq: int
    line: int
    cls: str
    number: str
    reason: str = ""
    warning: str = ""


@dataclass
class Receipt:
    batch_id: int
    counts: dict[str, int]
    created: list[tuple[int, str]] = field(default_factory=list)  # (line, number)
    updated: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    at: datetime | None = None
    label: str = ""

    def as_text(self) -> str:
        lines = [_("Kvittens för import: {label}").format(label=self.label),
                 _("Tid: {at}").format(at=self.at.isoformat(timespec="seconds") if self.at else ""),
                 _("Nya: {n}").format(n=self.counts.get(NEW, 0)),
                 _("Uppdaterade: {n}").format(n=self.counts.get(UPDATE, 0)),
                 _("Oförändrade: {n}").format(n=self.counts.get(SAME, 0)),
                 _("Fel (hoppades över): {n}").format(n=self.counts.get(ERROR, 0)), ""]
        if self.created:
            lines.append(_("Skapade kunder (rad: kundnummer):"))
            lines += [f"  {line}: {number}" for line, number in self.created]
        if self.updated:
            lines.append(_("Uppdaterade kunder (rad: kundnummer):"))
            lines += [f"  {line}: {number}" for line, number in self.updated]
        if self.errors:
            lines.append(_("Rader som inte importerades (rad: orsak):"))
            lines += [f"  {line}: {reason}" for line, reason in self.errors]
        return "\n".join(lines) + "\n"


def _stage_table(name: str) -> sa.Table:
    md = sa.MetaData()
    cols: list[sa.Column[Any]] = [
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("cls", sa.String(8)),
        sa.Column("reason", sa.Text),
        sa.Column("warning", sa.Text),
        sa.Column("cust_id", sa.Integer),
        sa.Column("num_id", sa.Integer),
        sa.Column("num_deleted", sa.Integer),
        sa.Column("email_id", sa.Integer),
        sa.Column("old_version", sa.Integer),
        sa.Column("assigned", sa.Integer),
        sa.Column("changes", sa.Text),
        *(sa.Column(f"f_{n}", sa.Text) for n in FIELD_NAMES),
        sa.Column("k_email", sa.Text),
        *(sa.Column(f"d_{n}", sa.Text) for n in DERIVED),
    ]
    return sa.Table(name, md, *cols, prefixes=["TEMPORARY"])


def row_validator(fields: Sequence[str]) -> Callable[[dict[str, str]], tuple[dict[str, str], dict[str, str], list[str]]]:
    """A validator specialised to the mapped fields: the same rules as ``validate_customer``
    (partial), without its per-call set-up, for the million-row path. Returns (values, errors,
    warnings); an empty name is left out (a customer always keeps a name)."""
    checks: dict[str, Callable[..., str]] = {
        "number": check_number, "kind": check_kind, "vat_number": check_vat, "email": check_email,
    }
    order = [f for f in FIELD_NAMES if f in fields]
    has_kind, has_country = "kind" in order, "country" in order

    def validate(raw: dict[str, str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
        values: dict[str, str] = {}
        errors: dict[str, str] = {}
        warnings: list[str] = []
        for name in order:
            if name not in raw:
                continue
            try:
                value = clean(name, raw[name])
                if value:
                    check = checks.get(name)
                    if check is not None:
                        value = check(value)
                values[name] = value
            except FieldError as exc:
                errors[exc.field] = exc.message
        if has_kind and "kind" not in errors:
            try:
                values["kind"] = check_kind(values.get("kind", ""))
            except FieldError as exc:
                errors["kind"] = exc.message
        if has_country and "country" in values and "country" not in errors:
            try:
                values["country"] = check_country(values["country"])
            except FieldError as exc:
                errors["country"] = exc.message
        country = values.get("country") or "SE"
        org = values.get("org_number")
        if org and "org_number" not in errors:
            try:
                values["org_number"] = check_org_number(org, values.get("kind") or KIND_COMPANY)
            except FieldError as exc:
                errors["org_number"] = exc.message
        postal = values.get("postal_code")
        if postal and "postal_code" not in errors:
            try:
                values["postal_code"] = check_postal_code(postal, country)
            except FieldError as exc:
                errors["postal_code"] = exc.message
        phone = values.get("phone")
        if phone and "phone" not in errors:
            warning = phone_warning(phone, country)
            if warning:
                warnings.append(warning)
        if values.get("name") == "":
            del values["name"]
        return values, errors, warnings

    return validate


def register_fingerprint(conn: Connection) -> str:
    """Changes whenever anything is written to the register (every write logs a change row)."""
    top_change = conn.execute(sa.select(sa.func.max(change_table.c.id))).scalar()
    count, top_id = conn.execute(sa.select(sa.func.count(), sa.func.max(C.id)).select_from(customer_table)).one()
    return json.dumps([top_change, count, top_id])


class ImportPlan:
    """One import, from reading to commit. Holds a connection (and its staging table) open.

    Thread-safe for one caller at a time: a lock serialises use of the connection, so a
    preview table may page from it while nothing else runs.
    """

    def __init__(self, engine: Engine, options: ImportOptions | None = None, actor: str | None = None) -> None:
        self.engine = engine
        self.options = options or ImportOptions()
        self.actor = actor or current_actor()
        self.lock = threading.RLock()
        self.conn: Connection | None = None
        self.stage = _stage_table("kr_stage")
        self.mapping: list[str | None] = []
        self.fields: list[str] = []
        self.counts: dict[str, int] = dict.fromkeys(CLASSES, 0)
        self.blank_rows = 0
        self.fingerprint = ""
        self.committed: Receipt | None = None

    # ------------------------------------------------------------------ lifecycle
    def _connect(self) -> Connection:
        if self.conn is None:
            self.conn = self.engine.connect()
            if self.engine.dialect.name == "sqlite":
                # Staging goes to a temporary file, not memory: a million rows stay off the heap.
                dbapi = self.conn.connection.driver_connection
                if dbapi is not None:
                    dbapi.execute("PRAGMA temp_store=FILE")
        return self.conn

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                try:
                    if self.conn.in_transaction():
                        self.conn.rollback()
                    self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.stage.name}")
                    if self.conn.in_transaction():
                        self.conn.commit()
                except Exception:
                    pass
                self.conn.close()
                self.conn = None

    def __enter__(self) -> ImportPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ planning
    def build(self, records: Iterable[RecordLike], mapping: Sequence[str | None],
              progress: Callable[[int], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> dict[str, int]:
        """Read, validate and classify every row. ``mapping[i]``: the field of column i or None."""
        fields = [f for f in mapping if f]
        if len(set(fields)) != len(fields):
            dup = next(f for f in fields if fields.count(f) > 1)
            raise ImportError_(_("Fältet {field} är valt för två kolumner").format(
                field=FIELD_BY_NAME[dup].label_text))
        unknown = [f for f in fields if f not in FIELD_BY_NAME]
        if unknown:
            raise ImportError_(_("Okänt fält: {f}").format(f=unknown[0]))
        if not fields:
            raise ImportError_(_("Ingen kolumn är kopplad till ett fält."))
        if not any(f in KEY_FIELDS for f in fields) and not self.options.all_new:
            raise ImportError_(_(
                "Filen saknar kolumn för kundnummer och e-post, så ingen befintlig kund kan hittas. "
                "Välj att skapa alla rader som nya kunder, eller koppla en kolumn till kundnummer eller e-post."))
        self.mapping = list(mapping)
        self.fields = fields
        with self.lock:
            conn = self._connect()
            with conn.begin():
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.stage.name}")
                self.stage.create(conn)
                self.fingerprint = register_fingerprint(conn)
                self._load(conn, records, progress, cancelled)
                conn.exec_driver_sql(f"CREATE INDEX kr_stage_num ON {self.stage.name} (f_number)")
                conn.exec_driver_sql(f"CREATE INDEX kr_stage_mail ON {self.stage.name} (k_email)")
                self._classify(conn, cancelled)
                conn.exec_driver_sql(f"CREATE INDEX kr_stage_cls ON {self.stage.name} (cls, seq)")
                self.counts = self._count_classes(conn)
        return self.counts

    def _bulk(self, conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """The driver's own executemany with plain tuples: no per-row SQLAlchemy work."""
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"
        conn.exec_driver_sql(sql, rows)  # type: ignore[arg-type]

    def _load(self, conn: Connection, records: Iterable[RecordLike],
              progress: Callable[[int], None] | None, cancelled: Callable[[], bool] | None) -> None:
        cols = [(i, f) for i, f in enumerate(self.mapping) if f]
        empty_clears = self.options.empty_clears
        columns = ["seq", "line", "cls", "reason", "warning", *(f"f_{n}" for n in FIELD_NAMES), "k_email"]
        index = {n: i for i, n in enumerate(FIELD_NAMES)}
        has_name = "name" in self.fields
        validate = row_validator(self.fields)
        batch: list[tuple[Any, ...]] = []
        seq = 0
        blank = 0
        for record in records:
            values = record.values
            raw: dict[str, str] = {}
            any_value = False
            for i, name in cols:
                value = values[i] if i < len(values) else ""
                if value and not value.isspace():
                    raw[name] = value
                    any_value = True
                elif empty_clears:
                    raw[name] = ""
            if not any_value and not record.problem:
                blank += 1
                continue
            seq += 1
            cls: str | None = None
            reason: str | None = record.problem
            if reason:
                cls = ERROR
            clean_values, errors, warnings = validate(raw)
            given: list[str | None] = [None] * len(FIELD_NAMES)
            for name, value in clean_values.items():
                given[index[name]] = value
            if not clean_values.get("name") and not has_name:
                first, last = clean_values.get("first_name"), clean_values.get("last_name")
                # Kundnamn as "Förnamn Efternamn" when the input gives no name of its own.
                if first or last:
                    given[index["name"]] = " ".join(p for p in (first, last) if p)
            if errors and cls is None:
                cls, reason = ERROR, "; ".join(errors.values())
            warning = "; ".join(warnings) if warnings else None
            number = given[0] or None
            given[0] = number
            mail = given[index["email"]]
            batch.append((seq, record.line, cls, reason, warning, *given, email_key(mail) if mail else None))
            if len(batch) >= CHUNK:
                self._bulk(conn, self.stage, columns, batch)
                batch.clear()
                if progress:
                    progress(seq)
                if cancelled and cancelled():
                    raise Cancelled(_("Inläsningen avbröts."))
        if batch:
            self._bulk(conn, self.stage, columns, batch)
        if progress:
            progress(seq)
        self.blank_rows = blank
        if seq == 0:
            raise ImportError_(_("Det finns inga rader att importera."))

    def _classify(self, conn: Connection, cancelled: Callable[[], bool] | None) -> None:
        s = self.stage.c
        st = self.stage
        live = C.deleted_at.is_(None)
        # Duplicate keys inside the input: every row holding the key is in error.
        for key_col, label in ((s.f_number, _("Kundnummer")), (s.k_email, _("E-post"))):
            dups = conn.execute(
                sa.select(key_col).where(key_col.is_not(None)).group_by(key_col).having(sa.func.count() > 1)
            ).scalars().all()
            for start in range(0, len(dups), 500):
                chunk = dups[start:start + 500]
                lines: dict[str, list[int]] = {}
                for value, line in conn.execute(sa.select(key_col, s.line).where(key_col.in_(chunk)).order_by(s.seq)):
                    lines.setdefault(value, []).append(line)
                for value, where in lines.items():
                    reason = _("{field} {value} finns på flera rader i indata (rad {lines}); "
                               "ingen av dem importeras").format(
                        field=label, value=value, lines=", ".join(map(str, where[:10])))
                    conn.execute(st.update().where(key_col == value).values(
                        cls=ERROR, reason=sa.case((s.reason.is_(None), reason), else_=s.reason + "; " + reason)))
        # Match by number (any customer ever: a deleted number is never used again) and e-mail.
        conn.execute(st.update().where(s.f_number.is_not(None)).values(
            num_id=sa.select(C.id).where(C.number == s.f_number).scalar_subquery(),
            num_deleted=sa.select(sa.case((C.deleted_at.is_(None), 0), else_=1)).where(
                C.number == s.f_number).scalar_subquery(),
        ))
        conn.execute(st.update().where(s.k_email.is_not(None)).values(
            email_id=sa.select(C.id).where(C.email_key == s.k_email, live).scalar_subquery()))
        pending = s.cls.is_(None)
        conn.execute(st.update().where(pending, s.num_deleted == 1).values(
            cls=ERROR, reason=sa.literal(_("Kundnummer ")) + s.f_number + sa.literal(
                _(" har tillhört en raderad kund och kan inte användas igen"))))
        conn.execute(st.update().where(pending, s.num_id.is_not(None), s.email_id.is_not(None),
                                       s.num_id != s.email_id).values(
            cls=ERROR, reason=sa.literal(_("Kundnummer och e-post hör till två olika kunder; "
                                            "inget slås ihop"))))
        conn.execute(st.update().where(pending, s.f_number.is_not(None), s.num_id.is_(None),
                                       s.email_id.is_not(None)).values(
            cls=ERROR, reason=sa.literal(_("E-postadressen ")) + s.f_email + sa.literal(
                _(" används redan av en annan kund med annat kundnummer"))))
        conn.execute(st.update().where(pending).values(cust_id=sa.func.coalesce(s.num_id, s.email_id)))
        if not self.options.all_new:
            conn.execute(st.update().where(pending, s.f_number.is_(None), s.k_email.is_(None)).values(
                cls=ERROR, reason=sa.literal(_("Raden saknar både kundnummer och e-post"))))
        conn.execute(st.update().where(pending, s.cust_id.is_(None), sa.func.coalesce(s.f_name, "") == "").values(
            cls=ERROR, reason=sa.literal(_("Kundnamn saknas (krävs för en ny kund)"))))
        if cancelled and cancelled():
            raise Cancelled(_("Inläsningen avbröts."))
        self._compare(conn)
        self._number_new(conn)

    def _compare(self, conn: Connection) -> None:
        """Matched rows: which given values differ from the stored ones (after normalising).

        The comparison runs in SQL, so unchanged rows never leave the database; only rows with a
        difference are read back to compute their new keys and their history entry.
        """
        s = self.stage.c
        st = self.stage
        given = [n for n in FIELD_NAMES if n in self.fields and n != "number"]
        matched = sa.and_(s.cls.is_(None), s.cust_id.is_not(None))
        diffs = []
        for n in given:
            f = getattr(s, f"f_{n}")
            if n == "email":
                diffs.append(sa.and_(s.k_email.is_not(None), s.k_email != sa.func.coalesce(C.email_key, "")))
            elif n == "name":
                diffs.append(sa.and_(f.is_not(None), f != "", f != C.name))
            else:
                diffs.append(sa.and_(f.is_not(None), f != getattr(C, n)))
        differs = sa.or_(*diffs) if diffs else sa.false()
        conn.execute(st.update().where(matched).values(
            cls=SAME, old_version=sa.select(C.version).where(C.id == s.cust_id).scalar_subquery()))
        # SQLite and PostgreSQL both know UPDATE … FROM; it marks the rows that differ.
        conn.execute(st.update().where(s.cls == SAME, C.id == s.cust_id, differs).values(cls=UPDATE))
        stmt = (sa.select(s.seq, *(getattr(s, f"f_{n}") for n in FIELD_NAMES),
                          *(getattr(C, n) for n in FIELD_NAMES))
                .select_from(self.stage.join(customer_table, C.id == s.cust_id))
                .where(s.cls == UPDATE).order_by(s.seq))
        width = len(FIELD_NAMES)
        positions = [(FIELD_NAMES.index(n), n) for n in given]
        pending: list[dict[str, Any]] = []
        for row in conn.execute(stmt):
            staged, stored = row[1:1 + width], row[1 + width:]
            old = dict(zip(FIELD_NAMES, stored, strict=True))
            new_values = dict(old)
            changes: dict[str, list[str]] = {}
            error = ""
            for i, n in positions:
                value = staged[i]
                if value is None:
                    continue
                try:
                    if n == "org_number" and value:
                        value = check_org_number(value, staged[1] or old["kind"])
                    elif n == "postal_code" and value:
                        value = check_postal_code(value, staged[FIELD_NAMES.index("country")] or old["country"])
                except FieldError as exc:
                    error = exc.message
                    break
                if n == "email" and value.casefold() == (old["email"] or "").casefold():
                    continue
                if n == "name" and not value:
                    continue  # a customer always keeps a name
                if value != old[n]:
                    changes[n] = [old[n], value]
                    new_values[n] = value
            if error:
                pending.append({"k_seq": row[0], "cls": ERROR, "reason": error, "changes": None,
                                **dict.fromkeys((f"d_{d}" for d in DERIVED))})
                continue
            derived = derived_columns(new_values) if changes else dict.fromkeys(DERIVED)
            pending.append({"k_seq": row[0], "cls": UPDATE if changes else SAME, "reason": None,
                            "changes": json.dumps(changes, ensure_ascii=False) if changes else None,
                            **{f"d_{d}": v for d, v in derived.items()}})
        stmt_upd = st.update().where(s.seq == sa.bindparam("k_seq")).values(
            cls=sa.bindparam("cls"), reason=sa.bindparam("reason"), changes=sa.bindparam("changes"),
            **{f"d_{d}": sa.bindparam(f"d_{d}") for d in DERIVED})
        for start in range(0, len(pending), CHUNK):
            conn.execute(stmt_upd, pending[start:start + CHUNK])

    def _number_new(self, conn: Connection) -> None:
        """New rows: the customer numbers they will get, their full values and keys."""
        s = self.stage.c
        rows = conn.execute(sa.select(s.seq, *(getattr(s, f"f_{n}") for n in FIELD_NAMES))
                            .where(s.cls.is_(None), s.cust_id.is_(None)).order_by(s.seq)).all()
        need = sum(1 for r in rows if not r.f_number)
        numbers = iter(self._peek_numbers(conn, need))
        updates: list[dict[str, Any]] = []
        for r in rows:
            values = {n: (getattr(r, f"f_{n}") or "") for n in FIELD_NAMES}
            if not values["kind"]:
                # Förnamn/Efternamn without a type: a private person, as in the seeds' paste.
                values["kind"] = KIND_PERSON if values["first_name"] or values["last_name"] else KIND_COMPANY
            values["country"] = values["country"] or "SE"
            if values["kind"] == KIND_PERSON and values["org_number"]:
                try:
                    values["org_number"] = check_org_number(values["org_number"], KIND_PERSON)
                except FieldError:
                    pass
            assigned = 0
            if not values["number"]:
                values["number"] = next(numbers)
                assigned = 1
            derived = derived_columns(values)
            changes = {k: ["", v] for k, v in values.items() if v}
            updates.append({"k_seq": r.seq, "cls": NEW, "assigned": assigned,
                            "changes": json.dumps(changes, ensure_ascii=False),
                            **{f"f_{n}": values[n] for n in FIELD_NAMES},
                            **{f"d_{d}": v for d, v in derived.items()}})
        stmt = self.stage.update().where(s.seq == sa.bindparam("k_seq")).values(
            cls=sa.bindparam("cls"), assigned=sa.bindparam("assigned"), changes=sa.bindparam("changes"),
            **{f"f_{n}": sa.bindparam(f"f_{n}") for n in FIELD_NAMES},
            **{f"d_{d}": sa.bindparam(f"d_{d}") for d in DERIVED})
        for start in range(0, len(updates), CHUNK):
            conn.execute(stmt, updates[start:start + CHUNK])

    def _peek_numbers(self, conn: Connection, count: int) -> list[str]:
        """The next ``count`` numbers of the series, skipping any in use or typed in the input."""
        if count == 0:
            return []
        value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == NEXT_NUMBER_KEY)).scalar()
        nxt = int(value) if value else FIRST_NUMBER
        s = self.stage.c
        typed = [n for n in conn.execute(sa.select(s.f_number).where(s.f_number.is_not(None))).scalars()
                 if n.isdigit() and len(n) < 19]
        top_typed = max((int(n) for n in typed), default=0)
        nxt = max(nxt, top_typed + 1) if top_typed and top_typed >= nxt else nxt
        used = {int(n) for n in conn.execute(sa.select(C.number).where(C.number_key >= natural_key(str(nxt))))
                .scalars() if n.isdigit() and len(n) < 19}
        used |= {int(n) for n in typed}
        out: list[str] = []
        while len(out) < count:
            if nxt not in used:
                out.append(str(nxt))
            nxt += 1
        return out

    def _count_classes(self, conn: Connection) -> dict[str, int]:
        s = self.stage.c
        counts = dict.fromkeys(CLASSES, 0)
        for cls, n in conn.execute(sa.select(s.cls, sa.func.count()).group_by(s.cls)):
            counts[cls or ERROR] = n
        return counts

    # ------------------------------------------------------------------ preview
    def count(self, cls: str | None = None) -> int:
        if cls is None:
            return sum(self.counts.values())
        return self.counts.get(cls, 0)

    def preview(self, cls: str | None = None, offset: int = 0, limit: int = 200) -> list[dict[str, Any]]:
        """Rows of the preview: the staged values and, for matched rows, the stored ones."""
        s = self.stage.c
        stmt = (sa.select(self.stage, *(getattr(C, n).label(f"o_{n}") for n in FIELD_NAMES))
                .select_from(self.stage.outerjoin(customer_table, C.id == s.cust_id)))
        if cls:
            stmt = stmt.where(s.cls == cls)
        stmt = stmt.order_by(s.seq).offset(offset).limit(limit)
        with self.lock:
            conn = self._connect()
            with conn.begin():
                return [dict(r) for r in conn.execute(stmt).mappings()]

    def rows(self, only_errors: bool = False) -> Iterator[RowResult]:
        """Every row's outcome, in input order (for the JSON report and the receipt)."""
        s = self.stage.c
        with self.lock:
            conn = self._connect()
            with conn.begin():
                result = conn.execute(
                    sa.select(s.seq, s.line, s.cls, sa.func.coalesce(s.f_number, C.number).label("number"),
                              s.reason, s.warning)
                    .select_from(self.stage.outerjoin(customer_table, C.id == s.cust_id))
                    .where(s.cls == ERROR if only_errors else sa.true()).order_by(s.seq))
                rows = result.all()
        for r in rows:
            yield RowResult(r.seq, r.line, r.cls or ERROR, r.number or "", r.reason or "", r.warning or "")

    # ------------------------------------------------------------------ commit
    def commit(self, progress: Callable[[str], None] | None = None) -> Receipt:
        """Write every new and changed row in one transaction; refuse if the register changed."""
        if self.committed is not None:
            raise ImportError_(_("Importen är redan genomförd."))
        with self.lock:
            conn = self._connect()
            ts = now()
            conn.execution_options(kundreg_write=True)
            try:
                with conn.begin():
                    if register_fingerprint(conn) != self.fingerprint:
                        raise StalePlan(_(
                            "Kundregistret har ändrats sedan förhandsgranskningen gjordes. "
                            "Gör en ny förhandsgranskning innan du importerar."))
                    receipt = self._write(conn, ts, progress)
            finally:
                conn.execution_options(kundreg_write=False)
        self.committed = receipt
        return receipt

    def _write(self, conn: Connection, ts: datetime, progress: Callable[[str], None] | None) -> Receipt:
        s = self.stage.c
        st = self.stage
        counts = dict(self.counts)
        batch_id = conn.execute(sa.insert(batch_table).values(
            kind="import", at=ts, actor=self.actor, source=self.options.label or self.options.source,
            summary=json.dumps({"counts": counts}, ensure_ascii=False)).returning(batch_table.c.id)).scalar_one()
        if progress:
            progress("new")
        # New customers: one INSERT … SELECT from the staging table.
        insert_cols = [*FIELD_NAMES, *DERIVED, "version", "created_at", "updated_at"]
        select_cols: list[Any] = [getattr(s, f"f_{n}") for n in FIELD_NAMES]
        select_cols += [getattr(s, f"d_{d}") for d in DERIVED]
        select_cols += [sa.literal(1), sa.literal(ts, customer_table.c.created_at.type),
                        sa.literal(ts, customer_table.c.updated_at.type)]
        conn.execute(customer_table.insert().from_select(
            insert_cols, sa.select(*select_cols).where(s.cls == NEW).order_by(s.seq)))
        # Point the staged new rows at the ids they got.
        conn.execute(st.update().where(s.cls == NEW).values(
            cust_id=sa.select(C.id).where(C.number == s.f_number).scalar_subquery()))
        if progress:
            progress("update")
        # Changed customers: one UPDATE … FROM the staging table, only the given fields.
        values: dict[str, Any] = {}
        for n in FIELD_NAMES:
            if n in self.fields and n != "number":
                col = getattr(s, f"f_{n}")
                if n == "name":
                    values[n] = sa.case((sa.func.coalesce(col, "") == "", C.name), else_=col)
                elif n == "email":
                    values[n] = sa.case((col.is_(None), C.email),
                                        (sa.func.lower(col) == sa.func.lower(C.email), C.email), else_=col)
                else:
                    values[n] = sa.func.coalesce(col, getattr(C, n))
        for d in DERIVED:
            values[d] = getattr(s, f"d_{d}")
        values["version"] = C.version + 1
        values["updated_at"] = ts
        result = conn.execute(customer_table.update().where(
            C.id == s.cust_id, s.cls == UPDATE, C.version == s.old_version).values(**values))
        if result.rowcount != counts.get(UPDATE, 0):
            raise StalePlan(_("Kundregistret har ändrats sedan förhandsgranskningen gjordes. "
                              "Gör en ny förhandsgranskning innan du importerar."))
        # org_number / postal_code may have been normalised against the stored kind / country.
        fix = [(n, f"f_{n}") for n in ("org_number", "postal_code") if n in self.fields]
        if fix:
            rows = conn.execute(sa.select(s.cust_id, s.changes).where(s.cls == UPDATE)).all()
            upd: list[dict[str, Any]] = []
            for r in rows:
                ch = json.loads(r.changes)
                patch = {n: ch[n][1] for n, _f in fix if n in ch}
                if patch:
                    upd.append({"k_id": r.cust_id, **{n: patch.get(n) for n, _f in fix}})
            if upd:
                stmt = customer_table.update().where(C.id == sa.bindparam("k_id")).values(
                    **{n: sa.func.coalesce(sa.bindparam(n), getattr(C, n)) for n, _f in fix})
                conn.execute(stmt, upd)
        # The series moves past every number used.
        top = conn.execute(sa.select(s.f_number).where(s.cls == NEW)).scalars().all()
        numeric = [int(n) for n in top if n.isdigit() and len(n) < 19]
        if numeric:
            current = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == NEXT_NUMBER_KEY)).scalar()
            nxt = max(int(current) if current else FIRST_NUMBER, max(numeric) + 1)
            if current is None:
                conn.execute(sa.insert(meta_table).values(key=NEXT_NUMBER_KEY, value=str(nxt)))
            else:
                conn.execute(sa.update(meta_table).where(meta_table.c.key == NEXT_NUMBER_KEY).values(value=str(nxt)))
        if progress:
            progress("log")
        # History: every created and changed customer, with every previous value.
        conn.execute(change_table.insert().from_select(
            ["at", "actor", "source", "batch_id", "customer_id", "action", "changes"],
            sa.select(sa.literal(ts, change_table.c.at.type), sa.literal(self.actor), sa.literal(self.options.source),
                      sa.literal(batch_id), s.cust_id,
                      sa.case((s.cls == NEW, "create"), else_="update"), s.changes)
            .where(s.cls.in_([NEW, UPDATE])).order_by(s.seq)))
        receipt = Receipt(batch_id, counts, at=ts, label=self.options.label)
        for r in conn.execute(sa.select(s.line, s.cls, s.f_number, s.reason).where(
                s.cls.in_([NEW, UPDATE, ERROR])).order_by(s.seq)):
            if r.cls == NEW:
                receipt.created.append((r.line, r.f_number))
            elif r.cls == UPDATE:
                receipt.updated.append((r.line, r.f_number or ""))
            else:
                receipt.errors.append((r.line, r.reason or ""))
        if receipt.updated:  # numbers of customers matched by e-mail only
            nums = dict(conn.execute(sa.select(s.seq, C.number).select_from(
                self.stage.join(customer_table, C.id == s.cust_id)).where(s.cls == UPDATE)).all())
            lines = [r for r in conn.execute(sa.select(s.seq, s.line).where(s.cls == UPDATE).order_by(s.seq))]
            receipt.updated = [(line, nums.get(seq, "")) for seq, line in lines]
        conn.execute(sa.update(batch_table).where(batch_table.c.id == batch_id).values(
            summary=json.dumps({"counts": counts, "label": self.options.label}, ensure_ascii=False)))
        return receipt


def undo_import(engine: Engine, batch_id: int, actor: str | None = None) -> int:
    """Restore exactly what was there before an import: created customers go, changed ones get
    their previous values back. Refused when a customer was changed after the import."""
    actor = actor or current_actor()
    ts = now()
    t = change_table.c
    with write_tx(engine) as conn:
        batch = conn.execute(sa.select(batch_table).where(batch_table.c.id == batch_id)).first()
        if batch is None or batch.kind != "import":
            raise ImportError_(_("Importen finns inte."))
        if batch.undone_at is not None:
            raise ImportError_(_("Importen är redan ångrad."))
        entries = conn.execute(sa.select(t.id, t.customer_id, t.action, t.changes).where(
            t.batch_id == batch_id).order_by(t.id)).all()
        if not entries:
            conn.execute(sa.update(batch_table).where(batch_table.c.id == batch_id).values(undone_at=ts))
            return 0
        last = max(e.id for e in entries)
        ids = [e.customer_id for e in entries]
        later: list[int] = []
        for start in range(0, len(ids), 500):
            later += conn.execute(sa.select(t.customer_id).where(
                t.customer_id.in_(ids[start:start + 500]), t.id > last).limit(1)).scalars().all()
            if later:
                break
        if later:
            number = conn.execute(sa.select(C.number).where(C.id == later[0])).scalar()
            raise ImportError_(_("Importen kan inte ångras: kund {n} har ändrats efter importen.").format(n=number))
        created = [e.customer_id for e in entries if e.action == "create"]
        for start in range(0, len(created), 500):
            conn.execute(sa.update(customer_table).where(C.id.in_(created[start:start + 500])).values(
                deleted_at=ts, version=C.version + 1, updated_at=ts))
        restores: list[dict[str, Any]] = []
        for e in entries:
            if e.action != "update":
                continue
            changes = json.loads(e.changes)
            current = conn.execute(sa.select(*(getattr(C, n) for n in FIELD_NAMES)).where(C.id == e.customer_id)).one()
            values = dict(zip(FIELD_NAMES, current, strict=True))
            for n, (old, _new) in changes.items():
                values[n] = old
            restores.append({"k_id": e.customer_id, **values, **derived_columns(values)})
        if restores:
            stmt = customer_table.update().where(C.id == sa.bindparam("k_id")).values(
                **{n: sa.bindparam(n) for n in (*FIELD_NAMES, *DERIVED)}, version=C.version + 1, updated_at=ts)
            conn.execute(stmt, restores)
        log = [{"at": ts, "actor": actor, "source": "undo", "batch_id": batch_id, "customer_id": e.customer_id,
                "action": "delete" if e.action == "create" else "update",
                "changes": json.dumps({n: [new, old] for n, (old, new) in json.loads(e.changes).items()},
                                      ensure_ascii=False)} for e in entries]
        conn.execute(sa.insert(change_table), log)
        conn.execute(sa.update(batch_table).where(batch_table.c.id == batch_id).values(undone_at=ts))
        return len(entries)
