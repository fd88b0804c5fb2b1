"""Starta inläsning: the plan is built in a thread worker behind a progress dialog.

Shared by Import från fil and Importera kunder — klistra in. ``ImportRunner`` drives the rest of
an import for the screen that owns the input: build (``BuildScreen``) → Förhandsgranskning
(``PreviewScreen``) → Kvittens (``ReceiptScreen``); it owns the plan and closes it whenever the
import is left (back to edit, a fresh preview, the receipt, or the screen closing).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Checkbox, Label, ProgressBar, Static

from kundreg_tui.domain.csvread import CsvReadError, CsvSource
from kundreg_tui.domain.importer import (
    Cancelled,
    ImportError_,
    ImportOptions,
    ImportPlan,
    Receipt,
)
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.i18n import _, ngettext
from kundreg_tui.ui import plain, tell, thousands


class StepBar(Horizontal):
    """Where the user is: ``1 Välj fil › 2 Inläsning › …`` (the current step has class -current)."""

    def __init__(self, steps: Sequence[str], current: int = 0, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="step-bar")
        self.steps = list(steps)
        self.current = current

    def compose(self) -> ComposeResult:
        for index, name in enumerate(self.steps):
            if index:
                yield Label(Content(" › "), classes="step-sep")
            yield Label(Content(f"{index + 1} {name}"), classes=self._step_classes(index), id=f"step-{index}")

    def _step_classes(self, index: int) -> str:
        if index == self.current:
            return "step -current"
        return "step -done" if index < self.current else "step"

    def set_current(self, index: int) -> None:
        self.current = index
        for i in range(len(self.steps)):
            self.query_one(f"#step-{i}", Label).set_classes(self._step_classes(i))


class TickBox(Checkbox):
    """A checkbox that shows its state with a sign (✓ or blank), not by colour alone."""

    def watch_value(self) -> None:
        self.BUTTON_INNER = "✓" if self.value else " "
        super().watch_value()

    def on_mount(self) -> None:
        self.BUTTON_INNER = "✓" if self.value else " "
        self.refresh()


@dataclass
class BuildOutcome:
    plan: ImportPlan | None = None
    error: str = ""
    line: int | None = None
    cancelled: bool = False


def _size(n: int) -> str:
    if n < 1024:
        return ngettext("{n} byte", "{n} byte", n).format(n=n)
    if n < 1024 * 1024:
        return _("{n} kB").format(n=thousands(n // 1024))
    return _("{n} MB").format(n=f"{n / (1024 * 1024):.1f}".replace(".", ","))


class BuildScreen(ModalScreen[BuildOutcome]):
    """Reads every row into a plan, with a progress bar; escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", _("Avbryt inläsningen"), id="cancel"),
    ]

    def __init__(self, service: RegisterService, open_source: Callable[[], CsvSource],
                 mapping: Sequence[str | None], options: ImportOptions, what: str) -> None:
        super().__init__()
        self.service = service
        self.open_source = open_source
        self.mapping = list(mapping)
        self.options = options
        self.what = what
        self._cancel = threading.Event()
        self._source: CsvSource | None = None
        self._rows = 0
        self._timer: Timer | None = None
        self._done = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="build-box"):
            yield Label(Content(_("Starta inläsning")), classes="dialog-title")
            yield Static(plain(_("Läser {what} …").format(what=self.what)), id="build-what")
            yield ProgressBar(total=None, show_eta=False, id="build-progress")
            yield Static(Content(_("Öppnar …")), id="build-status")
            yield Static(Content(_("Esc avbryter inläsningen. Inget sparas förrän du bekräftar importen.")),
                         classes="dialog-hint")

    def on_mount(self) -> None:
        self._timer = self.set_interval(0.1, self._poll)
        self._run()

    def on_unmount(self) -> None:
        # The app is closing under us: stop the worker at its next check.
        if not self._done:
            self._cancel.set()

    def _progress(self, rows: int) -> None:
        self._rows = rows

    def _poll(self) -> None:
        source = self._source
        if source is None or self._done:
            return
        bar = self.query_one("#build-progress", ProgressBar)
        status = self.query_one("#build-status", Static)
        total = source.total_bytes
        read = source.bytes_read
        if self._cancel.is_set():
            status.update(Content(_("Avbryter …")))
            return
        if total:
            bar.update(total=total, progress=min(read, total))
        rows = ngettext("{n} rad läst", "{n} rader lästa", self._rows).format(n=thousands(self._rows))
        if total and read >= total:
            status.update(Content(_("{rows} · jämför med kundregistret …").format(rows=rows)))
        elif total:
            status.update(Content(_("{read} av {total} · {rows}").format(
                read=_size(read), total=_size(total), rows=rows)))
        else:
            status.update(Content(rows))

    @work(thread=True, exclusive=True, group="import-build")
    def _run(self) -> None:
        outcome: BuildOutcome
        try:
            source = self.open_source()
            self._source = source
            plan = ImportPlan(self.service.engine, self.options, actor=self.service.actor)
            try:
                plan.build(source, self.mapping, progress=self._progress, cancelled=self._cancel.is_set)
            except BaseException:
                plan.close()
                raise
            if self._cancel.is_set():
                plan.close()
                outcome = BuildOutcome(cancelled=True)
            else:
                outcome = BuildOutcome(plan=plan)
        except Cancelled:
            outcome = BuildOutcome(cancelled=True)
        except CsvReadError as exc:
            outcome = BuildOutcome(error=exc.message, line=exc.line)
        except ImportError_ as exc:
            outcome = BuildOutcome(error=str(exc))
        except Exception as exc:  # a database fault: tell it, never crash
            outcome = BuildOutcome(error=_("Inläsningen misslyckades: {e}").format(e=exc))
        try:
            self.app.call_from_thread(self._finish, outcome)
        except Exception:
            if outcome.plan is not None:
                outcome.plan.close()

    def _finish(self, outcome: BuildOutcome) -> None:
        self._done = True
        if not self.is_attached:
            if outcome.plan is not None:
                outcome.plan.close()
            return
        self.dismiss(outcome)

    def action_cancel(self) -> None:
        self._cancel.set()
        self.query_one("#build-status", Static).update(Content(_("Avbryter …")))


