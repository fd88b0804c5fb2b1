"""The import engine on both databases: the seeds' paste examples, the matching rules, empty cells,
values that only differ in form, undo, a register that changed since the preview, and the
column-wise validation agreeing with ``validate_customer`` (hypothesis)."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from stdnum import luhn

from kundreg_tui.domain.csvread import CsvReadError, ReadSettings, open_csv, open_text
from kundreg_tui.domain.database import read_conn
from kundreg_tui.domain.fastpath import KeyCache, validate_rows
from kundreg_tui.domain.fastpath import given as cell_given
from kundreg_tui.domain.fields import FIELD_NAMES
from kundreg_tui.domain.importer import (
    CLASSES,
    ERROR,
    NEW,
    SAME,
    UPDATE,
    ImportError_,
    ImportOptions,
    ImportPlan,
    Receipt,
    StalePlan,
    undo_import,
)
from kundreg_tui.domain.keys import derived_columns
from kundreg_tui.domain.mapping import parse_format_names, suggest_mapping
from kundreg_tui.domain.models import batch_table, change_table, customer_table, meta_table
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.domain.validation import validate_customer

pytestmark = pytest.mark.pg

NILS_STINA = ("epost,förnamn,eftenamn,telefonnummer\n"
              "nils@epost.com,Nils,Karlsson,070123456\n"
              "stina@epost.com,Stina,Olsson,0701122333\n")
HEADERS = ("Kundnummer;Kundtyp;Kundnamn;Förnamn;Efternamn;Organisationsnummer;Momsregistreringsnummer;E-post;"
           "Telefon;Adress;Postnummer;Ort;Land;Er referens;Anteckningar")


# ------------------------------------------------------------------------------ helpers
def build_paste(engine: sa.Engine, text: str, **options: Any) -> ImportPlan:
    source = open_text(text)
    fields, problems = parse_format_names(source.header)
    assert not problems, problems
    plan = ImportPlan(engine, ImportOptions(source="paste", label="klistra in", **options), actor="test")
    try:
        plan.build(source.iter_records(), fields)
        assert plan.counts == plan._count_classes()  # counted as matched, or anew after late errors
    except BaseException:
        plan.close()
        raise
    return plan


def build_csv(engine: sa.Engine, data: str | bytes, mapping: list[str | None] | None = None,
              read: ReadSettings | None = None, **options: Any) -> ImportPlan:
    source = open_csv(data.encode("utf-8") if isinstance(data, str) else data, read)
    fields = mapping if mapping is not None else [s.field for s in suggest_mapping(source.header)]
    plan = ImportPlan(engine, ImportOptions(source="import", label="test.csv", **options), actor="test")
    try:
        plan.build(source.iter_records(), fields)
        assert plan.counts == plan._count_classes()  # counted as matched, or anew after late errors
    except BaseException:
        plan.close()
        raise
    return plan


def commit_paste(engine: sa.Engine, text: str, **options: Any) -> tuple[dict[str, int], Receipt]:
    with build_paste(engine, text, **options) as plan:
        counts = dict(plan.counts)
        return counts, plan.commit()


def classes(plan: ImportPlan) -> list[tuple[int, str, str, str]]:
    return [(r.line, r.cls, r.number, r.reason) for r in plan.rows()]


def customers(engine: sa.Engine, live_only: bool = True) -> dict[str, dict[str, Any]]:
    """Every stored column of every customer, by number."""
    with read_conn(engine) as conn:
        stmt = sa.select(customer_table)
        if live_only:
            stmt = stmt.where(customer_table.c.deleted_at.is_(None))
        return {r.number: dict(r._mapping) for r in conn.execute(stmt)}


def count_rows(engine: sa.Engine, table: sa.Table) -> int:
    with read_conn(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def org(body: str) -> str:
    """A valid Swedish organisation number from 9 digits."""
    digits = body + luhn.calc_check_digit(body)
    return f"{digits[:6]}-{digits[6:]}"


def pnr(date: str, serial: str) -> str:
    """A valid personal number YYYYMMDD-NNNC."""
    body = date[2:] + serial
    return f"{date}-{serial}{luhn.calc_check_digit(body)}"


@pytest.fixture
def svc(engine: sa.Engine) -> RegisterService:
    return RegisterService(engine, actor="test")


# ------------------------------------------------------------------------------ the seeds
class TestSeeds:
    def test_nils_and_stina_are_new(self, engine: sa.Engine) -> None:
        counts, receipt = commit_paste(engine, NILS_STINA)
        assert counts == {NEW: 2, UPDATE: 0, SAME: 0, ERROR: 0}
        assert receipt.created == [(2, "1001"), (3, "1002")]
        stored = customers(engine)
        nils, stina = stored["1001"], stored["1002"]
        assert (nils["name"], nils["first_name"], nils["last_name"]) == ("Nils Karlsson", "Nils", "Karlsson")
        assert nils["kind"] == "person" and nils["country"] == "SE"
        assert nils["phone"] == "070123456"  # kept as typed: an odd number is only a warning
        assert nils["email"] == "nils@epost.com"
        assert stina["name"] == "Stina Olsson" and stina["phone"] == "0701122333"

    def test_preview_before_commit(self, engine: sa.Engine) -> None:
        with build_paste(engine, NILS_STINA) as plan:
            assert plan.fields == ["email", "first_name", "last_name", "phone"]
            rows = plan.preview()
            assert [(r["line"], r["cls"], r["f_number"], r["f_email"]) for r in rows] == [
                (2, NEW, "1001", "nils@epost.com"), (3, NEW, "1002", "stina@epost.com")]
            assert rows[0]["f_phone"] == "070123456" and rows[0]["o_name"] is None
            assert plan.count() == 2 and plan.count(NEW) == 2 and plan.count(ERROR) == 0
            assert plan.preview(ERROR) == []
            assert count_rows(engine, customer_table) == 0  # a preview writes nothing

    def test_reimport_is_unchanged(self, engine: sa.Engine) -> None:
        commit_paste(engine, NILS_STINA)
        with build_paste(engine, NILS_STINA) as plan:
            assert plan.counts == {NEW: 0, UPDATE: 0, SAME: 2, ERROR: 0}
            assert [(r.line, r.cls, r.number) for r in plan.rows()] == [(2, SAME, "1001"), (3, SAME, "1002")]
            assert all(all(r[f"f_{f}"] == r[f"o_{f}"] for f in plan.fields) for r in plan.preview())

    def test_format_line_email_names_address_city(self, engine: sa.Engine) -> None:
        text = "epost,förnamn,efternamn,adress,stad\nanna@exempel.se,Anna,Berg,Storgatan 1,Umeå\n"
        counts, receipt = commit_paste(engine, text)
        assert counts[NEW] == 1
        anna = customers(engine)[receipt.created[0][1]]
        assert (anna["name"], anna["address"], anna["city"]) == ("Anna Berg", "Storgatan 1", "Umeå")
        with build_paste(engine, text) as plan:
            assert plan.counts[SAME] == 1
        moved = "epost,förnamn,efternamn,adress,stad\nANNA@exempel.se ,Anna,Berg,Kungsgatan 2,Luleå\n"
        with build_paste(engine, moved) as plan:
            assert plan.counts[UPDATE] == 1
            row = plan.preview(UPDATE)[0]
            assert json.loads(row["changes"]) == {"address": ["Storgatan 1", "Kungsgatan 2"], "city": ["Umeå", "Luleå"]}
            plan.commit()
        anna = customers(engine)[receipt.created[0][1]]
        assert (anna["address"], anna["city"], anna["email"]) == ("Kungsgatan 2", "Luleå", "anna@exempel.se")

    def test_format_line_with_the_typo_kundummer(self, engine: sa.Engine, svc: RegisterService) -> None:
        svc.create({"name": "Nils Karlsson", "kind": "person", "first_name": "Nils", "last_name": "Karlsson",
                    "email": "nils@epost.com", "address": "Gamla vägen 1", "city": "Lund"})
        text = ("epost,kundummer,förnamn,adress,stad\n"
                "nils@epost.com,1001,Nils,Nya vägen 2,Lund\n"
                "eva@epost.com,2001,Eva,Torget 3,Malmö\n")
        with build_paste(engine, text) as plan:
            assert plan.fields == ["email", "number", "first_name", "address", "city"]
            assert classes(plan) == [(2, UPDATE, "1001", ""), (3, NEW, "2001", "")]
            plan.commit()
        stored = customers(engine)
        assert stored["1001"]["address"] == "Nya vägen 2"
        assert (stored["2001"]["name"], stored["2001"]["city"]) == ("Eva", "Malmö")

    def test_format_line_number_first_last(self, engine: sa.Engine, svc: RegisterService) -> None:
        svc.create({"name": "Nils Karlsson", "kind": "person", "first_name": "Nils", "last_name": "Karlsson"})
        svc.create({"name": "Stina Olsson", "kind": "person", "first_name": "Stina", "last_name": "Olsson"})
        text = "kundnummer,förnamn,efternamn\n1001,Nils,Karlsson\n1002,Stina,Berg\n9999,Ny,Kund\n"
        with build_paste(engine, text) as plan:
            assert classes(plan) == [(2, SAME, "1001", ""), (3, UPDATE, "1002", ""), (4, NEW, "9999", "")]
            changes = json.loads(plan.preview(UPDATE)[0]["changes"])
            # A private person's Kundnamn follows Förnamn Efternamn.
            assert changes == {"last_name": ["Olsson", "Berg"], "name": ["Stina Olsson", "Stina Berg"]}
            plan.commit()
        stored = customers(engine)
        assert stored["1002"]["name"] == "Stina Berg"
        assert stored["9999"]["name"] == "Ny Kund"
        assert svc.next_number() == "10000"  # the series moves past a typed number


# ------------------------------------------------------------------------------ a full export, re-imported
def _full_register(svc: RegisterService) -> None:
    svc.create({"name": "Åkesson & Söner AB", "kind": "company", "org_number": org("556677889"),
                "vat_number": "SE" + org("556677889").replace("-", "") + "01", "email": "info@akesson.se",
                "phone": "08-123 456 78", "address": "c/o Berg\nStorgatan 1", "postal_code": "123 45",
                "city": "Örebro", "reference": "Åsa", "notes": "Rad ett\nRad två"})
    svc.create({"name": "Östen Öberg", "kind": "person", "first_name": "Östen", "last_name": "Öberg",
                "org_number": pnr("19800101", "123"), "email": "Osten@Example.com", "phone": "070-123 45 67",
                "postal_code": "98765", "city": "Kiruna"})
    svc.create({"name": "Fjord AS", "email": "post@fjord.no", "country": "NO", "postal_code": "0150",
                "city": "Oslo"})


class TestReimport:
    def _export(self, engine: sa.Engine) -> str:
        lines = [HEADERS]
        for c in sorted(customers(engine).values(), key=lambda c: c["id"]):
            values = [c[n] for n in FIELD_NAMES]
            lines.append(";".join('"' + v.replace('"', '""') + '"' for v in values))
        return "\n".join(lines) + "\n"

    def test_export_reimports_unchanged(self, engine: sa.Engine, svc: RegisterService) -> None:
        _full_register(svc)
        before = customers(engine)
        exported = self._export(engine)
        with build_csv(engine, exported) as plan:
            assert plan.counts == {NEW: 0, UPDATE: 0, SAME: 3, ERROR: 0}, list(plan.rows())
            # Rows with exactly the stored values are staged without them; the preview shows the
            # file's cells all the same (an empty cell as not given).
            assert plan._exec("SELECT count(*) FROM kr_stage WHERE payload IS NULL").fetchone()[0] == 3
            shown = plan.preview()
            assert shown == plan.preview(SAME)
            given = [dict(zip(plan.fields, row, strict=True)) for row in
                     list(csv.reader(io.StringIO(exported), delimiter=";"))[1:]]
            for row, cells in zip(shown, given, strict=True):
                for f in plan.fields:
                    assert row[f"f_{f}"] == (cells[f] or None) and row[f"o_{f}"] == cells[f], f
            plan.commit()
        assert customers(engine) == before

    def test_many_chunks_stage_every_row_once(self, engine: sa.Engine, svc: RegisterService) -> None:
        """Rows are written in multiples of ``CARRY``, the rest with the next chunk: over chunks of
        every size (1024, 2048, 4096, 8192, the rest) each class's rows all arrive, in order."""
        from kundreg_tui.domain.importer import CARRY

        for i in range(300):
            svc.create({"name": f"Kund {i} AB", "email": f"k{i}@a.se"})  # 1001…1300
        lines = ["kundnummer,epost,namn"]
        for i in range(16_500):
            n = 1001 + i % 300
            if i % 7 == 0:
                lines.append(f"{n},k{i % 300}@a.se,Kund {i % 300} AB")  # as stored (given often: fel)
            elif i % 7 == 1:
                lines.append(f",ny{i}@b.se,Ny {i} AB")  # new
            elif i % 7 == 2:
                lines.append(f",ny{i}@b.se,")  # fel: no name
            else:
                lines.append(f"{20_000 + i},ny{i}@c.se,Ny {i} AB")  # new with its number
        with build_csv(engine, "\n".join(lines) + "\n") as plan:
            assert len(lines) - 1 > 4 * 8192 // 2 and 16_500 % CARRY
            rows = list(plan.rows())
            assert [r.line for r in rows] == list(range(2, 16_502))
            assert plan.count() == 16_500 and plan.counts == plan._count_classes()
            errors = sum(1 for i in range(16_500) if i % 7 in (0, 2))
            assert plan.counts == {NEW: 16_500 - errors, UPDATE: 0, SAME: 0, ERROR: errors}

    def test_values_differing_only_in_form_are_unchanged(self, engine: sa.Engine, svc: RegisterService) -> None:
        _full_register(svc)
        nfd = unicodedata.normalize("NFD", "Östen Öberg")
        text = (HEADERS + "\n"
                # trimmed, NFC, e-mail case, postal code spacing, org number without dash, kind and
                # country as words
                f" 1002 ;Privatperson;{nfd};Östen ; Öberg;{pnr('19800101', '123').replace('-', '')};;"
                "OSTEN@EXAMPLE.COM;070-123 45 67;;987 65;Kiruna;Sverige;;\n"
                f"1001;företag;Åkesson & Söner AB;;;{org('556677889').replace('-', '')};;info@akesson.se;;;12345;;SE;;\n")
        with build_csv(engine, text) as plan:
            assert plan.counts == {NEW: 0, UPDATE: 0, SAME: 2, ERROR: 0}, list(plan.rows())

    def test_a_form_difference_next_to_a_change(self, engine: sa.Engine, svc: RegisterService) -> None:
        _full_register(svc)
        text = "kundnummer;postnummer;ort\n1001;12345;Göteborg\n"
        with build_csv(engine, text) as plan:
            assert plan.counts[UPDATE] == 1
            assert json.loads(plan.preview()[0]["changes"]) == {"city": ["Örebro", "Göteborg"]}


