"""Small helpers for the screens: the one place where data becomes something drawn.

Customer data is never parsed as markup and no control character reaches the terminal: every
value is shown through ``plain()`` (a ``Content`` made from the text made visible) and every
notification through ``tell()`` (markup off). ``SafeInput`` and ``SafeTextArea`` refuse control
and bidi characters as they are typed or pasted, so none is ever drawn from an editor either.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, TextArea

from kundreg_tui.domain.text import FORBIDDEN_MULTI_LINE, FORBIDDEN_SINGLE_LINE, visible


def plain(value: object, *, keep_newlines: bool = False) -> Content:
    """Data as literal text: never markup, control and bidi characters made visible."""
    return Content(visible(str(value), keep_newlines=keep_newlines))


def safe(value: object) -> str:
    return visible(str(value))


def tell(app: App[Any], message: str, *, title: str = "", severity: str = "information",
         timeout: float | None = None) -> None:
    """``notify`` without markup and with control characters made visible."""
    app.notify(visible(message, keep_newlines=True), title=visible(title), severity=severity,  # type: ignore[arg-type]
               timeout=timeout, markup=False)


def thousands(n: int) -> str:
    """1 000 000 (Swedish grouping with a narrow no-break space)."""
    return f"{n:,}".replace(",", "\u202f")


class Refused(Message):
    """A control or bidi character was typed or pasted into an editor and refused."""

    def __init__(self, widget: Input | TextArea, char: str) -> None:
        super().__init__()
        self.widget = widget
        self.char = char

    @property
    def control(self) -> Input | TextArea:
        return self.widget


class SafeInput(Input):
    """An ``Input`` that refuses control and bidi characters, typed or pasted (whole paste).

    A refusal rings the bell and posts ``Refused`` so the screen can say which field.
    """

    def replace(self, text: str, start: int, end: int) -> None:
        bad = [ch for ch in text if ch in FORBIDDEN_SINGLE_LINE]
        if bad:
            self.app.bell()
            self.post_message(Refused(self, bad[0]))
            return
        super().replace(text, start, end)


class SafeTextArea(TextArea):
    """A ``TextArea`` that refuses control and bidi characters (newline and tab are kept)."""

    def _replace_via_keyboard(self, insert: str, start: Any, end: Any) -> Any:
        text = insert.replace("\r\n", "\n").replace("\r", "\n")
        bad = [ch for ch in text if ch in FORBIDDEN_MULTI_LINE]
        if bad:
            self.app.bell()
            self.post_message(Refused(self, bad[0]))
            return None
        return super()._replace_via_keyboard(text, start, end)
