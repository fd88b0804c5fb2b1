"""The register service on both databases (SQLite and PostgreSQL): numbering, ordering, search,
optimistic locking, e-mail uniqueness, deletion and its undo, and the change log."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from kundreg_tui.domain.database import read_conn
from kundreg_tui.domain.keys import derived_columns
from kundreg_tui.domain.models import CustomerRecord, change_table, customer_table
from kundreg_tui.domain.register import (
    FIRST_NUMBER,
    NotFound,
    RegisterError,
    RegisterService,
    Sort,
    StaleError,
    ValidationFailed,
)

pytestmark = pytest.mark.pg


def add(service: RegisterService, name: str = "Test AB", **values: Any) -> CustomerRecord:
    return service.create({"name": name, **values})


def numbers(records: list[CustomerRecord]) -> list[str]:
    return [r.number for r in records]


def stored_row(service: RegisterService, customer_id: int) -> dict[str, Any]:
    with read_conn(service.engine) as conn:
        row = conn.execute(sa.select(customer_table).where(customer_table.c.id == customer_id)).one()
        return dict(row._mapping)


def change_count(service: RegisterService) -> int:
    with read_conn(service.engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(change_table)).scalar_one())


# ------------------------------------------------------------------------------ create / numbering
class TestCreate:
    def test_first_number_is_1001(self, service: RegisterService) -> None:
        assert FIRST_NUMBER == 1001
        assert service.next_number() == "1001"
        record = add(service)
        assert record.number == "1001"
        assert record.version == 1
        assert record.id > 0
        assert service.next_number() == "1002"

    def test_series_continues(self, service: RegisterService) -> None:
        assert [add(service, f"K{i}").number for i in range(5)] == ["1001", "1002", "1003", "1004", "1005"]

    def test_record_is_normalised(self, service: RegisterService) -> None:
        record = add(service, " O\u0308sterlund AB ", postal_code="11122", org_number="5566778899",
                     email=" Info@Osterlund.SE ")
        assert record.name == "Österlund AB"
        assert record.postal_code == "111 22"
        assert record.org_number == "556677-8899"
        assert record.email == "Info@Osterlund.SE"
        got = service.get(record.id)
        assert got is not None
        assert got.values() == record.values()
        assert got.created_at is not None and got.created_at.tzinfo is not None

    def test_stored_derived_columns(self, service: RegisterService) -> None:
        record = add(service, "Åsa Öberg", city="Östersund", email="Asa@Exempel.se",
                     org_number="556677-8899")
        row = stored_row(service, record.id)
        for key, value in derived_columns(record.values()).items():
            assert row[key] == value, key

    def test_typed_number_kept(self, service: RegisterService) -> None:
        assert add(service, number="K-7").number == "K-7"
        assert add(service).number == "1001"

    def test_typed_numeric_number_moves_the_series(self, service: RegisterService) -> None:
        add(service)  # 1001
        assert add(service, number="5000").number == "5000"
        assert service.next_number() == "5001"
        assert add(service).number == "5001"

    def test_typed_lower_number_does_not_move_the_series_back(self, service: RegisterService) -> None:
        add(service, number="5000")
        add(service, number="17")
        assert add(service).number == "5001"

    def test_series_skips_a_typed_number_in_its_way(self, service: RegisterService) -> None:
        add(service, number="1002")  # moves the series to 1003
        assert add(service).number == "1003"

    def test_duplicate_number_refused(self, service: RegisterService) -> None:
        add(service, number="1001")
        with pytest.raises(ValidationFailed) as exc:
            add(service, number="1001")
        assert "number" in exc.value.errors
        assert service.count() == 1

    def test_deleted_number_never_handed_out_again(self, service: RegisterService) -> None:
        a = add(service, "A")
        b = add(service, "B")
        service.delete([a.id, b.id])
        assert add(service, "C").number == "1003"
        with pytest.raises(ValidationFailed) as exc:
            add(service, "D", number=b.number)
        assert "number" in exc.value.errors

    def test_deleted_top_number_not_reused_after_restart(self, service: RegisterService) -> None:
        a = add(service, "A")
        service.delete([a.id])
        fresh = RegisterService(service.engine, actor="other")
        assert fresh.create({"name": "B"}).number == "1002"

    def test_invalid_values_refused(self, service: RegisterService) -> None:
        with pytest.raises(ValidationFailed) as exc:
            service.create({"name": "", "email": "nej", "number": "a b"})
        assert set(exc.value.errors) == {"name", "email", "number"}
        assert service.count() == 0
        assert change_count(service) == 0
        assert service.next_number() == "1001"

    def test_markup_and_quotes_stored_verbatim(self, service: RegisterService) -> None:
        for name in ["Ann [/] Berg", "[bold red]x[/]", "O'Brien; DROP TABLE customer;--", 'Ab "Cd"', "100%_"]:
            record = add(service, name)
            got = service.get(record.id)
            assert got is not None and got.name == name

    def test_multiline_address_and_notes(self, service: RegisterService) -> None:
        record = add(service, address="c/o Berg\r\nStorgatan 1", notes="rad 1\nrad 2\n\nrad 4")
        got = service.get(record.id)
        assert got is not None
        assert got.address == "c/o Berg\nStorgatan 1"
        assert got.notes == "rad 1\nrad 2\n\nrad 4"

    def test_full_length_values_fit_the_columns(self, service: RegisterService) -> None:
        from kundreg_tui.domain.fields import FIELD_BY_NAME

        values = {n: "x" * FIELD_BY_NAME[n].max_length
                  for n in ("name", "first_name", "last_name", "phone", "address", "city",
                            "reference", "notes")}
        values["number"] = "N" * FIELD_BY_NAME["number"].max_length
        record = service.create(values)
        got = service.get(record.id)
        assert got is not None and got.values() == record.values()

    def test_joined_name_of_two_long_parts_refused_cleanly(self, service: RegisterService) -> None:
        with pytest.raises(ValidationFailed) as exc:
            service.create({"name": "", "first_name": "a" * 100, "last_name": "b" * 100})
        assert "name" in exc.value.errors


# ------------------------------------------------------------------------------ reading
class TestReading:
    def test_numbers_sort_numerically(self, service: RegisterService) -> None:
        for n in ["10", "2", "1", "100", "K-10", "K-2", "20"]:
            add(service, f"N{n}", number=n)
        got = numbers(service.page(sort=Sort("number")))
        assert got == ["1", "2", "10", "20", "100", "K-2", "K-10"]
        assert numbers(service.page(sort=Sort("number", descending=True))) == list(reversed(got))

    def test_long_numeric_numbers_sort_numerically(self, service: RegisterService) -> None:
        values = ["9" * 20, "1" + "0" * 20, "9" * 21, "1" * 25, "9" * 32, "7"]
        for n in values:
            add(service, f"N{n}", number=n)
        assert numbers(service.page(sort=Sort("number"))) == sorted(values, key=int)

    def test_name_sort_is_swedish(self, service: RegisterService) -> None:
        names = ["Östen", "Åsa", "Zlatan", "Ärla", "anna", "Bertil", "Ülla", "Yngve", "Xerxes", "Östen"]
        for name in names:
            add(service, name)
        got = [r.name for r in service.page(sort=Sort("name"))]
        assert got == ["anna", "Bertil", "Xerxes", "Ülla", "Yngve", "Zlatan", "Åsa", "Ärla", "Östen", "Östen"]
        desc = [r.name for r in service.page(sort=Sort("name", descending=True))]
        assert desc == list(reversed(got))
        # Ties are broken by id, so paging is stable.
        ostens = [r.id for r in service.page(sort=Sort("name")) if r.name == "Östen"]
        assert ostens == sorted(ostens)

    def test_city_sort_is_swedish(self, service: RegisterService) -> None:
        for city in ["Örebro", "Åre", "Ystad", "Älmhult", "Arboga"]:
            add(service, city, city=city)
        assert [r.city for r in service.page(sort=Sort("city"))] == ["Arboga", "Ystad", "Åre", "Älmhult", "Örebro"]

    def test_unknown_sort_column_falls_back_to_number(self, service: RegisterService) -> None:
        for n in ["10", "9"]:
            add(service, number=n, name=f"N{n}")
        assert numbers(service.page(sort=Sort("no-such-column"))) == ["9", "10"]

    def test_paging(self, service: RegisterService) -> None:
        for i in range(25):
            add(service, f"K{i}")
        first = service.page(offset=0, limit=10)
        second = service.page(offset=10, limit=10)
        third = service.page(offset=20, limit=10)
        assert len(first) == 10 and len(second) == 10 and len(third) == 5
        assert numbers(first + second + third) == [str(1001 + i) for i in range(25)]
        assert service.page(offset=-5, limit=3) == service.page(offset=0, limit=3)

    def test_count_and_ids(self, service: RegisterService) -> None:
        assert service.count() == 0
        assert service.ids() == []
        a = add(service, "Anna")
        b = add(service, "Bertil")
        assert service.count() == 2
        assert sorted(service.ids()) == sorted([a.id, b.id])
        assert service.count("anna") == 1
        assert service.ids("anna") == [a.id]

    def test_get_and_find(self, service: RegisterService) -> None:
        a = add(service, "Anna", number="K-1")
        assert service.get(a.id) == service.find_by_number("K-1")
        assert service.get(a.id + 999) is None
        assert service.find_by_number("nope") is None
        service.delete([a.id])
        assert service.get(a.id) is None
        assert service.find_by_number("K-1") is None

    def test_get_many(self, service: RegisterService) -> None:
        ids = [add(service, f"K{i}").id for i in range(5)]
        got = service.get_many(reversed(ids[1:4]))
        assert [r.id for r in got] == ids[1:4]

    def test_iter_all(self, service: RegisterService) -> None:
        for name in ["Östen", "Anna", "Åsa"]:
            add(service, name)
        assert [r.name for r in service.iter_all(sort=Sort("name"))] == ["Anna", "Åsa", "Östen"]
        assert [r.name for r in service.iter_all("anna")] == ["Anna"]


# ------------------------------------------------------------------------------ search
class TestSearch:
    @pytest.fixture
    def filled(self, service: RegisterService) -> dict[str, CustomerRecord]:
        return {
            "oster": add(service, "Österlund Bygg AB", email="info@osterlund.se", org_number="5566778899"),
            "anna": add(service, "Anna Berg", kind="Privatperson", email="Anna.Berg@Exempel.se",
                        org_number="8112189876"),
            "pct": add(service, "100% Rabatt AB", number="K_1"),
            "plain": add(service, "Rabatt AB", number="K1"),
            "bs": add(service, "Back\\slash AB"),
        }

    def search(self, service: RegisterService, query: str) -> set[str]:
        return {r.name for r in service.page(query)}

    def test_name_substring(self, service: RegisterService, filled: dict[str, CustomerRecord]) -> None:
        assert self.search(service, "berg") == {"Anna Berg"}
        assert self.search(service, "BYGG") == {"Österlund Bygg AB"}
        assert self.search(service, "  berg  ") == {"Anna Berg"}

    def test_swedish_letters_fold(self, service: RegisterService, filled: dict[str, CustomerRecord]) -> None:
        assert self.search(service, "osterlund") == {"Österlund Bygg AB"}
        assert self.search(service, "Österlund") == {"Österlund Bygg AB"}
        assert self.search(service, "O\u0308sterlund") == {"Österlund Bygg AB"}

    def test_number_prefix(self, service: RegisterService, filled: dict[str, CustomerRecord]) -> None:
        assert self.search(service, filled["oster"].number) == {"Österlund Bygg AB"}
        assert self.search(service, "100") == {"Österlund Bygg AB", "Anna Berg", "100% Rabatt AB", "Back\\slash AB"}

    def test_email(self, service: RegisterService, filled: dict[str, CustomerRecord]) -> None:
        assert self.search(service, "anna.berg@exempel.se") == {"Anna Berg"}
        assert self.search(service, "ANNA.BERG@") == {"Anna Berg"}
        assert self.search(service, "@osterlund") == {"Österlund Bygg AB"}

    def test_org_number_with_or_without_hyphen(self, service: RegisterService,
                                               filled: dict[str, CustomerRecord]) -> None:
        assert self.search(service, "556677-8899") == {"Österlund Bygg AB"}
        assert self.search(service, "5566778899") == {"Österlund Bygg AB"}
        assert self.search(service, "19811218-9876") == {"Anna Berg"}
        assert self.search(service, "198112189876") == {"Anna Berg"}

    def test_like_wildcards_are_literal(self, service: RegisterService,
                                        filled: dict[str, CustomerRecord]) -> None:
        assert self.search(service, "%") == {"100% Rabatt AB"}
        assert self.search(service, "0% R") == {"100% Rabatt AB"}
        assert self.search(service, "k_1") == {"100% Rabatt AB"}
        assert self.search(service, "_") == {"100% Rabatt AB"}
        assert self.search(service, "\\") == {"Back\\slash AB"}
        assert self.search(service, "k%1") == set()
        assert service.count("%") == 1
        assert service.count("_") == 1

    def test_empty_query_is_everything(self, service: RegisterService, filled: dict[str, CustomerRecord]) -> None:
        assert service.count("") == service.count("   ") == 5

    def test_no_match(self, service: RegisterService, filled: dict[str, CustomerRecord]) -> None:
        assert service.count("zzzz") == 0
        assert service.page("zzzz") == []

    def test_deleted_not_found(self, service: RegisterService, filled: dict[str, CustomerRecord]) -> None:
        service.delete([filled["anna"].id])
        assert service.count("anna") == 0
        assert service.count() == 4

    def test_search_follows_update(self, service: RegisterService, filled: dict[str, CustomerRecord]) -> None:
        rec = filled["plain"]
        service.update(rec.id, {**rec.values(), "name": "Ärlig Handel"}, rec.version)
        assert self.search(service, "arlig") == {"Ärlig Handel"}
        assert self.search(service, "rabatt") == {"100% Rabatt AB"}


# ------------------------------------------------------------------------------ update
class TestUpdate:
    def test_update_bumps_version(self, service: RegisterService) -> None:
        rec = add(service, "Anna", city="Åre")
        new = service.update(rec.id, {**rec.values(), "city": "Östersund"}, rec.version)
        assert new.version == rec.version + 1
        assert new.city == "Östersund"
        got = service.get(rec.id)
        assert got is not None
        assert got.city == "Östersund" and got.version == new.version
        assert got.values() == new.values()
        row = stored_row(service, rec.id)
        assert row["city_key"] == derived_columns(got.values())["city_key"]

    def test_update_validates(self, service: RegisterService) -> None:
        rec = add(service, "Anna")
        with pytest.raises(ValidationFailed) as exc:
            service.update(rec.id, {**rec.values(), "postal_code": "1"}, rec.version)
        assert "postal_code" in exc.value.errors
        assert service.get(rec.id) == rec

    def test_stale_version_changes_nothing(self, service: RegisterService) -> None:
        rec = add(service, "Anna", city="Åre")
        first = service.update(rec.id, {**rec.values(), "city": "Umeå"}, rec.version)
        changes_before = change_count(service)
        with pytest.raises(StaleError):
            service.update(rec.id, {**rec.values(), "city": "Luleå", "notes": "x"}, rec.version)
        got = service.get(rec.id)
        assert got is not None
        assert got.city == "Umeå" and got.notes == "" and got.version == first.version
        assert change_count(service) == changes_before

    def test_update_of_deleted_is_stale(self, service: RegisterService) -> None:
        rec = add(service, "Anna")
        service.delete([rec.id])
        with pytest.raises(StaleError):
            service.update(rec.id, {**rec.values(), "city": "Umeå"}, rec.version)
        with pytest.raises(StaleError):
            service.update(rec.id + 1000, {"name": "X"}, 1)

    def test_number_cannot_be_changed(self, service: RegisterService) -> None:
        rec = add(service, "Anna")
        new = service.update(rec.id, {**rec.values(), "number": "9999", "city": "Åre"}, rec.version)
        assert new.number == rec.number
        got = service.get(rec.id)
        assert got is not None and got.number == rec.number
        assert service.find_by_number("9999") is None
        assert "number" not in service.history(rec.id)[0].changes

    def test_no_change_is_a_no_op(self, service: RegisterService) -> None:
        rec = add(service, "Anna", postal_code="12345")
        before = change_count(service)
        same = service.update(rec.id, {**rec.values(), "postal_code": "12345", "name": " Anna "},
                              rec.version)
        assert same.version == rec.version
        assert change_count(service) == before

    def test_update_returns_full_record(self, service: RegisterService) -> None:
        rec = add(service, "Anna", city="Åre")
        new = service.update(rec.id, {"name": "Anna B"}, rec.version)  # the form sends every field
        assert new.name == "Anna B"
        assert new.city == ""  # a full update: a missing field is empty
        assert new.created_at == rec.created_at or new.created_at is not None


# ------------------------------------------------------------------------------ e-mail uniqueness
class TestEmailUnique:
    def test_create_duplicate_case_insensitive(self, service: RegisterService) -> None:
        add(service, "Anna", email="anna@exempel.se")
        with pytest.raises(ValidationFailed) as exc:
            add(service, "Anna 2", email="ANNA@Exempel.SE")
        assert list(exc.value.errors) == ["email"]
        assert service.count() == 1
        assert service.next_number() == "1002"  # the refused create took no number

    def test_update_to_taken_email(self, service: RegisterService) -> None:
        add(service, "Anna", email="anna@exempel.se")
        bo = add(service, "Bo", email="bo@exempel.se")
        with pytest.raises(ValidationFailed) as exc:
            service.update(bo.id, {**bo.values(), "email": " Anna@EXEMPEL.se"}, bo.version)
        assert "email" in exc.value.errors
        got = service.get(bo.id)
        assert got is not None and got.email == "bo@exempel.se"

    def test_own_email_case_change_allowed(self, service: RegisterService) -> None:
        bo = add(service, "Bo", email="bo@exempel.se")
        new = service.update(bo.id, {**bo.values(), "email": "Bo@Exempel.se"}, bo.version)
        assert new.email == "Bo@Exempel.se"

    def test_many_without_email(self, service: RegisterService) -> None:
        for i in range(3):
            add(service, f"K{i}", email="")
        assert service.count() == 3

    def test_deleted_customers_email_is_free(self, service: RegisterService) -> None:
        a = add(service, "Anna", email="anna@exempel.se")
        service.delete([a.id])
        assert add(service, "Anna 2", email="anna@exempel.se").email == "anna@exempel.se"


# ------------------------------------------------------------------------------ delete / undo
class TestDelete:
    def test_delete_many_and_undo(self, service: RegisterService) -> None:
        recs = [add(service, f"K{i}", email=f"k{i}@exempel.se") for i in range(5)]
        result = service.delete([recs[1].id, recs[3].id, recs[3].id])
        assert result.count == 2
        assert sorted(result.numbers) == sorted([recs[1].number, recs[3].number])
        assert service.count() == 3
        assert service.get(recs[1].id) is None
        assert service.undo_delete(result.batch_id) == 2
        assert service.count() == 5
        got = service.get(recs[1].id)
        assert got is not None
        assert got.values() == recs[1].values()
        assert got.version == recs[1].version + 2  # deleted, restored

    def test_undo_twice_refused(self, service: RegisterService) -> None:
        rec = add(service)
        result = service.delete([rec.id])
        service.undo_delete(result.batch_id)
        with pytest.raises(RegisterError):
            service.undo_delete(result.batch_id)
        assert service.count() == 1

    def test_undo_unknown_batch(self, service: RegisterService) -> None:
        with pytest.raises(NotFound):
            service.undo_delete(12345)

    def test_undo_refused_when_email_reused(self, service: RegisterService) -> None:
        a = add(service, "Anna", email="anna@exempel.se")
        b = add(service, "Bo", email="bo@exempel.se")
        result = service.delete([a.id, b.id])
        add(service, "Ny Anna", email="ANNA@exempel.se")
        with pytest.raises(RegisterError, match="(?i)anna@exempel.se"):
            service.undo_delete(result.batch_id)
        # Nothing was restored, not even Bo.
        assert service.get(b.id) is None
        assert service.count() == 1

    def test_delete_already_deleted_and_unknown(self, service: RegisterService) -> None:
        a = add(service)
        service.delete([a.id])
        again = service.delete([a.id, 99999])
        assert again.count == 0 and again.numbers == []
        assert service.undo_delete(again.batch_id) == 0

    def test_delete_nothing(self, service: RegisterService) -> None:
        assert service.delete([]).count == 0

    def test_delete_large_batch(self, service: RegisterService) -> None:
        ids = [add(service, f"K{i}").id for i in range(3)]
        result = service.delete([*ids, *range(100_000, 101_200)])  # chunks of 500
        assert result.count == 3
        assert service.count() == 0
        assert service.undo_delete(result.batch_id) == 3

    def test_stale_after_delete_and_undo(self, service: RegisterService) -> None:
        rec = add(service)
        service.undo_delete(service.delete([rec.id]).batch_id)
        with pytest.raises(StaleError):
            service.update(rec.id, {**rec.values(), "city": "Åre"}, rec.version)

    def test_describe_delete(self, service: RegisterService) -> None:
        recs = [add(service, f"K{i}") for i in range(7)]
        assert service.describe_delete(recs[:1]) == "Radera 1 kund: 1001 K0"
        text = service.describe_delete(recs)
        assert text.startswith("Radera 7 kunder: 1001 K0, ") and "och 2 till" in text


# ------------------------------------------------------------------------------ change log
class TestHistory:
    def test_every_write_is_logged(self, service: RegisterService) -> None:
        rec = add(service, "Anna", city="Åre")
        upd = service.update(rec.id, {**rec.values(), "city": "Umeå", "notes": "ny"}, rec.version,
                             source="import")
        batch = service.delete([rec.id]).batch_id
        service.undo_delete(batch)
        log = service.history(rec.id)
        assert [e.action for e in log] == ["restore", "delete", "update", "create"]
        assert all(e.actor == "test" for e in log)
        assert all(e.at is not None for e in log)
        assert [e.source for e in log] == ["undo", "delete", "import", "form"]
        create, update = log[3], log[2]
        assert create.changes["name"] == ["", "Anna"]
        assert create.changes["city"] == ["", "Åre"]
        assert "notes" not in create.changes  # empty values are not changes
        assert update.changes == {"city": ["Åre", "Umeå"], "notes": ["", "ny"]}
        assert log[1].batch_id == batch and log[0].batch_id == batch
        assert upd.updated_at is not None and update.at == upd.updated_at

    def test_actor(self, engine: sa.Engine) -> None:
        svc = RegisterService(engine, actor="kalle")
        rec = svc.create({"name": "X"})
        assert svc.history(rec.id)[0].actor == "kalle"
        assert RegisterService(engine).actor  # the OS user by default

    def test_log_row_is_in_the_same_transaction(self, service: RegisterService,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
        # If writing the change row fails, the customer is not saved either.
        def broken(_conn: Any, _rows: Any) -> None:
            raise RuntimeError("log failed")

        monkeypatch.setattr(service, "_log", broken)
        with pytest.raises(RuntimeError):
            add(service, "Anna")
        assert service.count() == 0
        monkeypatch.undo()
        rec = add(service, "Anna")
        monkeypatch.setattr(service, "_log", broken)
        with pytest.raises(RuntimeError):
            service.update(rec.id, {**rec.values(), "city": "Åre"}, rec.version)
        with pytest.raises(RuntimeError):
            service.delete([rec.id])
        got = service.get(rec.id)
        assert got is not None and got.city == "" and got.version == 1

    def test_changes_are_json_with_unicode(self, service: RegisterService) -> None:
        rec = add(service, "Åsa Öberg")
        with read_conn(service.engine) as conn:
            raw = conn.execute(sa.select(change_table.c.changes)
                               .where(change_table.c.customer_id == rec.id)).scalar_one()
        assert "Åsa Öberg" in raw
        assert json.loads(raw)["name"] == ["", "Åsa Öberg"]
