"""The Textual application: one register service in, screens out."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from kundreg_tui.domain.register import RegisterService
from kundreg_tui.i18n import _


def styles_dir() -> Path:
    """``styles/`` ships inside the wheel as ``kundreg_tui/styles``; in a checkout it is beside."""
    inside = Path(__file__).parent / "styles"
    return inside if inside.is_dir() else Path(__file__).parent.parent / "styles"


class KundregApp(App[None]):
    CSS_PATH: ClassVar[list[str | Path]] = [  # type: ignore[misc]
        styles_dir() / "app.tcss",
        styles_dir() / "register.tcss",
        styles_dir() / "forms.tcss",
        styles_dir() / "import.tcss",
        styles_dir() / "export.tcss",
    ]
    TITLE = "kundreg"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", _("Avsluta"), id="quit", priority=True),
        Binding("f1", "help", _("Hjälp"), id="help", show=False),
        Binding("question_mark", "help", _("Hjälp"), id="help2", key_display="?"),
    ]

    def __init__(self, service: RegisterService, *, db_label: str = "") -> None:
        super().__init__()
        self.service = service
        self.db_label = db_label

    def on_mount(self) -> None:
        from kundreg_tui.screens.register import RegisterScreen

        self.push_screen(RegisterScreen(self.service))

    def action_help(self) -> None:
        from kundreg_tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        rows = []
        seen: set[str] = set()
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.description or (binding.id and binding.id in seen):
                continue
            if binding.id:
                seen.add(binding.id)
            rows.append((self.get_key_display(binding), binding.description))
        self.push_screen(HelpScreen(self.screen.title or "", rows))
