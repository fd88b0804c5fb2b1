"""Kundlista (export): the three file kinds read back as another system would (the csv module,
openpyxl), the real import engine on the files (same register: every row *oförändrad*; empty
register: every customer recreated, numbers included), scopes and order, the printed list, the
temporary file and its rename, and ``kundreg export``. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import shutil
import stat
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kundreg_tui.__main__ import main
from kundreg_tui.domain import export as ex
from kundreg_tui.domain.csvread import ReadSettings, open_csv, strip_excel_guard
from kundreg_tui.domain.database import make_engine, migrate
from kundreg_tui.domain.export import (
    ExportCancelled,
    ExportError,
    ExportKind,
    ExportRequest,
    Scope,
    excel_guard,
    export_to_path,
    export_to_stream,
)
from kundreg_tui.domain.fields import FIELD_NAMES, FIELDS
from kundreg_tui.domain.importer import ImportOptions, ImportPlan
from kundreg_tui.domain.mapping import match_header, suggest_mapping
from kundreg_tui.domain.models import CustomerRecord
from kundreg_tui.domain.register import RegisterService, Sort, ValidationFailed

# The awkward values of the issue, and a few more that break naive writers.
AWKWARD: list[dict[str, str]] = [
    {"number": "00123", "name": 'Komma, Citat "AB"', "address": "c/o Berg\nStorgatan 1, 2 tr",
     "postal_code": "00123", "country": "DE", "city": "Berlin", "phone": "+46 70 123 45 67",
     "email": "info@komma.se", "org_number": "556036-0793", "notes": "rad ett\nrad två\tmed tabb"},
    {"number": "7", "kind": "person", "first_name": "Åsa", "last_name": "Öberg", "name": "",
     "reference": "'quoted", "city": "Västerås", "postal_code": "72215", "phone": "070-123 45 67"},
    {"number": "8", "name": "=1+1", "city": "@home", "reference": "-5", "phone": "+46 70 123 45 67",
     "notes": "Emoji 😀👍 och 🇸🇪, ändå"},
    {"number": "9", "name": "Kafé & <Bar> ”citat”", "notes": "_x0041_ och 50%",
     "address": "Gata 1\n\nefter en tom rad", "vat_number": "SE556036079301"},
    {"number": "A-12/b", "name": "Ñandú +Sön; semikolon", "email": "Stor@Exempel.se", "city": "Örebro",
     "first_name": "'=SUM(A1)"},
]


def fill(service: RegisterService, customers: list[dict[str, str]] = AWKWARD) -> list[CustomerRecord]:
    return [service.create(dict(c)) for c in customers]


def stored(service: RegisterService, sort: Sort = Sort()) -> list[CustomerRecord]:
    return list(service.iter_all("", sort)) if not sort.descending else \
        service.page("", sort, 0, 10_000)


def values_of(records: list[CustomerRecord], names: tuple[str, ...] = FIELD_NAMES) -> list[list[str]]:
    return [[getattr(r, n) for n in names] for r in records]


KIND_WORD = {"company": "Företag", "person": "Privatperson"}


def expected_rows(records: list[CustomerRecord], names: tuple[str, ...] = FIELD_NAMES) -> list[list[str]]:
    rows = values_of(records, names)
    if "kind" in names:
        at = names.index("kind")
        for row in rows:
            row[at] = KIND_WORD[row[at]]
    return rows


def export_bytes(service: RegisterService, request: ExportRequest, *, fast: bool = True) -> bytes:
    out = io.BytesIO()
    export_to_stream(service, request, out, fast=fast)
    return out.getvalue()


def read_csv(data: bytes, *, bom: bool, delimiter: str) -> list[list[str]]:
    """As another system reads a CSV file: the csv module, nothing of ours."""
    text = data.decode("utf-8-sig" if bom else "utf-8")
    assert data.startswith(b"\xef\xbb\xbf") == bom
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))


_OOXML_ESCAPE = re.compile("_x([0-9A-Fa-f]{4})_")


def read_xlsx(path: Path) -> list[list[str]]:
    """As another system reads the workbook: openpyxl, every sheet, every cell.

    ``_xHHHH_`` is decoded as Excel decodes it (openpyxl leaves it as it is)."""
    workbook = openpyxl.load_workbook(path)
    rows: list[list[str]] = []
    for sheet in workbook.worksheets:
        for index, row in enumerate(sheet.iter_rows()):
            cells = []
            for cell in row:
                assert cell.data_type == "s" or cell.value is None, (cell.coordinate, cell.value)
                assert cell.number_format == "@", cell.coordinate  # text cells, typed or not
                value = "" if cell.value is None else str(cell.value)
                cells.append(_OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value))
            if index == 0 and rows:
                assert cells == rows[0], "every sheet starts with the header row"
                continue
            rows.append(cells)
    return rows


def unguard(rows: list[list[str]]) -> list[list[str]]:
    return [[strip_excel_guard(v) for v in row] for row in rows]


def import_counts(service: RegisterService, path: Path, *, excel: bool, commit: bool = False) -> dict[str, int]:
    """The real import: reader, header mapping, plan (and commit)."""
    source = open_csv(path, ReadSettings(excel_guard=excel))
    suggestions = suggest_mapping(source.header)
    assert all(s.field and s.exact for s in suggestions), suggestions
    mapping = [s.field for s in suggestions]
    with ImportPlan(service.engine, ImportOptions(source="import", label=path.name), actor="test") as plan:
        counts = plan.build(source.iter_records(), mapping)
        if commit:
            plan.commit()
    return counts


class Registers:
    """Empty registers of the same database kind as the test's ``engine``: ``make()`` one,
    ``close()`` them all (their engines, and their PostgreSQL databases)."""

    def __init__(self, engine: sa.Engine, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.engine = engine
        self.request = request
        self.tmp_path = tmp_path
        self.made: list[tuple[sa.Engine, str | None]] = []
        self.counter = itertools.count()
        self.template: Path | None = None

    def make(self) -> RegisterService:
        n = next(self.counter)
        if self.engine.dialect.name == "sqlite":
            if self.template is None:
                self.template = self.tmp_path / "template.db"
                eng = make_engine(f"sqlite:///{self.template}")
                migrate(eng)
                eng.dispose()
            path = self.tmp_path / f"empty{n}.db"
            shutil.copy(self.template, path)
            eng = make_engine(f"sqlite:///{path}")
            self.made.append((eng, None))
            return RegisterService(eng, actor="test")
        import psycopg

        server = self.request.getfixturevalue("pg_server")
        name = f"x{os.getpid()}_{id(self)}_{n}"
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE kundreg_template')
        eng = make_engine(server.url_for(name))
        self.made.append((eng, name))
        return RegisterService(eng, actor="test")

    def close(self) -> None:
        while self.made:
            eng, name = self.made.pop()
            eng.dispose()
            if name is not None:
                self.request.getfixturevalue("pg_server").drop_database(name)


@pytest.fixture
def registers(engine: sa.Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registers]:
    made = Registers(engine, request, tmp_path)
    yield made
    made.close()


# ---------------------------------------------------------------------- the guard


@given(st.text())
def test_excel_guard_is_undone_by_the_import_exactly(value: str) -> None:
    guarded = excel_guard(value)
    assert strip_excel_guard(guarded) == value
    assert guarded[:1] not in set("=+-@\t\r\n") or guarded == value == ""
    if value[:1] in set("=+-@\t\r\n'"):
        assert guarded == "'" + value
    else:
        assert guarded == value


@pytest.mark.parametrize(("value", "guarded"), [
    ("=1+1", "'=1+1"), ("+46 70 123 45 67", "'+46 70 123 45 67"), ("-5", "'-5"), ("@home", "'@home"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("\nx", "'\nx"), ("'quoted", "''quoted"), ("''", "'''"),
    ("00123", "00123"), ("a=b", "a=b"), ("", ""), ("Åsa", "Åsa"),
])
def test_excel_guard_examples(value: str, guarded: str) -> None:
    assert excel_guard(value) == guarded
    assert strip_excel_guard(guarded) == value


# ---------------------------------------------------------------------- headers


@pytest.mark.parametrize("lang", ["sv", "en"])
@pytest.mark.parametrize("kind", [ExportKind.CSV, ExportKind.EXCEL, ExportKind.EXCEL_CSV])
def test_every_header_is_mapped_by_the_import_by_itself(kind: ExportKind, lang: str) -> None:
    from kundreg_tui import i18n

    header = ex.csv_header(kind)
    i18n.set_language(lang)
    assert [match_header(h)[0] for h in header] == list(FIELD_NAMES)
    assert all(match_header(h)[2] for h in header)
    assert [s.field for s in suggest_mapping(header)] == list(FIELD_NAMES)


def test_kundinformation_header_is_the_swedish_labels() -> None:
    assert ex.csv_header(ExportKind.CSV) == [f.label for f in FIELDS]


# ---------------------------------------------------------------------- Kundinformation som CSV


def test_kundinformation_csv_reads_back_exactly(service: RegisterService) -> None:
    fill(service)
    data = export_bytes(service, ExportRequest(kind=ExportKind.CSV))
    rows = read_csv(data, bom=False, delimiter=",")
    assert rows[0] == [f.label for f in FIELDS]
    assert rows[1:] == expected_rows(stored(service))
    # RFC 4180: CRLF between records, every field quoted, quotes doubled; nothing else escaped.
    assert data.endswith(b'"\r\n')
    assert b'"Komma, Citat ""AB"""' in data
    assert b'"c/o Berg\nStorgatan 1, 2 tr"' in data
    assert b'"=1+1"' in data and b'"\'quoted"' in data and b'"+46 70 123 45 67"' in data
    assert '"Emoji 😀👍 och 🇸🇪, ändå"'.encode() in data
    assert b'"00123"' in data
    assert data.count(b"\r\n") == len(rows)


