"""Import från fil: choose the file → reading settings → columns → (Starta inläsning) → preview.

Three steps in one screen (a ContentSwitcher); the preview and the receipt are screens of their
own, shared with the paste import (``screens/preview.py``, ``screens/receipt.py``).

* **Välj fil**: a path field that completes directory entries (→ takes the suggestion; works
  over SSH with the keyboard alone) and a file tree to browse instead (tab switches to it,
  backspace goes up a folder).
* **Inläsning**: encoding, delimiter, start row and "first row is a header", each detected
  (``csvread.sniff_settings``), shown with the reason and changeable, with a live view of the
  first lines decoded with the current settings and how they split into columns.
* **Kolumner**: each file column mapped to a field or "Ignorera", suggested from its header
  (``mapping.suggest_mapping``). A guess (a near miss such as ``Kundummer``) is marked "?" and
  asked about before use. A confirmed mapping is remembered for files with the same header
  (``mapping.header_signature``), in ``import-kolumner.json`` in the user's config folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import platformdirs
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import (
    Checkbox,
    ContentSwitcher,
    DirectoryTree,
    Footer,
    Header,
    Input,
    Label,
    Select,
    Static,
)

from kundreg_tui.domain.csvread import (
    CsvReadError,
    CsvSource,
    ReadSettings,
    Record,
    delimiter_label,
    open_csv,
    preview_lines,
    sniff_delimiter,
    sniff_settings,
)
from kundreg_tui.domain.fields import FIELD_BY_NAME, FIELDS, field_label
from kundreg_tui.domain.importer import ImportOptions, Receipt
from kundreg_tui.domain.mapping import KEY_FIELDS, header_signature, suggest_mapping
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.i18n import N_, _, ngettext
from kundreg_tui.screens.import_progress import ImportRunner, StepBar, TickBox
from kundreg_tui.ui import SafeInput, plain, tell
from kundreg_tui.widgets.pagedtable import Column, PagedTable, Row, SequenceSource
from kundreg_tui.widgets.paths import FileTree, PathSuggester, display_path, typed_path

STEP_FILE, STEP_SETTINGS, STEP_COLUMNS = "step-file", "step-settings", "step-columns"
STEPS = (STEP_FILE, STEP_SETTINGS, STEP_COLUMNS)
IGNORE = "-"
RAW_LINES = 6
SNIFF_LINES = 21
PARSED_ROWS = 5
MEMORY_FILE = "import-kolumner.json"
MEMORY_LIMIT = 200

#: Encodings offered (codec, label). A detected one that is not here is added.
ENCODINGS: tuple[tuple[str, str], ...] = (
    ("utf-8", "UTF-8"),
    ("utf-8-sig", N_("UTF-8 med BOM")),
    ("cp1252", N_("Windows-1252 (Excel)")),
    ("latin-1", "ISO-8859-1 (Latin-1)"),
    ("iso8859-15", "ISO-8859-15 (Latin-9)"),
    ("cp850", "DOS (cp850)"),
    ("mac-roman", "Mac Roman"),
    ("utf-16-le", "UTF-16 LE"),
    ("utf-16-be", "UTF-16 BE"),
    ("utf-32-le", "UTF-32 LE"),
    ("utf-32-be", "UTF-32 BE"),
)
DELIMITERS: tuple[str, ...] = (";", ",", "\t", "|", " ")


def wizard_steps() -> list[str]:
    return [_("Välj fil"), _("Inläsning"), _("Kolumner"), _("Förhandsgranskning"), _("Kvittens")]


def encoding_label(codec: str | None) -> str:
    for name, label in ENCODINGS:
        if name == codec:
            return _(label)
    return codec or ""


# ---------------------------------------------------------------------- remembered mappings


class MappingMemory:
    """Confirmed column mappings, keyed by the header's signature, in a small JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path

    @property
    def path(self) -> Path:
        return self._path or Path(platformdirs.user_config_dir("kundreg")) / MEMORY_FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        mappings = data.get("mappings") if isinstance(data, dict) else None
        return mappings if isinstance(mappings, dict) else {}

    def get(self, header: Sequence[str]) -> list[str | None] | None:
        entry = self._read().get(header_signature(header))
        if not isinstance(entry, dict):
            return None
        fields = entry.get("fields")
        if not isinstance(fields, list) or len(fields) != len(header):
            return None
        if any(f is not None and f not in FIELD_BY_NAME for f in fields):
            return None
        return list(fields)

    def save(self, header: Sequence[str], fields: Sequence[str | None]) -> None:
        """Remember ``fields`` for ``header`` (raises OSError when the file cannot be written)."""
        mappings = self._read()
        mappings[header_signature(header)] = {
            "columns": list(header), "fields": list(fields),
            "saved": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if len(mappings) > MEMORY_LIMIT:
            oldest = sorted(mappings, key=lambda k: str(mappings[k].get("saved", "")))
            for key in oldest[: len(mappings) - MEMORY_LIMIT]:
                del mappings[key]
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, "mappings": mappings}, ensure_ascii=False, indent=1),
                       encoding="utf-8")
        os.replace(tmp, path)


