"""Customer data is text, never markup and never terminal commands.

Names that look like Textual markup show literally in the table, the form, the delete
confirmation, the notifications and the help, and the app neither crashes nor quits. Control and
bidi characters written straight into the database by another program are shown made visible
(``␛``, ``␇``, ``<U+202E>``) and never reach the terminal. The form refuses them as they are
typed or pasted, with a message naming the field.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa
from rich.console import Console
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea
from textual.widgets._toast import Toast

from kundreg_tui.app import KundregApp
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.screens.customer_form import CustomerForm
from kundreg_tui.screens.delete import DeleteScreen
from kundreg_tui.screens.help import HelpScreen
from kundreg_tui.screens.register import RegisterScreen
from tests.test_app_register import (
    SIZE,
    cells,
    fill,
    idle,
    move_to,
    notes,
    start,
    table_of,
    text_of,
)


@pytest.fixture
def sqlite_service(sqlite_engine: sa.Engine) -> RegisterService:
    return RegisterService(sqlite_engine, actor="test")

MARKUP_NAMES = ["Ann [/] Berg", "[@click=app.quit]x", "Acme [AB] Ltd"]
# Written around the rules by another program: an OSC title sequence, a screen clear, bidi.
RAW_NAME = "Evil \x1b]0;X\x07 AB"
RAW_NAME_SHOWN = "Evil ␛]0;X␇ AB"
RAW_CITY = "\u202eStad"
RAW_CITY_SHOWN = "<U+202E>Stad"
RAW_NOTES = "rad 1\nrad 2\x1b[2J"
RAW_NOTES_SHOWN = "rad 1\nrad 2␛[2J"


def terminal_output(app: KundregApp) -> str:
    """What a full repaint of the screen in front writes to the terminal."""
    update = app.screen._compositor.render_full_update()
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      width=SIZE[0], height=SIZE[1], legacy_windows=False)
    console.print(update, end="")
    return console.file.getvalue()  # type: ignore[attr-defined]


def assert_nothing_raw(app: KundregApp) -> None:
    output = terminal_output(app)
    assert "\x1b]" not in output  # no OSC (title, hyperlink, clipboard…) from data
    assert "\x1b[2J" not in output  # no screen clear from data
    assert "\x07" not in output
    assert "\u202e" not in output
    screenshot = app.export_screenshot()
    for bad in ("\x1b", "\x07", "\u202e"):
        assert bad not in screenshot


def toasts(app: KundregApp) -> list[str]:
    return [str(toast.render()) for toast in app.screen.query(Toast)]


# ---------------------------------------------------------------------- markup-looking names


async def test_markup_names_show_literally_everywhere(sqlite_service: RegisterService) -> None:
    ids = fill(sqlite_service, [{"name": name} for name in MARKUP_NAMES])
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        # The table: data and drawn lines.
        assert cells(app) == MARKUP_NAMES
        drawn = [table_of(app).render_line(y).text for y in range(1, 4)]
        for name, line in zip(MARKUP_NAMES, drawn, strict=True):
            assert name in line
        # A click on the row of "[@click=app.quit]x" is a click on a row.
        await pilot.click("#customers", offset=(25, 2))
        await idle(pilot)
        assert app.return_code is None

        # The form: field, title, the notification after saving.
        for name in MARKUP_NAMES:
            await move_to(pilot, name)
            await pilot.press("enter")
            await idle(pilot)
            form = app.screen
            assert isinstance(form, CustomerForm)
            name_field = form.query_one("#f-name", Input)
            assert name_field.value == name
            assert name in name_field.render_line(0).text
            assert name in form.title
            assert name in str(app.screen.query_one("HeaderTitle", Static).render())
            # Hjälp names the screen, customer name included, literally.
            await pilot.press("f1")
            await idle(pilot)
            assert isinstance(app.screen, HelpScreen)
            assert f"Hjälp — Kund {form.record.number} — {name}" == text_of(  # type: ignore[union-attr]
                app.screen.query_one(".dialog-title", Static))
            await pilot.press("escape")
            await idle(pilot)
            form.query_one("#f-city", Input).value = "Lund"
            await pilot.press("ctrl+s")
            await idle(pilot)
            message = f"Ändringarna i {form.record.number} {name} sparades."  # type: ignore[union-attr]
            assert message in notes(app)
            assert message in toasts(app)
            assert text_of(form.query_one("#form-banner", Static)) == message
            await pilot.press("escape")
            await idle(pilot)
            assert isinstance(app.screen, RegisterScreen)

        # The delete confirmation, then the notification of a single delete.
        await pilot.press("a", "delete")
        await idle(pilot)
        assert isinstance(app.screen, DeleteScreen)
        listed = text_of(app.screen.query_one("#delete-list", Static)).splitlines()
        assert listed == [f"{1001 + n}  {name}" for n, name in enumerate(MARKUP_NAMES)]
        await pilot.press("escape", "a")
        await idle(pilot)
        await move_to(pilot, "[@click=app.quit]x")
        await pilot.press("delete")
        await idle(pilot)
        await pilot.press("j")
        await idle(pilot)
        assert "1002 [@click=app.quit]x raderad. Ångra med ctrl+z." in notes(app)
        assert "1002 [@click=app.quit]x raderad. Ångra med ctrl+z." in toasts(app)
        assert sqlite_service.get(ids["[@click=app.quit]x"]) is None
        # Click on the toast that shows it: still nothing quits.
        toast = app.screen.query(Toast).last()
        await pilot.click(toast)
        await idle(pilot)
        assert app.return_code is None
        assert isinstance(app.screen, RegisterScreen)


async def test_markup_in_the_search_field_is_just_text(sqlite_service: RegisterService) -> None:
    fill(sqlite_service, [{"name": name} for name in MARKUP_NAMES])
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        search = app.screen.query_one("#search", Input)
        search.value = "[@click=app.quit]"
        await pilot.pause(0.12)
        await idle(pilot)
        assert cells(app) == ["[@click=app.quit]x"]
        assert "[@click=app.quit]" in search.render_line(1).text or "[@click=app.quit]" in terminal_output(app)
        assert app.return_code is None


# ---------------------------------------------------------------------- raw control characters


def write_raw(service: RegisterService, customer_id: int, **values: str) -> None:
    """Another program writes straight into the database, bypassing validation."""
    with service.engine.begin() as conn:
        conn.execute(sa.text("UPDATE customer SET " + ", ".join(f"{k} = :{k}" for k in values)
                             + " WHERE id = :id"), {**values, "id": customer_id})


async def test_control_characters_from_the_database_never_reach_the_terminal(service: RegisterService) -> None:
    ids = fill(service, [{"name": "Snäll AB", "city": "Lund"}, {"name": "Ond AB"}])
    write_raw(service, ids["Ond AB"], name=RAW_NAME, city=RAW_CITY, notes=RAW_NOTES)
    app = KundregApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        # The table: the row's data is the raw value, the drawn line shows it made visible.
        lines = [table_of(app).render_line(y).text for y in range(0, 4)]
        assert any(RAW_NAME_SHOWN in line and RAW_CITY_SHOWN in line for line in lines)
        assert not any("\x1b" in line or "\u202e" in line or "\x07" in line for line in lines)
        assert_nothing_raw(app)

        # The form: shown made visible, with a word about it next to the field.
        await move_to(pilot, RAW_NAME)
        await pilot.press("enter")
        await idle(pilot)
        form = app.screen
        assert isinstance(form, CustomerForm)
        assert form.query_one("#f-name", Input).value == RAW_NAME_SHOWN
        assert form.query_one("#f-city", Input).value == RAW_CITY_SHOWN
        assert form.query_one("#f-notes", TextArea).text == RAW_NOTES_SHOWN
        warning = text_of(form.query_one("#err-name", Static))
        assert warning.startswith("⚠ Kundnamn innehåller styr- eller riktningstecken")
        assert "\x1b" not in form.title and "␛" in form.title
        assert_nothing_raw(app)
        # Leaving without a change asks nothing and changes nothing.
        await pilot.press("escape")
        await idle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        stored = service.get(ids["Ond AB"])
        assert stored is not None and stored.name == RAW_NAME

        # The delete confirmation and the notification.
        await move_to(pilot, RAW_NAME)
        await pilot.press("delete")
        await idle(pilot)
        assert isinstance(app.screen, DeleteScreen)
        assert RAW_NAME_SHOWN in text_of(app.screen.query_one("#delete-list", Static))
        assert_nothing_raw(app)
        await pilot.press("j")
        await idle(pilot)
        assert f"1002 {RAW_NAME_SHOWN} raderad. Ångra med ctrl+z." in notes(app)
        assert_nothing_raw(app)
        assert app.return_code is None


async def test_saving_a_customer_with_visible_control_characters_stores_the_visible_text(
        sqlite_service: RegisterService) -> None:
    ids = fill(sqlite_service, [{"name": "Ond AB"}])
    write_raw(sqlite_service, ids["Ond AB"], name=RAW_NAME)
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("enter")
        await idle(pilot)
        form = app.screen
        assert isinstance(form, CustomerForm)
        form.query_one("#f-city", Input).value = "Lund"
        await pilot.press("ctrl+s")
        await idle(pilot)
        stored = sqlite_service.get(ids["Ond AB"])
        assert stored is not None and stored.name == RAW_NAME_SHOWN and stored.city == "Lund"
        assert_nothing_raw(app)


# ---------------------------------------------------------------------- typing them in the form


async def paste(pilot: Pilot[Any], widget: Input | TextArea, text: str) -> None:
    """A bracketed paste from the terminal: the app hands it to the focused widget."""
    widget.focus()
    await pilot.pause()
    pilot.app.post_message(events.Paste(text))
    await pilot.pause()
    await pilot.pause()


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("name", "Acme\x1b]0;X\x07", "Kundnamn: otillåtet tecken U+001B (styr- eller riktningstecken)"),
        ("name", "Acme \u202eBA", "Kundnamn: otillåtet tecken U+202E (styr- eller riktningstecken)"),
        ("city", "Lu\x00nd", "Ort: otillåtet tecken U+0000 (styr- eller riktningstecken)"),
        ("email", "a\tb@c.se", "E-post: otillåtet tecken U+0009 (styr- eller riktningstecken)"),
        ("notes", "rad 1\nrad 2\x07", "Anteckningar: otillåtet tecken U+0007 (styr- eller riktningstecken)"),
        ("address", "c/o \u2066Berg", "Adress: otillåtet tecken U+2066 (styr- eller riktningstecken)"),
    ],
)
async def test_form_refuses_typing_a_control_character_naming_the_field(
        sqlite_service: RegisterService, field: str, text: str, message: str) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        await idle(pilot)
        form = app.screen
        assert isinstance(form, CustomerForm)
        widget = form.query_one(f"#f-{field}")
        assert isinstance(widget, Input | TextArea)
        await paste(pilot, widget, text)
        value = widget.text if isinstance(widget, TextArea) else widget.value
        assert value == ""  # refused as a whole
        assert text_of(form.query_one(f"#err-{field}", Static)) == message
        assert message in notes(app)
        assert_nothing_raw(app)


async def test_form_keeps_multiline_text_and_normal_pastes(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        await idle(pilot)
        form = app.screen
        assert isinstance(form, CustomerForm)
        await paste(pilot, form.query_one("#f-name", Input), "Ann [/] Berg")
        await paste(pilot, form.query_one("#f-address", TextArea), "c/o Berg\r\nStorgatan 1")
        assert form.query_one("#f-name", Input).value == "Ann [/] Berg"
        assert form.query_one("#f-address", TextArea).text == "c/o Berg\nStorgatan 1"
        assert text_of(form.query_one("#err-address", Static)) == ""
        await pilot.press("ctrl+s")
        await idle(pilot)
        stored = sqlite_service.find_by_number("1001")
        assert stored is not None and stored.address == "c/o Berg\nStorgatan 1"


async def test_form_refuses_saving_a_control_character_naming_the_field(sqlite_service: RegisterService) -> None:
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        await idle(pilot)
        form = app.screen
        assert isinstance(form, CustomerForm)
        # A value that got past the editor (set by a program, not typed).
        form.query_one("#f-name", Input).value = "Acme AB"
        form.query_one("#f-reference", Input).value = "Per\x1bOla"
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert text_of(form.query_one("#err-reference", Static)) == (
            "Er referens: otillåtet tecken U+001B (styr- eller riktningstecken)")
        assert sqlite_service.count() == 0


async def test_search_field_refuses_control_characters(sqlite_service: RegisterService) -> None:
    fill(sqlite_service, [{"name": "Acme AB"}])
    app = KundregApp(sqlite_service)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        search = app.screen.query_one("#search", Input)
        await paste(pilot, search, "Acme\x1b[2J")
        assert search.value == ""
        assert "Sökningen kan inte innehålla styr- eller riktningstecken." in notes(app)
        assert_nothing_raw(app)
