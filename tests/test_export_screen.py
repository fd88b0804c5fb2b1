"""Pilot and snapshot tests of the Kundlista screen (export): from the register's ``e``, with
the keyboard only; type, scope, file with completion and tree, the overwrite question, progress,
cancel, the closing message. Pilot tests run on SQLite and PostgreSQL; snapshots on SQLite
(100×30, fixed customers, fixed date, folders under a HOME of the test's own).

Update the pictures with ``pytest tests/test_export_screen.py --snapshot-update`` after a
deliberate change.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from textual.pilot import Pilot
from textual.widgets import Input, ProgressBar, RadioButton, RadioSet, Static

from kundreg_tui.app import KundregApp
from kundreg_tui.domain import export as ex
from kundreg_tui.domain.demo import fill_demo
from kundreg_tui.domain.export import ExportKind, ExportRequest, Scope, export_to_stream
from kundreg_tui.domain.register import RegisterService, Sort
from kundreg_tui.screens import export as export_screen
from kundreg_tui.screens.confirm import ConfirmScreen
from kundreg_tui.screens.export import ExportScreen
from kundreg_tui.screens.register import RegisterScreen
from tests.test_export import AWKWARD

SIZE = (100, 30)
TODAY = datetime(2026, 5, 9, 14, 30)
CSV_NAME = "kundinformation-2026-05-09.csv"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A HOME of the test's own (paths show as ``~/ut/…``), the working folder ``~/ut``, and a
    fixed date for the default file names."""
    home = tmp_path / "home"
    out = home / "ut"
    (out / "arkiv").mkdir(parents=True)
    (out / "gammal.csv").write_text("gammal\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(out)
    monkeypatch.setattr(export_screen, "_today", lambda: TODAY)
    yield out


@pytest.fixture
def out(_isolated: Path) -> Path:
    return _isolated


def make_app(service: RegisterService) -> KundregApp:
    return KundregApp(service)


def fill(service: RegisterService) -> dict[str, int]:
    """The awkward customers; number -> id."""
    return {r.number: r.id for r in (service.create(dict(c)) for c in AWKWARD)}


async def settle(pilot: Pilot[Any], rounds: int = 3) -> None:
    """Wait for the screens' workers (not the DirectoryTree's loader, which never ends)."""
    for _ in range(rounds):
        for worker in list(pilot.app.workers):
            if worker.group == "_loader" or worker.is_finished:
                continue
            try:
                await worker.wait()
            except Exception:
                pass
        await pilot.pause()


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


async def open_from_register(pilot: Pilot[Any]) -> ExportScreen:
    await settle(pilot)
    assert isinstance(pilot.app.screen, RegisterScreen)
    await pilot.press("e")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ExportScreen)
    return screen


async def export_and_wait(pilot: Pilot[Any], screen: ExportScreen) -> None:
    await pilot.press("ctrl+s")
    await pilot.pause()
    await wait_for(pilot, lambda: not screen.running)
    await settle(pilot)


def notes(app: KundregApp) -> list[str]:
    return [n.message for n in app._notifications]


def text(widget: Static) -> str:
    return str(widget.render())


def path_value(screen: ExportScreen) -> str:
    return screen.query_one("#export-path", Input).value


def expected(service: RegisterService, request: ExportRequest) -> bytes:
    buffer = io.BytesIO()
    export_to_stream(service, request, buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------------- pilot


async def test_e_opens_kundlista_with_the_registers_search_sort_and_marks(service: RegisterService) -> None:
    ids = fill(service)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        register = app.screen
        assert isinstance(register, RegisterScreen)
        register.sort = Sort("name", descending=True)
        register.marked = {ids["7"], ids["9"]}
        register.query_text = "berg"
        screen = await open_from_register(pilot)
        assert screen.query_text == "berg"
        assert screen.sort == Sort("name", descending=True)
        assert sorted(screen.marked_ids) == sorted([ids["7"], ids["9"]])
        assert screen.scope is Scope.MARKED  # marks win; then the search; then everyone
        assert screen.counts == {Scope.ALL: 5, Scope.SHOWN: 1, Scope.MARKED: 2}
        labels = {b.id: str(b.label) for b in screen.query(RadioButton)}
        assert labels["scope-all"] == "Alla kunder (5)"
        assert labels["scope-shown"] == "Som sökningen visar: ”berg” (1)"
        assert labels["scope-marked"] == "Markerade kunder (2)"
        assert path_value(screen) == f"~/ut/{CSV_NAME}"
        assert app.focused is screen.query_one("#export-kind", RadioSet)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)


async def test_without_search_or_marks_those_scopes_are_disabled(service: RegisterService) -> None:
    fill(service)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        assert screen.scope is Scope.ALL
        assert screen.query_one("#scope-shown", RadioButton).disabled
        assert screen.query_one("#scope-marked", RadioButton).disabled
        assert str(screen.query_one("#scope-shown", RadioButton).label) == "Som sökningen visar (ingen sökning)"


