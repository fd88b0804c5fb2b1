"""Hjälp: every key of the screen in front of you."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from kundreg_tui.i18n import _


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", _("Stäng"), id="close"),
        Binding("question_mark,f1,q", "close", _("Stäng"), show=False),
    ]

    def __init__(self, screen_title: str, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.screen_title = screen_title
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            yield Label(Content(_("Hjälp — {screen}").format(screen=self.screen_title)), classes="dialog-title")
            table: DataTable[Content] = DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)
            table.add_column(Content(_("Tangent")), key="key")
            table.add_column(Content(_("Gör")), key="action")
            for key, description in self.keys:
                table.add_row(Content(key), Content(description))
            yield table
            yield Label(Content(_("Esc stänger hjälpen.")), classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