# ------------------------------------------------------------------------------ matching rules
class TestMatching:
    @pytest.fixture
    def two(self, svc: RegisterService) -> None:
        svc.create({"name": "Anna AB", "email": "anna@a.se", "phone": "070-111 11 11"})  # 1001
        svc.create({"name": "Bertil AB", "email": "bertil@b.se"})  # 1002

    def test_number_and_email_of_two_customers(self, engine: sa.Engine, two: None) -> None:
        with build_paste(engine, "kundnummer,epost,namn\n1001,bertil@b.se,Anna AB\n") as plan:
            (row,) = classes(plan)
            assert row[1] == ERROR and "två olika kunder" in row[3]

    def test_number_twice(self, engine: sa.Engine, two: None) -> None:
        text = "kundnummer,namn\n1001,Anna AB\n1002,Bertil AB\n1001,Anna Andersson AB\n"
        with build_paste(engine, text) as plan:
            rows = classes(plan)
            assert [r[1] for r in rows] == [ERROR, SAME, ERROR]
            assert "finns på flera rader" in rows[0][3] and "rad 2, 4" in rows[0][3]

    def test_email_twice_whatever_the_case(self, engine: sa.Engine, two: None) -> None:
        text = "epost,namn\nny@c.se,Ny AB\nNY@C.SE ,Ny Igen AB\nanna@a.se,Anna AB\n"
        with build_paste(engine, text) as plan:
            assert [r[1] for r in classes(plan)] == [ERROR, ERROR, SAME]

    def test_rows_as_stored_given_twice(self, engine: sa.Engine, two: None) -> None:
        """Rows with exactly the stored values are staged without them; given twice (by number, or
        by an e-mail in another case) they are still *fel*, with the customer's number and key."""
        text = ("kundnummer,epost,namn,telefon\n1001,anna@a.se,Anna AB,070-111 11 11\n"
                "1002,bertil@b.se,Bertil AB,\n1001,anna@a.se,Anna AB,070-111 11 11\n")
        with build_paste(engine, text) as plan:
            rows = classes(plan)
            assert [r[1] for r in rows] == [ERROR, SAME, ERROR]
            assert "Kundnummer 1001 finns på flera rader" in rows[0][3] and "rad 2, 4" in rows[0][3]
            assert "E-post anna@a.se finns på flera rader" in rows[0][3]
            shown = plan.preview()
            assert [(r["f_number"], r["f_email"], r["cls"]) for r in shown] == [
                ("1001", "anna@a.se", ERROR), ("1002", "bertil@b.se", SAME), ("1001", "anna@a.se", ERROR)]
        text = "epost,namn\nbertil@b.se,Bertil AB\nBERTIL@B.SE,Bertil AB\n"
        with build_paste(engine, text) as plan:
            rows = classes(plan)
            assert [r[1] for r in rows] == [ERROR, ERROR]
            assert "E-post bertil@b.se finns på flera rader i indata (rad 2, 3)" in rows[0][3]
            assert [r[0] for r in plan.preview(SAME)] == [] and plan.counts[SAME] == 0

    def test_stored_values_holding_the_separators(self, engine: sa.Engine, two: None, svc: RegisterService) -> None:
        """Another program stored control characters the plan uses as separators: the look-up
        falls back to fetching rows, nothing is misread, and a value that cannot be compared is
        *fel* with a reason."""
        svc.create({"name": "Cesar AB", "city": "Umeå"})  # 1003
        with engine.begin() as conn:
            conn.execute(sa.update(customer_table).where(customer_table.c.number == "1001")
                         .values(city="Lu\x1end\x1d"))
            conn.execute(sa.update(customer_table).where(customer_table.c.number == "1002")
                         .values(city="Sk\x1fövde"))
        text = "kundnummer,namn,ort\n1001,Anna AB,Lund\n1002,Bertil AB,Skövde\n1003,Cesar AB,Umeå\n"
        with build_paste(engine, text) as plan:
            rows = classes(plan)
            assert [r[1] for r in rows] == [UPDATE, ERROR, SAME]
            assert json.loads(plan.preview(UPDATE)[0]["changes"]) == {"city": ["Lu\x1end\x1d", "Lund"]}
            assert "lagrat värde med ett otillåtet tecken" in rows[1][3]

    def test_number_twice_whatever_the_case(self, engine: sa.Engine) -> None:
        text = "kundnummer,namn\nK-1,Ett AB\nk-1,Två AB\n"
        with build_paste(engine, text) as plan:
            assert [r[1] for r in classes(plan)] == [ERROR, ERROR]

    def test_number_matches_whatever_the_case(self, engine: sa.Engine, svc: RegisterService) -> None:
        svc.create({"number": "K-100", "name": "Ett AB"})
        with build_paste(engine, "kundnummer,namn\nk-100,Ett AB\nk-100x,Två AB\n") as plan:
            assert classes(plan) == [(2, SAME, "K-100", ""), (3, NEW, "k-100x", "")]

    def test_new_number_with_an_email_in_use(self, engine: sa.Engine, two: None) -> None:
        with build_paste(engine, "kundnummer,epost,namn\n5000,anna@a.se,Anna AB\n") as plan:
            (row,) = classes(plan)
            assert row[1] == ERROR and "anna@a.se" in row[3] and "används redan" in row[3]

    def test_email_changed_to_another_customers(self, engine: sa.Engine, two: None) -> None:
        with build_paste(engine, "kundnummer,epost\n1001,bertil@b.se\n") as plan:
            assert classes(plan)[0][1] == ERROR

    def test_email_moved_to_a_free_address(self, engine: sa.Engine, two: None) -> None:
        with build_paste(engine, "kundnummer,epost\n1001,anna.ny@a.se\n") as plan:
            assert classes(plan) == [(2, UPDATE, "1001", "")]
            plan.commit()
        assert customers(engine)["1001"]["email_key"] == "anna.ny@a.se"

    def test_email_only_finds_the_customer(self, engine: sa.Engine, two: None) -> None:
        with build_paste(engine, "epost,telefon\nANNA@A.SE,070-222 22 22\n") as plan:
            assert classes(plan) == [(2, UPDATE, "1001", "")]

    def test_one_customer_on_two_rows(self, engine: sa.Engine, two: None) -> None:
        text = "kundnummer,epost,telefon\n1001,,070-333 33 33\n,anna@a.se,070-444 44 44\n"
        with build_paste(engine, text) as plan:
            rows = classes(plan)
            assert [r[1] for r in rows] == [ERROR, ERROR]
            assert "samma kund" in rows[0][3]

    def test_a_deleted_customers_number(self, engine: sa.Engine, svc: RegisterService, two: None) -> None:
        record = svc.find_by_number("1002")
        assert record is not None
        svc.delete([record.id])
        with build_paste(engine, "kundnummer,namn\n1002,Bertil AB\n") as plan:
            (row,) = classes(plan)
            assert row[1] == ERROR and "raderad kund" in row[3]

    def test_row_without_keys(self, engine: sa.Engine, two: None) -> None:
        with build_paste(engine, "kundnummer,epost,namn\n,,Namnlös AB\n") as plan:
            (row,) = classes(plan)
            assert row[1] == ERROR and "saknar både" in row[3]

    def test_new_customer_needs_a_name(self, engine: sa.Engine) -> None:
        with build_paste(engine, "epost,telefon\nx@y.se,070-555 55 55\n") as plan:
            (row,) = classes(plan)
            assert row[1] == ERROR and "Kundnamn saknas" in row[3]

    def test_invalid_values_are_errors_named_by_field(self, engine: sa.Engine) -> None:
        text = ("kundnummer,namn,epost,organisationsnummer,postnummer,land\n"
                "1#1,A AB,a@a.se,,,\n2,B AB,inte-en-adress,,,\n3,C AB,,556677-8898,,\n"
                "4,D\u202eAB,,,,\n5,E AB,,,1234,\n6,F AB,,,,Atlantis\n")
        with build_paste(engine, text) as plan:
            reasons = [r[3] for r in classes(plan)]
            assert all(r for r in reasons)
            assert "Kundnummer" in reasons[0] and "e-postadress" in reasons[1]
            assert "organisationsnummer" in reasons[2] and "Kundnamn: otillåtet tecken U+202E" in reasons[3]
            assert "Postnummer" in reasons[4] and "Land" in reasons[5]

    def test_nothing_is_merged(self, engine: sa.Engine, two: None) -> None:
        before = customers(engine)
        text = ("kundnummer,epost,namn\n1001,bertil@b.se,X AB\n1002,anna@a.se,Y AB\n"
                "7000,anna@a.se,Z AB\n1001,,Anna Ny AB\n")
        with build_paste(engine, text) as plan:
            assert plan.counts[ERROR] == 4
            plan.commit()
        assert customers(engine) == before

    def test_file_without_keys_asks_for_all_new(self, engine: sa.Engine, two: None) -> None:
        text = "namn;ort\nAnna AB;Umeå\nCeasar AB;Luleå\n"
        with pytest.raises(ImportError_, match="kundnummer och e-post"):
            build_csv(engine, text)
        with build_csv(engine, text, all_new=True) as plan:
            assert plan.counts == {NEW: 2, UPDATE: 0, SAME: 0, ERROR: 0}  # "Anna AB" again: nothing to match by
            plan.commit()
        assert len(customers(engine)) == 4

    def test_ragged_rows_are_flagged_and_the_rest_imported(self, engine: sa.Engine) -> None:
        text = "kundnummer;namn;ort\n1;Ett AB;Umeå\n2;Två AB\n3;Tre AB;Luleå;extra\n4;Fyra AB;Kiruna\n"
        with build_csv(engine, text) as plan:
            rows = classes(plan)
            assert [r[1] for r in rows] == [NEW, ERROR, ERROR, NEW]
            assert "Rad 3 har 2 fält" in rows[1][3] and "Rad 4 har 4 fält" in rows[2][3]
            receipt = plan.commit()
        assert sorted(customers(engine)) == ["1", "4"]
        assert receipt.errors == [(3, rows[1][3]), (4, rows[2][3])]


