"""Kvittens: what an import did — created (with the numbers given), updated, skipped and why.

The receipt can be saved to a text file and the import undone. Closing it returns to the
register, which reloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from kundreg_tui.domain.importer import ERROR, NEW, SAME, UPDATE, ImportError_, Receipt, undo_import
from kundreg_tui.domain.register import RegisterService
from kundreg_tui.i18n import _, ngettext
from kundreg_tui.screens.import_progress import StepBar
from kundreg_tui.ui import SafeInput, plain, safe, tell, thousands
from kundreg_tui.widgets.pagedtable import Column, PagedTable, Row
from kundreg_tui.widgets.paths import typed_path


class ReceiptTable(PagedTable):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"receipt--created", "receipt--updated", "receipt--error"}


class ReceiptSource:
    """Created, then updated, then skipped rows, straight from the receipt's lists (no copy)."""

    def __init__(self, receipt: Receipt) -> None:
        self.receipt = receipt

    def row_count(self) -> int:
        r = self.receipt
        return len(r.created) + len(r.updated) + len(r.errors)

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        r = self.receipt
        parts: list[tuple[list[tuple[int, str]], str]] = [(r.created, NEW), (r.updated, UPDATE), (r.errors, ERROR)]
        out: list[Row] = []
        index = offset
        for items, kind in parts:
            if index >= len(items):
                index -= len(items)
                continue
            for line, value in items[index:index + limit - len(out)]:
                out.append(self.row(len(out) + offset, kind, line, value))
            index = 0
            if len(out) >= limit:
                break
        return out

    @staticmethod
    def row(key: int, kind: str, line: int, value: str) -> Row:
        if kind == NEW:
            cells = {"line": str(line), "what": _("Skapad"), "number": value}
            cls = "receipt--created"
        elif kind == UPDATE:
            cells = {"line": str(line), "what": _("Uppdaterad"), "number": value}
            cls = "receipt--updated"
        else:
            cells = {"line": str(line), "what": _("Hoppades över"), "reason": value}
            cls = "receipt--error"
        return Row(key=key, cells=cells, cell_classes={"what": cls})


def receipt_summary(receipt: Receipt) -> str:
    c = receipt.counts
    new, update, same, error = (c.get(k, 0) for k in (NEW, UPDATE, SAME, ERROR))
    return " · ".join([
        ngettext("{n} ny kund skapades", "{n} nya kunder skapades", new).format(n=thousands(new)),
        ngettext("{n} uppdaterades", "{n} uppdaterades", update).format(n=thousands(update)),
        ngettext("{n} oförändrad", "{n} oförändrade", same).format(n=thousands(same)),
        ngettext("{n} rad hoppades över", "{n} rader hoppades över", error).format(n=thousands(error)),
    ])


