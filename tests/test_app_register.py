"""Pilot tests of the Kundregister screen: every key of the key table, search, sort, marks,
delete and undo, and the way back from the form.

The helpers at the top are shared with the form, safety and snapshot tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from textual.pilot import Pilot
from textual.widgets import Footer, Input, Static
from textual.widgets._footer import FooterKey

from kundreg_tui.app import KundregApp
from kundreg_tui.domain.register import RegisterService, Sort
from kundreg_tui.screens.confirm import ConfirmScreen
from kundreg_tui.screens.customer_form import CustomerForm
from kundreg_tui.screens.delete import DeleteScreen
from kundreg_tui.screens.help import HelpScreen
from kundreg_tui.screens.register import RegisterScreen
from kundreg_tui.widgets.pagedtable import PagedTable

SIZE = (100, 30)

# Fixed customers: Swedish letters for the sort, numbers that sort numerically, an e-mail and
# an org. number to search for. In number order: 1, 2, 3, 10, 21.
CUSTOMERS: list[dict[str, str]] = [
    {"number": "10", "name": "Österlund Konsult AB", "city": "Umeå", "email": "info@osterlund.se",
     "org_number": "556036-0793", "phone": "090-12 34 56"},
    {"number": "2", "name": "Zeta Bygg AB", "city": "Ystad", "email": "kontakt@zeta.se",
     "org_number": "5567037485", "phone": "0411-55 66 77"},
    {"number": "1", "name": "Ärlig Handel HB", "city": "Örebro", "phone": "019-10 20 30"},
    {"number": "21", "kind": "person", "name": "Anna Berg", "first_name": "Anna", "last_name": "Berg",
     "city": "Göteborg", "email": "anna.berg@example.se", "phone": "070-123 45 67"},
    {"number": "3", "name": "Åberg & Co", "city": "Malmö", "email": "hej@aberg.se", "phone": "040-11 22 33"},
]
BY_NUMBER = ["Ärlig Handel HB", "Zeta Bygg AB", "Åberg & Co", "Österlund Konsult AB", "Anna Berg"]
BY_NAME = ["Anna Berg", "Zeta Bygg AB", "Åberg & Co", "Ärlig Handel HB", "Österlund Konsult AB"]
BY_CITY = ["Anna Berg", "Åberg & Co", "Österlund Konsult AB", "Zeta Bygg AB", "Ärlig Handel HB"]


# ---------------------------------------------------------------------- shared helpers


@pytest.fixture
def sqlite_service(sqlite_engine: sa.Engine) -> RegisterService:
    return RegisterService(sqlite_engine, actor="test")


def fill(service: RegisterService, customers: list[dict[str, str]] = CUSTOMERS) -> dict[str, int]:
    """Create the customers; name -> id."""
    return {c["name"]: service.create(dict(c)).id for c in customers}


def busy(app: KundregApp) -> bool:
    if any(not worker.is_finished for worker in app.workers):
        return True
    for screen in app.screen_stack:
        for table in screen.query(PagedTable):
            if table.is_loading or table._fetching or table._fetch_scheduled:
                return True
    return False


async def idle(pilot: Pilot[Any], timeout: float = 15.0) -> None:
    """Wait until every worker has finished and the tables have their rows."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        await app.workers.wait_for_complete()
        await pilot.pause()
        quiet = 0 if busy(app) else quiet + 1  # type: ignore[arg-type]
        if time.monotonic() > deadline:
            raise AssertionError("the app did not settle")


async def search_for(pilot: Pilot[Any], text: str) -> None:
    """Type into the register's search field (it waits 50 ms for the last keystroke)."""
    search = pilot.app.screen.query_one("#search", Input)
    search.value = text
    await pilot.pause(0.12)
    await idle(pilot)


async def start(pilot: Pilot[Any]) -> RegisterScreen:
    await idle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, RegisterScreen)
    return screen


def table_of(app: KundregApp) -> PagedTable:
    return app.screen.query_one("#customers", PagedTable)


def cells(app: KundregApp, column: str = "name") -> list[str]:
    table = table_of(app)
    out = []
    for index in range(table.row_count):
        row = table.row_at(index)
        assert row is not None, f"row {index} not loaded"
        out.append(str(row.cells[column]))
    return out


def cursor_name(app: KundregApp) -> str:
    row = table_of(app).current_row()
    assert row is not None
    return str(row.cells["name"])


def status(app: KundregApp) -> str:
    return str(app.screen.query_one("#status", Static).render())


