"""Importer: the register's past imports (from file and pasted), newest first.

When, who, from which file, the counts, undone or not. Enter opens the import's receipt, rebuilt
from its history (the rows it skipped were never stored: the receipt says so); ctrl+z undoes the
import after a confirmation, with the reason when it cannot be undone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from kundreg_tui.domain.history import (
    ImportItem,
    ImportReceipt,
    get_import,
    import_receipt,
    imports_count,
    list_imports,
    local_time,
)
from kundreg_tui.domain.importer import ImportError_, undo_import
from kundreg_tui.domain.register import RegisterError, RegisterService
from kundreg_tui.i18n import _
from kundreg_tui.ui import plain, safe, tell, thousands
from kundreg_tui.widgets.pagedtable import Column, PagedTable, Row, SequenceSource


def status_text(item: ImportItem) -> str:
    """When the import was undone (blank: it stands)."""
    return local_time(item.undone_at) if item.undone_at else ""


class ImportsSource:
    def __init__(self, service: RegisterService) -> None:
        self.service = service
        self.items: dict[int, ImportItem] = {}

    def row_count(self) -> int:
        return imports_count(self.service.engine)

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        items = list_imports(self.service.engine, offset, limit)
        for item in items:
            self.items[item.batch_id] = item
        return [self.row(i) for i in items]

    @staticmethod
    def row(item: ImportItem) -> Row:
        c = item.counts
        return Row(key=item.batch_id, cells={
            "id": str(item.batch_id), "at": local_time(item.at), "who": item.actor, "source": item.source,
            "new": thousands(c.get("new", 0)), "update": thousands(c.get("update", 0)),
            "same": thousands(c.get("same", 0)), "error": thousands(c.get("error", 0)),
            "status": status_text(item),
        }, style_class="imports--undone" if item.undone else None)


class ImportsTable(PagedTable):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"imports--undone"}


def ask_undo_import(screen: Screen[Any], service: RegisterService, item: ImportItem,
                    done: Callable[[str, bool], None]) -> None:
    """Confirm, then undo the import in a worker; ``done(message, ok)`` on the screen's thread."""
    from kundreg_tui.screens.confirm import ConfirmScreen

    if item.undone:
        done(_("Importen är redan ångrad."), False)
        return
    c = item.counts
    new, update = c.get("new", 0), c.get("update", 0)

    def run() -> None:
        try:
            undo_import(service.engine, item.batch_id, actor=service.actor)
        except (ImportError_, RegisterError) as exc:
            screen.app.call_from_thread(done, str(exc), False)
        except Exception as exc:
            screen.app.call_from_thread(done, _("Importen kunde inte ångras: {e}").format(e=exc), False)
        else:
            screen.app.call_from_thread(done, _(
                "Import {n} är ångrad: {new} skapade kunder togs bort och {update} fick tillbaka "
                "sina tidigare uppgifter.").format(n=item.batch_id, new=thousands(new), update=thousands(update)),
                True)

    def answer(choice: str | None) -> None:
        if choice == "yes":
            screen.run_worker(run, thread=True, exclusive=True, group="undo-import", exit_on_error=False)

    screen.app.push_screen(ConfirmScreen(
        _("Ångra import"),
        _("Ångra import {n} ({label}, {at})? {new} skapade kunder tas bort och {update} uppdaterade "
          "får tillbaka sina tidigare uppgifter.").format(
            n=item.batch_id, label=safe(item.source), at=local_time(item.at),
            new=thousands(new), update=thousands(update)),
        [("j", _("Ja, ångra importen"), "yes"), ("n", _("Nej"), "no")], default=1), answer)


class _BannerMixin:
    banner_id: ClassVar[str] = ""

    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one(self.banner_id, Static)  # type: ignore[attr-defined]
        banner.update(plain(message, keep_newlines=True))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)


