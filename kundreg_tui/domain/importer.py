"""The import engine: plan (preview) and commit, shared by the file wizard, paste and the CLI.

A plan reads the input a chunk (8,192 rows; smaller ones first) at a time. Each chunk is normalised
and validated column by column (``fastpath``: the answers of ``validation.validate_customer``, at C
speed), for a big file in a child process (``chunks``). Its keys are looked up in the register with
one SQL statement per key (number, e-mail), in a worker thread while the previous chunk is
classified, and every row is classified in Python: the two keys must find the same customer, a
found customer is *oförändrad* when the row's normalised values, compared as one string, equal the
stored ones, else its changes are listed field by field (*uppdateras*); a row that finds no one is
*ny*, anything that cannot be imported is *fel* with the reason. The rows are staged (keys, values
as one string, class; a row with exactly the stored values as its line and customer only) in
temporary tables on the plan's own connection, and counted by class. Once every row is in: keys
given twice, two rows for one customer, and the customer numbers the new rows will get. The
preview pages from these tables.

The commit writes the new and changed rows in one transaction with bulk SQL (new customers' values,
keys and history are made then), and refuses when the register changed since the plan was made
(``StalePlan``). It records the import (who, when, source) and every previous value, so that
``undo_import`` restores exactly what was there before.
"""

from __future__ import annotations

import gc
import itertools
import json
import operator
import os
import sys
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kundreg_tui.domain.chunks import (
    HEAD_ROWS,
    ChildChunks,
    ChildFailed,
    Chunk,
    Preparer,
    RecordLike,
    number_int,
    use_child,
)
from kundreg_tui.domain.csvread import CsvReadError
from kundreg_tui.domain.database import current_actor, write_tx
from kundreg_tui.domain.fastpath import CELL_SEP, KeyCache
from kundreg_tui.domain.fields import FIELD_BY_NAME, FIELD_NAMES, KIND_COMPANY, KIND_PERSON
from kundreg_tui.domain.models import batch_table, change_table, customer_table, meta_table
from kundreg_tui.domain.register import FIRST_NUMBER, NEXT_NUMBER_KEY, RegisterError, now
from kundreg_tui.domain.text import natural_key
from kundreg_tui.domain.validation import (
    FieldError,
    check_org_number,
    check_postal_code,
    validate_customer,
)
from kundreg_tui.i18n import N_, _

if TYPE_CHECKING:
    from kundreg_tui.domain.csvread import CsvSource

C = customer_table.c
NEW, UPDATE, SAME, ERROR = "new", "update", "same", "error"
CLASSES = (NEW, UPDATE, SAME, ERROR)
KEY_FIELDS = ("number", "email")
DERIVED = ("number_key", "name_key", "city_key", "email_key", "search_key")
LOOKUP_CACHE_KIB = 8 * 1024  # the plan's page cache while it reads the register (see ``_connect``)
COMMIT_CACHE_KIB = 64 * 1024  # and while it writes
MAX_PARAMS = 30_000  # bound parameters per SQLite INSERT statement (its limit is 32,766)
INSERT_ROWS = 1024  # rows in one INSERT at most (``_insert_batches``)
CARRY = 64  # staged rows are written in multiples of this (the rest with the next chunk's)
STAGE, NEW_T, UPD_T, ROW_T, UROW_T = "kr_stage", "kr_new", "kr_upd", "kr_newrow", "kr_updrow"
# Derived keys a changed field moves.
_DERIVED_BY = {"name": ("name_key", "search_key"), "city": ("city_key",),
               "email": ("email_key", "search_key"), "org_number": ("search_key",)}
_FIELD_BIT = {n: 1 << i for i, n in enumerate(FIELD_NAMES)}
_JSON = json.JSONEncoder(ensure_ascii=False)
_STALE = N_("Kundregistret har ändrats sedan förhandsgranskningen gjordes. "
            "Gör en ny förhandsgranskning innan du importerar.")


class ImportError_(RegisterError):
    """The import cannot go on (told in words for the user)."""


class StalePlan(ImportError_):
    """The register changed since the preview was made."""


class Cancelled(ImportError_):
    pass


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


