"""Historik, Importer and Papperskorg on screen: Pilot tests and SVG snapshots (110×32).

Deterministic: fixed times (stored in UTC, shown in the test's time zone UTC), fixed users, a
fresh register, and every worker finished before a picture is taken.
Update with ``pytest tests/test_history_screens.py --snapshot-update`` after a deliberate change.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from kundreg_tui.app import KundregApp, styles_dir
from kundreg_tui.domain.erase import erase_customers
from kundreg_tui.domain.models import batch_table, change_table, customer_table
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.screens.confirm import ConfirmScreen
from kundreg_tui.screens.history import HistoryScreen
from kundreg_tui.screens.imports import ImportReceiptView, ImportsScreen
from kundreg_tui.screens.trash import TrashScreen
from kundreg_tui.widgets.pagedtable import PagedTable
from tests.test_history import do_import

SIZE = (110, 32)
T0 = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)


class HistoryApp(KundregApp):
    # The lead adds history.tcss to the App's CSS_PATH; until then the tests add it themselves.
    CSS_PATH: ClassVar[list[str | Path]] = [
        *KundregApp.CSS_PATH,
        *([] if any(str(p).endswith("history.tcss") for p in KundregApp.CSS_PATH)
          else [styles_dir() / "history.tcss"]),
    ]


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def make_app(engine: sa.Engine, actor: str = "test") -> HistoryApp:
    return HistoryApp(RegisterService(engine, actor=actor))


async def settle(pilot: Pilot[Any], rounds: int = 4) -> None:
    for _ in range(rounds):
        for worker in list(pilot.app.workers):
            if worker.is_finished:
                continue
            try:
                await worker.wait()
            except Exception:
                pass
        await pilot.pause()


def screen_text(app: KundregApp) -> str:
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def banner(app: KundregApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def fix_times(engine: sa.Engine) -> None:
    """Every change and batch at T0 + its id minutes (deterministic pictures)."""
    with engine.begin() as conn:
        for table in (change_table, batch_table):
            for (row_id,) in conn.execute(sa.select(table.c.id)).all():
                conn.execute(sa.update(table).where(table.c.id == row_id)
                             .values(at=T0.replace(minute=row_id % 60)))
        for (row_id,) in conn.execute(sa.select(batch_table.c.id).where(batch_table.c.undone_at.is_not(None))):
            conn.execute(sa.update(batch_table).where(batch_table.c.id == row_id)
                         .values(undone_at=T0.replace(hour=12)))
        conn.execute(sa.update(customer_table).where(customer_table.c.deleted_at.is_not(None))
                     .values(deleted_at=T0.replace(hour=10)))


def history_data(engine: sa.Engine) -> int:
    """Anna Ek: created in the form by anna, moved by bertil, imported over by cecilia."""
    anna = RegisterService(engine, "anna")
    rec = anna.create({"name": "Anna Ek", "email": "anna@ek.se", "city": "Lund", "phone": "046-12 34 56"})
    rec = RegisterService(engine, "bertil").update(rec.id, {**rec.values(), "city": "Malmö",
                                                             "address": "Storgatan 1"}, rec.version)
    do_import(engine, [[rec.number, "Göteborg", "[bold]Ek & Co[/bold]"]], ["number", "city", "reference"],
              label="ort.csv", actor="cecilia")
    fix_times(engine)
    return rec.id


async def open_screen(pilot: Pilot[Any], screen: Any) -> None:
    await settle(pilot)
    pilot.app.push_screen(screen)
    await settle(pilot)


# ---------------------------------------------------------------------- Historik
async def test_history_lists_changes_newest_first(sqlite_engine: sa.Engine) -> None:
    cid = history_data(sqlite_engine)
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, HistoryScreen(app.service, cid))
        table = app.screen.query_one("#history-table", PagedTable)
        assert table.row_count == 3
        rows = [table.row_at(i) for i in range(3)]
        assert [r.cells["action"] for r in rows if r] == ["Ändrad", "Ändrad", "Skapad"]
        newest = rows[0]
        assert newest is not None
        assert newest.cells["who"] == "cecilia" and newest.cells["from"] == "import 1 (ort.csv)"
        assert newest.cells["at"] == "2024-03-05 09:03"
        assert "Ort: Malmö → Göteborg" in str(newest.cells["changes"])
        assert rows[1] is not None and rows[1].cells["from"] == "formulär"
        text = screen_text(app)
        assert "Kund 1001 — Anna Ek" in text
        assert "[bold]Ek & Co[/bold]" in text  # data is never markup
        await pilot.press("down")
        await settle(pilot)
        detail = banner(app, "#history-detail")
        assert "Adress: – → Storgatan 1" in detail and "av bertil, från formulär" in detail
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, HistoryScreen)


async def test_history_revert_and_conflict(sqlite_engine: sa.Engine) -> None:
    cid = history_data(sqlite_engine)
    app = make_app(sqlite_engine, actor="david")
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, HistoryScreen(app.service, cid))
        await pilot.press("down", "r")  # bertil's change: the city has changed since (the import)
        await settle(pilot)
        assert "Ort har ändrats sedan dess" in banner(app, "#history-banner")
        rec = app.service.get(cid)
        assert rec is not None and rec.city == "Göteborg"
        await pilot.press("home", "r")  # the import's change: reverted
        await settle(pilot)
        assert "Ändringen är återställd" in banner(app, "#history-banner")
        rec = app.service.get(cid)
        assert rec is not None and rec.city == "Malmö" and rec.reference == ""
        table = app.screen.query_one("#history-table", PagedTable)
        assert table.row_count == 4
        first = table.row_at(0)
        assert first is not None and first.cells["who"] == "david" and first.cells["from"] == "återställd ändring"
        await pilot.press("escape")
        await settle(pilot)


async def test_history_of_erased_customer_shows_no_data(sqlite_engine: sa.Engine) -> None:
    cid = history_data(sqlite_engine)
    erase_customers(sqlite_engine, [cid], actor="dpo")
    fix_times(sqlite_engine)
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, HistoryScreen(app.service, cid))
        text = screen_text(app)
        assert "raderad permanent av dpo, 2024-03-05 09:04" in text.lower()
        for secret in ("Anna", "Lund", "Malmö", "Göteborg", "anna@ek.se", "Storgatan"):
            assert secret not in text
        await pilot.press("down", "r")
        await settle(pilot)
        assert "raderad permanent" in banner(app, "#history-banner")


# ---------------------------------------------------------------------- Importer
def imports_data(engine: sa.Engine) -> tuple[int, int]:
    RegisterService(engine, "anna").create({"name": "Gammal", "email": "gammal@x.se"})
    b1 = do_import(engine, [["ny1@x.se", "Ny Ett"], ["ny2@x.se", "Ny Två"], ["gammal@x.se", "Gammal"],
                            ["trasig", "Fel"]], ["email", "name"], label="kunder.csv", actor="anna")
    b2 = do_import(engine, [["gammal@x.se", "Gammal AB"]], ["email", "name"], label="klistra in",
                   source="paste", actor="bertil")
    fix_times(engine)
    return b1, b2


async def test_imports_list_receipt_and_undo(sqlite_engine: sa.Engine) -> None:
    b1, b2 = imports_data(sqlite_engine)
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, ImportsScreen(app.service))
        table = app.screen.query_one("#imports-table", PagedTable)
        assert table.row_count == 2
        first, second = table.row_at(0), table.row_at(1)
        assert first is not None and second is not None
        assert first.cells["source"] == "klistra in" and first.cells["who"] == "bertil"
        assert (second.cells["new"], second.cells["update"], second.cells["same"], second.cells["error"]) == \
            ("2", "0", "1", "1")
        # enter: the receipt of the older one
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ImportReceiptView)
        summary = banner(app, "#import-receipt-summary")
        assert "kunder.csv" in summary and "sparas inte" in summary
        receipt_table = app.screen.query_one("#import-receipt-table", PagedTable)
        assert [receipt_table.row_at(i).cells["number"] for i in range(2)] == ["1002", "1003"]  # type: ignore[union-attr]
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ImportsScreen)
        # ctrl+z on the newest: asks first; n keeps it
        await pilot.press("home", "ctrl+z")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        rec = app.service.find_by_number("1001")
        assert rec is not None and rec.name == "Gammal AB"
        await pilot.press("ctrl+z")
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot)
        assert "Import 2 är ångrad" in banner(app, "#imports-banner")
        rec = app.service.find_by_number("1001")
        assert rec is not None and rec.name == "Gammal"
        row = table.row_at(0)
        assert row is not None and str(row.cells["status"]).startswith("20")
        # again: refused clearly
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert "redan ångrad" in banner(app, "#imports-banner")


async def test_undo_import_refused_when_changed_since(sqlite_engine: sa.Engine) -> None:
    imports_data(sqlite_engine)
    app = make_app(sqlite_engine)
    service = app.service
    rec = service.find_by_number("1002")
    assert rec is not None
    service.update(rec.id, {**rec.values(), "city": "Lund"}, rec.version)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, ImportsScreen(service))
        await pilot.press("down", "ctrl+z")
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot)
        assert "kund 1002 har ändrats efter importen" in banner(app, "#imports-banner")
        assert service.find_by_number("1002") is not None


# ---------------------------------------------------------------------- Papperskorg
def trash_data(engine: sa.Engine) -> list[int]:
    anna = RegisterService(engine, "anna")
    ids = [anna.create({"name": name, "email": email, "city": "Lund"}).id for name, email in [
        ("Anna Ek", "anna@ek.se"), ("Bo Berg", "bo@berg.se"), ("Cilla [red]Ceder[/red]", "cilla@x.se"),
        ("Dan Dahl", "")]]
    RegisterService(engine, "bertil").delete(ids[:3])
    fix_times(engine)
    return ids


async def test_trash_restore_marked_and_refusal(sqlite_engine: sa.Engine) -> None:
    ids = trash_data(sqlite_engine)
    app = make_app(sqlite_engine)
    service = app.service
    service.create({"name": "Bo Ny", "email": "BO@berg.se"})  # bo@berg.se is taken now
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, TrashScreen(service))
        table = app.screen.query_one("#trash-table", PagedTable)
        assert table.row_count == 3
        first = table.row_at(0)
        assert first is not None and first.cells["who"] == "bertil" and first.cells["at"] == "2024-03-05 10:00"
        assert "3 kunder i papperskorgen" in banner(app, "#trash-status")
        # mark Anna and Bo (sorted by number: 1001, 1002), restore: refused for Bo, nothing restored
        await pilot.press("space", "space")
        assert "2 markerade" in banner(app, "#trash-status")
        await pilot.press("r")
        await settle(pilot)
        assert "e-postadressen bo@berg.se används nu av kund 1005" in banner(app, "#trash-banner")
        assert service.get(ids[0]) is None
        # unmark Bo, restore Anna
        await pilot.press("up", "space", "r")
        await settle(pilot)
        assert "1 kund återställd till kundregistret: 1001" in banner(app, "#trash-banner")
        assert service.get(ids[0]) is not None
        assert table.row_count == 2
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, TrashScreen)


async def test_trash_erase_one_and_empty(sqlite_engine: sa.Engine) -> None:
    ids = trash_data(sqlite_engine)
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, TrashScreen(app.service))
        await pilot.press("delete")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert "Radera 1 kund permanent?" in confirm.question and "1001  Anna Ek" in confirm.details
        await pilot.press("j")
        await settle(pilot)
        assert "1 kund raderad permanent." in banner(app, "#trash-banner")
        table = app.screen.query_one("#trash-table", PagedTable)
        assert table.row_count == 2
        await pilot.press("t")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert "Radera alla 2 kunder i papperskorgen permanent?" in confirm.question
        assert "1002  Bo Berg" in confirm.details and "Cilla [red]Ceder[/red]" in confirm.details
        await pilot.press("escape")  # cancelled: nothing erased
        await settle(pilot)
        assert table.row_count == 2
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot)
        assert table.row_count == 0
        assert "Papperskorgen är tom." in screen_text(app)
    with sqlite_engine.connect() as conn:
        names = conn.execute(sa.select(customer_table.c.name).where(customer_table.c.id.in_(ids[:3]))).scalars()
        assert set(names) == {""}


# ---------------------------------------------------------------------- snapshots
def test_snapshot_history(snap_compare: Any, sqlite_engine: sa.Engine) -> None:
    cid = history_data(sqlite_engine)

    async def run_before(pilot: Pilot[Any]) -> None:
        await open_screen(pilot, HistoryScreen(pilot.app.service, cid))  # type: ignore[attr-defined]
        await pilot.press("down")
        await settle(pilot)

    assert snap_compare(make_app(sqlite_engine), terminal_size=SIZE, run_before=run_before)


def test_snapshot_imports(snap_compare: Any, sqlite_engine: sa.Engine) -> None:
    b1, _b2 = imports_data(sqlite_engine)
    from kundreg_tui.domain.importer import undo_import

    undo_import(sqlite_engine, b1, actor="anna")
    fix_times(sqlite_engine)

    async def run_before(pilot: Pilot[Any]) -> None:
        await open_screen(pilot, ImportsScreen(pilot.app.service))  # type: ignore[attr-defined]

    assert snap_compare(make_app(sqlite_engine), terminal_size=SIZE, run_before=run_before)


def test_snapshot_trash(snap_compare: Any, sqlite_engine: sa.Engine) -> None:
    trash_data(sqlite_engine)

    async def run_before(pilot: Pilot[Any]) -> None:
        await open_screen(pilot, TrashScreen(pilot.app.service))  # type: ignore[attr-defined]
        await pilot.press("down", "space")
        await settle(pilot)

    assert snap_compare(make_app(sqlite_engine), terminal_size=SIZE, run_before=run_before)
