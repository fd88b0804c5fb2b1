"""Kundlista: the register written out as a file, streamed, for the screen and ``kundreg export``.

Four list types (:class:`ExportKind`):

* **Kundinformation som CSV** (``csv``): every field, UTF-8 without BOM, comma, CRLF, every field
  quoted (RFC 4180). The header row holds the fields' Swedish labels, which the import maps by
  itself in any language. Values are written exactly as stored (Kundtyp as Företag /
  Privatperson): nothing is escaped or guarded, so the file imports back with every row
  *oförändrad* (read it with the formula guard off: ``ReadSettings(excel_guard=False)``).
* **Kundlista för Excel** as XLSX (``xlsx``): one text cell per value (``00123`` and
  ``+46 70 …`` stay as they are), headers in the UI language, Kundtyp in words.
* **Kundlista för Excel** as CSV (``excel-csv``): the same columns as the XLSX, UTF-8 with BOM,
  semicolon, CRLF, every field quoted.
* **Utskrift** (``text``): a plain, paged, aligned list for printing or mailing.

Both Excel types neutralise cells that Excel would run as a formula: :func:`excel_guard` puts one
``'`` before a value that starts with ``= + - @``, tab, CR, LF or ``'``. That is the exact inverse
of :func:`kundreg_tui.domain.csvread.strip_excel_guard`, so an Excel list imports back unchanged.

Reading is streamed (SQLAlchemy Core, ``stream_results``/``yield_per``) in the register's order;
memory does not grow with the register. On SQLite the CSV lines are built by SQLite itself
(``printf('"%w";…')``), which is what makes a million customers as fast as the ``sqlite3``
command line; on other databases the :mod:`csv` module writes the same bytes. On SQLite the
XLSX sheet is made from SQLite's ``json_array`` of each row, a chunk of rows at a time with a
few passes of ``bytes.replace``, and the printed list a chunk at a time with ``%`` and the string
methods; a row they cannot take as it comes is left to the per-row writer that other databases
use. The tests hold each fast path to the same bytes as the per-row writer
(``export_to_stream(..., fast=False)``).

Files are written to a temporary file beside the target and renamed into place at the end: a
cancelled or failed export leaves no half file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import re
import stat
import sys
import tempfile
import threading
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from itertools import chain, repeat
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kundreg_tui.domain.fields import (
    FIELD_BY_NAME,
    FIELD_NAMES,
    KIND_COMPANY,
    KIND_LABELS,
    KIND_PERSON,
)
from kundreg_tui.domain.models import customer_table
from kundreg_tui.domain.register import RegisterService, Sort, search_clause, sort_order
from kundreg_tui.i18n import N_, _, ngettext

__all__ = [
    "CHUNK_ROWS",
    "EXCEL_GUARD_CHARS",
    "EXCEL_MAX_ROWS",
    "ExportCancelled",
    "ExportError",
    "ExportKind",
    "ExportRequest",
    "ExportResult",
    "PRINT_FIELDS",
    "Scope",
    "check_target",
    "count_customers",
    "csv_header",
    "default_file_name",
    "excel_guard",
    "export_to_path",
    "export_to_stream",
    "kind_description",
    "kind_title",
    "parse_delimiter",
    "print_columns",
    "scope_title",
    "text_width",
    "xml_text",
]

C = customer_table.c

#: Rows read from the database (and written) at a time; progress and cancel are checked per chunk.
CHUNK_ROWS = 5000
#: First characters that make Excel (or LibreOffice) treat a typed or imported value as a formula,
#: and ``'`` itself so that the guard can be undone exactly.
EXCEL_GUARD_CHARS = frozenset("=+-@\t\r\n'")
#: Rows of one Excel sheet (1 048 576) less the header row. More customers continue on a new sheet.
EXCEL_MAX_ROWS = 1_048_575
#: Uncompressed size at which a sheet is closed and the next one begun (well under the 2 GiB at
#: which a ZIP entry would need ZIP64, which not every spreadsheet program reads).
SHEET_MAX_BYTES = 1_500_000_000
#: Fields of the printed list, in order.
PRINT_FIELDS: tuple[str, ...] = ("number", "name", "address", "postal_code", "city", "phone", "email")
#: Marked customers up to this many are selected with ``IN (…)``; more go through a temp table.
IN_LIMIT = 1000

_UTF8_BOM = "\ufeff"
_CRLF = "\r\n"


class ExportKind(StrEnum):
    CSV = "csv"
    EXCEL = "xlsx"
    EXCEL_CSV = "excel-csv"
    PRINT = "text"

    @property
    def extension(self) -> str:
        return {"csv": ".csv", "xlsx": ".xlsx", "excel-csv": ".csv", "text": ".txt"}[self.value]

    @property
    def guarded(self) -> bool:
        """Formula-looking values are neutralised (the Excel list types)."""
        return self in (ExportKind.EXCEL, ExportKind.EXCEL_CSV)

    @property
    def is_csv(self) -> bool:
        return self in (ExportKind.CSV, ExportKind.EXCEL_CSV)

    @property
    def default_delimiter(self) -> str:
        return ";" if self is ExportKind.EXCEL_CSV else ","


class Scope(StrEnum):
    ALL = "all"  # every customer
    SHOWN = "shown"  # the ones the register's search shows
    MARKED = "marked"  # the marked ones


_KIND_TITLES = {
    ExportKind.CSV: N_("Kundinformation som CSV"),
    ExportKind.EXCEL: N_("Kundlista för Excel (XLSX)"),
    ExportKind.EXCEL_CSV: N_("Kundlista för Excel (CSV)"),
    ExportKind.PRINT: N_("Utskrift (text)"),
}
_KIND_DESCRIPTIONS = {
    ExportKind.CSV: N_("Alla fält, UTF-8 och komma: för att flytta registret till ett annat "
                       "system. Filen kan importeras tillbaka utan ändringar."),
    ExportKind.EXCEL: N_("Ett kalkylblad där varje värde är text, så att 00123 och +46 70 … "
                         "står kvar som de är."),
    ExportKind.EXCEL_CSV: N_("CSV som Excel öppnar direkt (UTF-8 med BOM, semikolon). "
                             "Välj XLSX om inledande nollor ska stå kvar i Excel."),
    ExportKind.PRINT: N_("En sidindelad lista med kundnummer, namn, adress, postnummer, ort, "
                         "telefon och e-post, för utskrift eller utskick."),
}
_SCOPE_TITLES = {
    Scope.ALL: N_("Alla kunder"),
    Scope.SHOWN: N_("Som sökningen visar"),
    Scope.MARKED: N_("Markerade kunder"),
}


def kind_title(kind: ExportKind) -> str:
    return _(_KIND_TITLES[kind])


def kind_description(kind: ExportKind) -> str:
    return _(_KIND_DESCRIPTIONS[kind])


def scope_title(scope: Scope) -> str:
    return _(_SCOPE_TITLES[scope])


class ExportError(Exception):
    """The export could not be made; the message is for the user (translated)."""


class ExportCancelled(ExportError):
    """The export was cancelled; no file was left behind."""


@dataclass(frozen=True)
class ExportRequest:
    """What to export and how.

    ``scope`` picks the customers: all of them, the ones ``query`` finds (as the register's search
    does), or the ``ids`` given (the marked ones; ids no longer in the register are left out).
    ``sort`` is the register's order. ``delimiter`` applies to the CSV types (default ``,`` for
    Kundinformation, ``;`` for Excel). ``page_width``/``page_lines``/``printed_at`` shape the
    printed list (``printed_at`` defaults to now).
    """

    kind: ExportKind = ExportKind.CSV
    scope: Scope = Scope.ALL
    query: str = ""
    sort: Sort = Sort()
    ids: tuple[int, ...] = ()
    delimiter: str | None = None
    page_width: int = 132
    page_lines: int = 60
    printed_at: datetime | None = None

    @property
    def effective_delimiter(self) -> str:
        return self.delimiter or self.kind.default_delimiter


@dataclass(frozen=True)
class ExportResult:
    kind: ExportKind
    count: int
    path: Path | None = None
    bytes_written: int = 0


Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]


# --------------------------------------------------------------------------------------------
# Values


def excel_guard(value: str) -> str:
    """Neutralise a value Excel would run as a formula: ``=1+1`` → ``'=1+1``.

    One ``'`` goes before a value starting with ``= + - @``, tab, CR, LF, or ``'`` (so that
    ``'t Hooft`` → ``''t Hooft``, and stripping exactly one ``'`` gives every value back).
    """
    if value[:1] in EXCEL_GUARD_CHARS:
        return "'" + value
    return value


_KIND_WORDS_SV = {KIND_COMPANY: KIND_LABELS[KIND_COMPANY], KIND_PERSON: KIND_LABELS[KIND_PERSON]}


def _kind_words(translated: bool) -> dict[str, str]:
    """How Kundtyp is written: Swedish words, or the UI language's when the import reads them."""
    if not translated:
        return dict(_KIND_WORDS_SV)
    from kundreg_tui.domain.validation import FieldError, check_kind

    out: dict[str, str] = {}
    for code, word in _KIND_WORDS_SV.items():
        label = _(word)
        try:
            out[code] = label if check_kind(label) == code else word
        except FieldError:
            out[code] = word
    return out


