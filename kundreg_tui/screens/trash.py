"""Papperskorg: the customers moved out of the register and not erased.

Number, name, deleted when and by whom. Återställ brings back the customer under the cursor or the
marked ones (refused, naming the customer, when its e-mail is used by a live customer now);
Radera permanent erases them for good (GDPR) and Töm papperskorgen erases every one, each after a
confirmation naming how many and which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from kundreg_tui.domain.erase import EraseResult
from kundreg_tui.domain.history import (
    RestoreResult,
    TrashItem,
    erase_from_trash,
    local_time,
    restore_customers,
    trash_count,
    trash_items,
    trash_page,
)
from kundreg_tui.domain.register import RegisterError, RegisterService
from kundreg_tui.i18n import _, ngettext
from kundreg_tui.ui import plain, safe, tell, thousands
from kundreg_tui.widgets.pagedtable import Column, PagedTable, Row

MARK_OFF, MARK_ON = "☐", "☑"
SHOWN_IN_CONFIRM = 10


class TrashSource:
    def __init__(self, service: RegisterService, marked: set[int]) -> None:
        self.service = service
        self.marked = marked

    def row_count(self) -> int:
        return trash_count(self.service.engine)

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        return [self.row(t) for t in trash_page(self.service.engine, offset, limit)]

    def row(self, t: TrashItem) -> Row:
        return Row(key=t.id, cells={
            "mark": MARK_ON if t.id in self.marked else MARK_OFF,
            "number": t.number, "name": t.name, "email": t.email,
            "at": local_time(t.deleted_at), "who": t.deleted_by,
        })


def listing(items: Sequence[TrashItem], total: int) -> str:
    """One line per customer (a line break in a name shows as ↵), at most ten, then "… och N till"."""
    lines = [safe(f"{t.number}  {t.name}") for t in items[:SHOWN_IN_CONFIRM]]
    if total > len(lines):
        lines.append(_("… och {n} till").format(n=thousands(total - len(lines))))
    return "\n".join(lines)


class TrashScreen(Screen[bool]):
    """Dismisses with True when a customer came back to the register (it should read again)."""

    AUTO_FOCUS = "#trash-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", _("Stäng"), id="close"),
        Binding("space", "mark", _("Markera"), id="mark",
                tooltip=_("Markera / avmarkera kunden under markören")),
        Binding("r", "restore", _("Återställ"), id="restore",
                tooltip=_("Återställ markerade (eller kunden under markören) till kundregistret")),
        Binding("delete", "erase", _("Radera permanent"), id="erase",
                tooltip=_("Radera markerade (eller kunden under markören) permanent")),
        Binding("t", "empty", _("Töm papperskorgen"), id="empty",
                tooltip=_("Radera alla kunder i papperskorgen permanent")),
    ]

    def __init__(self, service: RegisterService) -> None:
        super().__init__()
        self.service = service
        self.marked: set[int] = set()
        self.restored = False
        self.busy = False
        self.total = 0
        self.title = _("Papperskorg")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="trash-banner", classes="banner")
        yield PagedTable([
            Column("mark", " ", width=1, sortable=False),
            Column("number", _("Kundnummer"), width=12, sortable=False),
            Column("name", _("Kundnamn"), ratio=3, min_width=12, sortable=False),
            Column("email", _("E-post"), ratio=2, min_width=10, sortable=False),
            Column("at", _("Raderad"), width=16, sortable=False),
            Column("who", _("Av"), width=12, sortable=False),
        ], id="trash-table")
        yield Static(Content(_("Papperskorgen är tom.")), id="trash-empty")
        yield Static("", id="trash-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#trash-empty").display = False
        self.table.set_source(TrashSource(self.service, self.marked))

    @property
    def table(self) -> PagedTable:
        return self.query_one("#trash-table", PagedTable)

    def reload(self) -> None:
        self.table.set_source(TrashSource(self.service, self.marked), keep_position=True)

    @on(PagedTable.Reloaded, "#trash-table")
    def _reloaded(self, event: PagedTable.Reloaded) -> None:
        self.total = event.row_count
        self.query_one("#trash-empty").display = event.row_count == 0
        self.set_class(event.row_count == 0, "-no-rows")
        self._update_status()

    def _update_status(self) -> None:
        text = ngettext("{n} kund i papperskorgen", "{n} kunder i papperskorgen", self.total).format(
            n=thousands(self.total))
        if self.marked:
            text += " · " + ngettext("{n} markerad", "{n} markerade", len(self.marked)).format(
                n=thousands(len(self.marked)))
        self.query_one("#trash-status", Static).update(Content(text))

    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one("#trash-banner", Static)
        banner.update(plain(message, keep_newlines=True))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)

    def _cursor_id(self) -> int | None:
        row = self.table.current_row()
        return None if row is None else int(str(row.key))

    def _targets(self) -> list[int]:
        if self.marked:
            return sorted(self.marked)
        cid = self._cursor_id()
        return [] if cid is None else [cid]

    def _refused(self, message: str) -> None:
        self.busy = False
        self._banner(message)
        tell(self.app, message, severity="error")

    # ------------------------------------------------------------------ keys
    def action_close(self) -> None:
        self.dismiss(self.restored)

    def action_mark(self) -> None:
        row = self.table.current_row()
        if row is None:
            return
        cid = int(str(row.key))
        if cid in self.marked:
            self.marked.discard(cid)
        else:
            self.marked.add(cid)
        cells = dict(row.cells)
        cells["mark"] = MARK_ON if cid in self.marked else MARK_OFF
        self.table.update_row(Row(key=row.key, cells=cells))
        self._update_status()
        self.table.move_cursor(self.table.cursor_row + 1)

    def action_restore(self) -> None:
        ids = self._targets()
        if not ids or self.busy:
            return
        self.busy = True
        self._restore(ids)

    @work(thread=True, exclusive=True, group="trash-restore")
    def _restore(self, ids: list[int]) -> None:
        try:
            result = restore_customers(self.service.engine, ids, actor=self.service.actor)
        except RegisterError as exc:
            self.app.call_from_thread(self._refused, str(exc))
        except Exception as exc:
            self.app.call_from_thread(self._refused, _("Kunderna kunde inte återställas: {e}").format(e=exc))
        else:
            self.app.call_from_thread(self._restored, result, ids)

    def _restored(self, result: RestoreResult, ids: list[int]) -> None:
        self.busy = False
        self.restored = True
        self.marked.difference_update(ids)
        names = ", ".join(result.numbers[:SHOWN_IN_CONFIRM])
        message = ngettext("{n} kund återställd till kundregistret: {numbers}",
                           "{n} kunder återställda till kundregistret: {numbers}", result.count).format(
            n=thousands(result.count), numbers=names)
        if result.count > SHOWN_IN_CONFIRM:
            message += " " + _("och {n} till").format(n=thousands(result.count - SHOWN_IN_CONFIRM))
        self._banner(message, "ok")
        tell(self.app, message)
        self.reload()

    def action_erase(self) -> None:
        ids = self._targets()
        if not ids or self.busy:
            return
        self.busy = True
        self._prepare_erase(ids)

    @work(thread=True, exclusive=True, group="trash-prepare")
    def _prepare_erase(self, ids: list[int] | None) -> None:
        try:
            if ids is None:
                items = trash_page(self.service.engine, 0, SHOWN_IN_CONFIRM)
                total = trash_count(self.service.engine)
            else:
                items = trash_items(self.service.engine, ids)
                total = len(items)
        except Exception as exc:
            self.app.call_from_thread(self._refused, str(exc))
            return
        self.app.call_from_thread(self._ask_erase, ids, items, total)

    def _ask_erase(self, ids: list[int] | None, items: list[TrashItem], total: int) -> None:
        from kundreg_tui.screens.confirm import ConfirmScreen

        self.busy = False
        if total == 0:
            message = _("Papperskorgen är tom.") if ids is None else _("Kunderna finns inte längre i papperskorgen.")
            self._banner(message, "warning")
            self.reload()
            return
        if ids is None:
            title = _("Töm papperskorgen")
            question = ngettext(
                "Radera {n} kund i papperskorgen permanent? Uppgifterna går inte att få tillbaka.",
                "Radera alla {n} kunder i papperskorgen permanent? Uppgifterna går inte att få tillbaka.",
                total).format(n=thousands(total))
        else:
            title = _("Radera permanent")
            question = ngettext(
                "Radera {n} kund permanent? Uppgifterna går inte att få tillbaka.",
                "Radera {n} kunder permanent? Uppgifterna går inte att få tillbaka.",
                total).format(n=thousands(total))
        wanted = None if ids is None else [t.id for t in items]

        def answer(choice: str | None) -> None:
            if choice == "yes":
                self.busy = True
                self._banner(_("Raderar permanent …"), "warning")
                self._erase(wanted)

        self.app.push_screen(ConfirmScreen(
            title, question, [("j", _("Ja, radera permanent"), "yes"), ("n", _("Nej"), "no")],
            details=listing(items, total), default=1), answer)

    def action_empty(self) -> None:
        if self.busy:
            return
        self.busy = True
        self._prepare_erase(None)

    @work(thread=True, exclusive=True, group="trash-erase")
    def _erase(self, ids: list[int] | None) -> None:
        try:
            result = erase_from_trash(self.service.engine, ids, actor=self.service.actor)
        except Exception as exc:
            self.app.call_from_thread(self._refused, _("Kunderna kunde inte raderas: {e}").format(e=exc))
        else:
            self.app.call_from_thread(self._erased, result)

    def _erased(self, result: EraseResult) -> None:
        self.busy = False
        self.marked.clear()
        message = ngettext("{n} kund raderad permanent.", "{n} kunder raderade permanent.", result.count).format(
            n=thousands(result.count))
        if result.wal_truncated is False:
            message += " " + _("Uppgifterna är borta ur registret; databasens loggfil töms när ingen "
                               "annan läser den längre.")
        self._banner(message, "ok")
        tell(self.app, message)
        self.reload()