def test_kundinformation_csv_imports_back_unchanged(service: RegisterService, tmp_path: Path) -> None:
    fill(service)
    path = export_to_path(service, ExportRequest(kind=ExportKind.CSV), tmp_path / "k.csv").path
    assert path is not None
    before = values_of(stored(service))
    counts = import_counts(service, path, excel=False)
    assert counts == {"new": 0, "update": 0, "same": len(AWKWARD), "error": 0}
    assert values_of(stored(service)) == before


def test_kundinformation_csv_recreates_the_register_exactly(
        service: RegisterService, registers: Registers, tmp_path: Path) -> None:
    fill(service)
    path = export_to_path(service, ExportRequest(kind=ExportKind.CSV), tmp_path / "k.csv").path
    assert path is not None
    empty = registers.make()
    counts = import_counts(empty, path, excel=False, commit=True)
    assert counts["new"] == len(AWKWARD) and counts["error"] == 0
    assert values_of(stored(empty)) == values_of(stored(service))  # numbers included
    assert import_counts(empty, path, excel=False)["same"] == len(AWKWARD)


@pytest.mark.parametrize("delimiter", [";", "\t", "|", "%"])
def test_kundinformation_csv_other_delimiters(service: RegisterService, delimiter: str) -> None:
    fill(service)
    data = export_bytes(service, ExportRequest(kind=ExportKind.CSV, delimiter=delimiter))
    rows = read_csv(data, bom=False, delimiter=delimiter)
    assert rows[1:] == expected_rows(stored(service))


# ---------------------------------------------------------------------- Kundlista för Excel


def test_excel_csv_has_bom_semicolon_and_guard(service: RegisterService) -> None:
    fill(service)
    data = export_bytes(service, ExportRequest(kind=ExportKind.EXCEL_CSV))
    rows = read_csv(data, bom=True, delimiter=";")
    assert rows[0] == [f.label_text for f in FIELDS]
    records = stored(service)
    raw = {r[0]: r for r in rows[1:]}
    assert raw["8"][FIELD_NAMES.index("name")] == "'=1+1"
    assert raw["8"][FIELD_NAMES.index("city")] == "'@home"
    assert raw["8"][FIELD_NAMES.index("reference")] == "'-5"
    assert raw["8"][FIELD_NAMES.index("phone")] == "'+46 70 123 45 67"
    assert raw["7"][FIELD_NAMES.index("reference")] == "''quoted"
    assert raw["A-12/b"][FIELD_NAMES.index("first_name")] == "''=SUM(A1)"
    assert raw["00123"][FIELD_NAMES.index("postal_code")] == "00123"
    # No cell starts with what Excel would run.
    assert not any(v[:1] in set("=+-@\t\r\n") for row in rows for v in row)
    assert unguard(rows[1:]) == expected_rows(records)


