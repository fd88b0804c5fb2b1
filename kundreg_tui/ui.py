"""Small helpers for the screens: the one place where data becomes something drawn.

Customer data is never parsed as markup and no control character reaches the terminal: every
value is shown through ``plain()`` (a ``Content`` made from the text made visible) and every
notification through ``tell()`` (markup off).
"""

from __future__ import annotations

from textual.app import App
from textual.content import Content

from kundreg_tui.domain.text import visible


def plain(value: object, *, keep_newlines: bool = False) -> Content:
    """Data as literal text: never markup, control and bidi characters made visible."""
    return Content(visible(str(value), keep_newlines=keep_newlines))


def safe(value: object) -> str:
    return visible(str(value))


def tell(app: App[object], message: str, *, title: str = "", severity: str = "information",
         timeout: float | None = None) -> None:
    """``notify`` without markup and with control characters made visible."""
    app.notify(visible(message, keep_newlines=True), title=visible(title), severity=severity,  # type: ignore[arg-type]
               timeout=timeout, markup=False)


def thousands(n: int) -> str:
    """1 000 000 (Swedish grouping with a narrow no-break space)."""
    return f"{n:,}".replace(",", "\u202f")
