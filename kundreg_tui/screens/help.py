"""Hjälp: every key of the screen in front of you."""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from kundreg_tui.i18n import _
from kundreg_tui.ui import safe


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", _("Stäng"), id="close"),
        Binding("question_mark,f1,q", "close", _("Stäng"), show=False),
    ]

    def __init__(self, screen_title: str, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.screen_title = screen_title
        self.keys = keys
        self.title = _("Hjälp")

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            yield Label(Content(_("Hjälp — {screen}").format(screen=safe(self.screen_title))),
                        classes="dialog-title")
            width = max((cell_len(safe(key)) for key, _d in self.keys), default=0)
            lines = [
                Content.assemble((safe(key) + " " * (width + 3 - cell_len(safe(key))), "bold"),
                                 safe(description))
                for key, description in self.keys
            ]
            with VerticalScroll(id="help-scroll"):
                yield Static(Content("\n").join(lines), id="help-keys")
            yield Label(Content(_("Esc stänger hjälpen.")), classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