def text_of(widget: Static) -> str:
    return str(widget.render())


def notes(app: KundregApp) -> list[str]:
    return [n.message for n in app._notifications]


async def move_to(pilot: Pilot[Any], name: str) -> None:
    names = cells(pilot.app)  # type: ignore[arg-type]
    table_of(pilot.app).move_cursor(names.index(name))  # type: ignore[arg-type]
    await pilot.pause()


# ---------------------------------------------------------------------- start screen


async def test_start_shows_customers_in_number_order_and_status(service: RegisterService) -> None:
    fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        assert cells(app) == BY_NUMBER
        assert cells(app, "number") == ["1", "2", "3", "10", "21"]
        assert cells(app, "mark") == ["☐"] * 5
        assert status(app) == "5 kunder  ·  5 visas  ·  0 markerade"
        assert app.focused is table_of(app)
        assert not app.screen.query_one("#empty-hint").display


async def test_empty_register_shows_the_hint(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        hint = app.screen.query_one("#empty-hint", Static)
        assert hint.display
        assert "Kundregistret är tomt" in text_of(hint)
        assert "n för Ny kund" in text_of(hint)
        assert status(app) == "0 kunder  ·  0 visas  ·  0 markerade"
        # Nothing to mark or delete: the keys do nothing and nothing breaks.
        await pilot.press("space", "delete", "enter", "a")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)