def test_excel_csv_imports_back_unchanged(service: RegisterService, tmp_path: Path,
                                          registers: Registers) -> None:
    fill(service)
    path = export_to_path(service, ExportRequest(kind=ExportKind.EXCEL_CSV), tmp_path / "e.csv").path
    assert path is not None
    assert import_counts(service, path, excel=True) == {"new": 0, "update": 0, "same": len(AWKWARD), "error": 0}
    empty = registers.make()
    assert import_counts(empty, path, excel=True, commit=True)["new"] == len(AWKWARD)
    assert values_of(stored(empty)) == values_of(stored(service))


def test_xlsx_reads_back_exactly_with_text_cells(service: RegisterService, tmp_path: Path) -> None:
    fill(service)
    result = export_to_path(service, ExportRequest(kind=ExportKind.EXCEL), tmp_path / "k.xlsx")
    assert result.path is not None and result.count == len(AWKWARD)
    rows = read_xlsx(result.path)
    assert rows[0] == [f.label_text for f in FIELDS]
    by_number = {r[0]: r for r in rows[1:]}
    assert by_number["00123"][FIELD_NAMES.index("postal_code")] == "00123"
    assert by_number["00123"][FIELD_NAMES.index("phone")] == "'+46 70 123 45 67"
    assert by_number["8"][FIELD_NAMES.index("name")] == "'=1+1"
    assert unguard(rows[1:]) == expected_rows(stored(service))
    workbook = openpyxl.load_workbook(result.path)
    sheet = workbook.active
    assert sheet is not None
    assert sheet.title == "Kunder"
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:O{len(AWKWARD) + 1}"
    assert sheet["A1"].font.b
    # Raw XML: the literal "_x0041_" is escaped as Excel escapes it; "&" and "<" as XML does.
    with zipfile.ZipFile(result.path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
        assert "_x005F_x0041_ och 50%" in xml
        assert "Kafé &amp; &lt;Bar&gt;" in xml
        assert archive.testzip() is None


def test_xlsx_read_only_mode_streams_every_row(service: RegisterService, tmp_path: Path) -> None:
    """openpyxl's read-only reader (what big imports use) sees every row too."""
    fill(service)
    path = export_to_path(service, ExportRequest(kind=ExportKind.EXCEL), tmp_path / "k.xlsx").path
    workbook = openpyxl.load_workbook(path, read_only=True)
    rows = [[("" if v is None else v) for v in row] for row in workbook.active.iter_rows(values_only=True)]  # type: ignore[union-attr]
    assert len(rows) == len(AWKWARD) + 1
    assert unguard([[_OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), v) for v in row] for row in rows[1:]]) \
        == expected_rows(stored(service))