async def test_ctrl_s_exports_kundinformation_and_tells_path_and_count(service: RegisterService, out: Path) -> None:
    fill(service)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        await export_and_wait(pilot, screen)
        path = out / CSV_NAME
        assert path.read_bytes() == expected(service, ExportRequest())
        message = f"Kundlistan sparades i ~/ut/{CSV_NAME}: 5 kunder."
        assert message in notes(app)
        assert text(screen.query_one("#export-banner", Static)) == message
        assert screen.result is not None and screen.result.count == 5 and screen.result.path == path
        bar = screen.query_one("#export-progress", ProgressBar)
        assert bar.percentage == 1
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)


async def test_keyboard_only_xlsx_of_the_shown_customers(service: RegisterService, out: Path) -> None:
    fill(service)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        register = app.screen
        assert isinstance(register, RegisterScreen)
        await pilot.press("slash", *"oberg", "enter")
        await pilot.pause(0.2)
        await settle(pilot)
        screen = await open_from_register(pilot)
        assert screen.scope is Scope.SHOWN
        # type: down to "Kundlista för Excel (XLSX)", space to choose it
        await pilot.press("down", "space")
        assert screen.kind is ExportKind.EXCEL
        assert path_value(screen) == "~/ut/kundlista-2026-05-09.xlsx"
        assert "ett kalkylblad" in text(screen.query_one("#kind-help", Static)).lower()
        # scope: tab to the set, up to "Alla kunder", back down to the search
        await pilot.press("tab")
        assert app.focused is screen.query_one("#export-scope", RadioSet)
        await pilot.press("up", "space")
        assert screen.scope is Scope.ALL
        await pilot.press("down", "space")
        assert screen.scope is Scope.SHOWN
        await export_and_wait(pilot, screen)
        workbook = openpyxl.load_workbook(out / "kundlista-2026-05-09.xlsx")
        rows = list(workbook.active.iter_rows(values_only=True))  # type: ignore[union-attr]
        assert [r[0] for r in rows] == ["Kundnummer", "7"]
        assert rows[1][FIELD_INDEX_CITY] == "Västerås"


FIELD_INDEX_CITY = 11


async def test_kind_changes_the_file_name_or_only_its_extension(service: RegisterService) -> None:
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        kinds = screen.query_one("#export-kind", RadioSet)
        await pilot.press("down", "down", "down", "space")  # Utskrift
        assert path_value(screen) == "~/ut/kundlista-2026-05-09.txt"
        screen.query_one("#export-path", Input).value = "~/ut/min-lista.txt"
        kinds.focus()
        await pilot.press("up", "up", "space")  # Excel (XLSX)
        assert screen.kind is ExportKind.EXCEL
        assert path_value(screen) == "~/ut/min-lista.xlsx"
        screen.query_one("#export-path", Input).value = "~/ut/lista.dat"
        kinds.focus()
        await pilot.press("up", "space")
        assert path_value(screen) == "~/ut/lista.dat"  # a name of the user's own stays


async def test_existing_file_is_only_overwritten_after_the_question(service: RegisterService, out: Path) -> None:
    fill(service)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        field = screen.query_one("#export-path", Input)
        field.value = "~/ut/gammal.csv"
        await pilot.pause()
        assert "Filen finns redan" in text(screen.query_one("#path-info", Static))
        await pilot.press("ctrl+s")
        await pilot.pause()
        question = app.screen
        assert isinstance(question, ConfirmScreen)
        assert "~/ut/gammal.csv finns redan" in question.question
        await pilot.press("n")
        await settle(pilot)
        assert app.screen is screen and not screen.running
        assert (out / "gammal.csv").read_text() == "gammal\n"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("j")
        await pilot.pause()
        await wait_for(pilot, lambda: not screen.running)
        assert (out / "gammal.csv").read_bytes() == expected(service, ExportRequest())


async def test_a_path_that_cannot_be_written_is_told_and_nothing_runs(service: RegisterService, out: Path) -> None:
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        field = screen.query_one("#export-path", Input)
        for value, message in [("~/nej/lista.csv", "finns inte"), ("~/ut/arkiv", "är en mapp"),
                               ("", "Ange en fil")]:
            field.value = value
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert message in text(screen.query_one("#export-banner", Static))
            assert message in text(screen.query_one("#path-info", Static))
            assert not screen.running and app.focused is field
        assert sorted(p.name for p in out.iterdir()) == ["arkiv", "gammal.csv"]


async def test_path_completes_folder_entries(service: RegisterService) -> None:
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        field = screen.query_one("#export-path", Input)
        field.focus()
        field.value = ""
        await pilot.press(*"~/ut/ar")
        await wait_for(pilot, lambda: field._suggestion == "~/ut/arkiv/")
        await pilot.press("right")
        assert field.value == "~/ut/arkiv/"
        await pilot.press(*"lista.csv")
        assert "Ny fil i ~/ut/arkiv" in text(screen.query_one("#path-info", Static))


