"""The Textual application: one register service in, screens out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from kundreg_tui.domain.register import RegisterService
from kundreg_tui.i18n import N_, _
from kundreg_tui.ui import tell


def styles_dir() -> Path:
    """``styles/`` ships inside the wheel as ``kundreg_tui/styles``; in a checkout it is beside."""
    inside = Path(__file__).parent / "styles"
    return inside if inside.is_dir() else Path(__file__).parent.parent / "styles"


# Textual's own bindings that are worth listing in Hjälp, in Swedish; its other (English)
# descriptions are left out of the help.
_TEXTUAL_DESCRIPTIONS: dict[str, str] = {
    "Focus Next": N_("Nästa fält"),
    "Focus Previous": N_("Förra fältet"),
    "Scroll Left": N_("Rulla åt vänster"),
    "Scroll Right": N_("Rulla åt höger"),
}
_TEXTUAL_HIDDEN = {"Copy selected text", "Page Left", "Page Right", "Scroll Up", "Scroll Down",
                   "Scroll Home", "Scroll End", "Page Up", "Page Down"}


def help_rows(app: App[Any], screen: Screen[Any]) -> list[tuple[str, str]]:
    """(keys, what they do) for every key of ``screen``: its own first, then the focused
    widget's, then the application's. Keys doing the same thing share a row (``? / f1``)."""
    active = screen.active_bindings

    own = getattr(screen, "_bindings", None)
    own_order = {key: n for n, key in enumerate(own.key_to_bindings)} if own is not None else {}

    def rank(item: tuple[str, Any]) -> tuple[int, int]:
        node = item[1].node
        if item[1].binding.description in _TEXTUAL_DESCRIPTIONS:
            return (3, 0)  # tab, shift+tab: last
        if node is screen:
            return (0, own_order.get(item[0], 0))
        return (2 if node is app else 1, 0)

    order: list[tuple[str, str]] = []
    keys: dict[tuple[str, str], list[str]] = {}
    for key, active_binding in sorted(active.items(), key=rank):
        binding, node = active_binding.binding, active_binding.node
        # The tooltip is the longer description (the footer's is short).
        description = binding.tooltip or binding.description
        if node is not screen and own is not None:
            # A key the focused widget handles on the screen's behalf: say what it does here.
            for screen_binding in own.key_to_bindings.get(key, []):
                if screen_binding.description:
                    description = screen_binding.tooltip or screen_binding.description
                    break
        if not description or description in _TEXTUAL_HIDDEN:
            continue
        if description in _TEXTUAL_DESCRIPTIONS:
            description = _TEXTUAL_DESCRIPTIONS[description]
        elif node is not screen and node is not app and type(node).__module__.startswith("textual."):
            continue  # an editor's own keys (Input, Select, …): not the screen's
        text = _(description)
        group = (binding.action.removeprefix("app."), text)
        if group not in keys:
            keys[group] = []
            order.append(group)
        display = app.get_key_display(binding)
        if display not in keys[group]:
            keys[group].append(display)
    return [(" / ".join(keys[group]), group[1]) for group in order]


class KundregApp(App[None]):
    CSS_PATH: ClassVar[list[str | Path]] = [  # type: ignore[misc]
        styles_dir() / "app.tcss",
        styles_dir() / "register.tcss",
        styles_dir() / "forms.tcss",
        styles_dir() / "import.tcss",
        styles_dir() / "export.tcss",
        styles_dir() / "history.tcss",
    ]
    TITLE = "kundreg"
    # The palette's commands are Textual's own, in English: the keys are in the footer and Hjälp.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", _("Avsluta"), id="quit", priority=True),
        Binding("f1", "help", _("Hjälp"), id="help"),
        Binding("question_mark", "help", _("Hjälp"), id="help2", key_display="?", show=False),
    ]

    def __init__(self, service: RegisterService, *, db_label: str = "") -> None:
        super().__init__()
        self.service = service
        self.db_label = db_label
        self.sub_title = db_label

    def _handle_exception(self, error: Exception) -> None:
        """An unexpected error: a short message and a private log, never Textual's crash report
        (it prints local variables, which hold customer data). The terminal is restored as usual."""
        from rich.text import Text

        from kundreg_tui.crash import write_crash_log

        self._return_code = 1
        if self._exception is None:  # keep Pilot's re-raise for tests
            self._exception = error
            self._exception_event.set()
        try:
            where = str(write_crash_log(error))
        except OSError:
            where = "-"
        message = _("kundreg stängdes av ett oväntat fel ({kind}). Inga ändringar gick förlorade utöver "
                    "den som pågick. En logg utan personuppgifter finns i {path}").format(
            kind=type(error).__name__, path=where)
        self._exit_renderables.append(Text(message))
        self._close_messages_no_wait()

    def on_mount(self) -> None:
        from kundreg_tui.screens.register import RegisterScreen

        self.push_screen(RegisterScreen(self.service))

    def action_help(self) -> None:
        from kundreg_tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen.title or "", help_rows(self, self.screen)))

    def action_help_quit(self) -> None:
        """ctrl+c (copy in an editor) elsewhere: say how to quit, in Swedish, without markup."""
        tell(self, _("Avsluta med ctrl+q."))

    async def action_quit(self) -> None:
        """ctrl+q: quit, but ask first when a form holds changes that are not saved."""
        from kundreg_tui.screens.confirm import ConfirmScreen
        from kundreg_tui.screens.customer_form import CustomerForm

        if isinstance(self.screen, ConfirmScreen) and getattr(self.screen, "purpose", "") == "quit":
            self.exit()
            return
        if not any(isinstance(s, CustomerForm) and s.dirty for s in self.screen_stack):
            self.exit()
            return

        def answer(choice: str | None) -> None:
            if choice == "quit":
                self.exit()

        confirm = ConfirmScreen(
            _("Osparade ändringar"),
            _("Du har ändringar i en kund som inte är sparade. Vill du avsluta ändå?"),
            [("l", _("Avsluta utan att spara"), "quit"), ("a", _("Fortsätt redigera"), "stay")],
            default=1,
        )
        confirm.purpose = "quit"
        self.push_screen(confirm, answer)