# ------------------------------------------------------------------------------ empty cells
class TestEmptyCells:
    @pytest.fixture
    def one(self, svc: RegisterService) -> None:
        svc.create({"name": "Anna Berg", "kind": "person", "first_name": "Anna", "last_name": "Berg",
                    "phone": "070-111 11 11", "city": "Umeå", "email": "anna@a.se"})

    def test_an_empty_cell_keeps_the_stored_value(self, engine: sa.Engine, one: None) -> None:
        with build_paste(engine, "kundnummer,telefon,ort\n1001,,Luleå\n") as plan:
            assert json.loads(plan.preview()[0]["changes"]) == {"city": ["Umeå", "Luleå"]}
            plan.commit()
        assert customers(engine)["1001"]["phone"] == "070-111 11 11"

    def test_empty_clears(self, engine: sa.Engine, one: None) -> None:
        with build_paste(engine, "kundnummer,telefon,ort,epost\n1001,,Luleå, \n", empty_clears=True) as plan:
            assert json.loads(plan.preview()[0]["changes"]) == {
                "phone": ["070-111 11 11", ""], "city": ["Umeå", "Luleå"], "email": ["anna@a.se", ""]}
            plan.commit()
        anna = customers(engine)["1001"]
        assert (anna["phone"], anna["city"], anna["email"], anna["email_key"]) == ("", "Luleå", "", None)

    def test_empty_clears_cannot_clear_a_name(self, engine: sa.Engine, one: None) -> None:
        with build_paste(engine, "kundnummer,namn\n1001,\n", empty_clears=True) as plan:
            (row,) = classes(plan)
            assert row[1] == ERROR and "Kundnamn måste anges" in row[3]

    def test_empty_clears_resets_type_and_country(self, engine: sa.Engine, one: None) -> None:
        with build_paste(engine, "kundnummer,kundtyp,land\n1001,,\n", empty_clears=True) as plan:
            assert json.loads(plan.preview()[0]["changes"]) == {"kind": ["person", "company"]}

    def test_blank_rows_are_skipped(self, engine: sa.Engine) -> None:
        text = "kundnummer;namn;anteckning\n1;Ett AB;\n;;\n ; ;\n2;Två AB;\n"
        with build_csv(engine, text, mapping=["number", "name", None]) as plan:
            assert plan.counts[NEW] == 2 and plan.blank_rows == 1  # csvread drops ";;" itself