async def test_tree_chooses_the_folder_and_keeps_the_name(service: RegisterService, out: Path) -> None:
    fill(service)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        tree = screen.query_one("#export-tree")
        tree.focus()
        await wait_for(pilot, lambda: tree.cursor_node is not None and len(tree.root.children) == 2)  # type: ignore[attr-defined]
        await pilot.press("down", "enter")  # arkiv
        await pilot.pause()
        assert path_value(screen) == f"~/ut/arkiv/{CSV_NAME}"
        await export_and_wait(pilot, screen)
        assert (out / "arkiv" / CSV_NAME).exists()


async def test_escape_during_export_asks_and_cancels_without_a_file(
        service: RegisterService, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_demo(service.engine, 300)
    monkeypatch.setattr(ex, "CHUNK_ROWS", 10)
    add = ex._Ticker.add

    def slow_add(self: Any, n: int) -> None:
        time.sleep(0.05)
        add(self, n)

    monkeypatch.setattr(ex._Ticker, "add", slow_add)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        await pilot.press("down", "space")  # XLSX
        await pilot.press("ctrl+s")
        bar = screen.query_one("#export-progress", ProgressBar)
        await wait_for(pilot, lambda: (bar.progress or 0) > 0)
        assert screen.running and bar.total == 300
        assert screen.query_one("#export-form").disabled
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert screen.running  # the question does not stop it by itself
        await pilot.press("j")
        await wait_for(pilot, lambda: not screen.running)
        assert "Exporten avbröts. Ingen fil skrevs." in notes(app)
        assert sorted(p.name for p in out.iterdir()) == ["arkiv", "gammal.csv"]
        assert not screen.query_one("#export-form").disabled
        assert app.screen is screen
        assert app.focused is screen.query_one("#export-kind", RadioSet)  # focus is back where it was


async def test_continue_after_the_cancel_question_finishes_the_export(
        service: RegisterService, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_demo(service.engine, 200)
    monkeypatch.setattr(ex, "CHUNK_ROWS", 10)
    add = ex._Ticker.add
    monkeypatch.setattr(ex._Ticker, "add", lambda self, n: (time.sleep(0.03), add(self, n)))
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.running)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("n")
        await wait_for(pilot, lambda: not screen.running)
        assert screen.result is not None and screen.result.count == 200
        assert (out / CSV_NAME).exists()


async def test_search_text_is_shown_as_text_never_markup(service: RegisterService) -> None:
    service.create({"name": "[b]fet[/b] AB"})
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.screen.query_text = "[b]fet"  # type: ignore[attr-defined]
        screen = await open_from_register(pilot)
        assert str(screen.query_one("#scope-shown", RadioButton).label) == "Som sökningen visar: ”[b]fet” (1)"


async def test_a_database_fault_is_told_and_the_screen_stays(service: RegisterService,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fill(service)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise sa.exc.OperationalError("select", {}, Exception("server closed the connection"))

    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_register(pilot)
        monkeypatch.setattr(export_screen, "export_to_path", broken)
        await export_and_wait(pilot, screen)
        assert any("kunde inte sparas" in n for n in notes(app))
        assert app.screen is screen and not screen.running


# ---------------------------------------------------------------------- snapshots


@pytest.fixture
def snapshot_service(sqlite_engine: sa.Engine) -> RegisterService:
    service = RegisterService(sqlite_engine, actor="test")
    fill(service)
    return service


async def _open_pushed(pilot: Pilot[Any], out: Path, query: str = "berg", marked: int = 2) -> ExportScreen:
    app = pilot.app
    await settle(pilot)
    service = app.service  # type: ignore[attr-defined]
    ids = [r.id for r in service.page("", Sort(), 0, 10)][:marked]
    screen = ExportScreen(service, query, Sort(), ids, directory=out, today=TODAY)
    app.push_screen(screen)
    await settle(pilot)
    tree = screen.query_one("#export-tree")
    await wait_for(pilot, lambda: len(tree.root.children) == 2)  # type: ignore[attr-defined]
    await pilot.pause()
    return screen


def test_snapshot_export_screen(snap_compare: Any, snapshot_service: RegisterService, out: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _open_pushed(pilot, out)

    assert snap_compare(make_app(snapshot_service), terminal_size=SIZE, run_before=run_before)


def test_snapshot_excel_chosen(snap_compare: Any, snapshot_service: RegisterService, out: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _open_pushed(pilot, out, query="", marked=0)
        await pilot.press("down", "space")
        await pilot.pause()

    assert snap_compare(make_app(snapshot_service), terminal_size=SIZE, run_before=run_before)


def test_snapshot_overwrite_question(snap_compare: Any, snapshot_service: RegisterService, out: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _open_pushed(pilot, out)
        screen.query_one("#export-path", Input).value = "~/ut/gammal.csv"
        await pilot.press("ctrl+s")
        await pilot.pause()

    assert snap_compare(make_app(snapshot_service), terminal_size=SIZE, run_before=run_before)


def test_snapshot_after_export(snap_compare: Any, snapshot_service: RegisterService, out: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _open_pushed(pilot, out)
        await export_and_wait(pilot, screen)
        tree = screen.query_one("#export-tree")
        await wait_for(pilot, lambda: len(tree.root.children) == 3)  # type: ignore[attr-defined]
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(make_app(snapshot_service), terminal_size=SIZE, run_before=run_before)