# ---------------------------------------------------------------------- column choices


@dataclass
class Choice:
    """The field chosen for one file column and where the choice came from."""

    field: str | None
    origin: str  # exact | guess | saved | user | confirmed | none

    @property
    def unconfirmed(self) -> bool:
        return self.origin == "guess" and self.field is not None


def choice_mark(choice: Choice) -> tuple[str, str]:
    """(text, class) of the mark beside a column's field: never colour alone."""
    if choice.field is None:
        return "", ""
    return {
        "guess": (_("? gissning"), "-guess"),
        "exact": (_("✓ rubriken"), "-ok"),
        "saved": (_("✓ sparad"), "-ok"),
        "user": (_("✓ vald"), "-ok"),
        "confirmed": (_("✓ bekräftad"), "-ok"),
    }.get(choice.origin, ("", ""))


def field_options() -> list[tuple[Content, str]]:
    return [(Content(_("Ignorera")), IGNORE)] + [(Content(f.label_text), f.name) for f in FIELDS]


# ---------------------------------------------------------------------- the wizard


class ImportWizard(Screen[Receipt | None]):
    """Dismisses with the receipt of a committed import, or ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "next", _("Nästa"), id="next", priority=True),
        Binding("ctrl+s", "start", _("Starta inläsning"), id="start", priority=True),
        Binding("escape", "close", _("Stäng"), id="close"),
        Binding("escape", "back", _("Tillbaka"), id="back"),
        Binding("ctrl+o", "browse", _("Bläddra"), id="browse"),
        Binding("tab", "app.focus_next", _("Nästa fält"), show=False),
        Binding("shift+tab", "app.focus_previous", _("Förra fältet"), show=False),
    ]

    def __init__(self, service: RegisterService, *, start_dir: Path | str | None = None,
                 memory: MappingMemory | None = None) -> None:
        super().__init__()
        self.service = service
        self.start_dir = Path(start_dir) if start_dir is not None else Path.cwd()
        self.memory = memory or MappingMemory()
        self.title = _("Import från fil")
        self.step = STEP_FILE
        self.path: Path | None = None
        self.detected: ReadSettings | None = None
        self.settings: ReadSettings | None = None
        self.source: CsvSource | None = None
        self.records: list[Record] = []
        self.settings_error = ""
        self.loading = False
        self._advance_after_load = False
        self.header: list[str] = []
        self.choices: list[Choice] = []
        self._columns_key: tuple[Any, ...] | None = None
        self._saved_note = False
        self._tree_timer: Timer | None = None
        self._start_timer: Timer | None = None
        self._start_error = False
        self._user_delimiter = False
        self.runner = ImportRunner(self, service, steps=wizard_steps(), preview_step=3,
                                   confirm_label=_("Slutför import"), on_error=self._build_failed)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        yield StepBar(wizard_steps(), 0, id="steps")
        yield Static("", id="wizard-banner", classes="banner")
        with ContentSwitcher(initial=STEP_FILE, id="wizard-steps"):
            with Vertical(id=STEP_FILE):
                yield Label(Content(_("Vilken fil vill du importera? Skriv sökvägen eller välj filen i listan.")),
                            classes="step-intro")
                yield SafeInput(value=self._initial_path(), id="file-path", compact=True,
                            placeholder=_("sökväg till CSV-filen, t.ex. ~/kunder.csv"),
                            suggester=PathSuggester(self.start_dir))
                yield Static("", id="file-info")
                yield Label(Content(_("→ tar förslaget · enter går vidare · tabb går till listan "
                                      "(backspace där: upp en mapp)")), classes="hint")
                yield FileTree(self.start_dir, id="file-tree")
            with VerticalScroll(id=STEP_SETTINGS):
                yield Static("", id="settings-file", classes="step-intro")
                with Horizontal(classes="setting"):
                    yield Label(Content(_("Teckenkodning")), classes="setting-label")
                    yield Select([(Content(_(label)), name) for name, label in ENCODINGS], value="utf-8",
                                 id="set-encoding", allow_blank=False, compact=True, classes="setting-input")
                    yield Static("", id="why-encoding", classes="setting-why")
                with Horizontal(classes="setting"):
                    yield Label(Content(_("Avgränsare")), classes="setting-label")
                    yield Select([(Content(delimiter_label(d)), d) for d in DELIMITERS], value=";",
                                 id="set-delimiter", allow_blank=False, compact=True, classes="setting-input")
                    yield Static("", id="why-delimiter", classes="setting-why")
                with Horizontal(classes="setting"):
                    yield Label(Content(_("Startrad")), classes="setting-label")
                    yield SafeInput("1", id="set-start", type="integer", compact=True,
                                    classes="setting-input", max_length=7)
                    yield Static("", id="why-start", classes="setting-why")
                with Horizontal(classes="setting"):
                    yield Label(Content(_("Rubrikrad")), classes="setting-label")
                    yield TickBox(Content(_("Första raden är rubriker")), True,
                                  id="set-header", compact=True, classes="setting-input")
                    yield Static("", id="why-header", classes="setting-why")
                yield Label(Content(_("Filens första rader, som de läses med inställningarna ovan")),
                            classes="section-title")
                with Vertical(id="raw-lines"):
                    for i in range(RAW_LINES):
                        yield Static("", id=f"raw-{i}", classes="raw-line")
                yield Label(Content(_("Så delas de upp i kolumner")), classes="section-title")
                yield PagedTable([], id="parsed-table")
            with Vertical(id=STEP_COLUMNS):
                yield Static("", id="columns-intro", classes="step-intro")
                with Horizontal(id="columns-head"):
                    yield Label(Content(_("Kolumn i filen")), classes="col-name")
                    yield Label(Content(_("Fält i kundregistret")), classes="col-select")
                    yield Label(Content(""), classes="col-mark")
                    yield Label(Content(_("Exempel från filen")), classes="col-sample")
                yield VerticalScroll(id="column-rows")
                yield Static("", id="columns-problem")
                yield TickBox(Content(_("Tomma celler tömmer fältet (annars behålls det sparade värdet)")),
                              False, id="opt-empty-clears", compact=True)
                yield TickBox(Content(_("Skapa varje rad som en ny kund (filen har ingen kolumn för "
                                        "kundnummer eller e-post)")), False, id="opt-all-new", compact=True)
        yield Footer()

    def _initial_path(self) -> str:
        shown = display_path(self.start_dir)
        return shown if shown.endswith("/") else shown + "/"

    def on_mount(self) -> None:
        self.query_one("#wizard-banner").display = False
        self.query_one("#opt-all-new").display = False
        path_input = self.query_one("#file-path", Input)
        path_input.focus()
        path_input.cursor_position = len(path_input.value)

    def on_unmount(self) -> None:
        self.runner.close()

    # ------------------------------------------------------------------ helpers
    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one("#wizard-banner", Static)
        banner.update(plain(message, keep_newlines=True))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)

    def show_step(self, step: str) -> None:
        self.step = step
        self.query_one("#wizard-steps", ContentSwitcher).current = step
        self.query_one("#steps", StepBar).set_current(STEPS.index(step))
        self._banner("")
        self.refresh_bindings()
        if step == STEP_FILE:
            self.query_one("#file-path", Input).focus()
        elif step == STEP_SETTINGS:
            self.query_one("#set-encoding", Select).focus()
        else:
            rows = self.query(".col-select-input")
            if rows:
                rows.first().focus()
            else:
                self.query_one("#opt-empty-clears", Checkbox).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next":
            return self.step != STEP_COLUMNS
        if action == "start":
            return self.step == STEP_COLUMNS
        if action == "close":
            return self.step == STEP_FILE
        if action == "back":
            return self.step != STEP_FILE
        if action == "browse":
            return self.step == STEP_FILE
        return True

    async def action_next(self) -> None:
        if self.step == STEP_FILE:
            self._choose_file()
        elif self.step == STEP_SETTINGS:
            await self._to_columns()

    def action_back(self) -> None:
        if self.step == STEP_COLUMNS:
            self.show_step(STEP_SETTINGS)
        elif self.step == STEP_SETTINGS:
            self.show_step(STEP_FILE)

    def action_close(self) -> None:
        self.dismiss(None)

    # ------------------------------------------------------------------ step 1: the file
    def action_browse(self) -> None:
        self.query_one("#file-tree", FileTree).focus()

    def _typed_path(self) -> Path | None:
        return typed_path(self.query_one("#file-path", Input).value, self.start_dir)

    @on(Input.Changed, "#file-path")
    def _path_changed(self, event: Input.Changed) -> None:
        info = self.query_one("#file-info", Static)
        path = self._typed_path()
        text = ""
        if path is not None:
            try:
                if path.is_file():
                    size = path.stat().st_size
                    text = _("{name} · {size}").format(name=path.name, size=_human_size(size))
                elif path.is_dir():
                    text = _("Mapp: välj en fil i den")
            except OSError:
                text = ""
        info.update(plain(text))
        if path is not None and path.is_dir():
            if self._tree_timer is not None:
                self._tree_timer.stop()
            self._tree_timer = self.set_timer(0.3, lambda: self._show_folder(path))

    def _show_folder(self, path: Path) -> None:
        tree = self.query_one("#file-tree", FileTree)
        if Path(tree.path) != path:
            tree.path = path

    @on(Input.Submitted, "#file-path")
    def _path_submitted(self) -> None:
        self._choose_file()

    @on(DirectoryTree.FileSelected, "#file-tree")
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        path_input = self.query_one("#file-path", Input)
        path_input.value = display_path(event.path)
        path_input.cursor_position = len(path_input.value)
        self._choose_file()

    @on(DirectoryTree.DirectorySelected, "#file-tree")
    def _folder_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        path_input = self.query_one("#file-path", Input)
        shown = display_path(event.path)
        path_input.value = shown if shown.endswith("/") else shown + "/"

    def _choose_file(self) -> None:
        path = self._typed_path()
        if path is None:
            self._banner(_("Skriv sökvägen till filen, eller välj den i listan (tabb)."))
            return
        if path.is_dir():
            self._show_folder(path)
            self._banner(_("{path} är en mapp. Välj en fil i den.").format(path=display_path(path)), "warning")
            return
        if not path.exists():
            self._banner(_("Filen finns inte: {path}").format(path=display_path(path)))
            return
        if self.path == path and self.settings is not None:
            # Back and forth with the same file: the settings the user chose are kept.
            self.show_step(STEP_SETTINGS)
            self._reload()
            return
        self._banner(_("Läser {name} …").format(name=path.name), "ok")
        self._sniff(path)

    @work(thread=True, exclusive=True, group="wizard-sniff")
    def _sniff(self, path: Path) -> None:
        try:
            settings = sniff_settings(path)
        except CsvReadError as exc:
            self.app.call_from_thread(self._banner, exc.message)
            return
        except Exception as exc:
            self.app.call_from_thread(self._banner, _("Filen kan inte läsas: {e}").format(e=exc))
            return
        self.app.call_from_thread(self._sniffed, path, settings)

    def _sniffed(self, path: Path, settings: ReadSettings) -> None:
        self.path = path
        self.detected = settings
        self.settings = settings
        self._user_delimiter = False
        self.source = None
        self._columns_key = None
        self._fill_settings()
        self.show_step(STEP_SETTINGS)
        self._reload()

    # ------------------------------------------------------------------ step 2: reading settings
    def _fill_settings(self) -> None:
        assert self.settings is not None and self.detected is not None and self.path is not None
        settings, detected = self.settings, self.detected
        self.query_one("#settings-file", Static).update(
            plain(_("Fil: {path}").format(path=display_path(self.path))))
        encodings = list(ENCODINGS)
        for codec in (detected.encoding, settings.encoding):
            if codec and all(codec != name for name, _l in encodings):
                encodings.insert(0, (codec, codec))
        enc = self.query_one("#set-encoding", Select)
        delimiters = list(DELIMITERS)
        for d in (detected.delimiter, settings.delimiter):
            if d and d not in delimiters:
                delimiters.append(d)
        delim = self.query_one("#set-delimiter", Select)
        with enc.prevent(Select.Changed), delim.prevent(Select.Changed):
            enc.set_options([(Content(_(label)), name) for name, label in encodings])
            enc.value = settings.encoding or "utf-8"
            delim.set_options([(Content(delimiter_label(d)), d) for d in delimiters])
            delim.value = settings.delimiter or ";"
        start = self.query_one("#set-start", Input)
        with start.prevent(Input.Changed):
            start.value = str(settings.start_row)
        header = self.query_one("#set-header", Checkbox)
        with header.prevent(Checkbox.Changed):
            header.value = settings.has_header
        self._explain()

    def _explain(self) -> None:
        settings, detected = self.settings, self.detected
        if settings is None or detected is None:
            return
        if settings.encoding == detected.encoding:
            why_enc = _("Upptäckt: {reason}").format(reason=detected.encoding_reason)
        else:
            why_enc = _("Du har valt {chosen}. Upptäckt var {detected}.").format(
                chosen=encoding_label(settings.encoding), detected=encoding_label(detected.encoding))
        if settings.delimiter == detected.delimiter:
            why_delim = _("Upptäckt: {reason}").format(reason=detected.delimiter_reason)
        else:
            why_delim = _("Du har valt {chosen}. Upptäckt var {detected}.").format(
                chosen=delimiter_label(settings.delimiter or ""),
                detected=delimiter_label(detected.delimiter or ""))
        if settings.skip_sep_line and settings.start_row <= 1:
            why_start = _("Rad 1 är Excels sep=-rad och hoppas över; läsningen börjar på rad 2.")
        elif settings.start_row > 1:
            why_start = ngettext("Rad 1 hoppas över.", "Rad 1–{last} hoppas över.",
                                 settings.start_row - 1).format(last=settings.start_row - 1)
        else:
            why_start = _("Läsningen börjar på rad 1. Öka om filen har rader före rubrikerna.")
        if settings.has_header:
            why_header = _("Rubriker på rad {header}, kunderna från rad {data}.").format(
                header=settings.header_row, data=settings.data_row)
        else:
            why_header = _("Ingen rubrikrad: kunderna från rad {data}; kolumnerna heter Kolumn 1, 2 …").format(
                data=settings.data_row)
        self.query_one("#why-encoding", Static).update(plain(why_enc))
        self.query_one("#why-delimiter", Static).update(plain(why_delim))
        self.query_one("#why-start", Static).update(plain(why_start))
        self.query_one("#why-header", Static).update(plain(why_header))

    def _set(self, **changes: Any) -> None:
        if self.settings is None:
            return
        if ("start_row" in changes or "encoding" in changes) and not self._user_delimiter \
                and not self.settings.skip_sep_line:
            # The delimiter was detected: detect it again for the lines now read.
            changes["delimiter"] = None
        new = replace(self.settings, **changes)
        if new == self.settings:
            return
        self.settings = new
        self._explain()
        self._reload()

    @on(Select.Changed, "#set-encoding")
    def _encoding_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self._set(encoding=event.value)

    @on(Select.Changed, "#set-delimiter")
    def _delimiter_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self._user_delimiter = True
            self._set(delimiter=event.value)

    @on(Checkbox.Changed, "#set-header")
    def _header_changed(self, event: Checkbox.Changed) -> None:
        self._set(has_header=event.value)

    @on(Input.Changed, "#set-start")
    def _start_changed(self, event: Input.Changed) -> None:
        if self._start_timer is not None:
            self._start_timer.stop()
        value = event.value.strip()
        self._start_timer = self.set_timer(0.25, lambda: self._apply_start(value))

    def _apply_start(self, value: str) -> None:
        try:
            row = int(value)
        except ValueError:
            row = 0
        if row < 1:
            self._start_error = True
            self._banner(_("Startraden måste vara ett heltal, 1 eller större."))
            return
        if self._start_error:
            self._start_error = False
            self._banner(self.settings_error)
        self._set(start_row=row)

    def _reload(self) -> None:
        if self.path is None or self.settings is None:
            return
        self.loading = True
        self._load(self.path, self.settings)

    @work(thread=True, exclusive=True, group="wizard-settings")
    def _load(self, path: Path, requested: ReadSettings) -> None:
        settings = requested
        source: CsvSource | None = None
        records: list[Record] = []
        error = ""
        lines: list[str] = []
        try:
            if settings.delimiter is None:
                settings = self._detect_delimiter(path, settings)
            source = open_csv(path, settings)
            records = source.preview_records(PARSED_ROWS)
            lines = source.preview(RAW_LINES + settings.first_row)
        except CsvReadError as exc:
            source, error = None, exc.message
        except Exception as exc:
            source, error = None, _("Filen kan inte läsas: {e}").format(e=exc)
        if source is None:
            try:
                lines = preview_lines(path, settings.encoding, RAW_LINES + settings.first_row)
            except Exception:
                lines = []
        self.app.call_from_thread(self._loaded, requested, settings, source, records, lines, error)

    @staticmethod
    def _detect_delimiter(path: Path, settings: ReadSettings) -> ReadSettings:
        """The delimiter of the lines read from the start row on, with the current encoding."""
        lines = preview_lines(path, settings.encoding, SNIFF_LINES + settings.first_row)
        text = "\n".join(lines[settings.first_row - 1:]) + "\n"
        delimiter, why = sniff_delimiter(text)
        return replace(settings, delimiter=delimiter, delimiter_reason=why)

    def _loaded(self, requested: ReadSettings, settings: ReadSettings, source: CsvSource | None,
                records: list[Record], lines: list[str], error: str) -> None:
        if requested != self.settings:
            return  # the user changed something meanwhile: a newer load is on its way
        self.loading = False
        if settings.delimiter != requested.delimiter and self.detected is not None:
            # Detected again (another start row or encoding): shown as detected, with the reason.
            self.settings = settings
            self.detected = replace(self.detected, delimiter=settings.delimiter,
                                    delimiter_reason=settings.delimiter_reason)
            delim = self.query_one("#set-delimiter", Select)
            with delim.prevent(Select.Changed):
                delim.value = settings.delimiter or ";"  # one of csvread.DELIMITERS
            self._explain()
        self.source = source
        self.records = records
        self.settings_error = error
        self._show_lines(settings, lines)
        self._show_parsed(source, records)
        if error:
            self._banner(error)
            self._advance_after_load = False
        elif self.step == STEP_SETTINGS:
            self._banner("")
        if self._advance_after_load:
            self._advance_after_load = False
            self.call_later(self._to_columns)

    def _show_lines(self, settings: ReadSettings, lines: list[str]) -> None:
        """The first physical lines, numbered and labelled: hoppas över / rubrik / data."""
        first = max(1, settings.first_row - 2)  # a little context before where reading starts
        shown = lines[first - 1: first - 1 + RAW_LINES]
        for i in range(RAW_LINES):
            widget = self.query_one(f"#raw-{i}", Static)
            if i >= len(shown):
                widget.update("")
                widget.set_classes("raw-line")
                continue
            number = first + i
            if settings.skip_sep_line and number == 1:
                tag, cls = _("sep-rad"), "-skipped"
            elif number < settings.first_row:
                tag, cls = _("hoppas över"), "-skipped"
            elif settings.has_header and number == settings.header_row:
                tag, cls = _("rubrik"), "-header"
            else:
                tag, cls = _("data"), "-data"
            widget.update(plain(f"{number:>5}  {tag:<11} {shown[i]}"))
            widget.set_classes(f"raw-line {cls}")

    def _show_parsed(self, source: CsvSource | None, records: list[Record]) -> None:
        table = self.query_one("#parsed-table", PagedTable)
        if source is None:
            table.set_columns([Column("none", _("Filen kan inte delas upp med de här inställningarna."),
                                      sortable=False)])
            table.set_source(SequenceSource([]), keep_position=False)
            return
        header = source.header
        columns = [Column("line", _("Rad"), width=5, align="right", sortable=False)]
        columns += [Column(f"c{i}", name or _("Kolumn {n}").format(n=i + 1), min_width=8, sortable=False)
                    for i, name in enumerate(header)]
        problems = any(r.problem for r in records)
        if problems:
            columns.append(Column("problem", _("Anmärkning"), min_width=20, ratio=2, sortable=False))
        rows = []
        for r in records:
            cells = {"line": str(r.line), **{f"c{i}": v for i, v in enumerate(r.values[: len(header)])}}
            if r.problem:
                cells["problem"] = r.problem
            rows.append(Row(key=r.line, cells=cells))
        table.set_columns(columns)
        table.set_source(SequenceSource(rows), keep_position=False)

    async def _to_columns(self) -> None:
        typed = self.query_one("#set-start", Input).value.strip()
        if self.settings is not None and typed != str(self.settings.start_row):
            self._apply_start(typed)  # typed just now, before the field's pause
            if self._start_error:
                return
        if self.loading:
            self._advance_after_load = True
            return
        if self.source is None:
            self._banner(self.settings_error or _("Filen kan inte läsas med de här inställningarna."))
            return
        await self._prepare_columns()
        self.show_step(STEP_COLUMNS)

    # ------------------------------------------------------------------ step 3: columns
    async def _prepare_columns(self) -> None:
        assert self.source is not None and self.settings is not None
        header = list(self.source.header)
        key = (tuple(header), self.settings.has_header)
        if key == self._columns_key:
            self._update_columns()  # back and forth: the user's choices are kept
            return
        self._columns_key = key
        self.header = header
        self.choices, self._saved_note = self._initial_choices(header, self.settings.has_header)
        container = self.query_one("#column-rows", VerticalScroll)
        await container.remove_children()
        options = field_options()
        rows = []
        for i, name in enumerate(header):
            samples = [r.values[i] for r in self.records if i < len(r.values) and r.values[i].strip()][:3]
            mark, mark_class = choice_mark(self.choices[i])
            rows.append(Horizontal(
                Static(plain(name or _("Kolumn {n}").format(n=i + 1)), classes="col-name"),
                Select(options, value=self.choices[i].field or IGNORE, allow_blank=False, compact=True,
                       id=f"map-{i}", classes="col-select col-select-input"),
                Static(Content(mark), id=f"mark-{i}", classes=f"col-mark {mark_class}"),
                Static(plain(" · ".join(samples)), classes="col-sample"),
                classes="col-row", id=f"col-{i}",
            ))
        await container.mount_all(rows)
        self._update_columns()

    def _initial_choices(self, header: list[str], has_header: bool) -> tuple[list[Choice], bool]:
        if has_header:
            remembered = self.memory.get(header)
            if remembered is not None:
                return [Choice(f, "saved" if f else "none") for f in remembered], True
        out = []
        for s in suggest_mapping(header if has_header else [""] * len(header)):
            if s.field is None:
                out.append(Choice(None, "none"))
            else:
                out.append(Choice(s.field, "exact" if s.exact else "guess"))
        return out, False

    @on(Select.Changed, ".col-select-input")
    def _column_changed(self, event: Select.Changed) -> None:
        event.stop()
        index = int((event.select.id or "map-0").removeprefix("map-"))
        if index >= len(self.choices):
            return
        value = event.value if isinstance(event.value, str) else IGNORE
        field = None if value == IGNORE else value
        choice = self.choices[index]
        if field == choice.field:
            return
        self.choices[index] = Choice(field, "user" if field else "none")
        self._update_columns()

    @property
    def mapping(self) -> list[str | None]:
        return [c.field for c in self.choices]

    def _problems(self) -> list[str]:
        problems: list[str] = []
        seen: dict[str, list[int]] = {}
        for i, c in enumerate(self.choices):
            if c.field:
                seen.setdefault(c.field, []).append(i)
        for field, columns in seen.items():
            if len(columns) > 1:
                problems.append(_("{field} är valt för flera kolumner ({columns}). Välj det för en kolumn.").format(
                    field=field_label(field), columns=", ".join(self._column_name(i) for i in columns)))
        if not seen:
            problems.append(_("Ingen kolumn är kopplad till ett fält. Välj fält för kolumnerna som ska läsas in."))
        return problems

    def _column_name(self, index: int) -> str:
        name = self.header[index] if index < len(self.header) else ""
        return f"”{name}”" if name else _("Kolumn {n}").format(n=index + 1)

    def _has_key(self) -> bool:
        return any(c.field in KEY_FIELDS for c in self.choices)

    def _update_columns(self) -> None:
        for i, choice in enumerate(self.choices):
            mark, mark_class = choice_mark(choice)
            widget = self.query(f"#mark-{i}")
            if widget:
                w = widget.first(Static)
                w.update(Content(mark))
                w.set_classes(f"col-mark {mark_class}".strip())
        guesses = [i for i, c in enumerate(self.choices) if c.unconfirmed]
        intro = _("Välj vilket fält varje kolumn i filen hör till, eller Ignorera. "
                  "Förslagen kommer från kolumnernas rubriker.")
        if self._saved_note:
            intro += " " + _("Kopplingen sparades när du importerade en fil med samma rubriker och används igen.")
        if guesses:
            intro += " " + ngettext(
                "{n} förslag är en gissning (?): kontrollera det.",
                "{n} förslag är gissningar (?): kontrollera dem.", len(guesses)).format(n=len(guesses))
        self.query_one("#columns-intro", Static).update(Content(intro))
        problems = self._problems()
        has_key = self._has_key()
        lines = list(problems)
        if not has_key and not problems:
            lines.append(_("Ingen kolumn är kopplad till kundnummer eller e-post, så ingen befintlig kund "
                           "kan hittas."))
        problem = self.query_one("#columns-problem", Static)
        problem.update(plain("\n".join(lines), keep_newlines=True))
        problem.display = bool(lines)
        problem.set_class(bool(problems), "-error")
        self.query_one("#opt-all-new").display = not has_key

    def action_start(self) -> None:
        if self.step != STEP_COLUMNS or self.path is None or self.settings is None:
            return
        problems = self._problems()
        if problems:
            self._banner("\n".join(problems))
            return
        from kundreg_tui.screens.confirm import ConfirmScreen

        guesses = [i for i, c in enumerate(self.choices) if c.unconfirmed]
        if guesses:
            listing = "\n".join(f"{self._column_name(i)} → {field_label(self.choices[i].field or '')}"
                                for i in guesses)

            def confirmed(choice: str | None) -> None:
                if choice == "yes":
                    for i in guesses:
                        self.choices[i] = Choice(self.choices[i].field, "confirmed")
                    self._update_columns()
                    self.action_start()
                elif guesses:
                    self.query_one(f"#map-{guesses[0]}", Select).focus()

            self.app.push_screen(ConfirmScreen(
                _("Stämmer kolumnerna?"),
                ngettext("Den här kolumnen kopplades efter en gissning från rubriken. Stämmer den?",
                         "De här kolumnerna kopplades efter gissningar från rubrikerna. Stämmer de?",
                         len(guesses)),
                [("j", _("Ja, använd dem"), "yes"), ("n", _("Nej, jag ändrar"), "no")], listing), confirmed)
            return
        all_new = self.query_one("#opt-all-new", Checkbox)
        if not self._has_key() and not all_new.value:

            def answer(choice: str | None) -> None:
                if choice == "yes":
                    all_new.value = True
                    self.action_start()

            self.app.push_screen(ConfirmScreen(
                _("Skapa alla som nya kunder?"),
                _("Filen har ingen kolumn för kundnummer eller e-post, så ingen befintlig kund kan "
                  "hittas. Ska varje rad skapas som en ny kund?"),
                [("j", _("Ja, skapa alla som nya"), "yes"), ("n", _("Nej, jag kopplar en kolumn"), "no")],
                default=1), answer)
            return
        self._remember()
        path, settings = self.path, self.settings
        options = ImportOptions(empty_clears=self.query_one("#opt-empty-clears", Checkbox).value,
                                all_new=all_new.value and not self._has_key(), source="import",
                                label=path.name)
        self._banner("")

        def open_source() -> CsvSource:
            return open_csv(path, settings)

        self.runner.start(open_source, self.mapping, options, path.name)

    def _remember(self) -> None:
        if self.settings is None or not self.settings.has_header:
            return
        try:
            self.memory.save(self.header, self.mapping)
        except OSError as exc:
            tell(self.app, _("Kolumnvalen kunde inte sparas till nästa gång: {e}").format(e=exc.strerror or exc),
                 severity="warning")

    def _build_failed(self, message: str) -> None:
        self._banner(message)


def _human_size(n: int) -> str:
    if n < 1024:
        return ngettext("{n} byte", "{n} byte", n).format(n=n)
    if n < 1024 * 1024:
        return _("{n} kB").format(n=n // 1024)
    return _("{n} MB").format(n=f"{n / (1024 * 1024):.1f}".replace(".", ","))


