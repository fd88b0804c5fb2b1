"""Historik, Importer and Papperskorg in the domain (``domain/history.py``), on both databases."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from kundreg_tui.domain.csvread import Record
from kundreg_tui.domain.history import (
    customer_title,
    erase_from_trash,
    history_count,
    history_page,
    import_receipt,
    imports_count,
    list_imports,
    restore_customers,
    revert_change,
    trash_count,
    trash_ids,
    trash_items,
    trash_page,
)
from kundreg_tui.domain.importer import ImportError_, ImportOptions, ImportPlan, undo_import
from kundreg_tui.domain.models import change_table, customer_table
from kundreg_tui.domain.register import RegisterError, RegisterService, StaleError


def do_import(engine: sa.Engine, rows: Sequence[Sequence[str]], mapping: Sequence[str | None],
              *, label: str = "kunder.csv", source: str = "import", actor: str = "anna") -> int:
    records: list[Any] = [Record(n + 2, list(r), None) for n, r in enumerate(rows)]
    with ImportPlan(engine, ImportOptions(source=source, label=label), actor=actor) as plan:
        plan.build(records, mapping)
        receipt = plan.commit()
        plan.wait_checkpoint()
    return receipt.batch_id


def make(service: RegisterService, name: str, email: str = "", city: str = "") -> int:
    return service.create({"name": name, "email": email, "city": city}).id


# ---------------------------------------------------------------------- history
def test_history_newest_first_with_fields_and_batch(service: RegisterService) -> None:
    cid = make(service, "Anna Ek", "anna@ek.se", "Lund")
    rec = service.get(cid)
    assert rec is not None
    service.update(cid, {**rec.values(), "city": "Malmö"}, rec.version)
    batch = do_import(service.engine, [[rec.number, "Göteborg"]], ["number", "city"], label="ort.csv")
    assert history_count(service.engine, cid) == 3
    items = history_page(service.engine, cid, 0, 10)
    assert [i.action for i in items] == ["update", "update", "create"]
    newest = items[0]
    assert newest.source == "import" and newest.batch_id == batch
    assert newest.batch_kind == "import" and newest.batch_source == "ort.csv"
    assert newest.actor == "anna"
    assert newest.field_changes() == [("city", "Malmö", "Göteborg")]
    assert items[1].source == "form" and items[1].actor == "test"
    create = items[2].field_changes()
    assert ("name", "", "Anna Ek") in create and ("email", "", "anna@ek.se") in create
    # paging
    assert [i.id for i in history_page(service.engine, cid, 1, 1)] == [items[1].id]
    assert customer_title(service.engine, cid) == (rec.number, "Anna Ek", False)


def test_revert_update_restores_old_value_as_new_change(service: RegisterService) -> None:
    cid = make(service, "Anna Ek", "anna@ek.se", "Lund")
    rec = service.get(cid)
    assert rec is not None
    service.update(cid, {**rec.values(), "city": "Malmö", "phone": "040-123"}, rec.version)
    change = history_page(service.engine, cid)[0]
    result = revert_change(service.engine, change.id, actor="bertil")
    assert sorted(result.fields) == ["city", "phone"]
    now = service.get(cid)
    assert now is not None and now.city == "Lund" and now.phone == "" and now.version == rec.version + 2
    newest = history_page(service.engine, cid)[0]
    assert newest.action == "update" and newest.source == "revert" and newest.actor == "bertil"
    assert dict((f, (o, n)) for f, o, n in newest.field_changes()) == {
        "city": ("Malmö", "Lund"), "phone": ("040-123", "")}


def test_revert_refused_when_field_changed_since(service: RegisterService) -> None:
    cid = make(service, "Anna Ek", "", "Lund")
    rec = service.get(cid)
    assert rec is not None
    rec = service.update(cid, {**rec.values(), "city": "Malmö"}, rec.version)
    first = history_page(service.engine, cid)[0]
    service.update(cid, {**rec.values(), "city": "Umeå"}, rec.version)
    with pytest.raises(RegisterError, match="Ort har ändrats sedan dess"):
        revert_change(service.engine, first.id)
    now = service.get(cid)
    assert now is not None and now.city == "Umeå"
    assert history_count(service.engine, cid) == 3  # nothing recorded


def test_revert_other_field_changed_is_fine(service: RegisterService) -> None:
    cid = make(service, "Anna Ek", "", "Lund")
    rec = service.get(cid)
    assert rec is not None
    rec = service.update(cid, {**rec.values(), "city": "Malmö"}, rec.version)
    first = history_page(service.engine, cid)[0]
    service.update(cid, {**rec.values(), "phone": "08-1"}, rec.version)
    revert_change(service.engine, first.id)
    now = service.get(cid)
    assert now is not None and now.city == "Lund" and now.phone == "08-1"


def test_revert_goes_through_optimistic_locking(service: RegisterService, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = make(service, "Anna Ek", "", "Lund")
    rec = service.get(cid)
    assert rec is not None
    service.update(cid, {**rec.values(), "city": "Malmö"}, rec.version)
    change = history_page(service.engine, cid)[0]
    real_update = RegisterService.update

    def racing(self: RegisterService, customer_id: int, values: dict[str, str], expected_version: int,
               source: str = "form") -> object:
        # Another operator saves between the revert's read and its save.
        other = RegisterService(self.engine, "cecilia")
        cur = other.get(customer_id)
        assert cur is not None
        real_update(other, customer_id, {**cur.values(), "phone": "070-1"}, cur.version)
        return real_update(self, customer_id, values, expected_version, source)

    monkeypatch.setattr(RegisterService, "update", racing)
    with pytest.raises(StaleError):
        revert_change(service.engine, change.id)
    now = service.get(cid)
    assert now is not None and now.city == "Malmö"


def test_revert_delete_and_create(service: RegisterService) -> None:
    cid = make(service, "Anna Ek", "anna@ek.se")
    create = history_page(service.engine, cid)[0]
    revert_change(service.engine, create.id)  # a create reverted: to the trash
    assert service.get(cid) is None
    delete = history_page(service.engine, cid)[0]
    assert delete.action == "delete" and delete.source == "revert"
    revert_change(service.engine, delete.id)  # back from the trash
    assert service.get(cid) is not None
    assert history_page(service.engine, cid)[0].action == "restore"
    with pytest.raises(RegisterError, match="finns redan"):
        revert_change(service.engine, delete.id)


def test_erased_history_shows_no_data_and_cannot_be_reverted(service: RegisterService) -> None:
    from kundreg_tui.domain.erase import erase_customers

    cid = make(service, "Anna Ek", "anna@ek.se", "Lund")
    rec = service.get(cid)
    assert rec is not None
    service.update(cid, {**rec.values(), "city": "Malmö"}, rec.version)
    erase_customers(service.engine, [cid], actor="dpo")
    items = history_page(service.engine, cid)
    assert items[0].action == "erase" and items[0].actor == "dpo"
    assert all(i.erased and i.field_changes() == [] for i in items)
    assert "Anna" not in repr(items) and "Lund" not in repr(items)
    with pytest.raises(RegisterError, match="raderad permanent"):
        revert_change(service.engine, items[1].id)


# ---------------------------------------------------------------------- imports
def test_imports_listed_with_counts_and_receipt(service: RegisterService) -> None:
    make(service, "Gammal", "gammal@x.se")
    b1 = do_import(service.engine, [["ny1@x.se", "Ny Ett"], ["ny2@x.se", "Ny Två"], ["gammal@x.se", "Gammal"],
                                    ["trasig", "Fel"]], ["email", "name"], label="kunder.csv")
    b2 = do_import(service.engine, [["gammal@x.se", "Gammal AB"]], ["email", "name"],
                   label="klistra in", source="paste", actor="bertil")
    assert imports_count(service.engine) == 2
    items = list_imports(service.engine)
    assert [i.batch_id for i in items] == [b2, b1]
    assert items[0].source == "klistra in" and items[0].actor == "bertil" and items[0].counts["update"] == 1
    assert items[1].counts == {"new": 2, "update": 0, "same": 1, "error": 1}
    assert not items[1].undone
    receipt = import_receipt(service.engine, b1)
    assert receipt.created == ["1002", "1003"] and receipt.updated == []
    text = receipt.as_text()
    assert "kunder.csv" in text and "1002" in text and "hoppades över sparas inte" in text
    assert import_receipt(service.engine, b2).updated == ["1001"]
    # paging
    assert [i.batch_id for i in list_imports(service.engine, 1, 1)] == [b1]


def test_undo_import_marks_it_undone_and_receipt_stays(service: RegisterService) -> None:
    b1 = do_import(service.engine, [["ny1@x.se", "Ny Ett"]], ["email", "name"])
    undo_import(service.engine, b1, actor="anna")
    item = list_imports(service.engine)[0]
    assert item.undone
    receipt = import_receipt(service.engine, b1)
    assert receipt.created == ["1001"]
    assert "ångrades" in receipt.as_text()
    with pytest.raises(ImportError_, match="redan ångrad"):
        undo_import(service.engine, b1)


# ---------------------------------------------------------------------- trash
def test_trash_lists_deleted_with_who_and_restores(engine: sa.Engine) -> None:
    anna = RegisterService(engine, "anna")
    ids = [make(anna, f"Kund {n}", f"k{n}@x.se") for n in range(3)]
    RegisterService(engine, "bertil").delete(ids[:2])
    assert trash_count(engine) == 2
    page = trash_page(engine, 0, 10)
    assert sorted(t.number for t in page) == ["1001", "1002"]
    assert {t.deleted_by for t in page} == {"bertil"}
    assert sorted(trash_ids(engine)) == ids[:2]
    assert [t.id for t in trash_items(engine, [ids[0], ids[2]])] == [ids[0]]
    result = restore_customers(engine, [ids[0]], actor="cecilia")
    assert result.count == 1 and result.numbers == ["1001"]
    assert trash_count(engine) == 1
    assert anna.get(ids[0]) is not None
    newest = history_page(engine, ids[0])[0]
    assert newest.action == "restore" and newest.actor == "cecilia" and newest.source == "trash"
    # the deletion's own undo leaves the restored one alone and brings back the other
    batch = history_page(engine, ids[1])[0].batch_id
    assert batch is not None
    assert anna.undo_delete(batch) == 1
    assert trash_count(engine) == 0


def test_restore_refused_when_email_now_used(service: RegisterService) -> None:
    a = make(service, "Anna", "anna@x.se")
    b = make(service, "Bo", "bo@x.se")
    service.delete([a, b])
    make(service, "Anna Ny", "ANNA@x.se")
    with pytest.raises(RegisterError, match="anna@x.se används nu av kund 1003"):
        restore_customers(service.engine, [a, b])
    assert trash_count(service.engine) == 2  # all or none
    assert restore_customers(service.engine, [b]).count == 1


def test_restore_refused_when_two_share_an_email(service: RegisterService) -> None:
    a = make(service, "Anna", "anna@x.se")
    service.delete([a])
    b = make(service, "Anna 2", "anna@x.se")
    service.delete([b])
    with pytest.raises(RegisterError, match="samma e-postadress"):
        restore_customers(service.engine, [a, b])
    restore_customers(service.engine, [b])
    assert service.get(b) is not None


def test_erase_from_trash_marked_and_all(service: RegisterService) -> None:
    ids = [make(service, f"Kund {n}", f"k{n}@x.se", "Lund") for n in range(4)]
    service.delete(ids[:3])
    result = erase_from_trash(service.engine, [ids[0], ids[3]], actor="dpo")  # ids[3] is live: left alone
    assert result.count == 1 and result.numbers == ["1001"]
    assert service.get(ids[3]) is not None
    assert trash_count(service.engine) == 2
    result = erase_from_trash(service.engine, None, actor="dpo")
    assert result.count == 2 and trash_count(service.engine) == 0
    with service.engine.connect() as conn:
        rows = conn.execute(sa.select(customer_table.c.number, customer_table.c.name, customer_table.c.email)
                            .where(customer_table.c.id.in_(ids[:3]))).all()
        assert all(r.name == "" and r.email == "" for r in rows)  # tombstones: the number only
        logged = conn.execute(sa.select(change_table.c.changes).where(change_table.c.customer_id.in_(ids[:3]))).scalars()
        assert all(json.loads(c) == {"erased": True} for c in logged)
    assert customer_title(service.engine, ids[0]) == ("1001", "", True)
    with pytest.raises(RegisterError):
        restore_customers(service.engine, [ids[0]])


def test_undone_import_creations_are_in_the_trash(service: RegisterService) -> None:
    b1 = do_import(service.engine, [["ny1@x.se", "Ny Ett"]], ["email", "name"])
    undo_import(service.engine, b1, actor="anna")
    page = trash_page(service.engine)
    assert [(t.number, t.deleted_by) for t in page] == [("1001", "anna")]
