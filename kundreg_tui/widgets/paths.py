"""Choosing a file: path completion for an Input and a folder tree (import and export share them)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.suggester import Suggester
from textual.widgets import DirectoryTree

from kundreg_tui.domain.text import visible
from kundreg_tui.i18n import _


def display_path(path: Path | str) -> str:
    """A path as the user would type it: ``~/kunder.csv`` under the home folder."""
    p = Path(path)
    try:
        rel = p.relative_to(Path.home())
    except ValueError:
        return str(p)
    return "~" if str(rel) == "." else f"~/{rel}"


def restarted(value: str) -> str:
    """A path typed after the folder already in the field: as in Emacs, ``//`` starts again at
    the root and ``/~/`` at the home folder (``~/import//srv/kunder.csv`` is ``/srv/kunder.csv``)."""
    starts = [value.rfind("//") + 1, value.rfind("/~/") + 1, len(value) - 1 if value.endswith("/~") else 0]
    return value[max(starts):]


def typed_path(value: str, base: Path) -> Path | None:
    """The file a path field names: ``~`` expanded, relative to ``base``, restarts followed."""
    value = restarted(value.strip())
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base / path


class PathSuggester(Suggester):
    """Completes the last part of a path from the entries of its folder (like a shell's tab)."""

    def __init__(self, base: Path) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.base = base

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(self.complete, value)

    def complete(self, value: str) -> str | None:
        typed = restarted(value)
        if not typed:
            return None
        expanded = os.path.expanduser(typed)
        if typed.endswith(("/", os.sep)):
            folder, prefix = expanded, ""
        else:
            folder, prefix = os.path.split(expanded)
        where = Path(folder) if folder else self.base
        if not where.is_absolute():
            where = self.base / where
        try:
            entries = [(e.name, e.is_dir()) for e in os.scandir(where)
                       if e.name.startswith(prefix) and (prefix.startswith(".") or not e.name.startswith("."))]
        except OSError:
            return None
        if not entries:
            return None
        if len(entries) == 1:
            name, is_dir = entries[0]
            completion = name + ("/" if is_dir else "")
        else:
            completion = os.path.commonprefix([name for name, _d in entries])
        if len(completion) <= len(prefix):
            return None
        return value + completion[len(prefix):]


class FileTree(DirectoryTree):
    """The folder to browse: hidden entries left out, names shown safely; backspace goes up."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("backspace", "parent", _("Upp en mapp"), id="parent"),
    ]

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".")]

    def process_label(self, label: Any) -> Any:
        return super().process_label(visible(label) if isinstance(label, str) else label)

    def action_parent(self) -> None:
        here = Path(self.path)
        if here.parent != here:
            self.path = here.parent
