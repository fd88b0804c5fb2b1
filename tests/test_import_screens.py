"""Pilot tests of the import screens: the file wizard, the paste editor, the preview and the receipt."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rich.console import Console
from textual import events
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Select, Static, TextArea

from kundreg_tui.app import KundregApp
from kundreg_tui.domain.csvread import Record
from kundreg_tui.domain.importer import ImportOptions
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.screens.confirm import ConfirmScreen
from kundreg_tui.screens.import_progress import BuildScreen
from kundreg_tui.screens.import_wizard import (
    STEP_COLUMNS,
    STEP_FILE,
    STEP_SETTINGS,
    ImportWizard,
    MappingMemory,
)
from kundreg_tui.screens.paste_import import PasteImportScreen
from kundreg_tui.screens.preview import PreviewScreen, PreviewTable
from kundreg_tui.screens.receipt import ReceiptScreen
from kundreg_tui.screens.register import RegisterScreen
from kundreg_tui.widgets.paths import FileTree, PathSuggester, restarted, typed_path

SIZE = (110, 32)
DATA = Path(__file__).parent / "data"

# The seed's own example (with its typo "eftenamn").
SEED_PASTE = (
    "epost,förnamn,eftenamn,telefonnummer\n"
    "nils@epost.com,Nils,Karlsson,070123456\n"
    "stina@epost.com,Stina,Olsson,0701122333"
)


# ---------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remembered mappings and receipts go to the test's own folders, never the user's."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    yield


def make_app(engine: sa.Engine) -> KundregApp:
    return KundregApp(RegisterService(engine, actor="test"))


async def settle(pilot: Pilot[Any], rounds: int = 4) -> None:
    """Wait for the screens' workers (not the DirectoryTree's loader, which never ends)."""
    app = pilot.app
    for _ in range(rounds):
        for worker in list(app.workers):
            if worker.group == "_loader" or worker.is_finished:
                continue
            try:
                await worker.wait()
            except Exception:
                pass
        await pilot.pause()


def screen_text(app: KundregApp) -> str:
    """What the terminal shows, as plain text."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def static_text(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def customers(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT number, name, email, phone, city FROM customer WHERE deleted_at IS NULL ORDER BY id"))
        return [dict(r._mapping) for r in rows]


def preview_rows(screen: PreviewScreen) -> list[Any]:
    table = screen.query_one(PreviewTable)
    return [table.row_at(i) for i in range(table.row_count)]


async def paste(pilot: Pilot[Any], text: str) -> PasteImportScreen:
    """Open Importera kunder — klistra in from the register and paste ``text`` as a terminal does."""
    app = pilot.app
    await pilot.press("p")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, PasteImportScreen)
    area = screen.query_one("#paste-text", TextArea)
    assert area.has_focus
    app.post_message(events.Paste(text))  # as the terminal sends it: to the focused widget
    await pilot.pause(0.3)
    return screen


async def start(pilot: Pilot[Any]) -> None:
    await pilot.press("ctrl+s")
    await settle(pilot)


async def commit(pilot: Pilot[Any]) -> ReceiptScreen:
    """From the preview: the confirm key, the one-key answer, the commit, the receipt."""
    await pilot.press("ctrl+s")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfirmScreen)
    await pilot.press("j")
    await settle(pilot)
    receipt = pilot.app.screen
    assert isinstance(receipt, ReceiptScreen), type(receipt)
    return receipt


async def paste_import(pilot: Pilot[Any], text: str) -> ReceiptScreen:
    await paste(pilot, text)
    await start(pilot)
    assert isinstance(pilot.app.screen, PreviewScreen)
    return await commit(pilot)


def write_cp1252(path: Path) -> Path:
    """A ``;`` file as Swedish Excel saves it: Windows-1252, CRLF."""
    text = ("Kundnummer;Kundnamn;Ort;Förnamn;E-post\r\n"
            "2001;Åsa Öberg;Örebro;Åsa;asa@exempel.se\r\n"
            "2002;Ängens Gård AB;Västerås;;info@angen.se\r\n")
    path.write_bytes(text.encode("cp1252"))
    return path


async def open_wizard(pilot: Pilot[Any], folder: Path, memory: MappingMemory | None = None) -> ImportWizard:
    app = pilot.app
    wizard = ImportWizard(app.service, start_dir=folder, memory=memory)  # type: ignore[attr-defined]
    app.push_screen(wizard)
    await settle(pilot)
    return wizard


async def choose(pilot: Pilot[Any], wizard: ImportWizard, path: Path) -> None:
    """Step 1: type the path, Nästa."""
    field = wizard.query_one("#file-path", Input)
    field.value = str(path)
    await pilot.pause()
    await pilot.press("ctrl+s")
    await settle(pilot)