# ------------------------------------------------------------------------------ numbers for new customers
class TestNumbers:
    def test_numbers_skip_used_and_deleted(self, engine: sa.Engine, svc: RegisterService) -> None:
        svc.create({"name": "A AB"})  # 1001
        svc.create({"number": "1003", "name": "C AB"})  # typed: the series moves to 1004
        gone = svc.create({"name": "D AB"})  # 1004
        svc.delete([gone.id])
        with build_paste(engine, "epost,namn\na@a.se,Ny 1\nb@b.se,Ny 2\n") as plan:
            assert [r.number for r in plan.rows()] == ["1005", "1006"]
            receipt = plan.commit()
        assert [n for _l, n in receipt.created] == ["1005", "1006"]
        assert svc.next_number() == "1007"

    def test_typed_numbers_move_the_series_first(self, engine: sa.Engine) -> None:
        with build_paste(engine, "kundnummer,epost,namn\n5000,a@a.se,A\n,b@b.se,B\n") as plan:
            assert [r.number for r in plan.rows()] == ["5000", "5001"]


# ------------------------------------------------------------------------------ commit, stale plans, undo
class TestCommitAndUndo:
    @pytest.fixture
    def register(self, svc: RegisterService) -> None:
        _full_register(svc)

    def test_commit_records_who_when_and_every_previous_value(self, engine: sa.Engine, register: None) -> None:
        text = "kundnummer;telefon;ort\n1001;08-999 999 99;Västerås\n;;\n2000;;Kalix\n"
        with build_csv(engine, text, mapping=["number", "phone", "city"]) as plan:
            assert plan.counts == {NEW: 0, UPDATE: 1, SAME: 0, ERROR: 1}  # 2000: no name for a new customer
        text = "kundnummer;namn;telefon;ort\n1001;Åkesson & Söner AB;08-999 999 99;Västerås\n2000;Ny AB;;Kalix\n"
        with build_csv(engine, text) as plan:
            receipt = plan.commit()
        with read_conn(engine) as conn:
            batch = conn.execute(sa.select(batch_table).where(batch_table.c.id == receipt.batch_id)).one()
            log = conn.execute(sa.select(change_table).where(change_table.c.batch_id == receipt.batch_id)
                               .order_by(change_table.c.id)).all()
        assert (batch.kind, batch.actor, batch.source) == ("import", "test", "test.csv")
        assert [(e.action, e.actor) for e in log] == [("update", "test"), ("create", "test")]
        assert json.loads(log[0].changes) == {"phone": ["08-123 456 78", "08-999 999 99"], "city": ["Örebro", "Västerås"]}
        assert json.loads(log[1].changes)["name"] == ["", "Ny AB"]
        assert receipt.updated == [(2, "1001")] and receipt.created == [(3, "2000")]
        assert receipt.counts == {NEW: 1, UPDATE: 1, SAME: 0, ERROR: 0}
        assert "Kvittens" in receipt.as_text()

    def test_undo_restores_exactly(self, engine: sa.Engine, register: None) -> None:
        before_all = customers(engine, live_only=False)
        text = (HEADERS + "\n"
                "1001;Företag;Ny Åkesson AB;;;;;ny@akesson.se;;Ny gata 1;111 11;Ny stad;SE;Ny ref;Nya noter\n"
                "1002;Privatperson;;Östen;Östberg;;;;;;;;;;\n"
                ";Företag;Nytt AB;;;;;nytt@nytt.se;;;;;;;\n")
        with build_csv(engine, text) as plan:
            assert plan.counts == {NEW: 1, UPDATE: 2, SAME: 0, ERROR: 0}
            receipt = plan.commit()
        after = customers(engine)
        assert after["1001"]["email_key"] == "ny@akesson.se" and after["1002"]["name"] == "Östen Östberg"
        assert undo_import(engine, receipt.batch_id, actor="test") == 3
        restored = customers(engine)
        bookkeeping = {"version", "updated_at"}
        strip = {n: {k: v for k, v in row.items() if k not in bookkeeping} for n, row in restored.items()}
        assert strip == {n: {k: v for k, v in row.items() if k not in bookkeeping}
                         for n, row in before_all.items() if row["deleted_at"] is None}
        for n in ("1001", "1002"):
            assert restored[n]["version"] == before_all[n]["version"] + 2  # changed, then changed back
        created = receipt.created[0][1]
        assert created not in restored  # the created customer left the register
        with pytest.raises(ImportError_, match="redan ångrad"):
            undo_import(engine, receipt.batch_id)

    def test_undo_refused_after_a_later_change(self, engine: sa.Engine, svc: RegisterService, register: None) -> None:
        with build_paste(engine, "kundnummer,telefon\n1001,070-000 00 00\n") as plan:
            receipt = plan.commit()
        record = svc.find_by_number("1001")
        assert record is not None
        svc.update(record.id, {**record.values(), "city": "Annan"}, record.version)
        with pytest.raises(ImportError_, match="har ändrats efter importen"):
            undo_import(engine, receipt.batch_id)
        assert customers(engine)["1001"]["phone"] == "070-000 00 00"

    def test_stale_plan(self, engine: sa.Engine, svc: RegisterService, register: None) -> None:
        with build_paste(engine, "kundnummer,telefon\n1001,070-000 00 00\n,\n") as plan:
            record = svc.find_by_number("1002")
            assert record is not None
            svc.update(record.id, {**record.values(), "city": "Luleå"}, record.version)
            batches = count_rows(engine, batch_table)
            before = customers(engine)
            with pytest.raises(StalePlan, match="ändrats sedan förhandsgranskningen"):
                plan.commit()
        assert customers(engine) == before and count_rows(engine, batch_table) == batches

    def test_stale_after_another_import(self, engine: sa.Engine, register: None) -> None:
        first = build_paste(engine, "kundnummer,telefon\n1001,070-000 00 00\n")
        second = build_paste(engine, "kundnummer,telefon\n1001,070-999 99 99\n")
        with first, second:
            first.commit()
            with pytest.raises(StalePlan):
                second.commit()
        assert customers(engine)["1001"]["phone"] == "070-000 00 00"

    def test_commit_twice_is_refused(self, engine: sa.Engine) -> None:
        with build_paste(engine, NILS_STINA) as plan:
            plan.commit()
            with pytest.raises(ImportError_):
                plan.commit()

    def test_meta_series_and_history_after_new_rows(self, engine: sa.Engine) -> None:
        commit_paste(engine, NILS_STINA)
        with read_conn(engine) as conn:
            value = conn.execute(sa.select(meta_table.c.value)).scalar()
        assert value == "1003"
        assert count_rows(engine, change_table) == 2