PreviewResult = Receipt | str | None  # a receipt (committed), "rebuild", or None (Ändra importdata)


class ImportRunner:
    """Build → Förhandsgranskning → Kvittens for ``screen``, which holds the input.

    ``on_error`` shows a refusal on the owner's step. When the receipt is closed the owner is
    dismissed with the receipt (the register reloads).
    """

    def __init__(self, screen: Screen[Any], service: RegisterService, *, steps: Sequence[str],
                 preview_step: int, confirm_label: str, on_error: Callable[[str], None]) -> None:
        self.screen = screen
        self.service = service
        self.steps = list(steps)
        self.preview_step = preview_step
        self.confirm_label = confirm_label
        self.on_error = on_error
        self.plan: ImportPlan | None = None
        self.label = ""
        self._last: tuple[Callable[[], CsvSource], list[str | None], ImportOptions, str] | None = None

    @property
    def busy(self) -> bool:
        return self.plan is not None

    def start(self, open_source: Callable[[], CsvSource], mapping: Sequence[str | None],
              options: ImportOptions, what: str) -> None:
        self.close()
        self._last = (open_source, list(mapping), options, what)
        self.label = options.label or what
        self.screen.app.push_screen(BuildScreen(self.service, open_source, mapping, options, what),
                                    self._built)

    def _built(self, outcome: BuildOutcome | None) -> None:
        if outcome is None or outcome.cancelled:
            tell(self.screen.app, _("Inläsningen avbröts. Inget har importerats."), severity="warning")
            return
        if outcome.error or outcome.plan is None:
            self.on_error(outcome.error or _("Inläsningen misslyckades."))
            return
        if not self.screen.is_attached:
            outcome.plan.close()
            return
        from kundreg_tui.screens.preview import PreviewScreen

        self.plan = outcome.plan
        self.screen.app.push_screen(
            PreviewScreen(self.plan, confirm_label=self.confirm_label, steps=self.steps,
                          step=self.preview_step, label=self.label),
            self._previewed,
        )

    def _previewed(self, result: PreviewResult) -> None:
        self.close()
        if isinstance(result, Receipt):
            from kundreg_tui.screens.receipt import ReceiptScreen

            self.screen.app.push_screen(
                ReceiptScreen(self.service, result, steps=self.steps, step=self.preview_step + 1),
                lambda _closed: self.screen.dismiss(result),
            )
        elif result == "rebuild" and self._last is not None:
            self.start(*self._last)

    def close(self) -> None:
        plan, self.plan = self.plan, None
        if plan is not None:
            plan.close()