async def test_footer_shows_the_main_keys_in_swedish_and_fits(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        keys = {k.key_display: k.description for k in app.screen.query_one(Footer).query(FooterKey)}
        assert keys == {
            "/": "Sök", "n": "Ny kund", "⏎": "Ändra", "space": "Markera", "del": "Radera",
            "i": "Import", "p": "Klistra in", "e": "Export", "?": "Hjälp", "^q": "Avsluta",
        }
        for key in app.screen.query_one(Footer).query(FooterKey):
            assert key.region.right <= SIZE[0], f"{key.key_display} is cut off"


# ---------------------------------------------------------------------- search


async def test_slash_search_typing_filters_and_escape_returns_to_table(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        search = app.screen.query_one("#search", Input)
        await pilot.press("slash")
        assert app.focused is search
        await pilot.press("z", "e", "t", "a")
        await pilot.pause(0.12)
        await idle(pilot)
        assert search.value == "zeta"
        assert cells(app) == ["Zeta Bygg AB"]
        assert status(app) == "5 kunder  ·  1 visas  ·  0 markerade"
        await pilot.press("escape")
        assert app.focused is table_of(app)
        assert isinstance(app.screen, RegisterScreen)  # escape did not leave anything
        assert cells(app) == ["Zeta Bygg AB"]  # the search stays
        # Escape in the table clears the search.
        await pilot.press("escape")
        await idle(pilot)
        assert search.value == ""
        assert cells(app) == BY_NUMBER


async def test_search_without_match_says_so(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await search_for(pilot, "finns inte")
        hint = app.screen.query_one("#empty-hint", Static)
        assert hint.display
        assert "Ingen kund matchar sökningen" in text_of(hint)
        await search_for(pilot, "")
        assert not hint.display


async def test_enter_in_search_goes_to_table_not_form(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("slash", "b", "e", "r", "g")
        await pilot.pause(0.12)
        await pilot.press("enter")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert app.focused is table_of(app)
        assert sorted(cells(app)) == ["Anna Berg", "Åberg & Co"]
        # Down in the search field goes to the table too.
        await pilot.press("slash", "down")
        assert app.focused is table_of(app)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("osterlund", ["Österlund Konsult AB"]),  # Swedish letters fold
        ("ÖSTERLUND", ["Österlund Konsult AB"]),
        ("aberg", ["Åberg & Co"]),
        ("2", ["Zeta Bygg AB", "Anna Berg"]),  # customer number prefix: 2, 21
        ("21", ["Anna Berg"]),
        ("kontakt@zeta.se", ["Zeta Bygg AB"]),  # e-mail
        ("anna.berg@", ["Anna Berg"]),
        ("556036-0793", ["Österlund Konsult AB"]),  # org. number, as written
        ("5560360793", ["Österlund Konsult AB"]),  # and without the dash
        ("556703-7485", ["Zeta Bygg AB"]),
    ],
)
async def test_search_finds(service: RegisterService, query: str, expected: list[str]) -> None:
    fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await search_for(pilot, query)
        assert cells(app) == expected


# ---------------------------------------------------------------------- sort


async def test_sort_keys_swedish_and_numeric_order_again_reverses(service: RegisterService) -> None:
    fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        await idle(pilot)
        assert cells(app) == BY_NAME  # … Z Å Ä Ö
        await pilot.press("2")
        await idle(pilot)
        assert cells(app) == BY_NAME[::-1]
        await pilot.press("3")
        await idle(pilot)
        assert cells(app, "city") == ["Göteborg", "Malmö", "Umeå", "Ystad", "Örebro"]
        await pilot.press("1")
        await idle(pilot)
        assert cells(app, "number") == ["1", "2", "3", "10", "21"]  # 2 before 10
        await pilot.press("1")
        await idle(pilot)
        assert cells(app, "number") == ["21", "10", "3", "2", "1"]
        # 4 and 5 sort on e-post and telefon, and show those columns.
        await pilot.press("4")
        await idle(pilot)
        emails = [e for e in cells(app, "email") if e]
        assert emails == sorted(emails)
        assert "email" in [c.key for c in table_of(app).columns]
        await pilot.press("5")
        await idle(pilot)
        assert cells(app, "phone") == sorted(c["phone"] for c in CUSTOMERS)


async def test_header_click_sorts_and_again_reverses(service: RegisterService) -> None:
    fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        # Columns: mark (3 cells), Kundnummer (14), then Kundnamn.
        await pilot.click("#customers", offset=(20, 0))
        await idle(pilot)
        assert cells(app) == BY_NAME
        await pilot.click("#customers", offset=(20, 0))
        await idle(pilot)
        assert cells(app) == BY_NAME[::-1]
        await pilot.click("#customers", offset=(5, 0))
        await idle(pilot)
        assert cells(app, "number") == ["1", "2", "3", "10", "21"]
        # The mark column does not sort.
        await pilot.click("#customers", offset=(1, 0))
        await idle(pilot)
        assert cells(app, "number") == ["1", "2", "3", "10", "21"]


@pytest.mark.parametrize("column", ["number", "name", "city", "email", "phone"])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("query", ["", "berg"])
def test_position_of_matches_the_page_order(service: RegisterService, column: str, descending: bool,
                                            query: str) -> None:
    """Where the cursor lands after a reload: the index of the customer in the shown order
    (NULL e-mails sort first on SQLite and last on PostgreSQL), deleted ones included."""
    ids = fill(service)
    sort = Sort(column, descending)
    order = [r.id for r in service.page(query, sort, 0, 100)]
    # The table's light rows come in the same order, with the shown fields.
    rows = service.rows(query, sort, 0, 100)
    assert [r[0] for r in rows] == order
    assert [r[1:] for r in rows] == [(c.number, c.name, c.city, c.email, c.phone)
                                     for c in service.page(query, sort, 0, 100)]
    assert [r[0] for r in service.rows(query, sort, 2, 2)] == order[2:4]
    for index, customer_id in enumerate(order):
        assert service.position(customer_id, query, sort) == index
    # A deleted customer "is" where the next one now is.
    gone = ids["Åberg & Co"]
    if gone in order:
        at = order.index(gone)
        service.delete([gone])
        assert service.position(gone, query, sort) == at
    assert service.position(10**9, query, sort) is None


# ---------------------------------------------------------------------- marks


async def test_space_marks_and_unmarks_and_status_counts(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("space")
        await idle(pilot)
        assert cells(app, "mark") == ["☑", "☐", "☐", "☐", "☐"]
        assert table_of(app).cursor_row == 1  # on to the next customer
        assert status(app) == "5 kunder  ·  5 visas  ·  1 markerad"
        await pilot.press("space")
        await idle(pilot)
        assert cells(app, "mark") == ["☑", "☑", "☐", "☐", "☐"]
        assert status(app).endswith("2 markerade")
        await pilot.press("up", "space")
        await idle(pilot)
        assert cells(app, "mark") == ["☑", "☐", "☐", "☐", "☐"]
        assert status(app).endswith("1 markerad")
        # The marks are drawn, not just remembered.
        assert table_of(app).render_line(1).text.lstrip().startswith("☑")


async def test_a_marks_all_shown_and_again_unmarks(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("space")  # one marked already: `a` marks the rest
        await pilot.press("a")
        await idle(pilot)
        assert cells(app, "mark") == ["☑"] * 5
        assert status(app).endswith("5 markerade")
        await pilot.press("a")  # all shown marked: `a` unmarks them
        await idle(pilot)
        assert cells(app, "mark") == ["☐"] * 5
        assert status(app).endswith("0 markerade")
        # Only the shown ones.
        await search_for(pilot, "berg")
        await pilot.press("a")
        await idle(pilot)
        assert cells(app, "mark") == ["☑", "☑"]
        assert status(app) == "5 kunder  ·  2 visas  ·  2 markerade"
        await search_for(pilot, "")
        assert sorted(n for n, m in zip(cells(app), cells(app, "mark"), strict=True) if m == "☑") == [
            "Anna Berg", "Åberg & Co"]


# ---------------------------------------------------------------------- delete and undo


async def test_delete_names_how_many_and_which_then_undo(service: RegisterService) -> None:
    fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await move_to(pilot, "Zeta Bygg AB")
        await pilot.press("space")  # Zeta
        await move_to(pilot, "Österlund Konsult AB")
        await pilot.press("space")  # Österlund; the cursor moves on to Anna Berg
        await idle(pilot)
        await move_to(pilot, "Åberg & Co")
        await pilot.press("delete")
        await idle(pilot)
        dialog = app.screen
        assert isinstance(dialog, DeleteScreen)
        assert text_of(dialog.query_one("#delete-question", Static)) == "Vill du radera 2 kunder?"
        listed = text_of(dialog.query_one("#delete-list", Static))
        assert listed.splitlines() == ["2  Zeta Bygg AB", "10  Österlund Konsult AB"]
        await pilot.press("j")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert service.count() == 3
        assert cells(app) == ["Ärlig Handel HB", "Åberg & Co", "Anna Berg"]
        assert cursor_name(app) == "Åberg & Co"  # the cursor stays on its customer
        assert status(app) == "3 kunder  ·  3 visas  ·  0 markerade"
        assert "2 kunder raderade. Ångra med ctrl+z." in notes(app)
        await pilot.press("ctrl+z")
        await idle(pilot)
        assert service.count() == 5
        assert cells(app) == BY_NUMBER
        assert cursor_name(app) == "Zeta Bygg AB"  # on the first restored customer
        assert "2 kunder återställda." in notes(app)
        # Nothing more to undo.
        await pilot.press("ctrl+z")
        await idle(pilot)
        assert "Det finns ingen radering att ångra." in notes(app)


async def test_delete_without_marks_takes_the_cursor_row_and_cursor_moves_on(service: RegisterService) -> None:
    fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await move_to(pilot, "Åberg & Co")
        await pilot.press("delete")
        await idle(pilot)
        assert isinstance(app.screen, DeleteScreen)
        assert text_of(app.screen.query_one("#delete-question", Static)) == "Vill du radera 1 kund?"
        assert text_of(app.screen.query_one("#delete-list", Static)) == "3  Åberg & Co"
        await pilot.press("j")
        await idle(pilot)
        assert cells(app) == ["Ärlig Handel HB", "Zeta Bygg AB", "Österlund Konsult AB", "Anna Berg"]
        assert cursor_name(app) == "Österlund Konsult AB"  # the one after the deleted customer
        assert "3 Åberg & Co raderad. Ångra med ctrl+z." in notes(app)
        await pilot.press("u")  # u undoes too
        await idle(pilot)
        assert cursor_name(app) == "Åberg & Co"


async def test_delete_cancel_deletes_nothing(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("delete")
        await idle(pilot)
        assert isinstance(app.screen, DeleteScreen)
        assert app.focused is not None and app.focused.id == "no"  # enter would cancel
        await pilot.press("escape")
        await idle(pilot)
        await pilot.press("delete")
        await idle(pilot)
        await pilot.press("n")
        await idle(pilot)
        await pilot.press("delete")
        await idle(pilot)
        await pilot.press("enter")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert sqlite_service.count() == 5


async def test_delete_of_many_lists_ten_and_counts_the_rest(sqlite_service: RegisterService) -> None:
    fill(sqlite_service, [{"name": f"Kund {n:02d}"} for n in range(14)])
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("a")
        await idle(pilot)
        await pilot.press("delete")
        await idle(pilot)
        assert text_of(app.screen.query_one("#delete-question", Static)) == "Vill du radera 14 kunder?"
        lines = text_of(app.screen.query_one("#delete-list", Static)).splitlines()
        assert lines[0] == "1001  Kund 00"
        assert len(lines) == 11 and lines[-1] == "… och 4 till"
        await pilot.press("y")
        await idle(pilot)
        assert sqlite_service.count() == 0
        assert app.screen.query_one("#empty-hint").display


# ---------------------------------------------------------------------- n, enter: the form


async def test_n_opens_new_form_and_ctrl_s_creates_and_shows_number(service: RegisterService) -> None:
    fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        await idle(pilot)
        form = app.screen
        assert isinstance(form, CustomerForm)
        assert form.title == "Ny kund"
        number = form.query_one("#f-number", Input)
        assert number.value == "" and not number.disabled
        # The next number of the series (typed numbers below it do not move it).
        assert number.placeholder == "lämna tomt för nästa nummer (1001)"
        form.query_one("#f-name", Input).focus()
        await pilot.press(*"Nya Kunden AB")
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert service.count() == 6
        created = service.find_by_number("1001")
        assert created is not None and created.name == "Nya Kunden AB"
        assert number.value == "1001" and number.disabled  # shown after the first save
        assert form.title == "Kund 1001 — Nya Kunden AB"
        assert "Kunden sparades med kundnummer 1001: Nya Kunden AB" in notes(app)
        await pilot.press("escape")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert "Nya Kunden AB" in cells(app)
        assert cursor_name(app) == "Nya Kunden AB"  # the cursor is on the new customer
        assert status(app).startswith("6 kunder")


async def test_enter_opens_the_customer_under_the_cursor(sqlite_service: RegisterService) -> None:
    ids = fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("down", "down")
        await pilot.press("enter")
        await idle(pilot)
        form = app.screen
        assert isinstance(form, CustomerForm)
        assert form.record is not None and form.record.id == ids["Åberg & Co"]
        assert form.query_one("#f-name", Input).value == "Åberg & Co"
        await pilot.press("escape")  # nothing changed: no question
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert cursor_name(app) == "Åberg & Co"
        # A double click opens it too.
        await pilot.click("#customers", offset=(20, 1), times=2)
        await idle(pilot)
        assert isinstance(app.screen, CustomerForm)
        assert app.screen.record is not None and app.screen.record.name == "Ärlig Handel HB"


async def test_after_saving_the_register_reloads_and_keeps_cursor_on_the_customer(service: RegisterService) -> None:
    fill(service)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")  # by name: Anna Berg first
        await idle(pilot)
        assert cursor_name(app) == "Anna Berg"  # from the top row, the new order from its top
        await pilot.press("1")
        await idle(pilot)
        table_of(app).move_cursor(2)
        chosen = cursor_name(app)
        await pilot.press("2")
        await idle(pilot)
        assert cursor_name(app) == chosen != "Anna Berg"  # a chosen customer keeps the cursor
        table_of(app).move_cursor(0)
        assert cursor_name(app) == "Anna Berg"
        await pilot.press("enter")
        await idle(pilot)
        form = app.screen
        assert isinstance(form, CustomerForm)
        name = form.query_one("#f-name", Input)
        name.value = "Övre Berg AB"  # now sorts last
        await pilot.press("ctrl+s")
        await idle(pilot)
        await pilot.press("escape")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert cells(app)[-1] == "Övre Berg AB"
        assert cursor_name(app) == "Övre Berg AB"
        assert app.focused is table_of(app)


async def test_a_customer_deleted_by_someone_else_cannot_be_opened(sqlite_service: RegisterService) -> None:
    ids = fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        sqlite_service.delete([ids["Ärlig Handel HB"]])
        await pilot.press("enter")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert "Kunden finns inte längre (någon annan har tagit bort den)." in notes(app)
        assert "Ärlig Handel HB" not in cells(app)


# ---------------------------------------------------------------------- i, p, e


OTHER_SCREENS = [
    ("i", "kundreg_tui.screens.import_wizard", "ImportWizard"),
    ("p", "kundreg_tui.screens.paste_import", "PasteImportScreen"),
    ("e", "kundreg_tui.screens.export", "ExportScreen"),
    ("t", "kundreg_tui.screens.trash", "TrashScreen"),
    ("I", "kundreg_tui.screens.imports", "ImportsScreen"),
    ("h", "kundreg_tui.screens.history", "HistoryScreen"),
]


async def screen_named(pilot: Pilot[Any], name: str, timeout: float = 10.0) -> bool:
    """Wait for a screen by class name (other people's screens may keep workers running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if type(pilot.app.screen).__name__ == name:
            return True
    return False


@pytest.mark.parametrize(("key", "module", "screen_class"), OTHER_SCREENS)
async def test_i_p_e_open_their_screens(sqlite_service: RegisterService, key: str, module: str,
                                        screen_class: str) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press(key)
        assert await screen_named(pilot, screen_class)
        assert type(app.screen).__module__ == module
        assert app.return_code is None


async def test_i_p_e_never_crash_the_register(sqlite_service: RegisterService) -> None:
    """Whether or not those screens exist yet, the keys never take the register down."""
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        for key in ("i", "p", "e"):
            await pilot.press(key)
            await pilot.pause(0.3)
            if not isinstance(app.screen, RegisterScreen):
                app.pop_screen()
                assert await screen_named(pilot, "RegisterScreen")
        assert app.return_code is None
        assert isinstance(app.screen, RegisterScreen)


# ---------------------------------------------------------------------- ?, f1, ctrl+q


def help_keys(app: KundregApp) -> dict[str, str]:
    screen = app.screen
    assert isinstance(screen, HelpScreen)
    return dict(screen.keys)


async def test_help_lists_every_key_of_the_register(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("question_mark")
        await idle(pilot)
        keys = help_keys(app)
        assert keys["/"].startswith("Sök")
        assert keys["n"] == "Ny kund"
        assert keys["⏎"] == "Ändra kunden under markören"
        assert keys["space"].startswith("Markera")
        assert keys["a"].startswith("Markera alla visade")
        assert keys["del"].startswith("Radera markerade")
        assert keys["^z / u"] == "Ångra radering"
        assert keys["i"] == "Import från fil"
        assert keys["p"] == "Importera kunder — klistra in"
        assert keys["e"] == "Kundlista (export)"
        assert keys["? / f1"] == "Hjälp"
        assert keys["^q"] == "Avsluta"
        for n in "12345":
            assert keys[n].startswith("Sortera på")
        assert keys["↑"] == "Upp"
        # Swedish only: none of Textual's own English descriptions.
        for description in keys.values():
            assert not any(word in description for word in ("Scroll", "Focus", "Copy", "Select", "Quit"))
        shown = text_of(app.screen.query_one("#help-keys", Static))
        assert "Ny kund" in shown and "Radera markerade" in shown
        assert "Hjälp — Kundregister" in text_of(app.screen.query_one(".dialog-title", Static))
        await pilot.press("escape")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        await pilot.press("f1")
        await idle(pilot)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f1")  # the same key closes it
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)


async def test_help_in_the_form_lists_the_form_keys(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        await idle(pilot)
        await pilot.press("f1")
        await idle(pilot)
        keys = help_keys(app)
        assert keys["^s"] == "Spara"
        assert keys["esc"].startswith("Tillbaka")
        assert keys["tab"] == "Nästa fält"
        assert keys["shift+tab"] == "Förra fältet"
        assert keys["^q"] == "Avsluta"
        assert "n" not in keys and "del" not in keys  # not the register's keys
        assert "Hjälp — Ny kund" in text_of(app.screen.query_one(".dialog-title", Static))
        await pilot.press("escape")
        await idle(pilot)
        assert isinstance(app.screen, CustomerForm)


async def test_ctrl_q_quits(sqlite_service: RegisterService) -> None:
    fill(sqlite_service)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


async def test_ctrl_q_from_the_search_field_and_a_clean_form_quits(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        await idle(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


async def test_ctrl_q_with_unsaved_changes_asks_first(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        await idle(pilot)
        app.screen.query_one("#f-name", Input).value = "Halvfärdig AB"
        await pilot.press("ctrl+q")
        await idle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("a")  # keep editing
        await idle(pilot)
        assert isinstance(app.screen, CustomerForm)
        assert app.return_code is None
        await pilot.press("ctrl+q")
        await idle(pilot)
        await pilot.press("l")
        await pilot.pause()
    assert app.return_code == 0
    assert sqlite_service.count() == 0


def test_helpers_cover_all_register_keys() -> None:
    """The product's key table, all bound on the register."""
    bound: Iterator[Any] = (b for b in RegisterScreen.BINDINGS)
    keys = {key for b in bound for key in b.key.split(",")}  # type: ignore[union-attr]
    for key in ("slash", "n", "enter", "space", "delete", "i", "p", "e", "question_mark", "f1"):
        assert key in keys
    assert "ctrl+q" in {b.key for b in KundregApp.BINDINGS}  # type: ignore[union-attr]