# ------------------------------------------------------------------------------ refusals of the input
class TestRefusals:
    @pytest.mark.parametrize(("data", "message"), [
        (b"", "tom"),
        (b"kundnummer;namn\n", "bara en rubrikrad"),
        (b'kundnummer;namn\n1;"Ett AB\n2;Tv\xc3\xa5\n', "avslutas aldrig"),
        (b"PK\x03\x04" + b"\x00" * 200, "Excel"),
        (b"kundnummer;namn;Namn\n1;a;b\n", "samma kolumnnamn"),
        (b"kundnummer;namn\n1;Ett\x00AB\n", "NUL"),
        (b"kundnummer;namn\n1;" + b"x" * 20_000 + b"\n", "fler än"),
    ])
    def test_refused_and_nothing_written(self, engine: sa.Engine, data: bytes, message: str) -> None:
        with pytest.raises(CsvReadError) as info:
            plan = build_csv(engine, data)
            plan.close()
        assert message.lower() in info.value.message.lower()
        assert count_rows(engine, customer_table) == 0 and count_rows(engine, batch_table) == 0

    def test_no_rows_at_all(self, engine: sa.Engine) -> None:
        with pytest.raises(ImportError_, match="inga rader"):
            build_csv(engine, "kundnummer;namn;fax\n;;123\n ; ;456\n", mapping=["number", "name", None])

    def test_two_columns_for_one_field(self, engine: sa.Engine) -> None:
        with pytest.raises(ImportError_, match="två kolumner"):
            build_csv(engine, "a;b\n1;2\n", mapping=["number", "number"])