def row_validator(fields: Sequence[str]) -> Callable[[dict[str, str]], tuple[dict[str, str], dict[str, str], list[str]]]:
    """One row's (values, errors, warnings) by the library's rules (``validate_customer``, partial),
    the name left out when it is empty. Kept for callers that validate one row at a time."""
    wanted = set(fields)

    def validate(raw: dict[str, str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
        result = validate_customer({k: v for k, v in raw.items() if k in wanted}, partial=True)
        values = dict(result.values)
        if values.get("name") == "":
            del values["name"]
        return values, dict(result.errors), list(result.warnings.values())

    return validate


def register_fingerprint(conn: Connection) -> str:
    """Changes whenever anything is written to the register: every write logs a change row (its
    id only grows), every new customer and batch gets a new id."""
    row = conn.execute(sa.select(
        sa.select(sa.func.max(change_table.c.id)).scalar_subquery(),
        sa.select(sa.func.max(C.id)).scalar_subquery(),
        sa.select(sa.func.max(batch_table.c.id)).scalar_subquery())).one()
    return json.dumps(list(row))


# What a number finds, as strings: [number, id, live ("1"/"0"), version, e-mail key ("" for none),
# stored values (joined as staged), stored extra values (when the rules need some)]; what an e-mail
# finds: [e-mail key, id, version, stored values, stored extra values].
NumberHit = Sequence[str]
EmailHit = Sequence[str]
_CLS = itemgetter(6)  # a staged row's class


@dataclass
class _Found:
    """What a chunk's keys found in the register."""

    by_number: dict[str, NumberHit]
    by_email: dict[str, EmailHit]


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic collector off while millions of small objects come and go (none of them cyclic)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


#: The GIL switch interval while a pipeline runs (Python's default is 5 ms). Measured on a
#: 10k-row file: 0.3 ms gives the worker its GIL back ~20 ms sooner in all than 1 ms.
SHORT_SWITCH = 0.0003
_switch_lock = threading.Lock()
_switch_users = [0, 0.005]  # plans building with short switches; the interval to restore


def _short_switches(on: bool) -> None:
    """A short GIL switch interval while a pipeline runs: the worker thread gets the GIL back
    sooner after each (long) SQLite call. The first plan sets it, the last one restores it."""
    with _switch_lock:
        if on:
            if _switch_users[0] == 0:
                _switch_users[1] = sys.getswitchinterval()
                sys.setswitchinterval(SHORT_SWITCH)
            _switch_users[0] += 1
        else:
            _switch_users[0] -= 1
            if _switch_users[0] == 0:
                sys.setswitchinterval(_switch_users[1])


def _child_failures(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """A child process that stops without an answer is an import error, said plainly."""
    try:
        yield from chunks
    except ChildFailed as exc:
        raise ImportError_(_("Inläsningen avbröts: {problem}").format(problem=exc)) from None


class ImportPlan:
    """One import, from reading to commit. Holds a connection (and its staging tables) open.

    Thread-safe for one caller at a time: a lock serialises use of the connection, so a
    preview table may page from it while nothing else runs.
    """

    #: Look chunks up in a worker thread while the next one is read (``False``: one thread).
    pipeline = os.environ.get("KUNDREG_IMPORT_PIPELINE", "1") != "0"

    def __init__(self, engine: Engine, options: ImportOptions | None = None, actor: str | None = None) -> None:
        self.engine = engine
        self.options = options or ImportOptions()
        self.actor = actor or current_actor()
        self.lock = threading.RLock()
        self.conn: Connection | None = None
        self.mapping: list[str | None] = []
        self.fields: list[str] = []
        self.counts: dict[str, int] = dict.fromkeys(CLASSES, 0)
        self.blank_rows = 0
        self.fingerprint = ""
        self.committed: Receipt | None = None
        self.sqlite = engine.dialect.name == "sqlite"
        self._cls_index = False
        self._keys = KeyCache()
        self._next_number = FIRST_NUMBER
        self._typed_high: set[int] = set()
        self._new_rows: list[tuple[int, str | None]] = []
        self._late_errors: set[int] = set()
        self._marks: dict[str, tuple[array[int], array[int]]] = {}
        self._mail_matched: set[int] = set()
        self._tally: Counter[str | None] = Counter()  # rows by class as matched (None: new)
        self._carry: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        self._extra: list[str] = []  # stored values the update rules need besides the compared ones
        self._pragmas: dict[str, Any] = {}
        self._checkpoint: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def _connect(self) -> Connection:
        if self.conn is None:
            self.conn = self.engine.connect()
            if self.sqlite:
                dbapi = self._dbapi()
                for pragma in ("cache_size", "temp_store", "temp.cache_size"):
                    row = dbapi.execute(f"PRAGMA {pragma}").fetchone()
                    self._pragmas[pragma] = row[0] if row else 0
                # Staging goes to a temporary file, not memory: a million rows stay off the heap
                # (appended in order, they need little cache). The look-ups get a small page
                # cache: they read each leaf page about once, and a page read from the OS's file
                # cache into a buffer SQLite reuses costs less than a fresh buffer (a page fault
                # each, ~5 µs here). Measured: 8 MiB looks up a 10k-row file ~20 % faster than
                # 64 MiB, as fast at 100k and 1M rows, with 60 MB less RSS at 1M. The commit,
                # which changes index pages all over the register, gets a big cache
                # (``COMMIT_CACHE_KIB``).
                dbapi.execute("PRAGMA temp_store=FILE")
                dbapi.execute(f"PRAGMA cache_size=-{LOOKUP_CACHE_KIB}")
                dbapi.execute("PRAGMA temp.cache_size=-16384")
        return self.conn

    def _dbapi(self) -> Any:
        assert self.conn is not None
        return self.conn.connection.driver_connection

    def close(self) -> None:
        self.wait_checkpoint()
        with self.lock:
            if self.conn is not None:
                try:
                    if self.conn.in_transaction():
                        self.conn.rollback()
                    for table in (STAGE, NEW_T, UPD_T, ROW_T, UROW_T):
                        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
                    if self.conn.in_transaction():
                        self.conn.commit()
                    if self.sqlite and self._pragmas:
                        dbapi = self._dbapi()
                        for pragma, value in self._pragmas.items():
                            dbapi.execute(f"PRAGMA {pragma}={int(value)}")
                except Exception:
                    pass
                self.conn.close()
                self.conn = None

    def __enter__(self) -> ImportPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ SQL helpers
    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self._dbapi().cursor()
        cur.execute(self._sql(sql), tuple(params))
        return cur

    def _execmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cur = self._dbapi().cursor()
            cur.executemany(self._sql(sql), rows)

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Bulk insert: COPY on PostgreSQL; on SQLite, the statements of ``_insert_batches``."""
        if not rows:
            return
        if not self.sqlite:
            cur = self._dbapi().cursor()
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        self._run_batches(self._insert_batches(table, columns, rows))

    @staticmethod
    def _insert_batches(table: str, columns: Sequence[str],
                        rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, tuple[Any, ...]]]:
        """SQLite: multi-row INSERTs of a power of two rows each, up to ``INSERT_ROWS`` rows and
        ``MAX_PARAMS`` parameters (a few statement texts, each cached): a chunk of rows in a handful
        of statements, so SQLite runs long without the GIL and the driver's per-row work is minimal.
        (Compiling such a statement costs about as much as running it, once per text: measured on
        a 10k-row file, at most 1024 rows a statement compiles a third less than 2048 or 4096.)"""
        one = "(" + ",".join("?" * len(columns)) + ")"
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        biggest = min(INSERT_ROWS, 1 << ((MAX_PARAMS // len(columns)).bit_length() - 1))
        chain = itertools.chain.from_iterable
        out: list[tuple[str, tuple[Any, ...]]] = []
        start = 0
        while start < len(rows):
            size = min(biggest, 1 << ((len(rows) - start).bit_length() - 1))
            out.append((head + ",".join([one] * size), tuple(chain(rows[start:start + size]))))
            start += size
        return out

    def _run_batches(self, batches: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        dbapi = self._dbapi()
        for sql, params in batches:
            dbapi.execute(sql, params)

    def _create_tables(self) -> None:
        big = "INTEGER" if self.sqlite else "BIGINT"
        for table in (STAGE, NEW_T, UPD_T, ROW_T, UROW_T):
            self._exec(f"DROP TABLE IF EXISTS {table}")
        self._exec(f"CREATE TEMP TABLE {STAGE} (seq INTEGER PRIMARY KEY, line INTEGER NOT NULL, f_number TEXT, "
                   f"k_number TEXT, k_email TEXT, payload TEXT, cls TEXT DEFAULT 'same', reason TEXT, warning TEXT, "
                   f"cust_id {big}, old_version INTEGER)")
        self._exec(f"CREATE TEMP TABLE {NEW_T} (seq INTEGER PRIMARY KEY, number TEXT NOT NULL, "
                   f"assigned INTEGER NOT NULL)")
        self._exec(f"CREATE TEMP TABLE {UPD_T} (seq INTEGER PRIMARY KEY, cust_id {big} NOT NULL, "
                   f"old_version INTEGER NOT NULL, colset INTEGER NOT NULL, changes TEXT NOT NULL)")

    # ------------------------------------------------------------------ planning
    def build(self, records: Iterable[RecordLike] | CsvSource, mapping: Sequence[str | None],
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
        self._extra = [n for n in ("kind", "country", "first_name", "last_name", "name") if n not in fields]
        self.counts = dict.fromkeys(CLASSES, 0)
        self._cls_index = False
        self._typed_high = set()
        self.blank_rows = 0
        self._new_rows = []
        self._late_errors = set()
        self._mail_matched = set()
        self._tally = Counter()
        self._carry = {}
        self._marks = {"k_number": (array("q"), array("q")), "k_email": (array("q"), array("q"))}
        with self.lock, _no_gc():
            conn = self._connect()
            if not self.sqlite:
                # One snapshot of the register for every statement of the plan.
                conn.execution_options(isolation_level="REPEATABLE READ")
            try:
                with conn.begin():
                    self._create_tables()
                    self.fingerprint = register_fingerprint(conn)
                    value = conn.execute(sa.select(meta_table.c.value).where(
                        meta_table.c.key == NEXT_NUMBER_KEY)).scalar()
                    self._next_number = int(value) if value else FIRST_NUMBER
                    self._load(records, progress, cancelled)
                    self._classify(cancelled)
                    if self._late_errors:  # rows of any class became *fel*: count them anew
                        self.counts = self._count_classes()
                    else:  # every row as matched, the ones left without a class new
                        self.counts = {cls: self._tally[cls] for cls in CLASSES}
                        self.counts[NEW] += self._tally[None]
            finally:
                if not self.sqlite:
                    conn.execution_options(isolation_level=self.engine.dialect.default_isolation_level)
        return self.counts

    def _load(self, records: Iterable[RecordLike] | CsvSource, progress: Callable[[int], None] | None,
              cancelled: Callable[[], bool] | None) -> None:
        """Read, validate, classify and stage the rows a chunk at a time, in a pipeline: this thread
        reads and validates chunk *k + 1* (or, for a big file, takes it from the child process that
        reads and validates it: ``chunks.ChildChunks``) and classifies chunk *k*, while a worker
        thread looks chunk *k + 1* up in the register and stages chunk *k* (a few long SQL
        statements, run by SQLite with the GIL released). The connection is only ever used by one
        thread at a time."""
        preparer = Preparer(self.mapping, self.options.empty_clears, self._next_number)
        child: ChildChunks | None = None
        chunks: Iterator[Chunk]
        if hasattr(records, "iter_records"):  # a CsvSource: a big file is read in a child process
            source = cast("CsvSource", records)
            if use_child(source):
                assert source.path is not None
                # The child starts (a few tenths of a second) while this thread reads the first chunk.
                child = ChildChunks(source.path, source.settings, self.mapping, self.options.empty_clears,
                                    self._next_number, on_read=source.note_read_elsewhere,
                                    read_error=CsvReadError, skip=HEAD_ROWS)
                try:
                    first = self._head_chunks(source, preparer)
                except BaseException:
                    child.close()
                    raise
                chunks = itertools.chain(first, _child_failures(iter(child)))
            else:
                chunks = preparer.chunks(cast("Iterable[RecordLike]", source.iter_records()))
        else:
            chunks = preparer.chunks(records)
        seq = 0
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kundreg-import")

        def run(fn: Callable[..., Any], *args: Any) -> Future[Any]:
            """A job for the worker thread (jobs run one at a time, in order), or run now."""
            if self.pipeline:
                return worker.submit(fn, *args)
            now: Future[Any] = Future()
            now.set_result(fn(*args))
            return now

        waiting: tuple[Chunk, Future[_Found]] | None = None
        staging: list[Future[Any]] = []
        if self.pipeline:
            _short_switches(True)
        try:
            while True:
                prepared = next(chunks, None)
                if waiting is None:
                    if prepared is None:
                        break
                    waiting = (prepared, run(self._lookup, prepared))
                    continue
                done, job = waiting
                found = job.result()
                # SQLite: the next chunk is looked up while this one is classified; its staging
                # follows in the worker. (PostgreSQL stages from this thread, so it looks up after.)
                waiting = (prepared, run(self._lookup, prepared)) if prepared is not None and self.sqlite else None
                same, plain, special, updates = self._match(seq, done, found)
                self._tally[SAME] += len(same)
                self._tally.update(map(_CLS, plain))
                self._tally.update(map(_CLS, special))
                batches = self._stage_rows(same, plain, special, updates, last=prepared is None)
                if batches:
                    staging.append(run(self._run_batches, batches))
                if prepared is not None and waiting is None:
                    waiting = (prepared, run(self._lookup, prepared))
                self._see_keys("k_number", seq, done.order, done.knums)
                self._see_keys("k_email", seq, done.order, done.kmails)
                seq += len(done.order)
                for fut in [f for f in staging if f.done()]:
                    fut.result()  # a failed write stops the plan here
                    staging.remove(fut)
                if progress:
                    progress(seq)
                if cancelled and cancelled():
                    raise Cancelled(_("Inläsningen avbröts."))
                if prepared is None:
                    break
            for fut in staging:
                fut.result()
        finally:
            # Never leave the worker on the connection: the running job ends, queued ones are dropped.
            worker.shutdown(wait=True, cancel_futures=True)
            if self.pipeline:
                _short_switches(False)
            if child is not None:
                child.close()
        if child is not None:
            self.blank_rows = preparer.blank_rows + child.blank_rows
            self._typed_high = preparer.typed_high | child.typed_high
            cast("CsvSource", records).blank_rows = child.source_blank_rows
        else:
            self.blank_rows, self._typed_high = preparer.blank_rows, preparer.typed_high
        if seq == 0:
            raise ImportError_(_("Det finns inga rader att importera."))

    @staticmethod
    def _head_chunks(source: CsvSource, preparer: Preparer) -> list[Chunk]:
        """The first ``HEAD_ROWS`` rows of a file, read here (the rest comes from the child)."""
        records = source.iter_records()
        try:
            head = list(itertools.islice(records, HEAD_ROWS))
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()
        return list(preparer.chunks(cast("list[RecordLike]", head)))

    _STAGE_COLS = ("seq", "line", "f_number", "k_number", "k_email", "payload", "cls", "cust_id", "old_version",
                   "reason", "warning")
    #: A row with exactly the stored values: its class is the column's default (*oförändrad*); its
    #: number, keys and values are the customer's (``payload`` NULL says so; see ``_duplicates``).
    _SAME_COLS = ("seq", "line", "cust_id", "old_version")

    _UPD_COLS = ("cust_id", "seq", "old_version", "colset", "changes")

    def _stage_rows(self, same: list[tuple[Any, ...]], plain: list[tuple[Any, ...]], special: list[tuple[Any, ...]],
                    updates: list[tuple[Any, ...]], last: bool) -> list[tuple[str, tuple[Any, ...]]]:
        """Stage a classified chunk (rows as stored bind four columns, rows with a reason or warning
        two more than the rest) and its changes. On SQLite the statements are returned, to run in
        the worker thread; rows past a multiple of ``CARRY`` wait for the next chunk (or ``last``),
        so that a chunk is a few statements of many rows, not also several of one to 32 rows."""
        if not self.sqlite:
            self._insert(STAGE, self._SAME_COLS, same)
            self._insert(STAGE, self._STAGE_COLS[:9], plain)
            self._insert(STAGE, self._STAGE_COLS, special)
            self._insert(UPD_T, self._UPD_COLS, updates)
            return []
        batches: list[tuple[str, tuple[Any, ...]]] = []
        carry = self._carry
        for table, columns, rows in ((STAGE, self._SAME_COLS, same), (STAGE, self._STAGE_COLS[:9], plain),
                                     (STAGE, self._STAGE_COLS, special), (UPD_T, self._UPD_COLS, updates)):
            waiting = carry.pop(columns, None)
            if waiting:
                rows = waiting + rows
            if not last and len(rows) % CARRY:
                cut = len(rows) - len(rows) % CARRY
                carry[columns] = rows[cut:]
                rows = rows[:cut]
            if rows:
                batches += self._insert_batches(table, columns, rows)
        return batches

    # ------------------------------------------------------------------ matching (per chunk)
    def _stored_payload(self, alias: str, fields: Sequence[str] | None = None) -> str:
        """Stored values of a customer as one string, in the staged payload's order (one
        ``printf`` on SQLite is much cheaper than a chain of ``||``; the columns are never NULL)."""
        names = self.fields if fields is None else fields
        cols = ", ".join(f"{alias}.{n}" for n in names)
        if self.sqlite:
            fmt = CELL_SEP.join(["%s"] * len(names))
            return f"printf('{fmt}', {cols})"
        return f"concat_ws(chr(31), {cols})"

    def _in(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``IN (…)`` for SQLite, ``= ANY(array)`` for PostgreSQL. SQLite's list is padded with NULLs
        (which match nothing) to a power of two: a handful of statement texts, not one per chunk
        (each prepared statement with thousands of parameters is big, and the driver caches them)."""
        if self.sqlite:
            size = max(16, 1 << (len(values) - 1).bit_length())
            return "IN (" + ",".join("?" * size) + ")", [*values, *([None] * (size - len(values)))]
        return "= ANY(?)", [list(values)]

    def _aggregate(self, head: Sequence[str], where: str, params: list[Any]) -> list[tuple[str, ...]]:
        """Matching customers from one statement, as one string (so SQLite does all of the work in
        one call, without the GIL, and one ``printf`` a customer), split here by 0x1E (which no
        stored value can hold) into the ``head`` columns, the compared values (joined by 0x1F, as
        staged) and, when the rules need them, the extra stored values, a customer after another:
        one ``split`` and a ``zip`` make the tuples, with no Python loop. The statement also counts
        the customers: should a stored value hold the separator after all, the parts do not add
        up and the rows are fetched one by one instead."""
        extra = self._extra
        groups = [list(self.fields), *([extra] if extra else [])]
        width = len(head) + len(groups)
        if self.sqlite:
            fmt = "\x1e".join(["%s"] * len(head) + [CELL_SEP.join(["%s"] * len(g)) for g in groups])
            args = ", ".join([*head, *(f"c.{n}" for g in groups for n in g)])
            sql = f"SELECT count(*), group_concat(printf('{fmt}', {args}), char(30)) FROM customer c WHERE {where}"
        else:
            parts = [*head, *(f"concat_ws(chr(31), {', '.join(f'c.{n}' for n in g)})" for g in groups)]
            sql = (f"SELECT count(*), string_agg(concat_ws(chr(30), {', '.join(parts)}), chr(30)) "
                   f"FROM customer c WHERE {where}")
        count, big = self._exec(sql, params).fetchone()
        if not count:
            return []
        flat = big.split("\x1e")
        if len(flat) != width * count:
            cols = [*head, *(self._stored_payload("c", g) for g in groups)]
            rows = self._exec(f"SELECT {', '.join(cols)} FROM customer c WHERE {where}", params).fetchall()
            return [tuple("" if v is None else str(v) for v in r) for r in rows]
        return list(zip(*[iter(flat)] * width, strict=True))

    def _lookup(self, chunk: Chunk) -> _Found:
        """(Worker thread.) The customers a chunk's keys find: by number, any customer ever (a
        deleted number is never used again); by e-mail, live customers. Values stay strings."""
        numbers, kmails = chunk.numbers, chunk.kmails
        rows = chunk.live
        live = "(c.deleted_at IS NULL)" if self.sqlite else "(c.deleted_at IS NULL)::int"
        by_number: dict[str, NumberHit] = {}
        wanted = list({numbers[j] for j in rows if numbers[j]})
        if wanted:
            clause, params = self._in(wanted)
            by_number = {r[0]: r for r in self._aggregate(
                ("c.number", "c.id", live, "c.version", "coalesce(c.email_key, '')"), f"c.number {clause}", params)}
            missing = [j for j in rows if numbers[j] and numbers[j] not in by_number
                       and not numbers[j].isdigit()]  # type: ignore[union-attr]
            if missing:
                by_number.update(self._match_folded([(numbers[j], chunk.knums[j]) for j in missing]))
        by_email: dict[str, EmailHit] = {}
        want_mail = set()
        for j in rows:
            key = kmails[j]
            if key is not None:
                hit = by_number.get(numbers[j]) if numbers[j] else None  # type: ignore[arg-type]
                if hit is None or hit[2] != "1" or hit[4] != key:
                    want_mail.add(key)
        if want_mail:
            clause, params = self._in(list(want_mail))
            by_email = {r[0]: r for r in self._aggregate(
                ("c.email_key", "c.id", "c.version"),
                f"c.email_key {clause} AND c.deleted_at IS NULL AND c.email_key IS NOT NULL", params)}
        return _Found(by_number, by_email)

    def _match(self, seq: int, chunk: Chunk, found: _Found) -> tuple[
            list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Classify the rows of a chunk: their staging rows and their changes. A row's number and
        e-mail must find the same customer (or the e-mail none); a found customer is *oförändrad*
        when the staged values equal the stored ones, else what changes is worked out field by field
        (``_decide_update``); a row that finds none is new."""
        result, problems = chunk.result, chunk.problems
        errors, warnings = result.errors, result.warnings
        lines, numbers, knums, kmails, payloads = chunk.lines, chunk.numbers, chunk.knums, chunk.kmails, chunk.payloads
        by_number, by_email = found.by_number, found.by_email
        has_number, has_email = "number" in self.fields, "email" in self.fields
        need_key = (has_number or has_email) and not self.options.all_new
        same: list[tuple[Any, ...]] = []  # rows with exactly the stored values: four columns
        plain: list[tuple[Any, ...]] = []  # rows without a reason or warning: fewer columns to bind
        special: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        decide = self._decide_update
        extra = bool(self._extra)
        new_rows = self._new_rows
        mail_matched = self._mail_matched
        get_number, get_email = by_number.get, by_email.get
        for j in chunk.order:
            seq += 1
            number, key, payload = numbers[j], kmails[j], payloads[j]
            if j in problems:
                special.append((seq, lines[j], number, knums[j], key, payload, ERROR, None, None, problems[j], None))
                continue
            if j in errors:
                special.append((seq, lines[j], number, knums[j], key, payload, ERROR, None, None, result.reason(j),
                                result.warning(j) or None))
                continue
            num_hit = get_number(number) if number is not None else None
            reason: str | None = None
            cls: str | None
            cust_id: str | None = None
            version: str | None = None
            if num_hit is not None and num_hit[2] == "1" and (key is None or num_hit[4] == key):
                # The common case: the number finds a live customer whose e-mail (if given) is this one.
                cust_id, version = num_hit[1], num_hit[3]
                cls = SAME
                if payload != num_hit[5]:
                    cls, reason = decide(updates, seq, cust_id, version, payload, num_hit[5],
                                         num_hit[6] if extra else None)
                elif j not in warnings:
                    # Exactly the stored values: staged without them (the preview reads the customer's).
                    same.append((seq, lines[j], cust_id, version))
                    continue
            else:
                mail_hit = get_email(key) if key is not None else None
                if num_hit is not None and num_hit[2] != "1":
                    cls, reason = ERROR, _(
                        "Kundnummer {number} har tillhört en raderad kund och kan inte användas igen"
                    ).format(number=number or "")
                elif num_hit is not None and mail_hit is not None and num_hit[1] != mail_hit[1]:
                    cls, reason = ERROR, _("Kundnummer och e-post hör till två olika kunder; inget slås ihop")
                elif num_hit is not None:
                    # The e-mail is new to the register: this customer's address changes.
                    cust_id, version = num_hit[1], num_hit[3]
                    cls = SAME
                    if payload != num_hit[5]:
                        cls, reason = decide(updates, seq, cust_id, version, payload, num_hit[5],
                                             num_hit[6] if extra else None)
                elif number is not None and mail_hit is not None:
                    cls, reason = ERROR, _(
                        "E-postadressen {email} används redan av en annan kund med annat kundnummer"
                    ).format(email=key or "")
                elif mail_hit is not None:
                    cust_id, version = mail_hit[1], mail_hit[2]
                    mail_matched.add(int(cust_id))
                    cls = SAME
                    if payload != mail_hit[3]:
                        cls, reason = decide(updates, seq, cust_id, version, payload, mail_hit[3],
                                             mail_hit[4] if extra else None)
                elif need_key and number is None and key is None:
                    cls, reason = ERROR, _("Raden saknar både kundnummer och e-post")
                else:
                    cls = None  # a new customer (numbered once every row is in)
                    reason = self._new_name_problem(payload)
                    if reason is None:
                        new_rows.append((seq, number))
                    else:
                        cls = ERROR
            if reason is None and j not in warnings:
                plain.append((seq, lines[j], number, knums[j], key, payload, cls, cust_id, version))
            else:
                special.append((seq, lines[j], number, knums[j], key, payload, cls, cust_id, version, reason,
                                (result.warning(j) or None) if j in warnings else None))
        return same, plain, special, updates

    def _match_folded(self, items: Sequence[tuple[str | None, str | None]]) -> dict[str, NumberHit]:
        """Numbers with letters match whatever their case (``k-100`` finds ``K-100``) when no customer
        has the number exactly as typed; two customers that only differ in case match neither."""
        keys = {natural_key(n): (n, k) for n, k in items if n and k}
        clause, params = self._in(list(keys))
        live = "(c.deleted_at IS NULL)" if self.sqlite else "(c.deleted_at IS NULL)::int"
        found: dict[str, list[NumberHit]] = {}
        for where in (f"c.deleted_at IS NULL AND c.number_key {clause}",
                      f"c.deleted_at IS NOT NULL AND c.number_key {clause}"):
            for hit in self._aggregate(("c.number_key", "c.number", "c.id", live, "c.version",
                                        "coalesce(c.email_key, '')"), where, params):
                typed = keys.get(hit[0])
                if typed is not None and typed[0] is not None and hit[1].casefold() == typed[1]:
                    found.setdefault(typed[0], []).append(hit[1:])
        return {n: hits[0] for n, hits in found.items() if len(hits) == 1}

    # ------------------------------------------------------------------ changed rows
    def _cells(self, payload: str) -> list[str]:
        """A staged (or stored) values string split into its fields' values."""
        return payload.split(CELL_SEP) if len(self.fields) > 1 else [payload]

    def _given(self, payload: str, cells: list[str] | None = None) -> dict[str, str | None]:
        """The staged values of a row: None where the cell was not given (it leaves the stored value)."""
        parts = self._cells(payload) if cells is None else cells
        if self.options.empty_clears:
            return dict(zip(self.fields, parts, strict=True))
        return {f: (v if v else None) for f, v in zip(self.fields, parts, strict=True)}

    def _decide_update(self, updates: list[tuple[Any, ...]], seq: int, cust_id: str, version: str, payload: str,
                       stored: str, extra: str | None) -> tuple[str, str | None]:
        """A row whose staged values differ from the stored ones: what changes, field by field, after
        normalising against the stored customer (its type, its country); the change is added to
        ``updates`` (for ``kr_upd``). Returns the class (*uppdateras*, or *oförändrad* when nothing
        is left, *fel* when a value cannot be) and the reason."""
        fields = self.fields
        parts = self._cells(stored)
        names = self._extra
        more = (extra.split(CELL_SEP) if len(names) > 1 else [extra]) if extra is not None else []
        if len(parts) != len(fields) or len(more) != (len(names) if extra is not None else 0):
            # A stored value holds a control character (stored some other way than through the
            # register's rules): nothing to compare it with safely.
            return ERROR, _("Kunden har ett lagrat värde med ett otillåtet tecken; rätta kunden först")
        old = dict(zip(fields, parts, strict=True))
        old.update(zip(names, more, strict=False))
        cells = self._cells(payload)
        given = self._given(payload, cells)
        differ = [n for n, a, b in zip(fields, cells, parts, strict=True) if a != b]
        changes, error = self._changes(old, given, "name" in fields, differ)
        if error:
            return ERROR, error
        if not changes:
            return SAME, None
        colset = 0
        for name in changes:
            colset |= _FIELD_BIT[name]
        updates.append((cust_id, seq, version, colset, _JSON.encode(changes)))
        return UPDATE, None

    def _new_name_problem(self, payload: str) -> str | None:
        """Why a new customer cannot be made for want of a name (Kundnamn, or Förnamn Efternamn)."""
        fields = self.fields
        if "name" not in fields and "first_name" not in fields and "last_name" not in fields:
            return _("Kundnamn saknas (krävs för en ny kund)")
        given = self._given(payload)
        if given.get("name"):
            return None
        name = " ".join(p for p in (given.get("first_name"), given.get("last_name")) if p)
        limit = FIELD_BY_NAME["name"].max_length
        if len(name) > limit:
            return _("{field}: högst {n} tecken").format(field=FIELD_BY_NAME["name"].label_text, n=limit)
        if not name:
            return _("Kundnamn saknas (krävs för en ny kund)")
        return None

    def _changes(self, old: dict[str, str], given: dict[str, str | None],
                 name_given: bool, differ: Sequence[str]) -> tuple[dict[str, list[str]], str]:
        """What changes: the given values (``differ``: the fields whose cell is not the stored
        value) after the type's and country's rules; the name made from the new first and last."""
        changes: dict[str, list[str]] = {}
        kind = given.get("kind") or old["kind"]
        country = given.get("country") or old["country"] or "SE"
        for n in differ:
            value = given[n]
            if value is None or n == "number":
                continue  # not given: the stored value stays; a saved number never changes
            if value == old[n]:
                continue
            try:
                # Checked against Företag / SE when read; the stored type and country decide.
                if n == "org_number" and value and not given.get("kind") and kind == KIND_PERSON:
                    value = check_org_number(value, kind)
                elif n == "postal_code" and value and not given.get("country") and country != "SE":
                    value = check_postal_code(value, country)
            except FieldError as exc:
                return {}, exc.message
            if n == "email" and value.casefold() == (old["email"] or "").casefold():
                continue  # the same address in another case
            if n == "name" and not value:
                continue  # a customer always keeps a name
            if value != old[n]:
                changes[n] = [old[n], value]
        if not (name_given and given.get("name")) and ("first_name" in changes or "last_name" in changes) \
                and kind == KIND_PERSON:
            first = changes["first_name"][1] if "first_name" in changes else old["first_name"]
            last = changes["last_name"][1] if "last_name" in changes else old["last_name"]
            name = " ".join(p for p in (first, last) if p)
            if name and name != old["name"]:
                if len(name) > FIELD_BY_NAME["name"].max_length:
                    return {}, _("{field}: högst {n} tecken").format(
                        field=FIELD_BY_NAME["name"].label_text, n=FIELD_BY_NAME["name"].max_length)
                changes["name"] = [old["name"], name]
        return changes, ""

    # ------------------------------------------------------------------ after the last row
    def _classify(self, cancelled: Callable[[], bool] | None) -> None:
        """What only the whole input shows: keys given twice, two rows for one customer; then the
        new customers' numbers."""
        has_number, has_email = "number" in self.fields, "email" in self.fields
        if has_number:
            self._duplicates("k_number", "f_number", _("Kundnummer"))
        if has_email:
            self._duplicates("k_email", "k_email", _("E-post"))
        if self._mail_matched and has_number:
            self._same_customer()
        late = sorted(self._late_errors)
        for start in range(0, len(late), 4096):
            clause, params = self._in(late[start:start + 4096])
            self._exec(f"DELETE FROM {UPD_T} WHERE seq {clause}", params)
        if cancelled and cancelled():
            raise Cancelled(_("Inläsningen avbröts."))
        self._number_new()

    def _mark_errors(self, reasons: Sequence[tuple[str, int]]) -> None:
        """Rows (reason, seq) become *fel*; a reason they already had as *fel* is kept in front."""
        self._late_errors.update(seq for _r, seq in reasons)
        self._execmany(f"UPDATE {STAGE} SET reason = CASE WHEN reason IS NULL OR cls IS NULL OR cls <> 'error' "
                       f"THEN ? ELSE reason || '; ' || ? END, cls = 'error' WHERE seq = ?",
                       [(r, r, s) for r, s in reasons])

    def _see_keys(self, column: str, seq: int, order: Sequence[int], keys: Sequence[str | None]) -> None:
        """Remember a chunk's keys compactly, as their hashes beside their row numbers in two
        arrays (16 bytes a key, filled at C speed); sorting the hashes at the end shows which
        rows may share a key."""
        marks = self._marks.get(column)
        if marks is None:
            return
        hashes, rows = marks
        staged = keys if len(order) == len(keys) else [keys[j] for j in order]  # blank rows left out
        if None not in staged:
            hashes.extend(map(hash, staged))
            rows.extend(range(seq + 1, seq + 1 + len(staged)))
            return
        present = list(map(operator.is_not, staged, itertools.repeat(None)))
        hashes.extend(map(hash, itertools.compress(staged, present)))
        rows.extend(itertools.compress(range(seq + 1, seq + 1 + len(staged)), present))

    def _candidate_rows(self, column: str) -> list[int]:
        """Rows whose key's hash another row shares (every duplicate key, and the odd collision)."""
        hashes, rows = self._marks[column]
        if len(set(hashes)) == len(hashes):
            return []  # the usual case, every key once: no sort of a million hashes
        ordered = sorted(hashes)
        if not any(map(operator.eq, ordered, itertools.islice(ordered, 1, None))):
            return []
        shared = {a for a, b in zip(ordered, itertools.islice(ordered, 1, None), strict=False) if a == b}
        return [rows[i] for i, h in enumerate(hashes) if h in shared]

    def _duplicates(self, key: str, shown: str, label: str) -> None:
        """The same key on several rows of the input: every one of them is *fel*."""
        candidates = self._candidate_rows(key)
        rows: list[tuple[str, str, int, int]] = []
        for start in range(0, len(candidates), 4096):
            clause, params = self._in(candidates[start:start + 4096])
            for k, value, seq, line, number, email in self._exec(
                    f"SELECT s.{key}, s.{shown}, s.seq, s.line, c.number, c.email FROM {STAGE} s LEFT JOIN customer c "
                    f"ON c.id = s.cust_id AND s.payload IS NULL WHERE s.seq {clause}", params).fetchall():
                if number is not None:  # staged as stored: the customer's number and e-mail are the row's
                    value = number if key == "k_number" else email.casefold()
                    k = value.casefold()
                rows.append((k, value, seq, line))
        if not rows:
            return
        rows.sort(key=itemgetter(0, 2))
        groups: dict[str, list[tuple[str, int, int]]] = {}
        for k, value, seq, line in rows:
            groups.setdefault(k, []).append((value, seq, line))
        groups = {k: v for k, v in groups.items() if len(v) > 1}  # a hash collision is no duplicate
        reasons: list[tuple[str, int]] = []
        for items in groups.values():
            lines = [line for _v, _s, line in items]
            text = ", ".join(map(str, lines[:10])) + (" …" if len(lines) > 10 else "")
            reason = _("{field} {value} finns på flera rader i indata (rad {lines}); ingen av dem importeras").format(
                field=label, value=items[0][0], lines=text)
            reasons += [(reason, seq) for _v, seq, _l in items]
        self._mark_errors(reasons)

    def _same_customer(self) -> None:
        """Two rows that find the same customer (one by number, one by e-mail): both are *fel*."""
        ids = sorted(self._mail_matched)
        groups: dict[int, list[tuple[int, int]]] = {}
        for start in range(0, len(ids), 5000):
            clause, params = self._in(ids[start:start + 5000])
            for cid, seq, line in self._exec(f"SELECT cust_id, seq, line FROM {STAGE} WHERE cust_id {clause} "
                                             f"AND cls IN ('same', 'update') ORDER BY seq", params).fetchall():
                groups.setdefault(cid, []).append((seq, line))
        reasons: list[tuple[str, int]] = []
        for items in groups.values():
            if len(items) < 2:
                continue
            lines = ", ".join(str(line) for _s, line in items[:10])
            reason = _("Flera rader i indata gäller samma kund (rad {lines}); ingen av dem importeras").format(
                lines=lines)
            reasons += [(reason, seq) for seq, _l in items]
        self._mark_errors(reasons)

    def _number_new(self) -> None:
        """Rows that match no customer: the customer numbers they will get (a typed one, or the next
        of the series). Their full values, keys and history are made by the commit."""
        late = self._late_errors
        pending = [(seq, number) for seq, number in self._new_rows if seq not in late]
        self._new_rows = []
        numbers = iter(self._peek_numbers(sum(1 for _s, n in pending if not n)))
        rows = [(seq, number, 0) if number else (seq, next(numbers), 1) for seq, number in pending]
        self._insert(NEW_T, ("seq", "number", "assigned"), rows)
        if rows:
            if self.sqlite:
                self._exec(f"UPDATE {STAGE} SET cls = 'new', f_number = (SELECT n.number FROM {NEW_T} n "
                           f"WHERE n.seq = {STAGE}.seq) WHERE seq IN (SELECT seq FROM {NEW_T})")
            else:
                self._exec(f"UPDATE {STAGE} s SET cls = 'new', f_number = n.number FROM {NEW_T} n WHERE n.seq = s.seq")

    def _new_values(self, number: str, payload: str) -> dict[str, str]:
        """A new customer's full values: the given ones and the defaults (Kundtyp from the names
        given, Land SE, Kundnamn as Förnamn Efternamn)."""
        given = self._given(payload)
        values = {n: (given.get(n) or "") for n in FIELD_NAMES}
        values["number"] = number
        if not values["kind"]:
            # Förnamn/Efternamn without a type: a private person, as in the seeds' paste.
            values["kind"] = KIND_PERSON if values["first_name"] or values["last_name"] else KIND_COMPANY
        values["country"] = values["country"] or "SE"
        if values["kind"] == KIND_PERSON and len(values["org_number"]) == 11 and not given.get("kind"):
            # Checked as a Företag's when read; a 12-digit form is the same either way.
            try:
                values["org_number"] = check_org_number(values["org_number"], KIND_PERSON)
            except FieldError:
                pass  # valid as an organisation number (how it was checked): kept as it is
        if not values["name"]:
            values["name"] = " ".join(p for p in (values["first_name"], values["last_name"]) if p)
        return values

    def _peek_numbers(self, count: int) -> list[str]:
        """The next ``count`` numbers of the series, past every number typed in the input and
        skipping any a customer has (or had)."""
        if count == 0:
            return []
        nxt = self._next_number
        typed = self._typed_high
        if typed:
            nxt = max(nxt, max(typed) + 1)
        out: list[str] = []
        while len(out) < count:
            want = count - len(out)
            candidates = [str(n) for n in range(nxt, nxt + want) if n not in typed]
            taken: set[str] = set()
            for start in range(0, len(candidates), 500):
                part = candidates[start:start + 500]
                marks = ", ".join("?" * len(part))
                taken.update(r[0] for r in self._exec(f"SELECT number FROM customer WHERE number IN ({marks})",
                                                      part).fetchall())
            out.extend(c for c in candidates if c not in taken)
            nxt += want
        return out[:count]

    def _count_classes(self) -> dict[str, int]:
        counts = dict.fromkeys(CLASSES, 0)
        for cls, n in self._exec(f"SELECT cls, count(*) FROM {STAGE} GROUP BY cls").fetchall():
            counts[cls or ERROR] += n
        return counts

    # ------------------------------------------------------------------ preview
    def count(self, cls: str | None = None) -> int:
        if cls is None:
            return sum(self.counts.values())
        return self.counts.get(cls, 0)

    def _row_dict(self, row: Sequence[Any]) -> dict[str, Any]:
        seq, line, cls, reason, warning, f_number, payload, cust_id, changes = row[:9]
        stored = row[9:]
        given = self._given(payload)
        out: dict[str, Any] = {"seq": seq, "line": line, "cls": cls or ERROR, "reason": reason,
                               "warning": warning, "cust_id": cust_id, "changes": changes}
        for n in FIELD_NAMES:
            out[f"f_{n}"] = given.get(n)
        out["f_number"] = f_number
        for n, value in zip(FIELD_NAMES, stored, strict=True):
            out[f"o_{n}"] = value
        return out

    def preview(self, cls: str | None = None, offset: int = 0, limit: int = 200) -> list[dict[str, Any]]:
        """Rows of the preview: the staged values and, for matched rows, the stored ones."""
        stored = ", ".join(f"c.{n}" for n in FIELD_NAMES)
        # A row staged without values (payload NULL) has exactly the stored ones.
        sql = (f"SELECT s.seq, s.line, s.cls, s.reason, s.warning, "
               f"CASE WHEN s.payload IS NULL THEN c.number ELSE s.f_number END, "
               f"COALESCE(s.payload, {self._stored_payload('c')}), s.cust_id, u.changes, "
               f"{stored} FROM {STAGE} s LEFT JOIN customer c ON c.id = s.cust_id "
               f"LEFT JOIN {UPD_T} u ON u.seq = s.seq AND s.cls = 'update'")
        params: list[Any] = []
        if cls:
            sql += " WHERE s.cls = ?"
            params.append(cls)
        sql += " ORDER BY s.seq LIMIT ? OFFSET ?"
        params += [limit, offset]
        with self.lock:
            conn = self._connect()
            with conn.begin():
                if cls and not self._cls_index:
                    self._exec(f"CREATE INDEX IF NOT EXISTS kr_stage_cls ON {STAGE} (cls, seq)")
                    self._cls_index = True
                rows = self._exec(sql, params).fetchall()
        return [self._row_dict(r) for r in rows]

    def rows(self, only_errors: bool = False) -> Iterator[RowResult]:
        """Every row's outcome, in input order (for the JSON report and the receipt), a page at a time."""
        last = 0
        while True:
            with self.lock:
                conn = self._connect()
                with conn.begin():
                    page = self._exec(
                        f"SELECT s.seq, s.line, s.cls, COALESCE(c.number, s.f_number), s.reason, s.warning "
                        f"FROM {STAGE} s LEFT JOIN customer c ON c.id = s.cust_id WHERE s.seq > ? "
                        + ("AND s.cls = 'error' " if only_errors else "") + "ORDER BY s.seq LIMIT 10000",
                        [last]).fetchall()
            if not page:
                return
            for seq, line, cls, number, reason, warning in page:
                yield RowResult(seq, line, cls or ERROR, number or "", reason or "", warning or "")
            last = page[-1][0]

    # ------------------------------------------------------------------ commit
    def commit(self, progress: Callable[[str], None] | None = None) -> Receipt:
        """Write every new and changed row in one transaction; refuse if the register changed."""
        if self.committed is not None:
            raise ImportError_(_("Importen är redan genomförd."))
        with self.lock, _no_gc():
            conn = self._connect()
            ts = now()
            if self.sqlite:
                # The commit is durable once in the write-ahead log; copying the pages back into the
                # database file (a checkpoint: random writes all over a big register) runs right
                # after, on a connection of its own, instead of inside this call.
                dbapi = self._dbapi()
                autocheckpoint = dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
                dbapi.execute("PRAGMA wal_autocheckpoint=0")
                dbapi.execute(f"PRAGMA main.cache_size=-{COMMIT_CACHE_KIB}")
            conn.execution_options(kundreg_write=True)
            try:
                with conn.begin():
                    if not self.sqlite:
                        # Writers wait until this import is in (readers do not).
                        conn.exec_driver_sql("LOCK TABLE customer IN SHARE ROW EXCLUSIVE MODE")
                    if register_fingerprint(conn) != self.fingerprint:
                        raise StalePlan(_(_STALE))
                    receipt = self._write(conn, ts, progress)
            except sa.exc.IntegrityError as exc:
                raise StalePlan(_(_STALE)) from exc
            finally:
                conn.execution_options(kundreg_write=False)
                if self.sqlite:
                    dbapi.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
                    dbapi.execute(f"PRAGMA main.cache_size=-{LOOKUP_CACHE_KIB}")
        self.committed = receipt
        self._checkpoint_soon()
        return receipt

    def _checkpoint_soon(self) -> None:
        if not self.sqlite:
            return
        engine = self.engine

        def run() -> None:
            try:
                raw = engine.raw_connection()  # outside any transaction (the driver autocommits)
                try:
                    raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
                finally:
                    raw.close()
            except Exception:  # the next writer checkpoints instead
                pass

        self._checkpoint = threading.Thread(target=run, name="kundreg-checkpoint", daemon=True)
        self._checkpoint.start()

    def wait_checkpoint(self) -> None:
        """Wait for the checkpoint after a commit (``close`` does)."""
        if self._checkpoint is not None:
            self._checkpoint.join()
            self._checkpoint = None

    def _write(self, conn: Connection, ts: datetime, progress: Callable[[str], None] | None) -> Receipt:
        counts = dict(self.counts)
        batch_id = conn.execute(sa.insert(batch_table).values(
            kind="import", at=ts, actor=self.actor, source=self.options.label or self.options.source,
            summary=json.dumps({"counts": counts}, ensure_ascii=False)).returning(batch_table.c.id)).scalar_one()
        stamp = {"ts": ts}
        ts_type = customer_table.c.created_at.type
        if progress:
            progress("new")
        # New customers: their full values, keys and history made here, then one INSERT … SELECT.
        self._materialise_new()
        cols = ", ".join((*FIELD_NAMES, *DERIVED))
        src = ", ".join((*FIELD_NAMES, *(f"d_{d}" for d in DERIVED)))
        conn.execute(sa.text(f"INSERT INTO customer ({cols}, version, created_at, updated_at) "
                             f"SELECT {src}, 1, :ts, :ts FROM {ROW_T} ORDER BY seq")
                     .bindparams(sa.bindparam("ts", type_=ts_type)), stamp)
        conn.exec_driver_sql(f"UPDATE {ROW_T} SET cust_id = (SELECT c.id FROM customer c WHERE c.number = {ROW_T}.number)")
        if progress:
            progress("update")
        # Changed customers: one UPDATE per set of changed fields, only those columns and their keys.
        expected = counts.get(UPDATE, 0)
        done = 0
        colsets = self._materialise_updates()
        for colset in colsets:
            changed = [n for n in FIELD_NAMES if colset & _FIELD_BIT[n]]
            derived = sorted({d for n in changed for d in _DERIVED_BY.get(n, ())})
            targets = [*changed, *derived]
            sources = [*changed, *(f"d_{d}" for d in derived)]
            # The version check also catches a customer deleted since the preview (a deletion bumps it).
            sql = (f"UPDATE customer SET {', '.join(f'{t} = u.{s}' for t, s in zip(targets, sources, strict=True))}, "
                   f"version = customer.version + 1, updated_at = :ts FROM {UROW_T} u WHERE u.cust_id = customer.id "
                   f"AND u.colset = :colset AND customer.version = u.old_version")
            result = conn.execute(sa.text(sql).bindparams(sa.bindparam("ts", type_=ts_type)),
                                  {"ts": ts, "colset": colset})
            done += result.rowcount
        if done != expected:
            raise StalePlan(_(_STALE))
        # The series moves past every number used.
        top = max((v for v in (number_int(n) for (n,) in conn.exec_driver_sql(
            f"SELECT number FROM {ROW_T}").fetchall()) if v is not None), default=None)
        if top is not None:
            current = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == NEXT_NUMBER_KEY)).scalar()
            nxt = max(int(current) if current else FIRST_NUMBER, top + 1)
            if current is None:
                conn.execute(sa.insert(meta_table).values(key=NEXT_NUMBER_KEY, value=str(nxt)))
            else:
                conn.execute(sa.update(meta_table).where(meta_table.c.key == NEXT_NUMBER_KEY).values(value=str(nxt)))
        if progress:
            progress("log")
        # History: every created and changed customer, with every previous value.
        conn.execute(sa.text(
            f"INSERT INTO change (at, actor, source, batch_id, customer_id, action, changes) "
            f"SELECT :ts, :actor, :source, :batch, cust_id, action, changes FROM ("
            f"SELECT seq, cust_id, 'create' AS action, changes FROM {ROW_T} UNION ALL "
            f"SELECT seq, cust_id, 'update' AS action, changes FROM {UPD_T}) x ORDER BY seq")
            .bindparams(sa.bindparam("ts", type_=change_table.c.at.type)),
            {"ts": ts, "actor": self.actor, "source": self.options.source, "batch": batch_id})
        receipt = Receipt(batch_id, counts, at=ts, label=self.options.label)
        receipt.created = [(line, number) for line, number in conn.exec_driver_sql(
            f"SELECT s.line, n.number FROM {NEW_T} n JOIN {STAGE} s ON s.seq = n.seq ORDER BY n.seq").fetchall()]
        receipt.updated = [(line, number) for line, number in conn.exec_driver_sql(
            f"SELECT s.line, c.number FROM {UPD_T} u JOIN {STAGE} s ON s.seq = u.seq JOIN customer c "
            f"ON c.id = u.cust_id ORDER BY u.seq").fetchall()]
        receipt.errors = [(line, reason or "") for line, reason in conn.exec_driver_sql(
            f"SELECT line, reason FROM {STAGE} WHERE cls = 'error' ORDER BY seq").fetchall()]
        conn.execute(sa.update(batch_table).where(batch_table.c.id == batch_id).values(
            summary=json.dumps({"counts": counts, "label": self.options.label}, ensure_ascii=False)))
        return receipt

    def _materialise_updates(self) -> list[int]:
        """The changed customers' new values and keys in ``kr_updrow``; returns the sets of changed
        fields (one UPDATE each)."""
        self._exec(f"DROP TABLE IF EXISTS {UROW_T}")
        big = "INTEGER" if self.sqlite else "BIGINT"
        self._exec(f"CREATE TEMP TABLE {UROW_T} (cust_id {big} PRIMARY KEY, old_version INTEGER NOT NULL, "
                   "colset INTEGER NOT NULL, " + ", ".join(f"{n} TEXT" for n in FIELD_NAMES) + ", "
                   + ", ".join(f"d_{d} TEXT" for d in DERIVED) + ")")
        key_fields = ("number", "name", "email", "org_number", "city")
        cur = self._exec("SELECT u.cust_id, u.old_version, u.colset, u.changes, "
                         + ", ".join(f"c.{n}" for n in key_fields)
                         + f" FROM {UPD_T} u JOIN customer c ON c.id = u.cust_id ORDER BY u.cust_id")
        keys = self._keys
        colsets: set[int] = set()
        while True:
            batch = cur.fetchmany(5000)
            if not batch:
                break
            rows: list[tuple[Any, ...]] = []
            for cid, version, colset, changes_json, *stored in batch:
                colsets.add(colset)
                changes = json.loads(changes_json)
                new = {n: (changes[n][1] if n in changes else None) for n in FIELD_NAMES}
                derived: dict[str, str | None] = {}
                if any(n in changes for n in _DERIVED_BY):
                    values = dict(zip(key_fields, stored, strict=True))
                    values.update({n: v for n, v in new.items() if v is not None})
                    derived = keys.derived(values)
                rows.append((cid, version, colset, *(new[n] for n in FIELD_NAMES),
                             *(derived.get(d) for d in DERIVED)))
            self._insert(UROW_T, ("cust_id", "old_version", "colset", *FIELD_NAMES, *(f"d_{d}" for d in DERIVED)),
                         rows)
        return sorted(colsets)

    def _materialise_new(self) -> None:
        """The new customers' rows (values, keys, history entry) in ``kr_newrow``, in input order."""
        self._exec(f"DROP TABLE IF EXISTS {ROW_T}")
        big = "INTEGER" if self.sqlite else "BIGINT"
        self._exec(f"CREATE TEMP TABLE {ROW_T} (seq INTEGER PRIMARY KEY, cust_id {big}, changes TEXT NOT NULL, "
                   + ", ".join(f"{n} TEXT" for n in FIELD_NAMES) + ", "
                   + ", ".join(f"d_{d} TEXT" for d in DERIVED) + ")")
        cur = self._exec(f"SELECT n.seq, n.number, s.payload FROM {NEW_T} n JOIN {STAGE} s ON s.seq = n.seq "
                         f"ORDER BY n.seq")
        keys = self._keys
        encode = _JSON.encode
        while True:
            batch = cur.fetchmany(5000)
            if not batch:
                break
            rows: list[tuple[Any, ...]] = []
            for seq, number, payload in batch:
                values = self._new_values(number, payload)
                derived = keys.derived(values)
                rows.append((seq, encode({k: ["", v] for k, v in values.items() if v}),
                             *(values[n] for n in FIELD_NAMES), *(derived[d] for d in DERIVED)))
            self._insert(ROW_T, ("seq", "changes", *FIELD_NAMES, *(f"d_{d}" for d in DERIVED)), rows)


def undo_import(engine: Engine, batch_id: int, actor: str | None = None) -> int:
    """Restore exactly what was there before an import: created customers go, changed ones get
    their previous values back. Refused when a customer was changed after the import."""
    actor = actor or current_actor()
    ts = now()
    t = change_table.c
    with _no_gc(), write_tx(engine) as conn:
        batch = conn.execute(sa.select(batch_table).where(batch_table.c.id == batch_id)).first()
        if batch is None or batch.kind != "import":
            raise ImportError_(_("Importen finns inte."))
        if batch.undone_at is not None:
            raise ImportError_(_("Importen är redan ångrad."))
        last = conn.execute(sa.select(sa.func.max(t.id)).where(t.batch_id == batch_id)).scalar()
        if last is None:
            conn.execute(sa.update(batch_table).where(batch_table.c.id == batch_id).values(undone_at=ts))
            return 0
        later_t = change_table.alias("later")
        later = conn.execute(
            sa.select(later_t.c.customer_id).select_from(change_table.join(
                later_t, sa.and_(later_t.c.customer_id == t.customer_id, later_t.c.id > last)))
            .where(t.batch_id == batch_id).limit(1)).scalar()
        if later is not None:
            number = conn.execute(sa.select(C.number).where(C.id == later)).scalar()
            raise ImportError_(_("Importen kan inte ångras: kund {n} har ändrats efter importen.").format(n=number))
        # Created customers leave the register (their numbers are never handed out again).
        created = sa.select(t.customer_id).where(t.batch_id == batch_id, t.action == "create")
        conn.execute(sa.update(customer_table).where(C.id.in_(created)).values(
            deleted_at=ts, version=C.version + 1, updated_at=ts))
        # Changed customers get every previous value back, and the keys that go with them.
        keys = KeyCache()
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        log: list[dict[str, Any]] = []
        stmt = (sa.select(t.customer_id, t.action, t.changes, *(getattr(C, n) for n in FIELD_NAMES))
                .select_from(change_table.join(customer_table, C.id == t.customer_id))
                .where(t.batch_id == batch_id).order_by(t.id))
        count = 0
        for row in conn.execute(stmt):
            count += 1
            changes = json.loads(row.changes)
            log.append({"at": ts, "actor": actor, "source": "undo", "batch_id": batch_id,
                        "customer_id": row.customer_id, "action": "delete" if row.action == "create" else "update",
                        "changes": json.dumps({n: [new, old] for n, (old, new) in changes.items()},
                                              ensure_ascii=False)})
            if row.action != "update":
                continue
            values = {n: getattr(row, n) for n in FIELD_NAMES}
            for n, (old, _new) in changes.items():
                values[n] = old
            changed = tuple(n for n in FIELD_NAMES if n in changes)
            derived_needed = sorted({d for n in changed for d in _DERIVED_BY.get(n, ())})
            derived = keys.derived(values) if derived_needed else {}
            groups.setdefault(changed, []).append(
                {"k_id": row.customer_id, **{n: values[n] for n in changed}, **{d: derived[d] for d in derived_needed}})
        try:
            for changed, items in groups.items():
                derived_needed = sorted({d for n in changed for d in _DERIVED_BY.get(n, ())})
                stmt_u = customer_table.update().where(C.id == sa.bindparam("k_id")).values(
                    **{n: sa.bindparam(n) for n in (*changed, *derived_needed)},
                    version=C.version + 1, updated_at=ts)
                for start in range(0, len(items), 20_000):
                    conn.execute(stmt_u, items[start:start + 20_000])
        except sa.exc.IntegrityError as exc:
            raise ImportError_(_("Importen kan inte ångras: en e-postadress som importen ändrade används nu "
                                 "av en annan kund.")) from exc
        for start in range(0, len(log), 20_000):
            conn.execute(sa.insert(change_table), log[start:start + 20_000])
        conn.execute(sa.update(batch_table).where(batch_table.c.id == batch_id).values(undone_at=ts))
        return count


__all__ = [
    "CLASSES", "ERROR", "NEW", "SAME", "UPDATE", "Cancelled", "ImportError_", "ImportOptions", "ImportPlan",
    "Receipt", "RecordLike", "RowResult", "StalePlan", "register_fingerprint",
    "row_validator", "undo_import",
]
