"""Radera markerade: the confirmation that names how many customers and which."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from kundreg_tui.domain.models import CustomerRecord
from kundreg_tui.i18n import _, current_language, ngettext
from kundreg_tui.ui import safe, thousands


class DeleteScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        # The key shown first is the language's own: j (ja) in Swedish, y (yes) in English.
        Binding("j,y" if current_language() == "sv" else "y,j", "confirm", _("Ja, radera"), id="confirm"),
        Binding("escape,n", "cancel", _("Avbryt"), id="cancel"),
    ]

    def __init__(self, count: int, preview: list[CustomerRecord]) -> None:
        super().__init__()
        self.count = count
        self.preview = preview

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="delete-box"):
            yield Label(Content(_("Radera markerade")), classes="dialog-title")
            yield Static(Content(ngettext("Vill du radera {n} kund?", "Vill du radera {n} kunder?",
                                          self.count).format(n=thousands(self.count))), id="delete-question")
            # One line per customer: a line break inside a name is shown as ↵, never as a line.
            lines = [safe(f"{r.number}  {r.name}") for r in self.preview]
            if self.count > len(self.preview):
                lines.append(_("… och {n} till").format(n=thousands(self.count - len(self.preview))))
            yield Static(Content("\n".join(lines)), id="delete-list")
            yield Static(Content(_("Raderingen kan ångras med ctrl+z i kundregistret.")), classes="dialog-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button(Content(_("Ja, radera [j]")), id="yes", variant="error")
                yield Button(Content(_("Avbryt [esc]")), id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