def test_xlsx_continues_on_a_new_sheet_past_excels_row_limit(
        service: RegisterService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(service)
    monkeypatch.setattr(ex, "EXCEL_MAX_ROWS", 2)
    path = export_to_path(service, ExportRequest(kind=ExportKind.EXCEL), tmp_path / "k.xlsx").path
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Kunder", "Kunder 2", "Kunder 3"]
    assert [ws.max_row for ws in workbook.worksheets] == [3, 3, 2]
    assert unguard(read_xlsx(path)[1:]) == expected_rows(stored(service))


def test_xlsx_of_an_empty_register_is_a_valid_workbook(service: RegisterService, tmp_path: Path) -> None:
    path = export_to_path(service, ExportRequest(kind=ExportKind.EXCEL), tmp_path / "k.xlsx").path
    assert read_xlsx(path) == [[f.label_text for f in FIELDS]]


def test_xlsx_bytes_are_reproducible(service: RegisterService) -> None:
    fill(service)
    request = ExportRequest(kind=ExportKind.EXCEL)
    assert export_bytes(service, request) == export_bytes(service, request)


def test_xml_text_escapes_what_xml_and_excel_need() -> None:
    assert ex.xml_text("a & b <c> _x0041_ _x12_ \r \ufffe") == \
        "a &amp; b &lt;c&gt; _x005F_x0041_ _x12_ _x000D_ _xFFFE_"


# ---------------------------------------------------------------------- SQLite's fast path


@pytest.mark.parametrize("kind", [ExportKind.CSV, ExportKind.EXCEL_CSV])
@pytest.mark.parametrize("delimiter", [None, ";", "\t", "%"])
def test_fast_path_writes_the_same_bytes_as_the_csv_module(
        service: RegisterService, kind: ExportKind, delimiter: str | None) -> None:
    fill(service)
    request = ExportRequest(kind=kind, delimiter=delimiter)
    assert export_bytes(service, request, fast=True) == export_bytes(service, request, fast=False)


@pytest.mark.parametrize("kind", [ExportKind.EXCEL, ExportKind.PRINT])
def test_fast_path_writes_the_same_bytes_as_the_generic_path(service: RegisterService, kind: ExportKind) -> None:
    fill(service)
    request = ExportRequest(kind=kind, printed_at=PRINTED_AT)
    assert export_bytes(service, request, fast=True) == export_bytes(service, request, fast=False)


# Values that break writers, written straight into the database by SQL (past the register's
# validation): control characters, NUL (SQLite only: PostgreSQL's text cannot hold it), XML and
# Excel specials, whitespace at the ends, characters that are not one column wide.
RAW_VALUES = [
    "", " ", "  ", " lead", "trail ", "  both  ", "a  b", "\xa0nbsp\xa0", "tab\there", "\t",
    "line\nbreak", "\n", "end\n", "\nstart", "\tstart", "a\n\nb", "\r", "x\ry", "\r\n", "\x0b", "\x0c", "\x1f", "\x01", "\x7f",
    "del\x7f", "\x7fstart", "\x7f\x7f", "\x85", "c1\x85", "\u2028", "\ufffe", "\uffff", "a\uffffb",
    "_x0041_", "_X0041_", "_x", "x_", "&<>", "<tag>", "a&b", "'", "''", "'quoted", "=1+1", "+46 70 123 45 67",
    "-5", "@home", "=", "00123", '"quoted"', '"', "back\\slash", "\\", '\\"', "comma, here", "semi;colon",
    "åäö ÅÄÖ", "soft\xadhyphen", "\xad", "e\u0301", "\u0301", "漢字", "漢字漢字漢字漢字漢字漢字漢字漢字漢字",
    "😀👍🇸🇪", "€ – ’", "ł ś č ř", "\u02ff\u0300", "%s %d %%", "null", ",", '","', "[1,", "]", "\x03\x04",
    "Företag", "person",
]
NUL_VALUES = ["a\x00b", "\x00", "\x00start", "end\x00", "a\x00\nb"]
# E-mail addresses about as wide as the printed list's column (29 at 132 columns, 12 at 80).
LONG_WORDS = ["k" * n + "@ex.se" for n in (6, 7, 17, 22, 23, 24, 46, 52, 53, 54, 80, 81, 82, 200)]
RAW_COLUMNS = ["number", "kind", "name", "first_name", "last_name", "org_number", "vat_number", "email",
               "phone", "address", "postal_code", "city", "country", "reference", "notes"]
# Lengths PostgreSQL enforces (SQLite does not).
RAW_MAX = {"number": 32, "kind": 16, "org_number": 20, "vat_number": 20, "phone": 40, "postal_code": 12,
           "country": 2}


def write_raw(service: RegisterService, number: str, values: dict[str, str]) -> None:
    """``values`` written into a customer's row by SQL, as another program could."""
    from kundreg_tui.domain.models import customer_table

    with service.engine.begin() as conn:
        conn.execute(sa.update(customer_table).where(customer_table.c.number == number).values(**values))


def fill_raw(service: RegisterService) -> None:
    """Customers with one awkward value each (so that a fast path takes the rest of the row as
    it comes), in a one-line column and a wrapping one; a few with many at once; e-mail
    addresses too long for the printed list's column, alone or with other values that _wrap
    changes (spaces)."""
    fill(service)
    values = RAW_VALUES + (NUL_VALUES if service.engine.dialect.name == "sqlite" else [])
    rows: list[dict[str, str]] = []
    numbers = {r.number for r in stored(service)}
    for i, value in enumerate(values):
        column = RAW_COLUMNS[i % len(RAW_COLUMNS)]
        if column == "number" and (value in numbers or len(value) > RAW_MAX["number"]):
            column = "name"  # Kundnummer is unique
        numbers.add(value)
        rows.append({column: value[: RAW_MAX.get(column, 300)]})
        rows.append({"address": value})
    rows += [{"city": "\x7f"}, {"name": "\x7f", "address": "\x7f"}, {"phone": "\x7f\x7f"}]  # as the mark
    for i in range(0, len(values), 4):
        rows.append({c: values[(i + 7 * j) % len(values)][: RAW_MAX.get(c, 300)]
                     for j, c in enumerate(RAW_COLUMNS[1:])})
    for word in LONG_WORDS:
        rows.append({"email": word})
        rows.append({"email": word, "name": "Två  mellanslag"})
        rows.append({"email": word, "city": " Umeå"})
        rows.append({"email": word, "phone": "070 "})
        rows.append({"email": word[:9] + " " + word[9:]})
        rows.append({"email": word, "reference": "\x7fX", "notes": "x\x7f"})
        rows.append({"email": word, "number": f" N{len(word)}"})
    for i, row in enumerate(rows):
        number = f"R{i:03d}"
        service.create({"number": number, "name": f"Kund {i}", "city": "Umeå", "address": "Gatan 1",
                        "email": f"k{i}@exempel.se", "phone": "070-123 45 67"})
        write_raw(service, number, row)


@pytest.fixture
def raw_service(service: RegisterService, monkeypatch: pytest.MonkeyPatch) -> RegisterService:
    monkeypatch.setattr(ex, "CHUNK_ROWS", 7)  # chunks that mix plain and awkward rows
    fill_raw(service)
    return service


@pytest.mark.parametrize("sort", [Sort(), Sort("name", True), Sort("email")])
def test_fast_xlsx_writes_the_same_bytes_for_awkward_values(raw_service: RegisterService, sort: Sort) -> None:
    request = ExportRequest(kind=ExportKind.EXCEL, sort=sort)
    assert export_bytes(raw_service, request, fast=True) == export_bytes(raw_service, request, fast=False)


def test_fast_xlsx_takes_everyday_values_in_bulk(service: RegisterService, monkeypatch: pytest.MonkeyPatch) -> None:
    """Multi-line addresses and notes, tabs, & < >, values Excel would run, Kundtyp: no row of
    these is left to the per-row writer."""
    for i in range(12):
        service.create({"number": f"{i:05d}", "kind": ("company", "person")[i % 2], "name": f"Kafé & <Bar> {i}",
                        "first_name": "Åsa", "last_name": "Öberg", "phone": "+46 70 123 45 67",
                        "address": "c/o Berg\nStorgatan 1" if i % 3 else "", "notes": "rad ett\n\trad två",
                        "city": "=Umeå", "reference": "-5", "email": f"k{i}@exempel.se"})

    def per_row(*_args: Any) -> bytes:
        raise AssertionError("a row was left to the per-row writer")

    request = ExportRequest(kind=ExportKind.EXCEL)
    generic = export_bytes(service, request, fast=False)
    monkeypatch.setattr(ex._XlsxWriter, "_json_row", per_row)
    assert export_bytes(service, request, fast=True) == generic


def test_fast_xlsx_awkward_values_read_back_exactly(raw_service: RegisterService, tmp_path: Path) -> None:
    """Every value, spaces at the ends and control characters included, as stored."""
    path = export_to_path(raw_service, ExportRequest(kind=ExportKind.EXCEL), tmp_path / "k.xlsx").path
    assert path is not None
    expected = values_of(stored_raw(raw_service))
    at = FIELD_NAMES.index("kind")
    for row in expected:
        row[at] = KIND_WORD.get(row[at], row[at])  # another kind than the two, as it is
    assert unguard(read_xlsx(path)[1:]) == expected
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    # xml:space="preserve" exactly where a value starts or ends with whitespace.
    assert '<t xml:space="preserve"> lead</t>' in xml and '<t xml:space="preserve">trail </t>' in xml
    assert "<t>a  b</t>" in xml and "<t>\xa0nbsp\xa0</t>" in xml


def stored_raw(service: RegisterService) -> list[CustomerRecord]:
    """The register as stored, values the validation would refuse included."""
    from kundreg_tui.domain.models import customer_table

    names = ("id", *FIELD_NAMES)
    with service.engine.connect() as conn:
        rows = conn.execute(sa.select(*(customer_table.c[n] for n in names)).where(
            customer_table.c.deleted_at.is_(None)).order_by(customer_table.c.number_key, customer_table.c.id)).all()
    return [CustomerRecord(**dict(zip(names, r, strict=True))) for r in rows]


def test_fast_xlsx_new_sheets_at_the_row_limit(raw_service: RegisterService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "EXCEL_MAX_ROWS", 10)
    request = ExportRequest(kind=ExportKind.EXCEL)
    data = export_bytes(raw_service, request, fast=True)
    assert data == export_bytes(raw_service, request, fast=False)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "xl/worksheets/sheet3.xml" in archive.namelist()


@pytest.mark.parametrize(("page_width", "page_lines"), [(132, 60), (80, 12), (40, 6), (200, 7)])
def test_fast_printed_list_writes_the_same_bytes_for_awkward_values(
        raw_service: RegisterService, page_width: int, page_lines: int) -> None:
    request = ExportRequest(kind=ExportKind.PRINT, page_width=page_width, page_lines=page_lines,
                            printed_at=PRINTED_AT)
    assert export_bytes(raw_service, request, fast=True) == export_bytes(raw_service, request, fast=False)


_RAW_ALPHABET = st.sampled_from(
    [*"aZ09 ,;\"'=+-@&<>%_xX/|[]", "Å", "ä", "é", "\xa0", "\xad", "\u0301", "€", "漢", "😀", "\t", "\n", "\r",
     "\x00", "\x01", "\x03", "\x04", "\x1f", "\x7f", "\x85", "\u2028", "\ufffe", "\uffff", "_x0041_", "  ",
     "k" * 13, "x" * 30])
_RAW_VALUE = st.lists(_RAW_ALPHABET, max_size=8).map("".join)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(st.fixed_dictionaries({c: _RAW_VALUE for c in ("name", "email", "phone", "address", "city", "kind")}),
                     min_size=1, max_size=6),
       page_width=st.sampled_from([40, 80, 132]))