# ------------------------------------------------------------------------------ reading paths
class TestReadingPaths:
    def test_cp1252_semicolon_file(self, engine: sa.Engine) -> None:
        data = "Kundnummer;Kundnamn;Ort\r\n1;Åkesson AB;Örebro\r\n".encode("cp1252")
        with build_csv(engine, data) as plan:
            plan.commit()
        assert customers(engine)["1"]["city"] == "Örebro"

    def test_preview_filters_and_rows_page(self, engine: sa.Engine, svc: RegisterService) -> None:
        svc.create({"name": "Anna AB", "email": "anna@a.se"})
        lines = ["kundnummer,namn,epost"] + [f"{2000 + i},Kund {i},k{i}@x.se" for i in range(30)]
        lines += ["1001,Anna AB,anna@a.se", "1001,Dubbel AB,"]
        with build_paste(engine, "\n".join(lines) + "\n") as plan:
            assert plan.counts == {NEW: 30, UPDATE: 0, SAME: 0, ERROR: 2}
            assert [r["line"] for r in plan.preview(ERROR)] == [32, 33]
            assert len(plan.preview(NEW, offset=10, limit=5)) == 5
            assert len(list(plan.rows())) == 32 and len(list(plan.rows(only_errors=True))) == 2
            assert set(CLASSES) == set(plan.counts)


