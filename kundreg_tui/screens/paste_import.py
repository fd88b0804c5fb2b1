"""Importera kunder — klistra in: line 1 is the format line, the data lines follow.

``epost,förnamn,efternamn,adress,stad`` … with comma, semicolon or tab (a paste from a spreadsheet
is tab-separated). "Starta inläsning" (ctrl+s) → Förhandsgranskning; "Ändra importdata" comes back
to this screen untouched: the text and the cursor are exactly as they were.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Checkbox, Footer, Header, Label, Static, TextArea

from kundreg_tui.domain.csvread import CsvReadError, CsvSource, delimiter_label, open_text
from kundreg_tui.domain.fields import field_label
from kundreg_tui.domain.importer import ImportOptions, Receipt
from kundreg_tui.domain.mapping import match_header, parse_format_line
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.domain.text import visible
from kundreg_tui.i18n import _, ngettext
from kundreg_tui.screens.import_progress import ImportRunner, StepBar, TickBox
from kundreg_tui.ui import Refused, SafeTextArea, plain, thousands


def paste_help() -> str:
    return _(
        "Rad 1 är formatraden: fälten i den ordning de kommer, till exempel\n"
        "  epost,förnamn,efternamn,adress,stad\n"
        "  epost,kundnummer,förnamn,adress,stad\n"
        "  kundnummer,förnamn,efternamn\n"
        "Den måste innehålla kundnummer, epost eller båda, så att rätt kund hittas.\n"
        "\n"
        "Följande rader är kunderna i samma format:\n"
        "  epost,förnamn,efternamn,telefonnummer\n"
        "  nils@epost.com,Nils,Karlsson,070123456\n"
        "  stina@epost.com,Stina,Olsson,0701122333\n"
        "\n"
        "Avgränsare: komma, semikolon eller tabb (det du klistrar in från ett kalkylark är "
        "tabbavgränsat).\n"
        "En tom cell lämnar det sparade värdet som det är."
    )


def paste_steps() -> list[str]:
    return [_("Klistra in"), _("Förhandsgranskning"), _("Kvittens")]


class PasteImportScreen(Screen[Receipt | None]):
    """Dismisses with the receipt of a committed import, or ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", _("Starta inläsning"), id="start", priority=True),
        Binding("escape", "close", _("Stäng"), id="close"),
    ]

    def __init__(self, service: RegisterService, text: str = "") -> None:
        super().__init__()
        self.service = service
        self.initial_text = text
        self.title = _("Importera kunder — klistra in")
        self.runner = ImportRunner(self, service, steps=paste_steps(), preview_step=1,
                                   confirm_label=_("Bekräfta import"), on_error=self._show_error)
        self._status_timer: Timer | None = None
        self._refusal_shown = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield StepBar(paste_steps(), 0, id="steps")
        yield Static("", id="paste-banner", classes="banner")
        with Horizontal(id="paste-body"):
            with Vertical(id="paste-editor-box"):
                yield Label(Content(_("Rad 1: formatraden. Sedan en kund per rad.")), classes="paste-label")
                yield SafeTextArea(self.initial_text, id="paste-text", show_line_numbers=True,
                                   tab_behavior="focus", soft_wrap=False)
            yield Static(Content(paste_help()), id="paste-help")
        yield Static("", id="paste-format")
        yield TickBox(Content(_("Tomma celler tömmer fältet")), False, id="paste-empty-clears",
                      compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#paste-banner").display = False
        self._update_format()
        self.query_one("#paste-text", TextArea).focus()

    def on_unmount(self) -> None:
        self.runner.close()

    @property
    def text(self) -> str:
        return self.query_one("#paste-text", TextArea).text

    # ------------------------------------------------------------------ messages
    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one("#paste-banner", Static)
        banner.update(plain(message, keep_newlines=True))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)

    def _show_error(self, message: str) -> None:
        self._banner(message)
        self.query_one("#paste-text", TextArea).focus()

    @on(Refused, "#paste-text")
    def _refused(self, event: Refused) -> None:
        self._refusal_shown = True
        self._banner(_("Texten klistrades inte in: den innehåller ett otillåtet tecken ({char}, U+{code:04X}), "
                       "till exempel ett styrtecken. Ta bort det i källan och försök igen.").format(
            char=visible(event.char), code=ord(event.char)))

    @on(TextArea.Changed, "#paste-text")
    def _text_changed(self) -> None:
        if self._refusal_shown:  # a refused paste: the next good edit clears the message
            self._refusal_shown = False
            self._banner("")
        if self._status_timer is not None:
            self._status_timer.stop()
        self._status_timer = self.set_timer(0.15, self._update_format)

    def _format_line(self) -> str:
        text = self.text.lstrip("\ufeff")
        for line in text.splitlines():
            if line.strip():
                return line
        return ""

    def _update_format(self) -> None:
        """Under the editor: how the format line is understood (typos shown with their field)."""
        status = self.query_one("#paste-format", Static)
        line = self._format_line()
        if not line:
            status.update(Content(_("Skriv formatraden på rad 1, till exempel epost,förnamn,efternamn.")))
            status.set_class(False, "-problem")
            return
        parsed = parse_format_line(line)
        names = [n.strip() for n in line.split(parsed.delimiter)]
        parts: list[str] = []
        for name, field in zip(names, parsed.fields, strict=False):
            if field is None:
                parts.append(_("”{name}” ?").format(name=name) if name else _("(hoppas över)"))
                continue
            _f, _score, exact = match_header(name)
            label = field_label(field)
            parts.append(label if exact else _("{label} (”{name}”)").format(label=label, name=name))
        rows = max(0, len([ln for ln in self.text.splitlines() if ln.strip()]) - 1)
        summary = _("Fälten: {fields} · avgränsare: {delimiter} · {rows}").format(
            fields=", ".join(parts), delimiter=delimiter_label(parsed.delimiter),
            rows=ngettext("{n} rad med kunder", "{n} rader med kunder", rows).format(n=thousands(rows)))
        if parsed.problems:
            summary += "\n" + "\n".join(parsed.problems)
        status.update(plain(summary, keep_newlines=True))
        status.set_class(bool(parsed.problems), "-problem")

    # ------------------------------------------------------------------ start
    def action_start(self) -> None:
        text = self.text
        line = self._format_line()
        if not line:
            self._show_error(_("Skriv eller klistra in kunderna först. Rad 1 är formatraden, "
                               "till exempel epost,förnamn,efternamn."))
            return
        parsed = parse_format_line(line)
        if parsed.problems:
            self._show_error("\n".join([*parsed.problems, _(
                "Rad 1 ska vara formatraden: fältnamnen i den ordning de kommer, till exempel "
                "epost,förnamn,efternamn,telefonnummer.")]))
            return
        try:
            # Opened once here so that refusals (only a format line, NUL …) show on this screen.
            open_text(text, parsed.delimiter)
        except CsvReadError as exc:
            self._show_error(exc.message)
            return
        self._banner("")
        options = ImportOptions(empty_clears=self.query_one("#paste-empty-clears", Checkbox).value,
                                source="paste", label=_("klistra in"))

        def open_source() -> CsvSource:
            return open_text(text, parsed.delimiter)

        self.runner.start(open_source, parsed.fields, options, _("inklistrade kunder"))

    def action_close(self) -> None:
        if not self.text.strip():
            self.dismiss(None)
            return
        from kundreg_tui.screens.confirm import ConfirmScreen

        def answer(choice: str | None) -> None:
            if choice == "yes":
                self.dismiss(None)

        self.app.push_screen(ConfirmScreen(
            _("Stäng"), _("Texten du har klistrat in sparas inte. Vill du stänga ändå?"),
            [("s", _("Stäng"), "yes"), ("f", _("Fortsätt redigera"), "no")], default=1), answer)