def test_property_fast_paths_write_the_same_bytes(sqlite_engine: sa.Engine, rows: list[dict[str, str]],
                                                  page_width: int) -> None:
    """Any values at all, written by SQL: the fast paths (SQLite) write what the generic ones do."""
    service = RegisterService(sqlite_engine, actor="test")
    if not service.count(""):
        for i in range(6):
            service.create({"number": f"P{i}", "name": "Kund"})
    for i, values in enumerate(rows):
        write_raw(service, f"P{i}", values)
    with sqlite_engine.begin() as conn:  # only this example's customers are in the register
        conn.exec_driver_sql("UPDATE customer SET deleted_at = NULL")
        conn.exec_driver_sql("UPDATE customer SET deleted_at = '2020-01-01 00:00:00' "
                             f"WHERE CAST(substr(number, 2) AS INTEGER) >= {len(rows)}")
    for kind in (ExportKind.EXCEL, ExportKind.PRINT):
        request = ExportRequest(kind=kind, page_width=page_width, page_lines=9, printed_at=PRINTED_AT)
        assert export_bytes(service, request, fast=True) == export_bytes(service, request, fast=False), kind


# ---------------------------------------------------------------------- scope and order


def test_scope_shown_marked_and_all(service: RegisterService) -> None:
    records = fill(service)
    by_number = {r.number: r for r in records}
    kind = ExportKind.CSV

    def numbers(request: ExportRequest) -> list[str]:
        return [row[0] for row in read_csv(export_bytes(service, request), bom=False, delimiter=",")[1:]]

    assert numbers(ExportRequest(kind=kind)) == ["7", "8", "9", "00123", "A-12/b"]
    assert numbers(ExportRequest(kind=kind, scope=Scope.SHOWN, query="oberg")) == ["7"]
    assert numbers(ExportRequest(kind=kind, scope=Scope.SHOWN, query="")) == numbers(ExportRequest(kind=kind))
    # The query only counts for "shown"; "all" ignores it.
    assert len(numbers(ExportRequest(kind=kind, scope=Scope.ALL, query="oberg"))) == len(AWKWARD)
    marked = (by_number["A-12/b"].id, by_number["7"].id)
    assert numbers(ExportRequest(kind=kind, scope=Scope.MARKED, ids=marked)) == ["7", "A-12/b"]
    assert numbers(ExportRequest(kind=kind, scope=Scope.MARKED, ids=())) == []


@pytest.mark.parametrize("in_limit", [1000, 1])
def test_marked_leaves_out_deleted_customers_and_follows_the_sort(
        service: RegisterService, monkeypatch: pytest.MonkeyPatch, in_limit: int) -> None:
    monkeypatch.setattr(ex, "IN_LIMIT", in_limit)  # 1: through the temporary id table
    records = fill(service)
    ids = tuple(r.id for r in records)
    service.delete([records[2].id])
    request = ExportRequest(kind=ExportKind.CSV, scope=Scope.MARKED, ids=(*ids, 999_999),
                            sort=Sort("name", descending=True))
    rows = read_csv(export_bytes(service, request), bom=False, delimiter=",")[1:]
    expected = service.page("", Sort("name", descending=True), 0, 100)
    assert [r[0] for r in rows] == [r.number for r in expected]
    assert len(rows) == len(AWKWARD) - 1
    assert ex.count_customers(service, request) == len(AWKWARD) - 1
    # twice in a row on the same pooled connection: the temporary table is cleaned up
    assert len(read_csv(export_bytes(service, request), bom=False, delimiter=",")) == len(AWKWARD)


@pytest.mark.parametrize("column", ["number", "name", "city", "email", "phone"])
@pytest.mark.parametrize("descending", [False, True])
def test_order_is_the_registers(service: RegisterService, column: str, descending: bool) -> None:
    fill(service)
    sort = Sort(column, descending)
    rows = read_csv(export_bytes(service, ExportRequest(kind=ExportKind.EXCEL_CSV, sort=sort)),
                    bom=True, delimiter=";")[1:]
    assert [r[0] for r in rows] == [r.number for r in service.page("", sort, 0, 100)]


def test_count_customers(service: RegisterService) -> None:
    fill(service)
    assert ex.count_customers(service, ExportRequest()) == len(AWKWARD)
    assert ex.count_customers(service, ExportRequest(scope=Scope.SHOWN, query="stor@exempel")) == 1