# ------------------------------------------------------------------------------ the column-wise validation
_FIELDS = list(FIELD_NAMES)
_ODD = st.sampled_from(["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1e", "\x1f", "\x7f", "\x85", "\x9b",
                        "\xa0", "\u2003", "\u202e", "\u2066", "\u200b", "\ufeff", " ", "  "])
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_ORG = st.one_of(
    st.builds(lambda b: org(b), st.from_regex(r"[0-9]{9}", fullmatch=True)),
    st.builds(lambda b: org(b).replace("-", ""), st.from_regex(r"[0-9]{9}", fullmatch=True)),
    st.builds(lambda d, s: pnr(d, s), st.sampled_from(["19800101", "20000229", "19991231", "18991231"]),
              st.from_regex(r"[0-9]{3}", fullmatch=True)),
    st.builds(lambda d, s: pnr(d, s)[2:], st.sampled_from(["19800101", "20120101"]),
              st.from_regex(r"[0-9]{3}", fullmatch=True)),
    st.from_regex(r"[0-9]{6}-[0-9]{4}", fullmatch=True),
    st.from_regex(r"(19|20)[0-9]{6}-[0-9]{4}", fullmatch=True),
    st.just("16" + org("556677889").replace("-", "")),
)
_EMAIL = st.one_of(
    st.from_regex(r"[a-z]{1,6}(\.[a-z0-9]{1,4})?@[a-z]{1,6}\.(se|com|nu)", fullmatch=True),
    st.sampled_from(["a@b", "a..b@c.se", ".a@b.se", "a@-b.se", "a@b-.se", "ÅSA@exempel.se", "a@exempel.s",
                     "x@" + "a" * 64 + ".se", "Anna.Berg+x@Exempel.SE", "a@b.c0m", "a b@c.se", "\"a\"@b.se",
                     "a@[127.0.0.1]", "a@b.se.", "a@xn--bcher-kva.ch", "a@bücher.ch"]),
)
_PHONE = st.one_of(
    st.from_regex(r"(\+46|0)7[0-9][ -]?[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{2}", fullmatch=True),
    st.sampled_from(["070123456", "08-123 456 78", "+46 8 123 45 67", "123", "abc", "0046701234567",
                     "070-123 45 67 ext 5", "+47 22 33 44 55", "٠٧٠١٢٣٤٥٦٧"]),
)
_POSTAL = st.one_of(st.from_regex(r"[0-9]{3} ?[0-9]{2}", fullmatch=True),
                    st.sampled_from(["SE-123 45", "SE12345", "1234", "123-45", "０１２３４", "0150", "ABC 12"]))