class ReceiptScreen(Screen[Receipt]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", _("Stäng"), id="close"),
        Binding("ctrl+s", "save", _("Spara kvittens"), id="save", priority=True),
        Binding("ctrl+z", "undo", _("Ångra import"), id="undo", priority=True),
        Binding("tab", "app.focus_next", _("Nästa fält"), show=False),
        Binding("shift+tab", "app.focus_previous", _("Förra fältet"), show=False),
    ]

    def __init__(self, service: RegisterService, receipt: Receipt, *, steps: Sequence[str] = (),
                 step: int = 0) -> None:
        super().__init__()
        self.service = service
        self.receipt = receipt
        self.steps = list(steps) or [_("Kvittens")]
        self.step = step
        self.undone = False
        self.busy = False
        self.title = _("Kvittens")
        self.sub_title = safe(receipt.label)

    def compose(self) -> ComposeResult:
        yield Header()
        yield StepBar(self.steps, self.step, id="steps")
        yield Static("", id="receipt-banner", classes="banner")
        yield Static(plain(_("Importen är klar: {label}").format(label=self.receipt.label)),
                     id="receipt-title")
        yield Static(Content(receipt_summary(self.receipt)), id="receipt-summary")
        yield ReceiptTable([
            Column("line", _("Rad"), width=5, align="right", sortable=False),
            Column("what", _("Utfall"), width=14, sortable=False),
            Column("number", _("Kundnummer"), width=12, sortable=False),
            Column("reason", _("Orsak"), ratio=1, min_width=20, sortable=False),
        ], id="receipt-table")
        yield Static("", id="receipt-detail")
        with Horizontal(id="receipt-save"):
            yield Label(Content(_("Spara kvittensen som")), id="receipt-path-label")
            yield SafeInput(value=_("kvittens-import-{n}.txt").format(n=self.receipt.batch_id),
                            id="receipt-path", compact=True)
            yield Button(Content(_("Spara")), id="receipt-save-button", compact=True)
            yield Button(Content(_("Ångra import")), id="receipt-undo-button", compact=True)
            yield Button(Content(_("Stäng")), id="receipt-close-button", compact=True, variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#receipt-banner").display = False
        self.query_one("#receipt-detail").display = False
        table = self.query_one("#receipt-table", ReceiptTable)
        table.set_source(ReceiptSource(self.receipt), keep_position=False)
        table.focus()

    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one("#receipt-banner", Static)
        banner.update(plain(message, keep_newlines=True))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)

    @on(PagedTable.CursorMoved, "#receipt-table")
    def _cursor_moved(self, event: PagedTable.CursorMoved) -> None:
        """The whole reason of a skipped row (the column may crop it)."""
        row = self.query_one("#receipt-table", ReceiptTable).row_at(event.row_index)
        detail = self.query_one("#receipt-detail", Static)
        if row is None:
            return
        reason = str(row.cells.get("reason", ""))
        detail.update(plain(_("Rad {line}: {reason}").format(line=row.cells.get("line", ""), reason=reason)))
        detail.display = bool(reason)

    # ------------------------------------------------------------------ close
    def action_close(self) -> None:
        if self.busy:
            return
        self.dismiss(self.receipt)

    @on(Button.Pressed, "#receipt-close-button")
    def _close_pressed(self) -> None:
        self.action_close()

    # ------------------------------------------------------------------ save
    @on(Button.Pressed, "#receipt-save-button")
    @on(Input.Submitted, "#receipt-path")
    def _save_pressed(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        path = typed_path(self.query_one("#receipt-path", Input).value, Path.cwd())
        if path is None:
            self._banner(_("Skriv vart kvittensen ska sparas."))
            self.query_one("#receipt-path", Input).focus()
            return
        if path.is_dir():
            self._banner(_("{path} är en mapp. Skriv ett filnamn.").format(path=path))
            return
        if path.exists():
            from kundreg_tui.screens.confirm import ConfirmScreen

            def answer(choice: str | None) -> None:
                if choice == "yes":
                    self._save(path)

            self.app.push_screen(ConfirmScreen(
                _("Filen finns redan"), _("{path} finns redan. Vill du skriva över den?").format(path=path),
                [("s", _("Skriv över"), "yes"), ("a", _("Avbryt"), "no")], default=1), answer)
            return
        self._save(path)

    @work(thread=True, exclusive=True, group="receipt-save")
    def _save(self, path: Path) -> None:
        try:
            path.write_text(self.receipt.as_text(), encoding="utf-8")
        except OSError as exc:
            message = _("Kvittensen kunde inte sparas: {e}").format(e=exc.strerror or exc)
            self.app.call_from_thread(self._banner, message)
            return
        message = _("Kvittensen sparades i {path}").format(path=path)
        self.app.call_from_thread(self._banner, message, "ok")
        self.app.call_from_thread(tell, self.app, message)

    # ------------------------------------------------------------------ undo
    @on(Button.Pressed, "#receipt-undo-button")
    def _undo_pressed(self) -> None:
        self.action_undo()

    def action_undo(self) -> None:
        if self.busy:
            return
        if self.undone:
            self._banner(_("Importen är redan ångrad."), "warning")
            return
        c = self.receipt.counts
        new, update = c.get(NEW, 0), c.get(UPDATE, 0)
        from kundreg_tui.screens.confirm import ConfirmScreen

        def answer(choice: str | None) -> None:
            if choice == "yes":
                self.busy = True
                self._banner(_("Ångrar importen …"), "warning")
                self._undo()

        self.app.push_screen(ConfirmScreen(
            _("Ångra import"),
            _("Ångra importen? {new} skapade kunder tas bort och {update} uppdaterade får tillbaka "
              "sina tidigare uppgifter.").format(new=thousands(new), update=thousands(update)),
            [("j", _("Ja, ångra importen"), "yes"), ("n", _("Nej"), "no")], default=1), answer)

    @work(thread=True, exclusive=True, group="receipt-undo")
    def _undo(self) -> None:
        try:
            count = undo_import(self.service.engine, self.receipt.batch_id, actor=self.service.actor)
        except ImportError_ as exc:
            self.app.call_from_thread(self._undo_failed, str(exc))
        except Exception as exc:
            self.app.call_from_thread(self._undo_failed, _("Importen kunde inte ångras: {e}").format(e=exc))
        else:
            self.app.call_from_thread(self._undone, count)

    def _undo_failed(self, message: str) -> None:
        self.busy = False
        self._banner(message)
        tell(self.app, message, severity="error")

    def _undone(self, count: int) -> None:
        self.busy = False
        self.undone = True
        c = self.receipt.counts
        message = _("Importen är ångrad: {new} skapade kunder togs bort och {update} fick tillbaka "
                    "sina tidigare uppgifter.").format(new=thousands(c.get(NEW, 0)),
                                                       update=thousands(c.get(UPDATE, 0)))
        self._banner(message, "ok")
        self.query_one("#receipt-title", Static).update(
            plain(_("Importen är ångrad: {label}").format(label=self.receipt.label)))
        self.query_one("#receipt-undo-button", Button).disabled = True
        tell(self.app, message)