# ---------------------------------------------------------------------- Utskrift


PRINTED_AT = datetime(2026, 5, 9, 14, 30)


def test_printed_list_is_aligned_and_paged(service: RegisterService) -> None:
    fill(service)
    for i in range(40):  # emoji and ä take one place each in the text but two and one on paper
        service.create({"name": f"Kund {i:02d} {'😀👍' if i % 3 else 'ä'} AB", "city": "Umeå", "address": f"Gatan {i}",
                        "postal_code": "90325", "phone": "090-12 34 56", "email": f"k{i}@exempel.se"})
    request = ExportRequest(kind=ExportKind.PRINT, page_width=100, page_lines=20, printed_at=PRINTED_AT)
    text = export_bytes(service, request).decode("utf-8")
    pages = text.split("\f")
    assert len(pages) > 3
    for number, page in enumerate(pages, 1):
        lines = page.rstrip("\n").split("\n")
        assert len(lines) <= 20
        assert lines[0].startswith("Kundlista") and lines[0].endswith(f"Sida {number}")
        assert lines[1] == "2026-05-09 14:30 · 45 kunder"
        assert lines[3].split() == ["Kundnummer", "Kundnamn", "Adress", "Postnr", "Ort", "Telefon", "E-post"]
        assert all(ex.text_width(line) <= 100 for line in lines)
    body = text
    # The address keeps its two lines, each wrapped into the column.
    assert re.search(r"^00123 +Komma, Citat +c/o Berg +00123 +Berlin", body, re.M)
    assert re.search(r"^ +\"AB\" +Storgatan 1, 2$", body, re.M)
    # Columns line up: the Ort column starts at the same place on every row with a city.
    header = pages[0].split("\n")[3]
    city_at = header.index("Ort")
    for line in body.split("\n"):
        if " Umeå " in line:
            assert ex.text_width(line[: line.index("Umeå")]) == city_at


def test_printed_list_never_splits_a_customer_across_pages(service: RegisterService) -> None:
    for i in range(30):
        service.create({"name": f"Kund {i}", "address": f"c/o Någon\nGatan {i}\nLåda {i}"})
    request = ExportRequest(kind=ExportKind.PRINT, page_width=80, page_lines=12, printed_at=PRINTED_AT)
    text = export_bytes(service, request).decode()
    for page in text.split("\f"):
        body = page.split("\n")[5:]
        starts = [i for i, line in enumerate(body) if line[:1].isdigit()]
        for start in starts:
            assert body[start + 2].strip().startswith("Låda"), page


def test_printed_list_of_nothing(service: RegisterService) -> None:
    request = ExportRequest(kind=ExportKind.PRINT, printed_at=PRINTED_AT)
    text = export_bytes(service, request).decode()
    assert "Inga kunder." in text and "0 kunder" in text


def test_text_width() -> None:
    assert ex.text_width("abc") == 3
    assert ex.text_width("åäö") == 3
    assert ex.text_width("😀") == 2
    assert ex.text_width("e\u0301") == 1


# Text for the printed list's rules: spaces alone and in pairs, line breaks, tabs, characters of
# zero, one and two columns (the soft hyphen and U+0300 at the edge of the one-column range).
_PRINT_TEXT = st.lists(st.sampled_from(
    [*"ab Z0", "  ", "\t", "\n", "å", "\xa0", "\xad", "\u02ff", "\u0300", "e\u0301", "漢", "😀", "\x00", "\r",
     "x" * 9, "ååå", "ord"]), max_size=14).map("".join)


def _reference_wrap(text: str, width: int) -> list[str]:
    """_wrap as it was before its shortcuts."""
    out: list[str] = []
    for raw in text.replace("\t", " ").split("\n"):
        line = ""
        for word in raw.split(" "):
            if not word:
                continue
            candidate = f"{line} {word}" if line else word
            if _reference_width(candidate) <= width:
                line = candidate
                continue
            if line:
                out.append(line)
            line = word
            while _reference_width(line) > width:
                head, line = ex._cut(line, width)
                out.append(head)
        if line or not out:
            out.append(line)
    while len(out) > 1 and not out[-1]:
        out.pop()
    return out or [""]


def _reference_width(text: str) -> int:
    """text_width as it was before its shortcut was made faster."""
    if text.isascii() or (max(text) < "\u0300" and "\u00ad" not in text):
        return len(text)
    return sum(map(ex._char_width, text))


@settings(max_examples=300, deadline=None)
@given(text=_PRINT_TEXT, width=st.integers(4, 30))
def test_wrap_and_text_width_shortcuts_change_nothing(text: str, width: int) -> None:
    assert ex.text_width(text) == _reference_width(text)
    assert ex._wrap(text, width) == _reference_wrap(text, width)