_BY_FIELD: dict[str, Any] = {
    "number": st.one_of(st.from_regex(r"[0-9]{1,8}", fullmatch=True), st.from_regex(r"[A-Za-z0-9\-+/_]{1,40}", fullmatch=True), _TEXT),
    "kind": st.sampled_from(["Företag", "företag", "Privatperson", "person", "P", "company", "x", "", "a" * 20]),
    "country": st.sampled_from(["SE", "se", "Sverige", "NO", "Norge", "XX", "S", "DEU", "", "Sweden "]),
    "org_number": _ORG, "vat_number": st.sampled_from(
        ["SE556677889901", "se 5566778899 01", "SE5566778898 01", "DE136695976", "XX123", "SE" + org("556036079").replace("-", "") + "01"]),
    "email": _EMAIL, "phone": _PHONE, "postal_code": _POSTAL,
    "name": _TEXT, "first_name": _TEXT, "last_name": _TEXT, "address": _TEXT, "city": _TEXT, "reference": _TEXT,
    "notes": _TEXT,
}


@st.composite
def _cells(draw: st.DrawFn, name: str) -> str:
    value: str = draw(st.one_of(_BY_FIELD[name], _TEXT, st.just("")))
    if draw(st.booleans()):
        odd = draw(_ODD)
        at = draw(st.integers(0, len(value)))
        value = value[:at] + odd + value[at:]
    if draw(st.integers(0, 9)) == 0:
        value = unicodedata.normalize("NFD", value + "Öå")
    if draw(st.integers(0, 19)) == 0:
        value = value + "x" * draw(st.sampled_from([13, 21, 33, 41, 101, 201, 255, 301]))
    return value


@st.composite
def _chunks(draw: st.DrawFn) -> tuple[list[str], list[list[str]], bool]:
    fields = draw(st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=len(_FIELDS), unique=True))
    rows = draw(st.lists(st.tuples(*[_cells(f) for f in fields]).map(list), min_size=1, max_size=40))
    if draw(st.booleans()):  # many clean rows around the odd ones: the fast path halves its way to them
        rows = rows * draw(st.integers(1, 20))
    return fields, rows, draw(st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_chunks())
@example((["kind", "org_number"], [["Privatperson", "800101-1234"], ["Företag", org("800101123")]], False))
@example((["name", "first_name", "last_name"], [["", "Anna", "Berg"], ["", "", ""], [" ", "x", ""]], True))
def test_fast_path_agrees_with_validate_customer(chunk: tuple[list[str], list[list[str]], bool]) -> None:
    fields, rows, empty_clears = chunk
    result = validate_rows(fields, rows, empty_clears=empty_clears)
    for i, row in enumerate(rows):
        if not any(cell_given(v) for v in row):
            assert i in result.blank
            continue
        raw = {f: v for f, v in zip(fields, row, strict=True) if cell_given(v)}
        if empty_clears:
            raw.update({f: "" for f, v in zip(fields, row, strict=True) if not cell_given(v)})
        ref = validate_customer(raw, partial=True)
        values, errors, warnings = result.row(i)
        assert (values, errors, warnings) == (ref.values, ref.errors, ref.warnings), (row, raw)
        assert result.reason(i) == "; ".join(ref.errors.values())


def test_latin1_text_is_always_nfc() -> None:
    # The fast path skips the NFC check for text that fits in Latin-1.
    assert all(unicodedata.is_normalized("NFC", chr(a) + chr(b)) for a in range(256) for b in range(256))


_KEY_TEXT = st.one_of(_TEXT, st.sampled_from(["Östen Öberg", "ÅSA", "Ærø", "Straße", "ℌilda", "0042", "K-007", "1001",
                                            "İstanbul", "ﬁne", "", "a\u0301"]))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({n: _KEY_TEXT for n in ("number", "name", "city", "email", "org_number")}))
def test_cached_keys_equal_the_keys_module(values: dict[str, str]) -> None:
    cache = KeyCache()
    assert cache.derived(values) == derived_columns(values)
    assert cache.derived(values) == derived_columns(values)  # and again from the cache