def parse_delimiter(text: str) -> str:
    """A delimiter as typed on the command line: ``,`` ``;`` ``|``, ``tab`` or ``\\t``."""
    words = {"tab": "\t", "\\t": "\t", "tabb": "\t", "komma": ",", "comma": ",",
             "semikolon": ";", "semicolon": ";"}
    value = words.get(text.strip().lower(), text)
    if len(value) != 1 or value in '"\r\n\x00':
        raise ExportError(_("Avgränsaren måste vara ett enda tecken, inte citattecken eller "
                            "radbrytning."))
    return value


def _fields(kind: ExportKind) -> tuple[str, ...]:
    return PRINT_FIELDS if kind is ExportKind.PRINT else FIELD_NAMES


def csv_header(kind: ExportKind) -> list[str]:
    """The header row: the Swedish labels for Kundinformation (the import maps them in any
    language), the labels in the UI language for the lists people read."""
    names = _fields(kind)
    if kind is ExportKind.CSV:
        return [FIELD_BY_NAME[n].label for n in names]
    return [FIELD_BY_NAME[n].label_text for n in names]


def default_file_name(kind: ExportKind, today: datetime | None = None) -> str:
    day = (today or datetime.now()).strftime("%Y-%m-%d")
    stem = {ExportKind.CSV: _("kundinformation"), ExportKind.EXCEL: _("kundlista"),
            ExportKind.EXCEL_CSV: _("kundlista"), ExportKind.PRINT: _("kundlista")}[kind]
    return f"{stem}-{day}{kind.extension}"


# --------------------------------------------------------------------------------------------
# Reading


_ID_TABLE_NAME = "kundreg_export_ids"


