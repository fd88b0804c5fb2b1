"""Kundlista: choose the list type, the customers and the file; the export runs in a thread.

Keyboard first: the list types and the scope are radio sets (arrows, space), the file is a path
field that completes folder entries (→ takes the suggestion) with the folder's tree beside it,
ctrl+s exports and escape goes back (during an export: asks, then cancels). An existing file is
only overwritten after a question; a cancelled export leaves no file behind (the domain writes
a temporary file and renames it at the end).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import (
    DirectoryTree,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    RadioButton,
    RadioSet,
    Static,
)
from textual.worker import get_current_worker

from kundreg_tui.domain.export import (
    ExportCancelled,
    ExportError,
    ExportKind,
    ExportRequest,
    ExportResult,
    Scope,
    check_target,
    count_customers,
    default_file_name,
    export_to_path,
    kind_description,
    kind_title,
    scope_title,
)
from kundreg_tui.domain.register import RegisterService, Sort
from kundreg_tui.i18n import _, ngettext
from kundreg_tui.ui import plain, tell, thousands
from kundreg_tui.widgets.paths import FileTree, PathSuggester, display_path, typed_path

KINDS = (ExportKind.CSV, ExportKind.EXCEL, ExportKind.EXCEL_CSV, ExportKind.PRINT)
SCOPES = (Scope.ALL, Scope.SHOWN, Scope.MARKED)
PROGRESS_INTERVAL = 0.1  # seconds between progress updates from the export thread


def _today() -> datetime:
    return datetime.now()


class ExportScreen(Screen[ExportResult | None]):
    """Kundlista. Dismisses with the last export's result (``None`` when nothing was written)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "export", _("Exportera"), id="export", priority=True),
        Binding("escape", "back", _("Tillbaka"), id="back"),
    ]

    def __init__(self, service: RegisterService, query: str, sort: Sort, marked_ids: list[int], *,
                 directory: Path | str | None = None, today: datetime | None = None) -> None:
        super().__init__()
        self.service = service
        self.query_text = query
        self.sort = sort
        self.marked_ids = list(marked_ids)
        self.directory = Path(directory) if directory is not None else Path.cwd()
        self.today = today or _today()
        self.title = _("Kundlista")
        self.kind = ExportKind.CSV
        self.scope = Scope.MARKED if self.marked_ids else Scope.SHOWN if query.strip() else Scope.ALL
        self.counts: dict[Scope, int] = {}
        self.running = False
        self.result: ExportResult | None = None
        self._cancel = threading.Event()
        self._last_progress = 0.0
        self._focus_before: Widget | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="export-banner", classes="banner")
        with Horizontal(id="export-form"):
            with Vertical(id="export-left"):
                yield Label(Content(_("Typ av kundlista")), classes="export-heading")
                with RadioSet(id="export-kind"):
                    for kind in KINDS:
                        yield RadioButton(Content(kind_title(kind)), value=kind is self.kind,
                                          id=f"kind-{kind.value}")
                yield Static(Content(kind_description(self.kind)), id="kind-help")
                yield Label(Content(_("Kunder")), classes="export-heading")
                with RadioSet(id="export-scope"):
                    for scope in SCOPES:
                        yield RadioButton(self._scope_label(scope), value=scope is self.scope,
                                          id=f"scope-{scope.value}", disabled=not self._scope_possible(scope))
            with Vertical(id="export-right"):
                yield Label(Content(_("Spara i filen")), classes="export-heading")
                yield Input(value=self._default_path(), id="export-path", compact=True,
                            placeholder=_("sökväg till filen, t.ex. ~/kundlista.csv"),
                            suggester=PathSuggester(self.directory))
                yield Static("", id="path-info")
                yield Label(Content(_("→ tar förslaget · tabb: välj i mappen nedan")), classes="hint")
                yield FileTree(self.directory, id="export-tree")
        with Vertical(id="export-run"):
            yield ProgressBar(id="export-progress", show_eta=False)
            yield Static("", id="export-status")
        yield Footer()

    def on_mount(self) -> None:
        for radio_set in self.query(RadioSet):
            # The keyboard cursor starts on the chosen option, not on the first one.
            radio_set._selected = radio_set.pressed_index
        self.query_one("#export-run").display = False
        self._show_path_info()
        self.query_one("#export-kind", RadioSet).focus()
        self._count()

    # ------------------------------------------------------------------ scope
    def _scope_possible(self, scope: Scope) -> bool:
        if scope is Scope.SHOWN:
            return bool(self.query_text.strip())
        if scope is Scope.MARKED:
            return bool(self.marked_ids)
        return True

    def _scope_label(self, scope: Scope) -> Content:
        text = scope_title(scope)
        if scope is Scope.SHOWN:
            query = self.query_text.strip()
            text += f": ”{query}”" if query else " " + _("(ingen sökning)")
        elif scope is Scope.MARKED and not self.marked_ids:
            text += " " + _("(inga markerade)")
        if scope in self.counts:
            text += f" ({thousands(self.counts[scope])})"
        return plain(text)  # the search text is the user's: never markup

    @work(thread=True, exclusive=True, group="export-count")
    def _count(self) -> None:
        counts: dict[Scope, int] = {}
        for scope in SCOPES:
            if self._scope_possible(scope):
                counts[scope] = count_customers(self.service, self._request(scope))
        self.app.call_from_thread(self._show_counts, counts)

    def _show_counts(self, counts: dict[Scope, int]) -> None:
        self.counts = counts
        for scope in SCOPES:
            self.query_one(f"#scope-{scope.value}", RadioButton).label = self._scope_label(scope)

    def _request(self, scope: Scope | None = None) -> ExportRequest:
        scope = scope or self.scope
        return ExportRequest(kind=self.kind, scope=scope, query=self.query_text, sort=self.sort,
                             ids=tuple(self.marked_ids) if scope is Scope.MARKED else ())

    @on(RadioSet.Changed, "#export-scope")
    def _scope_changed(self, event: RadioSet.Changed) -> None:
        self.scope = Scope((event.pressed.id or "scope-all").removeprefix("scope-"))

    # ------------------------------------------------------------------ type
    @on(RadioSet.Changed, "#export-kind")
    def _kind_changed(self, event: RadioSet.Changed) -> None:
        old = self.kind
        self.kind = ExportKind((event.pressed.id or "kind-csv").removeprefix("kind-"))
        self.query_one("#kind-help", Static).update(Content(kind_description(self.kind)))
        field = self.query_one("#export-path", Input)
        value = field.value
        head, name = os.path.split(value)
        if name == default_file_name(old, self.today):
            name = default_file_name(self.kind, self.today)
        elif name.endswith(old.extension):
            name = name[: -len(old.extension)] + self.kind.extension
        new = os.path.join(head, name) if head else name
        if new != value:
            field.value = new
            field.cursor_position = len(new)

    # ------------------------------------------------------------------ file
    def _default_path(self) -> str:
        return display_path(self.directory / default_file_name(self.kind, self.today))

    def _typed_path(self) -> Path | None:
        return typed_path(self.query_one("#export-path", Input).value, self.directory)

    @on(Input.Changed, "#export-path")
    def _path_changed(self) -> None:
        self._show_path_info()

    def _show_path_info(self) -> None:
        info = self.query_one("#path-info", Static)
        path = self._typed_path()
        problem = check_target(path) if path is not None else _("Ange en fil att spara kundlistan i.")
        if problem:
            text, cls = problem, "-error"
        elif path is not None and path.exists():
            text, cls = _("Filen finns redan: du får frågan innan den skrivs över."), "-warning"
        else:
            assert path is not None
            text, cls = _("Ny fil i {folder}").format(folder=display_path(path.parent)), ""
        info.update(plain(text))
        info.set_classes(cls)

    @on(Input.Submitted, "#export-path")
    def _path_submitted(self) -> None:
        self.action_export()

    @on(DirectoryTree.FileSelected, "#export-tree")
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self._set_path(display_path(event.path))

    @on(DirectoryTree.DirectorySelected, "#export-tree")
    def _folder_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        current = self._typed_path()
        name = current.name if current is not None and current.name else default_file_name(self.kind, self.today)
        self._set_path(display_path(Path(event.path) / name))

    def _set_path(self, value: str) -> None:
        field = self.query_one("#export-path", Input)
        field.value = value
        field.cursor_position = len(value)

    # ------------------------------------------------------------------ exporting
    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one("#export-banner", Static)
        banner.update(plain(message))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)

    def action_export(self) -> None:
        if self.running:
            return
        path = self._typed_path()
        problem = check_target(path) if path is not None else _("Ange en fil att spara kundlistan i.")
        if problem or path is None:
            self._banner(problem or "")
            self.query_one("#export-path", Input).focus()
            return
        if path.exists():
            from kundreg_tui.screens.confirm import ConfirmScreen

            def answer(choice: str | None) -> None:
                if choice == "overwrite":
                    self._start(path, overwrite=True)

            self.app.push_screen(
                ConfirmScreen(
                    _("Filen finns redan"),
                    _("{path} finns redan. Vill du skriva över den?").format(path=display_path(path)),
                    [("j", _("Skriv över"), "overwrite"), ("n", _("Avbryt"), "cancel")],
                    default=1,
                ),
                answer,
            )
            return
        self._start(path, overwrite=False)

    def _start(self, path: Path, *, overwrite: bool) -> None:
        self.running = True
        self._cancel.clear()
        self._banner("")
        self._focus_before = self.focused
        self.query_one("#export-form").disabled = True
        self.query_one("#export-run").display = True
        bar = self.query_one("#export-progress", ProgressBar)
        bar.update(total=self.counts.get(self.scope), progress=0)
        self.query_one("#export-status", Static).update(
            plain(_("Exporterar till {path} … (escape avbryter)").format(path=display_path(path))))
        self._run(self._request(), path, overwrite)

    @work(thread=True, exclusive=True, group="export")
    def _run(self, request: ExportRequest, path: Path, overwrite: bool) -> None:
        worker = get_current_worker()

        def cancelled() -> bool:
            return self._cancel.is_set() or worker.is_cancelled

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done < total and now - self._last_progress < PROGRESS_INTERVAL:
                return
            self._last_progress = now
            self.app.call_from_thread(self._progress, done, total)

        try:
            result = export_to_path(self.service, request, path, overwrite=overwrite,
                                    progress=progress, cancelled=cancelled)
        except ExportCancelled as exc:
            self.app.call_from_thread(self._finished, None, str(exc), "warning")
        except ExportError as exc:
            self.app.call_from_thread(self._finished, None, str(exc), "error")
        except Exception as exc:  # a database fault: tell it, the screen stays usable
            message = _("Kundlistan kunde inte sparas: {e}").format(e=exc)
            self.app.call_from_thread(self._finished, None, message, "error")
        else:
            self.app.call_from_thread(self._finished, result, "", "ok")

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#export-progress", ProgressBar).update(total=total, progress=done)

    def _finished(self, result: ExportResult | None, message: str, kind: str) -> None:
        self.running = False
        self.query_one("#export-form").disabled = False
        if self._focus_before is not None and self._focus_before.is_mounted:
            self._focus_before.focus()
        if result is not None:
            self.result = result
            self.query_one("#export-progress", ProgressBar).update(total=max(result.count, 1),
                                                                   progress=max(result.count, 1))
            shown = display_path(result.path) if result.path else ""
            message = ngettext("Kundlistan sparades i {path}: {n} kund.",
                               "Kundlistan sparades i {path}: {n} kunder.",
                               result.count).format(path=shown, n=thousands(result.count))
            self._show_path_info()
            tree = self.query_one("#export-tree", FileTree)
            if result.path is not None and Path(tree.path) == result.path.parent:
                tree.reload()  # the new file shows in the folder
        else:
            self.query_one("#export-run").display = False
        self.query_one("#export-status", Static).update(plain(_("Klart.") if result is not None else ""))
        self._banner(message, kind)
        tell(self.app, message, title=_("Kundlista"),
             severity={"ok": "information", "warning": "warning"}.get(kind, "error"))

    # ------------------------------------------------------------------ leaving
    def action_back(self) -> None:
        if not self.running:
            self.dismiss(self.result)
            return
        from kundreg_tui.screens.confirm import ConfirmScreen

        def answer(choice: str | None) -> None:
            if choice == "stop" and self.running:
                self._cancel.set()
                self.query_one("#export-status", Static).update(plain(_("Avbryter …")))

        self.app.push_screen(
            ConfirmScreen(
                _("Avbryta exporten?"),
                _("Exporten pågår. Avbryter du skrivs ingen fil (en befintlig fil lämnas orörd)."),
                [("j", _("Avbryt exporten"), "stop"), ("n", _("Fortsätt"), "go")],
                default=1,
            ),
            answer,
        )