class ImportsScreen(_BannerMixin, Screen[bool]):
    """Dismisses with True when an import was undone (the register should read again)."""

    AUTO_FOCUS = "#imports-table"
    banner_id = "#imports-banner"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", _("Stäng"), id="close"),
        Binding("enter", "open", _("Kvittens"), id="open", key_display="⏎", priority=True,
                tooltip=_("Visa importens kvittens")),
        Binding("ctrl+z", "undo", _("Ångra import"), id="undo", priority=True),
    ]

    def __init__(self, service: RegisterService) -> None:
        super().__init__()
        self.service = service
        self.source = ImportsSource(service)
        self.changed = False
        self.busy = False
        self.title = _("Importer")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="imports-banner", classes="banner")
        yield ImportsTable([
            Column("id", _("Nr"), width=4, align="right", sortable=False),
            Column("at", _("Tid"), width=16, sortable=False),
            Column("who", _("Vem"), width=10, sortable=False),
            Column("source", _("Källa"), ratio=1, min_width=10, sortable=False),
            Column("new", _("Nya"), width=5, align="right", sortable=False),
            Column("update", _("Uppdaterade"), width=11, align="right", sortable=False),
            Column("same", _("Oförändrade"), width=11, align="right", sortable=False),
            Column("error", _("Fel"), width=4, align="right", sortable=False),
            Column("status", _("Ångrad"), width=16, sortable=False),
        ], id="imports-table")
        yield Static(Content(_("Inga importer ännu.")), id="imports-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#imports-empty").display = False
        self.table.set_source(self.source)

    @property
    def table(self) -> ImportsTable:
        return self.query_one("#imports-table", ImportsTable)

    @on(PagedTable.Reloaded, "#imports-table")
    def _reloaded(self, event: PagedTable.Reloaded) -> None:
        self.query_one("#imports-empty").display = event.row_count == 0
        self.set_class(event.row_count == 0, "-no-rows")

    def _current(self) -> ImportItem | None:
        row = self.table.current_row()
        return None if row is None else self.source.items.get(int(str(row.key)))

    def action_close(self) -> None:
        self.dismiss(self.changed)

    def action_open(self) -> None:
        item = self._current()
        if item is not None:
            self._open(item.batch_id)

    @work(thread=True, exclusive=True, group="imports-open")
    def _open(self, batch_id: int) -> None:
        try:
            receipt = import_receipt(self.service.engine, batch_id)
        except RegisterError as exc:
            self.app.call_from_thread(self._banner, str(exc))
            return
        self.app.call_from_thread(self._show_receipt, receipt)

    def _show_receipt(self, receipt: ImportReceipt) -> None:
        if self.app.screen is self:
            self.app.push_screen(ImportReceiptView(self.service, receipt), self._receipt_closed)

    def _receipt_closed(self, undone: bool | None) -> None:
        if undone:
            self.changed = True
            self.table.reload()

    def action_undo(self) -> None:
        item = self._current()
        if item is None or self.busy:
            return
        self.busy = True
        ask_undo_import(self, self.service, item, self._undo_done)
        self.busy = False

    def _undo_done(self, message: str, ok: bool) -> None:
        self._banner(message, "ok" if ok else "error")
        tell(self.app, message, severity="information" if ok else "error")
        if ok:
            self.changed = True
            self.table.reload()


def receipt_rows(receipt: ImportReceipt) -> list[Row]:
    rows = [Row(key=n, cells={"what": _("Skapad"), "number": number}, cell_classes={"what": "receipt--created"})
            for n, number in enumerate(receipt.created)]
    base = len(rows)
    rows += [Row(key=base + n, cells={"what": _("Uppdaterad"), "number": number},
                 cell_classes={"what": "receipt--updated"}) for n, number in enumerate(receipt.updated)]
    return rows


class ImportReceiptTable(PagedTable):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"receipt--created", "receipt--updated"}


class ImportReceiptView(_BannerMixin, Screen[bool]):
    """An earlier import's receipt (rebuilt); dismisses with True when the import was undone here."""

    AUTO_FOCUS = "#import-receipt-table"
    banner_id = "#import-receipt-banner"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", _("Stäng"), id="close"),
        Binding("ctrl+z", "undo", _("Ångra import"), id="undo", priority=True),
    ]

    def __init__(self, service: RegisterService, receipt: ImportReceipt) -> None:
        super().__init__()
        self.service = service
        self.receipt = receipt
        self.undone = False
        self.title = _("Kvittens")
        self.sub_title = safe(receipt.item.source)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="import-receipt-banner", classes="banner")
        yield Static(self._summary(), id="import-receipt-summary")
        yield ImportReceiptTable([
            Column("what", _("Utfall"), width=14, sortable=False),
            Column("number", _("Kundnummer"), ratio=1, min_width=12, sortable=False),
        ], id="import-receipt-table")
        yield Footer()

    def _summary(self) -> Content:
        return Content("\n".join(safe(line) for line in self.receipt.summary_lines()))

    def on_mount(self) -> None:
        rows = receipt_rows(self.receipt)
        self.query_one("#import-receipt-table", ImportReceiptTable).set_data(
            len(rows), rows[:200], SequenceSource(rows))

    def action_close(self) -> None:
        self.dismiss(self.undone)

    def action_undo(self) -> None:
        ask_undo_import(self, self.service, self.receipt.item, self._undo_done)

    def _undo_done(self, message: str, ok: bool) -> None:
        self._banner(message, "ok" if ok else "error")
        tell(self.app, message, severity="information" if ok else "error")
        if ok:
            self.undone = True
            self._refresh_item()

    @work(thread=True, exclusive=True, group="receipt-refresh")
    def _refresh_item(self) -> None:
        item = get_import(self.service.engine, self.receipt.item.batch_id)
        self.app.call_from_thread(self._set_item, item)

    def _set_item(self, item: ImportItem) -> None:
        self.receipt.item = item
        self.query_one("#import-receipt-summary", Static).update(self._summary())