def _id_table() -> sa.Table:
    return sa.Table(_ID_TABLE_NAME, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                    prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


class _Selection:
    """Where and how the customers of a request are read, inside one connection."""

    def __init__(self, conn: Connection, request: ExportRequest) -> None:
        self.conn = conn
        self.request = request
        self.id_table: sa.Table | None = None
        self.where: sa.ColumnElement[bool] = search_clause(
            request.query if request.scope is Scope.SHOWN else "")
        if request.scope is Scope.MARKED:
            ids = sorted(set(request.ids))
            if len(ids) <= IN_LIMIT:
                self.where = sa.and_(search_clause(""), C.id.in_(ids))
            else:
                self.id_table = self._fill_id_table(ids)

    def _fill_id_table(self, ids: list[int]) -> sa.Table:
        table = _id_table()
        if self.conn.dialect.name != "postgresql":
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_ID_TABLE_NAME}")
        table.create(self.conn)
        for start in range(0, len(ids), 10_000):
            self.conn.execute(sa.insert(table), [{"id": i} for i in ids[start : start + 10_000]])
        return table

    def close(self) -> None:
        if self.id_table is not None and self.conn.dialect.name != "postgresql":
            try:
                self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_ID_TABLE_NAME}")
            except sa.exc.DBAPIError:  # never hide the error that ended the export
                pass  # (the next export drops it before creating it again)

    def _from(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        if self.id_table is not None:
            stmt = stmt.select_from(customer_table.join(self.id_table, self.id_table.c.id == C.id))
        return stmt.where(self.where)

    def count(self) -> int:
        stmt = self._from(sa.select(sa.func.count()).select_from(customer_table))
        return int(self.conn.execute(stmt).scalar_one())

    def select(self, columns: Sequence[sa.ColumnElement[Any]]) -> sa.Select[Any]:
        return self._from(sa.select(*columns)).order_by(*sort_order(self.request.sort))

    def stream(self, columns: Sequence[sa.ColumnElement[Any]]) -> Iterator[Sequence[Any]]:
        """Chunks of rows, streamed: a server-side cursor on PostgreSQL; on SQLite the driver's
        own cursor, which steps through the result as it is fetched (plain tuples, no per-row
        SQLAlchemy work: a tenth of the time at a million rows)."""
        stmt = self.select(columns)
        if self.conn.dialect.name == "sqlite":
            result = self.conn.execute(stmt)
            cursor = result.cursor
            try:
                while rows := cursor.fetchmany(CHUNK_ROWS):
                    yield rows
            finally:
                result.close()
            return
        result = self.conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(stmt)
        try:
            yield from result.partitions()
        finally:
            result.close()


#: SQLite page cache for an export's connection (KiB). Reading the register once from start to end
#: gains nothing from the register's usual 64 MiB: the operating system caches the file anyway.
SQLITE_EXPORT_CACHE_KIB = 8192


@contextmanager
def _small_cache(conn: Connection) -> Iterator[None]:
    dbapi = conn.connection.driver_connection
    if conn.dialect.name != "sqlite" or dbapi is None:
        yield
        return
    # On the driver itself: a PRAGMA through SQLAlchemy would begin the transaction too early.
    before = dbapi.execute("PRAGMA cache_size").fetchone()[0]
    dbapi.execute(f"PRAGMA cache_size=-{SQLITE_EXPORT_CACHE_KIB}")
    try:
        yield
    finally:
        dbapi.execute(f"PRAGMA cache_size={int(before)}")


@contextmanager
def _reading(service: RegisterService, request: ExportRequest) -> Iterator[_Selection]:
    """One connection and one snapshot for the count and the rows."""
    with service.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with _small_cache(conn), conn.begin():
            selection = _Selection(conn, request)
            try:
                yield selection
            finally:
                selection.close()


def count_customers(service: RegisterService, request: ExportRequest) -> int:
    """How many customers the request exports."""
    with _reading(service, request) as selection:
        return selection.count()


# A value in a row joined with NUL (which no stored value holds) starts with a guard character.
_GUARD_START = re.compile("\x00[=+\\-@'\t\r\n]")


def _value_rows(selection: _Selection, kind: ExportKind) -> Iterator[list[list[str]]]:
    """Chunks of rows of the kind's values, Kundtyp in words, Excel guard applied (Python)."""
    names = _fields(kind)
    words = _kind_words(translated=kind is not ExportKind.CSV)
    kind_at = names.index("kind") if "kind" in names else -1
    guard = kind.guarded
    gchars = EXCEL_GUARD_CHARS
    needs_guard = _GUARD_START.search
    for chunk in selection.stream([getattr(C, n) for n in names]):
        rows = [list(r) for r in chunk]
        if kind_at >= 0:
            for row in rows:
                row[kind_at] = words.get(row[kind_at], row[kind_at])
        if guard:
            for i, row in enumerate(rows):
                if needs_guard("\x00" + "\x00".join(row)):
                    rows[i] = [("'" + v) if v[:1] in gchars else v for v in row]
        yield rows


def _sql_guard(col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """:func:`excel_guard` as SQLite SQL (``unicode()`` is the code point of the first char)."""
    codes = sorted(ord(ch) for ch in EXCEL_GUARD_CHARS)
    return sa.case((sa.func.unicode(col).in_(codes), sa.literal("'") + col), else_=col)


def _sql_values(kind: ExportKind, *, guard: bool = True) -> list[sa.ColumnElement[Any]]:
    """The kind's values as SQLite SQL: what :func:`_value_rows` makes of a row, column by
    column (``guard=False``: Kundtyp in words only)."""
    words = _kind_words(translated=kind is not ExportKind.CSV)
    columns: list[sa.ColumnElement[Any]] = []
    for name in _fields(kind):
        col: sa.ColumnElement[Any] = getattr(C, name)
        if name == "kind":
            col = sa.case(*((col == code, sa.literal(word)) for code, word in words.items()), else_=col)
        if guard and kind.guarded:
            col = _sql_guard(col)
        columns.append(col)
    return columns


def _sqlite_csv_lines(selection: _Selection, kind: ExportKind, delimiter: str) -> Iterator[list[str]]:
    """Chunks of finished CSV lines, made by SQLite: ``printf('"%w";"%w"…\\r\\n', …)``.

    ``%w`` doubles the double quotes, so each line is exactly what ``csv.writer`` with
    ``QUOTE_ALL`` writes for the same values (the tests hold both to the same bytes).
    """
    columns = _sql_values(kind)
    template = delimiter.replace("%", "%%").join(['"%w"'] * len(columns)) + _CRLF
    line = sa.func.printf(sa.literal(template), *columns)
    for chunk in selection.stream([line]):
        yield [r[0] for r in chunk]


_SQLITE_FUNCTIONS: dict[str, bool] = {}


def _sqlite_has(conn: Connection, function: str, probe: str) -> bool:
    """Whether this SQLite library has ``function`` (JSON can be left out when SQLite is built)."""
    if function not in _SQLITE_FUNCTIONS:
        try:
            conn.exec_driver_sql(probe).all()
            _SQLITE_FUNCTIONS[function] = True
        except sa.exc.DBAPIError:
            _SQLITE_FUNCTIONS[function] = False
    return _SQLITE_FUNCTIONS[function]


# --------------------------------------------------------------------------------------------
# Writers: each takes a selection and a binary stream, returns the number of customers written.


class _Ticker:
    def __init__(self, total: int, progress: Progress | None, cancelled: Cancelled | None) -> None:
        self.total = total
        self.done = 0
        self.progress = progress
        self.cancelled = cancelled
        self.check()

    def check(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise ExportCancelled(_("Exporten avbröts. Ingen fil skrevs."))

    def add(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))
        self.check()


def _write_csv(selection: _Selection, request: ExportRequest, out: IO[bytes], ticker: _Ticker,
               *, fast: bool) -> None:
    kind = request.kind
    delimiter = request.effective_delimiter
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    try:
        if kind is ExportKind.EXCEL_CSV:
            text.write(_UTF8_BOM)
        writer = csv.writer(text, delimiter=delimiter, quotechar='"', quoting=csv.QUOTE_ALL,
                            doublequote=True, lineterminator=_CRLF)
        writer.writerow(csv_header(kind))
        if fast and selection.conn.dialect.name == "sqlite":
            for lines in _sqlite_csv_lines(selection, kind, delimiter):
                text.write("".join(lines))
                ticker.add(len(lines))
        else:
            for rows in _value_rows(selection, kind):
                writer.writerows(rows)
                ticker.add(len(rows))
        text.flush()
    finally:
        text.detach()


# ---- XLSX ------------------------------------------------------------------------------------

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Characters XML cannot carry as they are (CR would be read back as LF), and "_xHHHH_", which
# Excel reads as an escaped character: both are written the way Excel writes them.
_XML_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|_x[0-9A-Fa-f]{4}_")
# A row (values joined with tab) that has something to escape; "_x" is looked for apart.
_XML_SLOW_ROW = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Column widths (characters) in the sheet.
_XLSX_WIDTHS = {"number": 12, "kind": 13, "name": 32, "first_name": 16, "last_name": 18,
                "org_number": 16, "vat_number": 18, "email": 32, "phone": 18, "address": 32,
                "postal_code": 11, "city": 18, "country": 6, "reference": 22, "notes": 40}
_STYLE_TEXT, _STYLE_WRAP, _STYLE_HEADER = 1, 2, 3
# Whitespace that XML lets a reader drop at the ends of a text: a value that starts or ends with
# one is written with xml:space="preserve", which tells Excel to keep it as it is.
_XML_SPACE = " \t\n\r"
# Deflate level of the sheets (the bulk of the file): 1 is more than twice as fast as zlib's
# default, 6, and the file about a quarter larger.
_SHEET_LEVEL = 1


def _xml_sub(match: re.Match[str]) -> str:
    s = match.group()
    if s in _XML_ENTITIES:
        return _XML_ENTITIES[s]
    if len(s) == 1:
        return f"_x{ord(s):04X}_"
    return "_x005F" + s  # a literal "_x0041_" stays literal in Excel


def xml_text(value: str) -> str:
    """A value as the text of an XLSX ``<t>`` element (escaped as Excel escapes it)."""
    return _XML_SPECIAL.sub(_xml_sub, value)


class _BackgroundWriter:
    """Hands the writes to a thread: deflating releases the GIL, so the sheet is compressed on the
    other core while the next rows are made. At most ``depth`` chunks wait (bounded memory)."""

    def __init__(self, target: IO[bytes], depth: int = 4) -> None:
        self.target = target
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="kundreg-export-deflate", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            data = self.queue.get()
            if data is None:
                return
            if self.error is None:
                try:
                    self.target.write(data)
                except BaseException as exc:  # handed to the caller on the next write or close
                    self.error = exc

    def write(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(data)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.target.close()
        if self.error is not None:
            raise self.error


def _col_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _set_level(info: zipfile.ZipInfo, level: int) -> None:
    """The deflate level of an entry written with ``ZipFile.open(info, "w")``, which takes it from
    the ``ZipInfo`` (not from the ``ZipFile``'s ``compresslevel``)."""
    if sys.version_info >= (3, 13):
        info.compress_level = level
    else:
        info._compresslevel = level  # type: ignore[attr-defined]


# The fast path's intermediate form of a run of rows (see _XlsxWriter._json_run): one control
# character for each piece of markup, expanded at the end. JSON never holds a control character
# as it is, so none of them can come from a value.
_ROW, _ROW_NUMBER_END, _OPEN, _CLOSE, _OPEN_WRAP, _ROW_END, _EMPTY, _EMPTY_WRAP = (
    bytes([i]) for i in range(1, 9))
# A row of values less the brackets, and its number: '<row r="N"><c…><t>' values '</t></c></row>'.
_JSON_ROW = _ROW + b"%d" + _ROW_NUMBER_END + _OPEN + b"%s" + _CLOSE + _ROW_END
# An element of SQLite's JSON before each value of a wrapping (multi-line) column: tells their
# cells apart (a constant in SQL, where putting it in front of the value would cost a copy).
_WRAP_MARK = "\x7f"
# Passes over a run that look at the byte after a cell's start. A regular expression that starts
# with a literal byte finds it faster than bytes.replace or `in` find two bytes.
_JSON_LEADING_SPACE = re.compile(re.escape(_OPEN + b" "))
_JSON_LEADING_SPACE_WRAP = re.compile(re.escape(_OPEN_WRAP + b" "))
_JSON_EMPTY = re.compile(re.escape(_OPEN + _CLOSE))
_JSON_EMPTY_WRAP = re.compile(re.escape(_OPEN_WRAP + _CLOSE))
# excel_guard: "'" before a value that starts with = + - @ ', or a tab or line break (JSON's
# "\t" and "\n" in the run; a CR leaves the run to Python).
_JSON_GUARD = re.compile(re.escape(_OPEN) + rb"([=+@'-]|\\[nt])")
_JSON_GUARDED = _OPEN + b"'\\1"
_JSON_GUARD_WRAP = re.compile(re.escape(_OPEN_WRAP) + rb"([=+@'-]|\\[nt])")
_JSON_GUARDED_WRAP = _OPEN_WRAP + b"'\\1"


class _XlsxWriter:
    """A minimal SpreadsheetML package, streamed into a ZIP: one text cell per value.

    openpyxl's own writer manages about 2 000 rows a second; this writes the same kind of
    file (inline strings, a text number format, frozen header, auto filter) fifty times faster.
    Rows come as values (:meth:`rows`, any database) or, on SQLite, as JSON arrays of values
    (:meth:`json_lines`) that are turned into the same XML a whole chunk at a time.
    """

    def __init__(self, out: IO[bytes], names: Sequence[str], header: Sequence[str],
                 sheet_title: str) -> None:
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self.names = list(names)
        self.header = list(header)
        self.sheet_title = sheet_title
        self.sheets: list[tuple[str, int]] = []  # (title, data rows)
        self.stream: _BackgroundWriter | None = None
        self.rows_in_sheet = 0
        self.bytes_in_sheet = 0
        styles = [_STYLE_WRAP if FIELD_BY_NAME[n].multiline else _STYLE_TEXT for n in self.names]
        wrap_at = [i for i, s in enumerate(styles) if s == _STYLE_WRAP]
        self.wrapping = len(wrap_at)
        self.marks_at = {i + k for k, i in enumerate(wrap_at)}  # the marks in the JSON
        self.empty = [f'<c s="{s}"/>' for s in styles]
        self.open = [f'<c t="inlineStr" s="{s}"><is><t>' for s in styles]
        # xml:space="preserve": Excel keeps the spaces at the ends of the value as they are.
        self.open_kept = [f'<c t="inlineStr" s="{s}"><is><t xml:space="preserve">' for s in styles]
        self.close = "</t></is></c>"
        self._masks: dict[tuple[int, ...], list[str]] = {}
        # The markup for _json_run's markers, those that add the least first (each pass copies
        # the run: in this order they copy half as much as the other way round).
        self._expand = [
            (_ROW_NUMBER_END, b'">'), (_ROW_END, b"</row>"), (_ROW, b'<row r="'),
            (_EMPTY_WRAP, f'<c s="{_STYLE_WRAP}"/>'.encode()),
            (_EMPTY, f'<c s="{_STYLE_TEXT}"/>'.encode()),
            (_OPEN_WRAP, f'<c t="inlineStr" s="{_STYLE_WRAP}"><is><t>'.encode()),
            (_CLOSE, self.close.encode()),
            (_OPEN, f'<c t="inlineStr" s="{_STYLE_TEXT}"><is><t>'.encode())]

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        return info

    def _put(self, name: str, text: str) -> None:
        self.zip.writestr(self._info(name), text.encode("utf-8"), compresslevel=6)

    def _start_sheet(self) -> None:
        number = len(self.sheets) + 1
        title = self.sheet_title if number == 1 else f"{self.sheet_title} {number}"
        self.sheets.append((title, 0))
        info = self._info(f"xl/worksheets/sheet{number}.xml")
        _set_level(info, _SHEET_LEVEL)
        self.stream = _BackgroundWriter(self.zip.open(info, "w"))
        cols = "".join(
            f'<col min="{i + 1}" max="{i + 1}" width="{_XLSX_WIDTHS.get(n, 16)}" '
            f'style="{_STYLE_WRAP if FIELD_BY_NAME[n].multiline else _STYLE_TEXT}" customWidth="1"/>'
            for i, n in enumerate(self.names))
        head = "".join(f'<c t="inlineStr" s="{_STYLE_HEADER}"><is><t xml:space="preserve">'
                       f"{xml_text(h)}</t></is></c>" for h in self.header)
        self._write(
            f'{_XML_DECL}<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols>'
            f'<sheetData><row r="1">{head}</row>')
        self.rows_in_sheet = 0

    def _write(self, text: str) -> None:
        self._write_bytes(text.encode("utf-8"))

    def _write_bytes(self, data: bytes) -> None:
        assert self.stream is not None
        self.bytes_in_sheet += len(data)
        self.stream.write(data)

    def _end_sheet(self) -> None:
        assert self.stream is not None
        last = _col_letter(len(self.names) - 1)
        self._write(f'</sheetData><autoFilter ref="A1:{last}{self.rows_in_sheet + 1}"/>'
                    '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" '
                    'footer="0.3"/></worksheet>')
        self.stream.close()
        self.stream = None
        title, _rows = self.sheets[-1]
        self.sheets[-1] = (title, self.rows_in_sheet)
        self.bytes_in_sheet = 0

    def _add(self, count: int, render: Callable[[int, int, int], bytes]) -> None:
        """Write ``count`` rows, a new sheet begun where one is full: ``render(start, stop,
        first)`` makes the XML of rows ``start:stop``, the first of them row ``first`` of its
        sheet."""
        start = 0
        while start < count:
            if self.stream is None or self.rows_in_sheet >= EXCEL_MAX_ROWS or \
                    self.bytes_in_sheet >= SHEET_MAX_BYTES:
                if self.stream is not None:
                    self._end_sheet()
                self._start_sheet()
            stop = min(count, start + EXCEL_MAX_ROWS - self.rows_in_sheet)
            self._write_bytes(render(start, stop, self.rows_in_sheet + 2))
            self.rows_in_sheet += stop - start
            start = stop

    def rows(self, rows: Sequence[Sequence[str]]) -> None:
        """Write rows of values (guarded, Kundtyp in words)."""
        self._add(len(rows), lambda start, stop, first:
                  self._render(rows[start:stop], first).encode("utf-8"))

    def _pieces(self, mask: tuple[int, ...]) -> list[str]:
        """The literal XML around a row's values for one pattern of cells (0 empty, 1 filled,
        2 filled with whitespace at an end): values go to the odd places, so a row is one slice
        assignment and one join."""
        pieces = self._masks.get(mask)
        if pieces is None:
            pieces = []
            literal = ""
            for i, state in enumerate(mask):
                pieces += [literal + (self.empty, self.open, self.open_kept)[state][i], ""]
                literal = self.close if state else ""
            pieces.append(literal + "</row>")
            if len(self._masks) < 4096:
                self._masks[mask] = pieces
        return pieces

    def _render(self, rows: Sequence[Sequence[str]], first: int) -> str:
        out: list[str] = []
        add = out.append
        slow = _XML_SLOW_ROW.search
        pieces_for = self._pieces
        strip, space = str.strip, repeat(_XML_SPACE)
        values = list(chain.from_iterable(rows))
        edges = list(map(strip, values, space)) != values  # whitespace at an end of a value?
        for n, row in enumerate(rows, first):
            mask: tuple[int, ...] = tuple(map(bool, row))
            if edges:
                stripped = list(map(strip, row, space))
                if stripped != row:
                    mask = tuple((2 if s != v else 1) if v else 0
                                 for v, s in zip(row, stripped, strict=True))
            joined = "\t".join(row)
            if slow(joined) or "_x" in joined:
                row = [xml_text(v) for v in row]
            pieces = pieces_for(mask)
            pieces[1::2] = row
            add(f'<row r="{n}">')
            add("".join(pieces))
        return "".join(out)

    def json_lines(self, lines: Sequence[bytes]) -> None:
        """Write rows given as SQLite's ``json_array`` of their values (Kundtyp in words, not
        guarded, a :data:`_WRAP_MARK` before each value of a wrapping column), as bytes. A row the
        bulk passes of :meth:`_json_run` cannot take is decoded and rendered as :meth:`rows`
        renders it (JSON holds every value exactly, NUL and all)."""
        values = [line[2:-2] for line in lines]  # less the '["' and '"]' around the values

        def render(start: int, stop: int, first: int) -> bytes:
            parts: list[bytes | int] = []
            self._json_parts(values, start, stop, first, parts)
            return b"".join(p if isinstance(p, bytes) else
                            self._json_row(lines[p], first + p - start) for p in parts)

        self._add(len(lines), render)

    def _json_row(self, line: bytes, number: int) -> bytes:
        """One row of :meth:`json_lines` the way :meth:`rows` writes it."""
        values = [excel_guard(v) for i, v in enumerate(json.loads(line)) if i not in self.marks_at]
        return self._render([values], number).encode("utf-8")

    def _json_parts(self, lines: Sequence[bytes], start: int, stop: int, first: int,
                    parts: list[bytes | int]) -> None:
        """The XML of ``lines[start:stop]`` in as few runs as possible; the index of each line
        :meth:`_json_run` leaves to Python."""
        data = self._json_run(lines[start:stop], first)
        if data is not None:
            parts.append(data)
        elif stop - start == 1:
            parts.append(start)
        else:
            mid = (start + stop) // 2
            self._json_parts(lines, start, mid, first, parts)
            self._json_parts(lines, mid, stop, first + mid - start, parts)

    def _json_run(self, lines: Sequence[bytes], first: int) -> bytes | None:
        """The rows of ``lines`` (JSON values less the brackets: ``v1","v2",…,"v15``), made
        with a few passes of ``bytes.replace`` over the whole run; ``None`` when a value needs
        more than ``& < >`` escaped (a quote or backslash, a control character other than line
        break and tab, "_x", U+FFFE/U+FFFF) or has whitespace at an end (the caller splits the
        run).

        Byte for byte what :meth:`_render` writes for the same values, Excel guard included
        (the tests hold both to the same bytes)."""
        n = len(lines)
        data = _JSON_ROW * n % tuple(chain.from_iterable(zip(range(first, first + n), lines,
                                                             strict=True)))
        # "_x" and U+FFFE/U+FFFF need escaping in XLSX. (One-byte tests first: the fast ones.)
        if (b"_" in data and b"_x" in data) or \
                (b"\xef" in data and (b"\xef\xbf\xbe" in data or b"\xef\xbf\xbf" in data)):
            return None
        # A backslash is JSON's escape of '"', '\\' or a control character. Line breaks and tabs
        # are written as they are (the only ones taken here: each backslash starts "\n" or "\t";
        # in "\\n" two backslashes would count for one).
        escaped = b"\\" in data
        if escaped and data.count(b"\\") != data.count(b"\\n") + data.count(b"\\t"):
            return None
        # No value holds '"': each '","' ends one value and starts the next.
        data = data.replace(b'","', _CLOSE + _OPEN)
        size = len(data)
        mark = _OPEN + _WRAP_MARK.encode() + _CLOSE + _OPEN  # the mark's cell and the next
        data = data.replace(mark, _OPEN_WRAP)
        if size - len(data) != (len(mark) - 1) * self.wrapping * n or _WRAP_MARK.encode() in data:
            return None  # the mark is also in a value
        if _JSON_LEADING_SPACE.search(data) or _JSON_LEADING_SPACE_WRAP.search(data) or \
                b" " + _CLOSE in data or \
                (escaped and (b"\\n" + _CLOSE in data or b"\\t" + _CLOSE in data)):
            return None  # whitespace at an end of a value: xml:space="preserve" (Python)
        data = _JSON_GUARD.sub(_JSON_GUARDED, data)  # excel_guard (a leading "\n" or "\t" too)
        data = _JSON_GUARD_WRAP.sub(_JSON_GUARDED_WRAP, data)
        if escaped:
            data = data.replace(b"\\n", b"\n").replace(b"\\t", b"\t")
        for char, entity in ((b"&", b"&amp;"), (b"<", b"&lt;"), (b">", b"&gt;")):
            if char in data:
                data = data.replace(char, entity)
        data = _JSON_EMPTY.sub(_EMPTY, data)
        data = _JSON_EMPTY_WRAP.sub(_EMPTY_WRAP, data)
        for code, markup in self._expand:
            data = data.replace(code, markup)
        return data

    def finish(self) -> None:
        if self.stream is None:
            self._start_sheet()
        self._end_sheet()
        sheets = "".join(f'<sheet name="{xml_text(title)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, (title, _rows) in enumerate(self.sheets, 1))
        last = _col_letter(len(self.names) - 1)
        names = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
            f"'{xml_text(title).replace(chr(39), chr(39) * 2)}'!$A$1:${last}${rows + 1}</definedName>"
            for i, (title, rows) in enumerate(self.sheets))
        self._put("xl/workbook.xml",
                  f'{_XML_DECL}<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
                  f"<bookViews><workbookView/></bookViews><sheets>{sheets}</sheets>"
                  f"<definedNames>{names}</definedNames></workbook>")
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{_NS_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, len(self.sheets) + 1))
        n_sheets = len(self.sheets)
        self._put("xl/_rels/workbook.xml.rels",
                  f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}">{rels}'
                  f'<Relationship Id="rId{n_sheets + 1}" Type="{_NS_REL}/styles" Target="styles.xml"/>'
                  "</Relationships>")
        self._put("xl/styles.xml", _STYLES_XML)
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(1, n_sheets + 1))
        self._put("[Content_Types].xml",
                  f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                  '<Default Extension="xml" ContentType="application/xml"/>'
                  '<Override PartName="/xl/workbook.xml" ContentType="application/'
                  'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                  '<Override PartName="/xl/styles.xml" ContentType="application/'
                  'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                  f"{overrides}</Types>")
        self._put("_rels/.rels",
                  f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}">'
                  f'<Relationship Id="rId1" Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/>'
                  "</Relationships>")
        self.zip.close()

    def abort(self) -> None:
        try:
            if self.stream is not None:
                self.stream.close()
            self.zip.close()
        except Exception:  # the file is deleted anyway
            pass