# ---------------------------------------------------------------------- files


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder of its own (the SQLite register lives in ``tmp_path``)."""
    path = tmp_path / "ut"
    path.mkdir()
    return path


def test_new_file_is_private_and_an_existing_one_keeps_its_mode(service: RegisterService, folder: Path) -> None:
    tmp_path = folder
    fill(service)
    path = tmp_path / "k.csv"
    result = export_to_path(service, ExportRequest(), path)
    assert result.path == path and result.count == len(AWKWARD) and result.bytes_written == path.stat().st_size
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ExportError, match="finns redan"):
        export_to_path(service, ExportRequest(), path)
    os.chmod(path, 0o644)
    export_to_path(service, ExportRequest(kind=ExportKind.PRINT), path, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text(encoding="utf-8").startswith("Kundlista")
    assert [p.name for p in tmp_path.iterdir()] == ["k.csv"]


def test_cancelled_export_leaves_no_file_and_the_old_one_untouched(
        service: RegisterService, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path = folder
    monkeypatch.setattr(ex, "CHUNK_ROWS", 2)
    fill(service)
    path = tmp_path / "k.xlsx"
    path.write_bytes(b"old")
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))

    with pytest.raises(ExportCancelled):
        export_to_path(service, ExportRequest(kind=ExportKind.EXCEL), path, overwrite=True,
                       progress=progress, cancelled=lambda: len(seen) >= 1)
    assert seen == [(2, len(AWKWARD))]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["k.xlsx"]


def test_failed_export_leaves_no_file(service: RegisterService, folder: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path = folder
    fill(service)

    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ex, "_write_print", boom)
    with pytest.raises(ExportError, match="No space left"):
        export_to_path(service, ExportRequest(kind=ExportKind.PRINT), tmp_path / "k.txt")
    assert list(tmp_path.iterdir()) == []


def test_progress_reaches_the_total(service: RegisterService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "CHUNK_ROWS", 2)
    fill(service)
    for kind in ExportKind:
        seen: list[tuple[int, int]] = []
        export_to_stream(service, ExportRequest(kind=kind), io.BytesIO(),
                         progress=lambda d, t, seen=seen: seen.append((d, t)))
        assert seen == [(2, 5), (4, 5), (5, 5)], kind


@pytest.mark.parametrize(("path", "message"), [
    ("", "Ange en fil"), ("{tmp}", "är en mapp"), ("{tmp}/nej/k.csv", "finns inte"),
])
def test_check_target(tmp_path: Path, path: str, message: str) -> None:
    assert message in (ex.check_target(path.format(tmp=tmp_path)) or "")
    assert ex.check_target(tmp_path / "k.csv") is None


def test_symlinked_target_is_written_through_the_link(service: RegisterService, tmp_path: Path) -> None:
    fill(service)
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    export_to_path(service, ExportRequest(), link, overwrite=True)
    assert link.is_symlink() and real.read_text(encoding="utf-8").startswith('"Kundnummer"')


@pytest.mark.parametrize(("typed", "delimiter"), [(",", ","), ("tab", "\t"), ("\\t", "\t"), ("semikolon", ";")])
def test_parse_delimiter(typed: str, delimiter: str) -> None:
    assert ex.parse_delimiter(typed) == delimiter


@pytest.mark.parametrize("typed", ['"', "ab", "\n", ""])
def test_parse_delimiter_refuses(typed: str) -> None:
    with pytest.raises(ExportError):
        ex.parse_delimiter(typed)


def test_default_file_names() -> None:
    day = datetime(2026, 5, 9)
    assert ex.default_file_name(ExportKind.CSV, day) == "kundinformation-2026-05-09.csv"
    assert ex.default_file_name(ExportKind.EXCEL, day) == "kundlista-2026-05-09.xlsx"
    assert ex.default_file_name(ExportKind.PRINT, day) == "kundlista-2026-05-09.txt"


# ---------------------------------------------------------------------- property tests

# Text that breaks writers: delimiters, quotes, the guard characters, line breaks, XML specials,
# Excel's own escape, a noncharacter, Swedish letters, emoji, printf's %.
_SINGLE_LINE = list("aZ0 9,;\"'=+-@&<>%_xXÅäöé€😀\u00a0\u2028\ufffe/|") + ["_x0041_", "''", "=1+1", "+46 70"]
_LINE = st.lists(st.sampled_from(_SINGLE_LINE), max_size=12).map("".join)
# Multi-line fields (address, notes) may also hold tabs and line breaks.
_LINES = st.lists(st.sampled_from([*_SINGLE_LINE, "\t", "\n", "\r\n", "\r"]), max_size=12).map("".join)
_NUMBER = st.lists(st.sampled_from(list("0123456789-+/_Åa")), min_size=1, max_size=6).map("".join)
_CUSTOMER = st.fixed_dictionaries({
    "number": _NUMBER, "kind": st.sampled_from(["company", "person"]),
    "name": _LINE.filter(lambda t: t.strip() != ""), "first_name": _LINE, "last_name": _LINE,
    "phone": _LINE, "address": _LINES, "city": _LINE, "reference": _LINE, "notes": _LINES,
    "country": st.sampled_from(["NO", "DE"]), "postal_code": _LINE,
}) | st.fixed_dictionaries({
    "number": _NUMBER, "name": _LINE.filter(lambda t: t.strip() != ""), "address": _LINES,
    "postal_code": st.from_regex(r"\A\d{3} ?\d{2}\Z"), "city": _LINE, "country": st.just("SE"),
})
_example = itertools.count()


def _create_all(service: RegisterService, customers: list[dict[str, str]], tag: str) -> list[CustomerRecord]:
    out = []
    for i, values in enumerate(customers):
        values = {**values, "number": f"{values['number']}{tag}n{i}"}
        if i % 2:
            values["email"] = f"K{tag}.{i}@Exempel.se"
        try:
            out.append(service.create(values))
        except ValidationFailed:
            continue
    return out


_PROPERTY = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_PROPERTY
@given(customers=st.lists(_CUSTOMER, min_size=1, max_size=6))
def test_property_every_kind_reads_back_and_imports_unchanged(
        service: RegisterService, tmp_path: Path, customers: list[dict[str, str]]) -> None:
    """import(export(register)) changes nothing, for each file kind."""
    tag = f"t{next(_example)}"
    records = _create_all(service, customers, tag)
    if not records:
        return
    ids = tuple(r.id for r in records)
    expected = expected_rows(service.get_many(ids))
    expected.sort(key=lambda row: [r.number for r in service.page("", Sort(), 0, 10_000)].index(row[0]))
    request = ExportRequest(scope=Scope.MARKED, ids=ids)
    folder = tmp_path / tag
    folder.mkdir()
    for kind in ExportKind:
        kind_request = ExportRequest(kind=kind, scope=Scope.MARKED, ids=ids)
        path = export_to_path(service, kind_request, folder / f"k-{kind.value}{kind.extension}").path
        assert path is not None
        data = path.read_bytes()
        if kind is ExportKind.CSV:
            assert read_csv(data, bom=False, delimiter=",")[1:] == expected
            assert import_counts(service, path, excel=False) == \
                {"new": 0, "update": 0, "same": len(records), "error": 0}
            assert data == export_bytes(service, request, fast=False)
        elif kind is ExportKind.EXCEL_CSV:
            assert unguard(read_csv(data, bom=True, delimiter=";")[1:]) == expected
            assert import_counts(service, path, excel=True) == \
                {"new": 0, "update": 0, "same": len(records), "error": 0}
            assert data == export_bytes(service, kind_request, fast=False)
        elif kind is ExportKind.EXCEL:
            assert unguard(read_xlsx(path)[1:]) == expected
        else:
            text = data.decode("utf-8")
            assert all(r.number in text.replace("\n", "") or len(r.number) > 10 for r in service.get_many(ids))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(customers=st.lists(_CUSTOMER, min_size=1, max_size=5), excel=st.booleans())
def test_property_import_into_an_empty_register_recreates_it(
        registers: Registers, tmp_path: Path, customers: list[dict[str, str]], excel: bool) -> None:
    try:
        source = registers.make()
        tag = f"r{next(_example)}"
        records = _create_all(source, customers, tag)
        if not records:
            return
        kind = ExportKind.EXCEL_CSV if excel else ExportKind.CSV
        path = export_to_path(source, ExportRequest(kind=kind), tmp_path / f"{tag}.csv").path
        assert path is not None
        target = registers.make()
        counts = import_counts(target, path, excel=excel, commit=True)
        assert counts["new"] == len(records) and counts["error"] == 0
        assert values_of(stored(target)) == values_of(stored(source))
    finally:
        registers.close()


# ---------------------------------------------------------------------- kundreg export


def run_cli(db_url: str, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--db", db_url, "export", *args], input=input, catch_exceptions=False)


def test_cli_writes_kundinformation_to_standard_out(service: RegisterService, db_url: str) -> None:
    fill(service)
    result = run_cli(db_url)
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == export_bytes(service, ExportRequest())


def test_cli_formats_search_sort_and_delimiter(service: RegisterService, db_url: str, tmp_path: Path) -> None:
    fill(service)
    result = run_cli(db_url, "--format", "excel-csv", "--search", "oberg")
    assert result.exit_code == 0
    assert [r[0] for r in read_csv(result.stdout_bytes, bom=True, delimiter=";")[1:]] == ["7"]
    result = run_cli(db_url, "--delimiter", "tab", "--sort", "name", "--descending")
    rows = read_csv(result.stdout_bytes, bom=False, delimiter="\t")[1:]
    assert [r[0] for r in rows] == [r.number for r in service.page("", Sort("name", True), 0, 100)]
    out = tmp_path / "k.xlsx"
    result = run_cli(db_url, "--format", "xlsx", "--output", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = __import__("json").loads(result.stdout)
    assert report["count"] == len(AWKWARD) and report["output"] == str(out) and report["format"] == "xlsx"
    assert unguard(read_xlsx(out)[1:]) == expected_rows(stored(service))
    result = run_cli(db_url, "--format", "text", "--page-width", "80", "--page-lines", "20")
    assert result.exit_code == 0 and result.stdout.startswith("Kundlista")
    assert all(ex.text_width(line) <= 80 for line in result.stdout.split("\n"))


def test_cli_same_engine_as_the_screen(service: RegisterService, db_url: str, tmp_path: Path) -> None:
    fill(service)
    out = tmp_path / "k.csv"
    assert run_cli(db_url, "-o", str(out)).exit_code == 0
    assert out.read_bytes() == export_bytes(service, ExportRequest())
    assert import_counts(service, out, excel=False)["same"] == len(AWKWARD)


def test_cli_never_overwrites_without_being_asked(service: RegisterService, db_url: str, tmp_path: Path) -> None:
    fill(service)
    out = tmp_path / "k.csv"
    out.write_text("old")
    result = run_cli(db_url, "-o", str(out))
    assert result.exit_code == 1 and "finns redan" in result.output and "--force" in result.output
    assert out.read_text() == "old"
    result = run_cli(db_url, "-o", str(out), "--force")
    assert result.exit_code == 0 and out.read_bytes() == export_bytes(service, ExportRequest())


def test_cli_refuses_bad_options(service: RegisterService, db_url: str, tmp_path: Path) -> None:
    result = run_cli(db_url, "--format", "xlsx", "--delimiter", ";")
    assert result.exit_code == 2 and "--delimiter" in result.output
    result = run_cli(db_url, "--delimiter", '"')
    assert result.exit_code == 2
    result = run_cli(db_url, "-o", str(tmp_path / "nej" / "k.csv"))
    assert result.exit_code == 1 and "finns inte" in result.output


def test_cli_terminal_output_shows_control_characters() -> None:
    from kundreg_tui.cli_export import _TerminalSafe

    raw = io.BytesIO()
    safe = _TerminalSafe(raw)
    text = "a\x1b[31mb\r\nÅ😀\f".encode()
    for i in range(len(text)):  # byte by byte: split UTF-8 sequences are put together again
        safe.write(text[i : i + 1])
    safe.flush()
    assert raw.getvalue().decode() == "a␛[31mb\nÅ😀\n"



@pytest.mark.parametrize("kind", [ExportKind.CSV, ExportKind.EXCEL_CSV])
@pytest.mark.parametrize("sort", [Sort(), Sort("name", True)])
def test_fast_csv_writes_the_same_bytes_for_awkward_values(raw_service: RegisterService, kind: ExportKind,
                                                          sort: Sort) -> None:
    """Every awkward value but NUL (``test_fast_csv_and_a_stored_nul``)."""
    if raw_service.engine.dialect.name == "sqlite":
        with raw_service.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM customer WHERE instr(" + " || ".join(RAW_COLUMNS) + ", char(0))")
    for delimiter in (None, ";", "\t", "|"):
        wanted = ExportRequest(kind=kind, sort=sort, delimiter=delimiter)
        assert export_bytes(raw_service, wanted, fast=True) == export_bytes(raw_service, wanted, fast=False)


@pytest.mark.xfail(strict=True, reason="SQLite's printf ends a value at NUL")
@pytest.mark.parametrize("kind", [ExportKind.CSV, ExportKind.EXCEL_CSV])
def test_fast_csv_and_a_stored_nul(sqlite_engine: sa.Engine, kind: ExportKind) -> None:
    """A NUL that another program stored in SQLite ends the value in the fast CSV (``printf``'s
    ``%w`` stops at it): a known limit, kept visible here. Finding such rows per line cost
    2.5-3.5 s at 1M (15 ``length(CAST(… AS BLOB))`` and a byte count of each chunk), half the
    export's time again, for values kundreg itself never stores."""
    service = RegisterService(sqlite_engine, actor="test")
    service.create({"number": "1", "name": "Kund", "email": "k@exempel.se"})
    write_raw(service, "1", {"notes": "före\x00efter"})
    wanted = ExportRequest(kind=kind)
    assert export_bytes(service, wanted, fast=True) == export_bytes(service, wanted, fast=False)