# ---------------------------------------------------------------------- paste


async def test_paste_seed_example_new_then_unchanged(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paste(pilot, SEED_PASTE)
        fmt = static_text(screen, "#paste-format")
        assert "Efternamn (”eftenamn”)" in fmt  # the typo is accepted, and shown as understood
        assert "2 rader med kunder" in fmt
        await start(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        assert static_text(preview, "#preview-counts") == "2 nya · 0 uppdateras · 0 oförändrade · 0 fel"
        rows = preview_rows(preview)
        assert [r.cells["status"] for r in rows] == ["Ny", "Ny"]
        nils = rows[0]
        assert nils.cells["number"] == "1001"  # the number it will get
        assert nils.cells["f_email"] == "nils@epost.com"
        assert nils.cells["f_phone"] == "070123456"
        assert nils.cell_classes["f_first_name"] == "preview--new"  # green (import.tcss)
        assert nils.cell_classes["f_phone"] == "preview--new"
        assert "Slutför" not in screen_text(app) and "Bekräfta import" in screen_text(app)
        await pilot.press("5")  # Fel: none, and said so
        await settle(pilot)
        assert preview.query_one(PreviewTable).row_count == 0
        assert static_text(preview, "#preview-detail") == "Inga rader i det här urvalet."
        await pilot.press("1")
        await settle(pilot)
        receipt = await commit(pilot)
        assert receipt.receipt.created == [(2, "1001"), (3, "1002")]
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert app.screen.table.row_count == 2
        assert [c["phone"] for c in customers(sqlite_engine)] == ["070123456", "0701122333"]

        # The same paste again: nothing new, every given value "/".
        await paste(pilot, SEED_PASTE)
        await start(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        assert static_text(preview, "#preview-counts") == "0 nya · 0 uppdateras · 2 oförändrade · 0 fel"
        rows = preview_rows(preview)
        assert [r.cells["status"] for r in rows] == ["Oförändrad", "Oförändrad"]
        assert rows[0].cells["number"] == "1001"
        for key in ("f_email", "f_first_name", "f_last_name", "f_phone"):
            assert rows[0].cells[key] == "/"
            assert rows[0].cell_classes[key] == "preview--same"
        # Nothing to import: said so, no confirmation asked.
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, PreviewScreen)
        assert "inget att importera" in static_text(preview, "#preview-banner")


async def test_changed_value_shows_new_and_old(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        receipt = await paste_import(pilot, SEED_PASTE)
        await pilot.press("escape")
        await settle(pilot)
        await paste(pilot, SEED_PASTE.replace("070123456", "08-123"))
        await start(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        assert static_text(preview, "#preview-counts") == "0 nya · 1 uppdateras · 1 oförändrad · 0 fel"
        nils, stina = preview_rows(preview)
        assert nils.cells["status"] == "Uppdateras"
        assert nils.cells["f_phone"] == "08-123 ← 070123456"
        assert nils.cell_classes["f_phone"] == "preview--changed"
        assert nils.cells["f_email"] == "/"
        assert nils.cells["reason"].startswith("⚠ ")  # an odd phone number: a warning, not a refusal
        assert stina.cells["status"] == "Oförändrad"
        # The row under the cursor in full, below the table.
        detail = static_text(preview, "#preview-detail")
        assert detail.startswith("Rad 2 · Uppdateras: Kundnummer 1001 · Telefon: 08-123 ← 070123456 · ⚠ ")
        receipt = await commit(pilot)
        assert receipt.receipt.updated == [(2, "1001")]
        assert customers(sqlite_engine)[0]["phone"] == "08-123"


async def test_paste_format_line_must_have_a_key(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paste(pilot, "förnamn,efternamn\nNils,Karlsson")
        assert "kundnummer, epost eller båda" in static_text(screen, "#paste-format")
        await start(pilot)
        assert app.screen is screen
        assert "Formatraden måste innehålla kundnummer, epost eller båda." in static_text(screen, "#paste-banner")
        assert customers(sqlite_engine) == []


async def test_paste_empty_and_unknown_field(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await pilot.pause()
        screen = app.screen
        await start(pilot)
        assert app.screen is screen
        assert "Rad 1 är formatraden" in static_text(screen, "#paste-banner")
        screen.query_one(TextArea).text = "epost,skostorlek\na@b.se,42"
        await start(pilot)
        assert app.screen is screen
        assert "okänt fältnamn ”skostorlek”" in static_text(screen, "#paste-banner")


async def test_paste_tab_separated_from_a_spreadsheet(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paste(pilot, "kundnummer\tförnamn\tefternamn\tstad\n7\tÅsa\tÖberg\tÖrebro\n8\tBo\tEk\tLund\n")
        assert "tabb" in static_text(screen, "#paste-format")
        await start(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        rows = preview_rows(preview)
        assert [(r.cells["number"], r.cells["f_city"]) for r in rows] == [("7", "Örebro"), ("8", "Lund")]


async def test_change_import_data_returns_the_text_exactly(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paste(pilot, SEED_PASTE + "\n\n")
        area = screen.query_one(TextArea)
        area.move_cursor((1, 6))
        area.move_cursor((2, 3), select=True)
        await pilot.pause()
        before = (area.text, area.selection, area.cursor_location, area.scroll_offset)
        await start(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        plan = preview.plan
        await pilot.press("escape")  # Ändra importdata
        await pilot.pause()
        assert app.screen is screen
        assert (area.text, area.selection, area.cursor_location, area.scroll_offset) == before
        assert area.has_focus
        assert plan.conn is None  # the plan was closed on the way back
        assert screen.runner.plan is None
        # and it goes forward again from the same text
        await start(pilot)
        assert isinstance(app.screen, PreviewScreen)
        assert app.screen.plan.count() == 2


async def test_closing_the_paste_editor_asks_when_there_is_text(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paste(pilot, SEED_PASTE)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("f")  # Fortsätt redigera
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)


# ---------------------------------------------------------------------- preview


MIXED_EXISTING = [
    {"number": "10", "name": "Anna Ek", "email": "anna@ek.se", "phone": "08-111"},
    {"number": "11", "name": "Bo Berg", "email": "bo@berg.se", "city": "Lund"},
    {"number": "20", "name": "Cecilia Dahl", "email": "cecilia@dahl.se"},
]
MIXED_PASTE = (
    "kundnummer;epost;kundnamn;telefon;ort\n"
    "10;anna@ek.se;Anna Ek;08-222;\n"          # update (phone)
    "11;BO@berg.se;Bo Berg;;Lund\n"            # same (e-mail differs only in case)
    ";ny@kund.se;Ny Kund AB;;Umeå\n"           # new
    "12;cecilia@dahl.se;Fel Person;;\n"        # error: the e-mail is another customer's
    "13;dubbel@x.se;Dubbel 1;;\n"              # error: the same number twice
    "13;dubbel2@x.se;Dubbel 2;;\n"
)


async def test_preview_counts_and_filter(sqlite_engine: sa.Engine) -> None:
    service = RegisterService(sqlite_engine, actor="test")
    for values in MIXED_EXISTING:
        service.create(values)
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        await paste(pilot, MIXED_PASTE)
        await start(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        assert static_text(preview, "#preview-counts") == "1 ny · 1 uppdateras · 1 oförändrad · 3 fel"
        table = preview.query_one(PreviewTable)
        assert table.row_count == 6
        statuses = [r.cells["status"] for r in preview_rows(preview)]
        assert statuses == ["Uppdateras", "Oförändrad", "Ny", "Fel", "Fel", "Fel"]

        await pilot.press("5")  # Fel
        await settle(pilot)
        assert preview.query_one("#preview-filter", Select).value == "error"
        rows = preview_rows(preview)
        assert [r.cells["status"] for r in rows] == ["Fel"] * 3
        assert all(r.cell_classes["reason"] == "preview--error" and r.cells["reason"] for r in rows)
        assert "flera rader" in rows[1].cells["reason"]

        await pilot.press("2")  # Nya
        await settle(pilot)
        rows = preview_rows(preview)
        assert [(r.cells["line"], r.cells["number"], r.cells["f_city"]) for r in rows] == [("4", "1001", "Umeå")]

        # The Select does the same as the keys.
        preview.query_one("#preview-filter", Select).value = "same"
        await settle(pilot)
        assert [r.cells["line"] for r in preview_rows(preview)] == ["3"]
        await pilot.press("1")
        await settle(pilot)
        assert table.row_count == 6

        receipt = await commit(pilot)
        assert receipt.receipt.counts == {"new": 1, "update": 1, "same": 1, "error": 3}
        text = screen_text(app)
        assert "1 ny kund skapades" in text and "3 rader hoppades över" in text
        assert "Hoppades över" in text


async def test_stale_plan_offers_a_fresh_preview(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        await paste(pilot, SEED_PASTE)
        await start(pilot)
        first = app.screen
        assert isinstance(first, PreviewScreen)
        # Another operator saves a customer meanwhile.
        RegisterService(sqlite_engine, actor="other").create({"name": "Någon Annan", "email": "nils@epost.com"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("j")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert "har ändrats sedan förhandsgranskningen" in dialog.question
        await pilot.press("n")  # Ny förhandsgranskning
        await settle(pilot)
        fresh = app.screen
        assert isinstance(fresh, PreviewScreen) and fresh is not first
        assert first.plan.conn is None
        # Nils is now the other operator's customer: an update, not a new one.
        assert static_text(fresh, "#preview-counts") == "1 ny · 1 uppdateras · 0 oförändrade · 0 fel"
        assert len(customers(sqlite_engine)) == 1  # nothing was written by the stale commit


async def test_markup_is_shown_as_text_and_control_characters_are_refused(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await paste(pilot, "epost,kundnamn\nz@y.se,Ond \x1b[31mAB\n")
        area = screen.query_one(TextArea)
        assert area.text == ""  # an escape character never reaches the editor (nor the terminal)
        assert "U+001B" in static_text(screen, "#paste-banner")
        app.post_message(events.Paste("epost,kundnamn\nx@y.se,[bold red]Fet[/] AB\n"))
        await pilot.pause(0.3)
        assert not screen.query_one("#paste-banner").display
        await start(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        (row,) = preview_rows(preview)
        assert row.cells["f_name"] == "[bold red]Fet[/] AB"
        assert "[bold red]Fet[/] AB" in screen_text(app)


async def test_control_characters_in_a_file_are_shown_visibly_and_refused_per_row(
        sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "styr.csv"
    path.write_text("epost;kundnamn\nx@y.se;[b]Fet[/b]\nz@y.se;Ond \x1b[31mAB\n", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        assert "Ond ␛[31mAB" in static_text(wizard, "#raw-2")  # visible, never sent raw
        assert "[b]Fet[/b]" in static_text(wizard, "#raw-1")
        assert "\x1b" not in screen_text(app)
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        ok, bad = preview_rows(preview)
        assert ok.cells["f_name"] == "[b]Fet[/b]" and ok.cells["status"] == "Ny"
        assert bad.cells["status"] == "Fel"
        assert "Kundnamn: otillåtet tecken U+001B" in bad.cells["reason"]  # the field is named
        text = screen_text(app)
        assert "[b]Fet[/b]" in text and "\x1b" not in text
        # The whole reason of the row under the cursor is shown below the table.
        await pilot.press("down")
        await pilot.pause()
        assert "Kundnamn: otillåtet tecken U+001B (styr- eller riktningstecken)" in static_text(
            preview, "#preview-detail")


# ---------------------------------------------------------------------- receipt


async def test_receipt_save_and_undo(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        receipt = await paste_import(pilot, SEED_PASTE)
        text = screen_text(app)
        assert "2 nya kunder skapades" in text
        assert "1001" in text and "1002" in text
        # Save (the default name, in the working folder).
        await pilot.press("ctrl+s")
        await settle(pilot)
        saved = tmp_path / f"kvittens-import-{receipt.receipt.batch_id}.txt"
        assert saved.read_text(encoding="utf-8") == receipt.receipt.as_text()
        assert "Skapade kunder (rad: kundnummer):\n  2: 1001\n  3: 1002" in saved.read_text(encoding="utf-8")
        # Saving again asks before overwriting.
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("a")
        await pilot.pause()
        # Ångra import, with a confirmation.
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("j")
        await settle(pilot)
        assert app.screen is receipt
        assert receipt.undone
        assert "Importen är ångrad" in static_text(receipt, "#receipt-banner")
        assert static_text(receipt, "#receipt-title") == "Importen är ångrad: klistra in"
        assert customers(sqlite_engine) == []
        await pilot.press("ctrl+z")  # twice: said, not done
        await pilot.pause()
        assert "redan ångrad" in static_text(receipt, "#receipt-banner")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert app.screen.table.row_count == 0


async def test_receipt_save_to_a_typed_path(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        receipt = await paste_import(pilot, SEED_PASTE)
        field = receipt.query_one("#receipt-path", Input)
        field.value = "~/kvitton/import.txt"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "kunde inte sparas" in static_text(receipt, "#receipt-banner")  # the folder does not exist
        (tmp_path / "home" / "kvitton").mkdir()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert (tmp_path / "home" / "kvitton" / "import.txt").read_text(encoding="utf-8").startswith(
            "Kvittens för import: klistra in")


# ---------------------------------------------------------------------- the file wizard


async def test_wizard_cp1252_excel_file(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = write_cp1252(tmp_path / "excel.csv")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, ImportWizard)
        assert wizard.step == STEP_FILE
        await choose(pilot, wizard, path)
        assert wizard.step == STEP_SETTINGS
        encoding = wizard.query_one("#set-encoding", Select)
        assert encoding.value == "cp1252"
        assert "Windows-1252" in static_text(wizard, "#why-encoding")
        assert "Upptäckt" in static_text(wizard, "#why-encoding")
        assert wizard.query_one("#set-delimiter", Select).value == ";"
        assert "Semikolon (;) förekommer 4 gånger" in static_text(wizard, "#why-delimiter")
        assert "Örebro;Åsa" in static_text(wizard, "#raw-1")
        assert "rubrik" in static_text(wizard, "#raw-0")
        assert encoding.has_focus

        # Changeable: read as UTF-8, the letters break (shown, never refused silently) …
        encoding.value = "utf-8"
        await settle(pilot)
        assert "Du har valt UTF-8. Upptäckt var Windows-1252 (Excel)." in static_text(wizard, "#why-encoding")
        assert "\ufffd" in static_text(wizard, "#raw-1")
        assert "kan inte läsas som utf-8" in static_text(wizard, "#wizard-banner")
        await pilot.press("ctrl+s")  # Nästa is refused while the file cannot be read
        await settle(pilot)
        assert wizard.step == STEP_SETTINGS
        # … and back.
        encoding.value = "cp1252"
        await settle(pilot)
        assert "Örebro;Åsa" in static_text(wizard, "#raw-1")
        assert not wizard.query_one("#wizard-banner").display

        await pilot.press("ctrl+s")
        await settle(pilot)
        assert wizard.step == STEP_COLUMNS
        assert wizard.mapping == ["number", "name", "city", "first_name", "email"]
        await pilot.press("ctrl+s")  # Starta inläsning
        await settle(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        assert "Slutför import" in screen_text(app)
        rows = preview_rows(preview)
        assert [r.cells["f_city"] for r in rows] == ["Örebro", "Västerås"]
        await commit(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert [c["city"] for c in customers(sqlite_engine)] == ["Örebro", "Västerås"]
        assert app.screen.table.row_count == 2


async def test_wizard_settings_start_row_and_header(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Kundexport från Annat System\nKundnummer,Kundnamn\n1,Ab\n2,Cd\n", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        start = wizard.query_one("#set-start", Input)
        start.value = "2"
        await pilot.pause(0.4)
        await settle(pilot)
        assert wizard.settings is not None and wizard.settings.start_row == 2
        assert "Rad 1 hoppas över." in static_text(wizard, "#why-start")
        assert "hoppas över" in static_text(wizard, "#raw-0")
        assert wizard.source is not None and wizard.source.header == ["Kundnummer", "Kundnamn"]
        header = wizard.query_one("#set-header", Checkbox)
        header.value = False
        await settle(pilot)
        assert wizard.source is not None and wizard.source.header == ["Kolumn 1", "Kolumn 2"]
        assert "Ingen rubrikrad" in static_text(wizard, "#why-header")
        header.value = True
        await settle(pilot)
        start.value = "0"
        await pilot.pause(0.4)
        assert "1 eller större" in static_text(wizard, "#wizard-banner")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binärfil"),
        (b"PK\x03\x04" + b"\x00" * 40 + b"[Content_Types].xml", "Excel-fil"),
        (b"", "Filen är tom."),
    ],
    ids=["binary", "xlsx-renamed", "empty"],
)
async def test_wizard_refusals_on_the_file_step(sqlite_engine: sa.Engine, tmp_path: Path,
                                                content: bytes, message: str) -> None:
    path = tmp_path / "kunder.csv"
    path.write_bytes(content)
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        assert wizard.step == STEP_FILE
        assert message in static_text(wizard, "#wizard-banner")
        assert wizard.query_one("#wizard-banner").has_class("-error")


async def test_wizard_missing_file_and_folder(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    (tmp_path / "mapp").mkdir()
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, tmp_path / "finns-inte.csv")
        assert "Filen finns inte" in static_text(wizard, "#wizard-banner")
        await choose(pilot, wizard, tmp_path / "mapp")
        assert "är en mapp" in static_text(wizard, "#wizard-banner")
        await pilot.pause(0.4)
        assert Path(wizard.query_one(FileTree).path) == tmp_path / "mapp"
        assert wizard.step == STEP_FILE


async def test_a_path_typed_after_the_folder_starts_again(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    """The field holds the start folder; typing a whole path after it (``…//srv/x.csv``) means that
    path, as in Emacs, instead of "Filen finns inte: /start/srv/x.csv"."""
    (tmp_path / "start").mkdir()
    elsewhere = write_cp1252(tmp_path / "annan.csv")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path / "start")
        field = wizard.query_one("#file-path", Input)
        field.value = f"{tmp_path / 'start'}/"
        field.cursor_position = len(field.value)
        await pilot.press(*str(elsewhere))
        await pilot.pause(0.2)
        assert "annan.csv" in static_text(wizard, "#file-info")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert wizard.step == STEP_SETTINGS


def test_restarted_paths(tmp_path: Path) -> None:
    assert restarted("~/import//srv/kunder.csv") == "/srv/kunder.csv"
    assert restarted("/tmp/~/kunder.csv") == "~/kunder.csv"
    assert restarted("/tmp/~") == "~"
    assert restarted("/tmp/~backup/kunder.csv") == "/tmp/~backup/kunder.csv"  # a folder named ~backup
    assert restarted("kunder.csv") == "kunder.csv"
    assert typed_path("  ", tmp_path) is None
    assert typed_path("a/b.csv", tmp_path) == tmp_path / "a" / "b.csv"
    assert typed_path(f"{tmp_path}//x/y.csv", tmp_path) == Path("/x/y.csv")
    (tmp_path / "kunder").mkdir()
    assert PathSuggester(Path("/")).complete(f"/nowhere//{tmp_path}/ku") == f"/nowhere//{tmp_path}/kunder/"


async def test_wizard_unterminated_quote_is_shown_with_its_line(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, DATA)
        await choose(pilot, wizard, DATA / "unterminated_quote.csv")
        assert wizard.step == STEP_SETTINGS
        banner = static_text(wizard, "#wizard-banner")
        assert "Rad 5" in banner and "avslutas aldrig" in banner
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert wizard.step == STEP_SETTINGS  # cannot go on


async def test_wizard_refusal_found_while_reading_the_whole_file(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "lang.csv"
    rows = "".join(f"{i},Kund {i},k{i}@x.se\n" for i in range(1, 60))
    path.write_text("kundnummer,kundnamn,epost\n" + rows + '"Trasig,rad\n' + "61,Sist,s@x.se\n", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert wizard.step == STEP_COLUMNS
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is wizard  # no preview: the refusal is shown on the step
        assert "Rad 61" in static_text(wizard, "#wizard-banner")
        assert customers(sqlite_engine) == []


async def test_wizard_duplicate_columns_fixed_by_reading_without_header(sqlite_engine: sa.Engine,
                                                                        tmp_path: Path) -> None:
    path = tmp_path / "dubbel.csv"
    path.write_text("Namn;Namn;E-post\nA;B;a@b.se\n", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        assert "samma kolumnnamn flera gånger" in static_text(wizard, "#wizard-banner")
        wizard.query_one("#set-header", Checkbox).value = False
        await settle(pilot)
        assert not wizard.query_one("#wizard-banner").display
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert wizard.step == STEP_COLUMNS


async def test_wizard_header_only(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "rubrik.csv"
    path.write_text("kundnummer;kundnamn\n", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        assert "bara en rubrikrad" in static_text(wizard, "#wizard-banner")


async def test_wizard_guesses_are_asked_and_the_mapping_remembered(sqlite_engine: sa.Engine,
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "gissa.csv"
    path.write_text("Kundummer;Namn;eftenamn;Skostorlek\n5;Åsa Ek;Ek;42\n", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert wizard.step == STEP_COLUMNS
        assert wizard.mapping == ["number", "name", "last_name", None]
        assert static_text(wizard, "#mark-0") == "? gissning"
        assert static_text(wizard, "#mark-1") == "✓ rubriken"
        assert static_text(wizard, "#mark-2") == "? gissning"
        assert static_text(wizard, "#mark-3") == ""
        assert "2 förslag är gissningar" in static_text(wizard, "#columns-intro")
        assert wizard.query_one("#map-0", Select).has_focus

        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert "”Kundummer” → Kundnummer" in dialog.details and "”eftenamn” → Efternamn" in dialog.details
        await pilot.press("n")  # Nej, jag ändrar
        await pilot.pause()
        assert app.screen is wizard and wizard.query_one("#map-0", Select).has_focus

        # The user changes one guess (so it counts as chosen) and confirms the other.
        wizard.query_one("#map-2", Select).value = "first_name"
        await pilot.pause()
        assert static_text(wizard, "#mark-2") == "✓ vald"
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert "eftenamn" not in dialog.details
        await pilot.press("j")
        await settle(pilot)
        assert isinstance(app.screen, PreviewScreen)
        saved = json.loads((tmp_path / "config" / "kundreg" / "import-kolumner.json").read_text("utf-8"))
        (entry,) = saved["mappings"].values()
        assert entry["fields"] == ["number", "name", "first_name", None]
        await pilot.press("escape")  # Ändra importdata
        await pilot.press("escape")  # columns → settings
        await pilot.press("escape")  # settings → file
        await pilot.press("escape")  # close
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)

        # A file with the same header (in another spelling) gets the confirmed mapping.
        other = tmp_path / "gissa2.csv"
        other.write_text("KUNDUMMER;namn;Eftenamn;skostorlek\n6;Bo;Berg;44\n", encoding="utf-8")
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, other)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert wizard.mapping == ["number", "name", "first_name", None]
        assert static_text(wizard, "#mark-0") == "✓ sparad"
        assert "samma rubriker" in static_text(wizard, "#columns-intro")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, PreviewScreen)  # no question this time


async def test_wizard_without_key_column_asks_all_new(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "utan-nyckel.csv"
    path.write_text("Namn;Ort\nAb Ett;Lund\nAb Två;Umeå\n", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert wizard.query_one("#opt-all-new").display
        assert "ingen befintlig kund" in static_text(wizard, "#columns-problem")
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert "ny kund" in dialog.question
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is wizard
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("j")
        await settle(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        assert preview.plan.options.all_new
        assert static_text(preview, "#preview-counts") == "2 nya · 0 uppdateras · 0 oförändrade · 0 fel"


async def test_wizard_same_field_twice_is_refused(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    path.write_text("Kundnummer;Kundnamn;Ort\n1;A;Lund\n", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        await pilot.press("ctrl+s")
        await settle(pilot)
        wizard.query_one("#map-2", Select).value = "name"
        await pilot.pause()
        assert "Kundnamn är valt för flera kolumner (”Kundnamn”, ”Ort”)" in static_text(wizard, "#columns-problem")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is wizard
        assert "flera kolumner" in static_text(wizard, "#wizard-banner")
        wizard.query_one("#map-2", Select).value = "-"  # Ignorera
        await pilot.pause()
        assert wizard.mapping == ["number", "name", None]
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, PreviewScreen)


async def test_wizard_empty_cells_clear_option(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    RegisterService(sqlite_engine, actor="test").create({"number": "1", "name": "A", "city": "Lund"})
    path = tmp_path / "k.csv"
    path.write_text("Kundnummer;Kundnamn;Ort\n1;A;\n", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        await choose(pilot, wizard, path)
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        assert preview_rows(preview)[0].cells["status"] == "Oförändrad"  # empty cell: kept
        await pilot.press("escape")
        await pilot.pause()
        wizard.query_one("#opt-empty-clears", Checkbox).value = True
        await pilot.press("ctrl+s")
        await settle(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        (row,) = preview_rows(preview)
        assert row.cells["status"] == "Uppdateras"
        assert row.cells["f_city"] == "(tomt) ← Lund"


async def test_wizard_escape_goes_back_step_by_step_and_keeps_choices(sqlite_engine: sa.Engine,
                                                                      tmp_path: Path) -> None:
    path = write_cp1252(tmp_path / "excel.csv")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, ImportWizard)
        await choose(pilot, wizard, path)
        wizard.query_one("#set-delimiter", Select).value = ","
        await settle(pilot)
        wizard.query_one("#set-delimiter", Select).value = ";"
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        wizard.query_one("#map-2", Select).value = "-"
        await pilot.pause()
        await pilot.press("escape")
        assert wizard.step == STEP_SETTINGS
        await pilot.press("escape")
        assert wizard.step == STEP_FILE
        await pilot.press("ctrl+s")  # the same file again: the settings are kept
        await settle(pilot)
        assert wizard.step == STEP_SETTINGS
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert wizard.mapping[2] is None  # and the column choices too
        await pilot.press("escape", "escape", "escape")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)


async def test_wizard_tab_moves_between_fields(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    path = write_cp1252(tmp_path / "excel.csv")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path)
        assert wizard.query_one("#file-path", Input).has_focus
        await pilot.press("tab")
        assert wizard.query_one(FileTree).has_focus
        await pilot.press("shift+tab")
        assert wizard.query_one("#file-path", Input).has_focus
        await choose(pilot, wizard, path)
        order = []
        for _ in range(4):
            order.append(app.focused.id if app.focused else None)
            await pilot.press("tab")
        assert order == ["set-encoding", "set-delimiter", "set-start", "set-header"]


async def test_wizard_browse_and_choose_in_the_tree(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    folder = tmp_path / "filer"
    (folder / "arkiv").mkdir(parents=True)
    write_cp1252(folder / "kunder.csv")
    (folder / ".dold.csv").write_text("x", encoding="utf-8")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, folder)
        tree = wizard.query_one(FileTree)
        names = [child.label.plain for child in tree.root.children]
        assert names == ["arkiv", "kunder.csv"]  # hidden entries left out
        await pilot.press("ctrl+o")  # Bläddra
        assert tree.has_focus
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        assert wizard.step == STEP_SETTINGS
        assert wizard.path == folder / "kunder.csv"
        await pilot.press("escape")
        assert wizard.query_one("#file-path", Input).value.endswith("filer/kunder.csv")
        # backspace in the tree goes up a folder
        tree.focus()
        await pilot.press("backspace")
        await settle(pilot)
        assert Path(tree.path) == tmp_path


def test_path_suggester_completes_folder_entries(tmp_path: Path) -> None:
    (tmp_path / "kunder").mkdir()
    (tmp_path / "kunder" / "mars.csv").write_text("x", encoding="utf-8")
    (tmp_path / "kunder" / "maj.csv").write_text("x", encoding="utf-8")
    (tmp_path / "kvitton.txt").write_text("x", encoding="utf-8")
    (tmp_path / ".gömd").mkdir()
    s = PathSuggester(tmp_path)
    assert s.complete(f"{tmp_path}/ku") == f"{tmp_path}/kunder/"  # a folder gets its slash
    assert s.complete(f"{tmp_path}/kunder/m") == f"{tmp_path}/kunder/ma"  # the common part of two
    assert s.complete(f"{tmp_path}/kunder/mar") == f"{tmp_path}/kunder/mars.csv"
    assert s.complete(f"{tmp_path}/x") is None
    assert s.complete(f"{tmp_path}/.g") == f"{tmp_path}/.gömd/"
    assert s.complete("kv") == "kv" + "itton.txt"  # relative to the start folder
    assert s.complete("~/") is None  # the (empty) home folder of the test


async def test_path_field_completes_with_the_right_arrow(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    folder = tmp_path / "home" / "import"
    folder.mkdir()
    write_cp1252(folder / "kunder-2024.csv")
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, tmp_path / "home")
        field = wizard.query_one("#file-path", Input)
        assert field.value == "~/"
        await pilot.press("i", "m")
        await pilot.pause(0.2)
        await pilot.press("right")
        assert field.value == "~/import/"
        await pilot.press("k")
        await pilot.pause(0.2)
        await pilot.press("right")
        assert field.value == "~/import/kunder-2024.csv"
        await pilot.press("enter")
        await settle(pilot)
        assert wizard.step == STEP_SETTINGS


# ---------------------------------------------------------------------- building


class SlowSource:
    """Many rows, made on demand: long enough to cancel."""

    header = ["epost", "kundnamn"]
    total_bytes = 10_000_000

    def __init__(self) -> None:
        self.bytes_read = 0

    def iter_records(self) -> Iterator[Record]:
        for i in range(2_000_000):
            self.bytes_read = i * 5
            yield Record(i + 2, [f"k{i}@x.se", f"Kund {i}"], None)


async def test_build_can_be_cancelled(sqlite_engine: sa.Engine) -> None:
    app = make_app(sqlite_engine)
    async with app.run_test(size=SIZE) as pilot:
        outcomes: list[Any] = []
        app.push_screen(BuildScreen(app.service, SlowSource, ["email", "name"],  # type: ignore[arg-type]
                                    ImportOptions(source="paste"), "test"), outcomes.append)
        await pilot.pause(0.3)
        assert isinstance(app.screen, BuildScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, BuildScreen)
        (outcome,) = outcomes
        assert outcome.cancelled and outcome.plan is None


# ---------------------------------------------------------------------- both databases


async def test_paste_import_and_reimport_on_both_databases(engine: sa.Engine) -> None:
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        receipt = await paste_import(pilot, SEED_PASTE)
        assert receipt.receipt.counts["new"] == 2
        await pilot.press("escape")
        await settle(pilot)
        await paste(pilot, SEED_PASTE.replace("Olsson", "Ohlsson"))
        await start(pilot)
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        nils, stina = preview_rows(preview)
        assert nils.cells["status"] == "Oförändrad" and nils.cells["f_last_name"] == "/"
        assert stina.cells["f_last_name"] == "Ohlsson ← Olsson"
        receipt = await commit(pilot)
        await pilot.press("ctrl+z")
        await pilot.pause()
        await pilot.press("j")
        await settle(pilot)
        assert receipt.undone
        assert [c["name"] for c in customers(engine)] == ["Nils Karlsson", "Stina Olsson"]
