"""A question with one-key answers (used for "leave without saving?", overwrite, import)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from kundreg_tui.i18n import _, current_language
from kundreg_tui.ui import plain


def answer_keys(choices: list[tuple[str, str, str]]) -> list[tuple[str, ...]]:
    """The keys that give each answer. The given key is the Swedish one (the first letter of the
    Swedish answer, e.g. ``j`` for "Ja"); in another language the first letter of the translated
    answer comes first (``y`` for "Yes, import"), when no other answer starts with it, and the
    given key still works."""
    keys = [(key,) for key, _label, _result in choices]
    if current_language() == "sv":
        return keys
    firsts = [next((ch.lower() for ch in label if ch.isalnum()), "") for _key, label, _result in choices]
    out = []
    for i, (key, first) in enumerate(zip((k for k, _l, _r in choices), firsts, strict=True)):
        clash = first in firsts[:i] + firsts[i + 1:] or any(
            first == other for j, (other, _l, _r) in enumerate(choices) if j != i)
        out.append((first, key) if first and first != key and not clash else (key,))
    return out


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
        self.keys = answer_keys(choices)
        self.purpose = ""  # what the question is for (the app's quit guard looks)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-box"):
            yield Label(plain(self.title_text), classes="dialog-title")
            yield Static(plain(self.question, keep_newlines=True), id="confirm-question")
            if self.details:
                yield Static(plain(self.details, keep_newlines=True), id="confirm-details")
            with Horizontal(classes="dialog-buttons"):
                for i, ((_key, label, result), keys) in enumerate(zip(self.choices, self.keys, strict=True)):
                    yield Button(plain(f"{label} [{keys[0]}]"), id=f"choice-{result}",
                                 variant="primary" if i == self.default else "default")

    def on_mount(self) -> None:
        self.query_one(f"#choice-{self.choices[self.default][2]}", Button).focus()

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        for (_k, _label, result), keys in zip(self.choices, self.keys, strict=True):
            if key in keys:
                event.stop()
                self.dismiss(result)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "choice-").removeprefix("choice-"))

    def action_cancel(self) -> None:
        self.dismiss(None)
