"""A question with one-key answers (used for "leave without saving?", overwrite, import)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from kundreg_tui.i18n import _
from kundreg_tui.ui import plain


class ConfirmScreen(ModalScreen[str | None]):
    """Ask ``question``; ``choices`` are (key, label, result) and escape answers ``None``.

    ``question`` and ``details`` are plain text (they may hold customer data): never markup.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", _("Avbryt"), id="cancel")]

    def __init__(self, title: str, question: str, choices: list[tuple[str, str, str]],
                 details: str = "", *, default: int = 0) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.details = details
        self.choices = choices
        self.default = default
        self.purpose = ""  # what the question is for (the app's quit guard looks)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-box"):
            yield Label(plain(self.title_text), classes="dialog-title")
            yield Static(plain(self.question, keep_newlines=True), id="confirm-question")
            if self.details:
                yield Static(plain(self.details, keep_newlines=True), id="confirm-details")
            with Horizontal(classes="dialog-buttons"):
                for i, (key, label, result) in enumerate(self.choices):
                    yield Button(plain(f"{label} [{key}]"), id=f"choice-{result}",
                                 variant="primary" if i == self.default else "default")

    def on_mount(self) -> None:
        self.query_one(f"#choice-{self.choices[self.default][2]}", Button).focus()

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        for k, _label, result in self.choices:
            if key == k:
                event.stop()
                self.dismiss(result)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "choice-").removeprefix("choice-"))

    def action_cancel(self) -> None:
        self.dismiss(None)