_STYLES_XML = (
    f'{_XML_DECL}<styleSheet xmlns="{_NS_MAIN}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" '
    'applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf>'
    '<xf numFmtId="49" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" '
    'applyFont="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _sqlite_json_lines(selection: _Selection, kind: ExportKind) -> Iterator[list[bytes]]:
    """Chunks of rows as JSON arrays made by SQLite for :meth:`_XlsxWriter.json_lines`:
    ``json_array`` escapes exactly the characters that need a closer look (and keeps a NUL, which
    ``printf`` would cut a value at). The Excel guard is left to Python: in SQL it would cost
    as much as the rest of the query."""
    values: list[sa.ColumnElement[Any]] = []
    for name, col in zip(_fields(kind), _sql_values(kind, guard=False), strict=True):
        if FIELD_BY_NAME[name].multiline:
            values.append(sa.literal(_WRAP_MARK))
        values.append(col)
    for chunk in selection.stream([sa.cast(sa.func.json_array(*values), sa.LargeBinary)]):
        yield [r[0] for r in chunk]


def _write_xlsx(selection: _Selection, request: ExportRequest, out: IO[bytes],
                ticker: _Ticker, *, fast: bool) -> None:
    kind = request.kind
    writer = _XlsxWriter(out, _fields(kind), [excel_guard(h) for h in csv_header(kind)],
                         _("Kunder"))
    try:
        if fast and selection.conn.dialect.name == "sqlite" and \
                _sqlite_has(selection.conn, "json_array", "SELECT json_array('')"):
            for lines in _sqlite_json_lines(selection, kind):
                writer.json_lines(lines)
                ticker.add(len(lines))
        else:
            for rows in _value_rows(selection, kind):
                writer.rows(rows)
                ticker.add(len(rows))
        writer.finish()
    except BaseException:
        writer.abort()
        raise


# ---- Utskrift ------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


# A character that may not take exactly one column: all below U+0300 do (Latin-1 and Latin
# Extended), except the soft hyphen.
_NOT_ONE_COLUMN = re.compile("[^\x00-\xac\xae-\u02ff]").search


def text_width(text: str) -> int:
    """Columns ``text`` takes on a fixed-width page (wide East Asian characters and most emoji
    take two, combining marks and format characters none)."""
    if text.isascii() or not _NOT_ONE_COLUMN(text):
        return len(text)  # ASCII, Latin-1 and Latin Extended: one column each (not the soft hyphen)
    return sum(map(_char_width, text))


def _cut(text: str, width: int) -> tuple[str, str]:
    """The longest head of ``text`` that fits ``width`` columns, and the rest."""
    used = 0
    for i, ch in enumerate(text):
        w = _char_width(ch) if not ch.isascii() else 1
        if used + w > width:
            return text[:i], text[i:]
        used += w
    return text, ""


def _wrap(text: str, width: int) -> list[str]:
    """Word-wrap each line of ``text`` into ``width`` columns (long words are cut)."""
    if "\n" not in text and "\t" not in text:
        # The two common cases, as the loop below would do them: a value that fits (words apart
        # by one space, none at the ends), and one long word of one-column characters.
        if "  " not in text and text[:1] != " " and text[-1:] != " " and \
                text_width(text) <= width:
            return [text]
        if text and " " not in text and (text.isascii() or not _NOT_ONE_COLUMN(text)):
            return [text[i : i + width] for i in range(0, len(text), width)]
    out: list[str] = []
    for raw in text.replace("\t", " ").split("\n"):
        line = ""
        for word in raw.split(" "):
            if not word:
                continue
            candidate = f"{line} {word}" if line else word
            if text_width(candidate) <= width:
                line = candidate
                continue
            if line:
                out.append(line)
            line = word
            while text_width(line) > width:
                head, line = _cut(line, width)
                out.append(head)
        if line or not out:
            out.append(line)
    while len(out) > 1 and not out[-1]:
        out.pop()
    return out or [""]


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - text_width(text))


_GAP = 2


def print_columns(page_width: int) -> list[tuple[str, int]]:
    """(field, width) for the printed list on a page ``page_width`` columns wide."""
    fixed = {"number": 10, "postal_code": 6, "phone": 16}
    flex = {"name": 3, "address": 3, "city": 2, "email": 4}
    room = max(page_width - sum(fixed.values()) - _GAP * (len(PRINT_FIELDS) - 1), 4 * len(flex))
    shares = sum(flex.values())
    widths = {n: max(4, room * share // shares) for n, share in flex.items()}
    widths["name"] += max(0, room - sum(widths.values()))
    widths.update(fixed)
    return [(n, widths[n]) for n in PRINT_FIELDS]


_PRINT_LABELS = {"postal_code": N_("Postnr")}


def _wrap_keeps(values: Sequence[str]) -> bool:
    """Whether _wrap gives each of ``values`` (no line breaks, each fits) back as it is, or with
    spaces at the end less (which a padded column does not show)."""
    return not any("  " in v or v[:1] == " " for v in values)


def _one_column_each(text: str) -> bool:
    """Whether every character of ``text`` takes one column and none breaks the line (the
    values of a chunk joined): then a value's width is its length."""
    if "\n" in text or "\t" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("latin-1")  # below U+0100 (much the fastest test)
    except UnicodeEncodeError:
        pass
    else:
        return "\u00ad" not in text
    return not _NOT_ONE_COLUMN(text)


def _write_print(selection: _Selection, request: ExportRequest, out: IO[bytes],
                 ticker: _Ticker, *, fast: bool) -> None:
    columns = print_columns(request.page_width)
    widths = [w for _n, w in columns]
    width = sum(widths) + _GAP * (len(columns) - 1)
    gap = " " * _GAP
    printed = (request.printed_at or datetime.now()).strftime("%Y-%m-%d %H:%M")
    total = ticker.total
    subtitle = ngettext("{n} kund", "{n} kunder", total).format(n=f"{total:,}".replace(",", " "))
    if request.scope is Scope.SHOWN and request.query.strip():
        subtitle += " · " + _("sökning: {q}").format(q=request.query.strip())
    elif request.scope is Scope.MARKED:
        subtitle += " · " + _("markerade")
    body_lines = max(request.page_lines - 5, 1)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="\n", write_through=False)
    page = 0
    used = 0
    buffer: list[str] = []
    emit = buffer.append

    def line(cells: Sequence[str], cell_widths: Sequence[int] | None = None) -> str:
        used_widths = cell_widths or [text_width(c) for c in cells]
        parts = [c + " " * (w - u) for c, w, u in zip(cells, widths, used_widths, strict=True)]
        return gap.join(parts).rstrip() + "\n"

    # Values padded to their columns by length (their width when each character takes one).
    padded = gap.join(f"%-{w}s" for w in widths)
    left = _("Kundlista")
    labels = [_cut(_(_PRINT_LABELS.get(n, FIELD_BY_NAME[n].label)), w)[0] for n, w in columns]
    page_head = f"{printed} · {subtitle}".rstrip() + "\n\n" + line(labels) + "-" * width + "\n"

    def new_page() -> None:
        nonlocal page, used
        page += 1
        right = _("Sida {n}").format(n=page)
        head = _pad(left, width - text_width(right)) + right
        emit(("\f" if page > 1 else "") + head.rstrip() + "\n")
        emit(page_head)
        used = 0

    def put(row: Sequence[str]) -> None:
        """One customer's lines, made from its values."""
        nonlocal used
        # One line per customer unless a value is too wide or has several lines.
        cell_widths = [len(v) if v.isascii() else text_width(v) for v in row]
        joined = "\x00".join(row)
        if "\n" not in joined and "\t" not in joined and all(
                u <= w for u, w in zip(cell_widths, widths, strict=True)):
            if page == 0 or used >= body_lines:
                new_page()
            emit(line(row, cell_widths))
            used += 1
            return
        cells = [[v] if u <= w and "\n" not in v and "\t" not in v and "  " not in v and
                 v[:1] != " " and v[-1:] != " " else _wrap(v, w)  # (what _wrap gives back)
                 for v, u, w in zip(row, cell_widths, widths, strict=True)]
        height = max(map(len, cells))
        if _NOT_ONE_COLUMN(joined):
            put_lines([line([c[i] if i < len(c) else "" for c in cells]) for i in range(height)])
        else:  # every piece fits its column and its width is its length: pad with %
            put_lines([(padded % tuple([c[i] if i < len(c) else "" for c in cells])).rstrip() + "\n"
                       for i in range(height)])

    def put_lines(lines: Sequence[str]) -> None:
        """One customer's lines, on one page unless it is taller than a page."""
        nonlocal used
        height = len(lines)
        if page == 0 or (used + height > body_lines and used > 0):
            new_page()
        for text_line in lines:
            if used >= body_lines:
                new_page()
            emit(text_line)
            used += 1

    # The fast path: a chunk's lines made with one `%` each and a few passes of the C string
    # methods. `padded % row` pads every value to its column (by length, which is the width when
    # every character takes one column); a line is exactly `width` long when every value fits.
    indent = " " * (width - widths[-1])
    last = len(widths) - 1

    def put_one_liners(lines: Sequence[str]) -> None:
        """Customers of one line each, a page at a time."""
        nonlocal used
        done = 0
        while done < len(lines):
            if page == 0 or used >= body_lines:
                new_page()
            take = min(len(lines) - done, body_lines - used)
            emit("\n".join(lines[done : done + take]) + "\n")
            used += take
            done += take

    def put_chunk(rows: Sequence[Sequence[str]]) -> None:
        """A chunk of customers: what :func:`put` does for each, in bulk where it can."""
        nonlocal used
        joined = "\x00".join(chain.from_iterable(rows))
        if not _one_column_each(joined):
            for row in rows:
                if _one_column_each("".join(row)):
                    put_chunk([row])
                else:
                    put(row)
            return
        # _wrap gives a value back as it is unless it has two spaces together or one first
        # (one last is then padding all the same).
        as_wrapped = "  " not in joined and "\x00 " not in joined and joined[:1] != " "
        lines = [padded % row for row in rows]
        stripped = list(map(str.rstrip, lines))
        size = widths[-1]
        cut_at = len(indent)
        start = 0
        for i in [i for i, n in enumerate(map(len, lines)) if n != width]:
            if start < i:
                if page and used + i - start <= body_lines:  # the usual case, in short
                    emit("\n".join(stripped[start:i]) + "\n")
                    used += i - start
                else:
                    put_one_liners(stripped[start:i])
            start = i + 1
            row, full = rows[i], lines[i]
            value = row[last]
            # Only the last value is too long, and one word: cut as _wrap cuts it.
            if len(full) - width == len(value) - size and " " not in value and (
                    as_wrapped or _wrap_keeps(row[:last])):
                cut = (full[:cut_at] + value[:size]).rstrip() + "\n"
                height = 1
                for k in range(size, len(value), size):
                    cut += (indent + value[k : k + size]).rstrip() + "\n"
                    height += 1
                if page and used + height <= body_lines:
                    emit(cut)
                    used += height
                else:
                    put_lines([t + "\n" for t in cut[:-1].split("\n")])
                continue
            put(row)
        if start < len(rows):
            put_one_liners(stripped[start:])

    try:
        if fast and selection.conn.dialect.name == "sqlite":
            for rows in selection.stream([getattr(C, n) for n in _fields(request.kind)]):
                put_chunk(rows)
                text.write("".join(buffer))
                buffer.clear()
                ticker.add(len(rows))
        else:
            for rows in _value_rows(selection, request.kind):
                for row in rows:
                    put(row)
                text.write("".join(buffer))
                buffer.clear()
                ticker.add(len(rows))
        if page == 0:
            new_page()
            emit(_("Inga kunder.") + "\n")
        text.write("".join(buffer))
        text.flush()
    finally:
        text.detach()


# --------------------------------------------------------------------------------------------
# Entry points


def export_to_stream(service: RegisterService, request: ExportRequest, out: IO[bytes], *,
                     progress: Progress | None = None, cancelled: Cancelled | None = None,
                     fast: bool = True) -> int:
    """Write the export to a binary stream; returns the number of customers written.

    ``progress(done, total)`` is called after each chunk; ``cancelled()`` is asked before each
    one and raises :class:`ExportCancelled` when true. ``fast=False`` makes SQLite take the
    generic path (for tests that hold both paths to the same bytes).
    """
    if request.kind.is_csv:
        parse_delimiter(request.effective_delimiter)
    with _reading(service, request) as selection:
        ticker = _Ticker(selection.count(), progress, cancelled)
        if request.kind.is_csv:
            _write_csv(selection, request, out, ticker, fast=fast)
        elif request.kind is ExportKind.EXCEL:
            _write_xlsx(selection, request, out, ticker, fast=fast)
        else:
            _write_print(selection, request, out, ticker, fast=fast)
        return ticker.done


def _target(path: Path) -> Path:
    path = Path(os.path.expanduser(path))
    if path.is_symlink():
        path = path.resolve()  # write the file the link points to, keep the link
    return path.absolute()


def check_target(path: Path | str) -> str | None:
    """Why ``path`` cannot be written (translated), or ``None`` when it can."""
    if not str(path).strip():
        return _("Ange en fil att spara kundlistan i.")
    target = _target(Path(path))
    if target.is_dir():
        return _("{path} är en mapp: ange ett filnamn.").format(path=target)
    if not target.parent.is_dir():
        return _("Mappen {path} finns inte.").format(path=target.parent)
    if not os.access(target.parent, os.W_OK | os.X_OK):
        return _("Du har inte behörighet att skriva i {path}.").format(path=target.parent)
    return None


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def export_to_path(service: RegisterService, request: ExportRequest, path: Path | str, *,
                   overwrite: bool = False, progress: Progress | None = None,
                   cancelled: Cancelled | None = None) -> ExportResult:
    """Write the export to ``path`` through a temporary file renamed into place at the end.

    An existing file is only replaced with ``overwrite=True`` (it keeps its permissions); a new
    file is readable by its owner only, like the register (it holds personal data). A cancelled
    or failed export removes the temporary file and leaves ``path`` as it was.
    """
    problem = check_target(path)
    if problem:
        raise ExportError(problem)
    target = _target(Path(path))
    old_mode: int | None = None
    if target.exists():
        if not overwrite:
            raise ExportError(_("{path} finns redan.").format(path=target))
        old_mode = stat.S_IMODE(target.stat().st_mode)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise ExportError(_("Kan inte skapa en fil i {path}: {e}").format(
            path=target.parent, e=exc.strerror or exc)) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
            count = export_to_stream(service, request, handle, progress=progress, cancelled=cancelled)
            handle.flush()
            os.fsync(handle.fileno())
        if old_mode is not None:
            os.chmod(tmp, old_mode)
        os.replace(tmp, target)
        _sync_folder(target.parent)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ExportError(_("Kundlistan kunde inte sparas i {path}: {e}").format(
                path=target, e=exc.strerror or exc)) from exc
        raise
    return ExportResult(request.kind, count, target, target.stat().st_size)
