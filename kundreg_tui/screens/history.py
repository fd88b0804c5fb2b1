"""Historik: every change of one customer, newest first, and a key that reverts one of them.

Who (the OS user), when (local time), from where (form, import N, paste, delete, undo, erase …)
and each field old → new. A revert is itself a new change; it is refused (with the reason) when the
customer changed since in a way that conflicts. An erased customer's entries show who erased it
and when, never what it held.
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

from kundreg_tui.domain.fields import FIELD_BY_NAME, field_label, kind_label
from kundreg_tui.domain.history import (
    HistoryItem,
    RevertResult,
    customer_title,
    history_count,
    history_page,
    local_time,
    revert_change,
)
from kundreg_tui.domain.register import RegisterError, RegisterService
from kundreg_tui.i18n import _, ngettext
from kundreg_tui.ui import plain, safe, tell, thousands
from kundreg_tui.widgets.pagedtable import Column, PagedTable, Row

EMPTY = "–"


def action_label(action: str) -> str:
    return {
        "create": _("Skapad"),
        "update": _("Ändrad"),
        "delete": _("Raderad"),
        "restore": _("Återställd"),
        "erase": _("Raderad permanent"),
    }.get(action, action)


def source_label(item: HistoryItem) -> str:
    """From where: the form, import N (file), paste N, Radera markerade, undo, erase …"""
    s, n = item.source, item.batch_id
    if s == "import" and n is not None:
        if item.batch_source:
            return _("import {n} ({file})").format(n=n, file=item.batch_source)
        return _("import {n}").format(n=n)
    if s == "paste" and n is not None:
        return _("klistra in {n}").format(n=n)
    if s == "cli":
        return _("kommandorad, import {n}").format(n=n) if n is not None else _("kommandorad")
    if s == "undo":
        if item.batch_kind == "import":
            return _("ångra import {n}").format(n=n)
        if item.batch_kind == "delete":
            return _("ångra radering")
        return _("ångra")
    return {
        "form": _("formulär"),
        "delete": _("Radera markerade"),
        "erase": _("radering"),
        "purge": _("rensning av papperskorgen"),
        "trash": _("papperskorgen"),
        "revert": _("återställd ändring"),
        "demo": _("demodata"),
    }.get(s, s)


def _value(name: str, value: str) -> str:
    if not value:
        return EMPTY
    if name == "kind":
        return kind_label(value)
    return value


def _label(name: str) -> str:
    return field_label(name) if name in FIELD_BY_NAME else name


def change_summary(item: HistoryItem) -> str:
    """One line: what changed (plain text; the table makes control characters visible)."""
    if item.erased:
        if item.action == "erase":
            return _("raderad permanent av {who}, {at}").format(who=item.actor, at=local_time(item.at))
        return _("(uppgifterna är raderade)")
    parts = [f"{_label(n)}: {_value(n, old)} → {_value(n, new)}" for n, old, new in item.field_changes()]
    return "; ".join(parts)


def change_detail(item: HistoryItem) -> Content:
    """Every field of a change on a line of its own (values made visible, never markup)."""
    head = _("{action} {at} av {who}, från {source}").format(
        action=action_label(item.action), at=local_time(item.at), who=item.actor, source=source_label(item))
    if item.erased:
        if item.action == "erase":
            text = _("Raderad permanent av {who}, {at}").format(who=item.actor, at=local_time(item.at))
        else:
            text = head + "\n" + _("Uppgifterna är raderade permanent.")
        return Content(safe(text))
    lines = [safe(head)]
    for n, old, new in item.field_changes():
        lines.append(safe(f"  {_label(n)}: {_value(n, old)} → {_value(n, new)}"))
    return Content("\n".join(lines))


class HistorySource:
    """One customer's changes, newest first, a page at a time (keeps the items for the detail)."""

    def __init__(self, service: RegisterService, customer_id: int) -> None:
        self.service = service
        self.customer_id = customer_id
        self.items: dict[int, HistoryItem] = {}

    def row_count(self) -> int:
        return history_count(self.service.engine, self.customer_id)

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        items = history_page(self.service.engine, self.customer_id, offset, limit)
        for item in items:
            self.items[item.id] = item
        return [self.row(i) for i in items]

    @staticmethod
    def row(item: HistoryItem) -> Row:
        if item.erased and item.action == "erase":
            cells: dict[str, str] = {"at": local_time(item.at), "who": item.actor, "action": action_label("erase"),
                                     "changes": change_summary(item)}
        else:
            cells = {"at": local_time(item.at), "who": item.actor, "from": source_label(item),
                     "action": action_label(item.action), "changes": change_summary(item)}
        return Row(key=item.id, cells=cells,
                   style_class="history--erased" if item.erased else None)


class HistoryTable(PagedTable):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"history--erased"}


class HistoryScreen(Screen[bool]):
    """Dismisses with True when a change was reverted (the register should read again)."""

    AUTO_FOCUS = "#history-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", _("Stäng"), id="close"),
        Binding("r", "revert", _("Återställ ändringen"), id="revert",
                tooltip=_("Återställ ändringen under markören (sparas som en ny ändring)")),
    ]

    def __init__(self, service: RegisterService, customer_id: int) -> None:
        super().__init__()
        self.service = service
        self.customer_id = customer_id
        self.source = HistorySource(service, customer_id)
        self.changed = False
        self.busy = False
        self.title = _("Historik")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="history-banner", classes="banner")
        yield Static("", id="history-title")
        yield HistoryTable([
            Column("at", _("Tid"), width=16, sortable=False),
            Column("who", _("Vem"), width=10, sortable=False),
            Column("from", _("Varifrån"), ratio=1, min_width=14, sortable=False),
            Column("action", _("Händelse"), width=17, sortable=False),
            Column("changes", _("Ändringar"), ratio=4, min_width=20, sortable=False),
        ], id="history-table")
        yield Static("", id="history-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.table.set_source(self.source)
        self._load_title()

    @property
    def table(self) -> HistoryTable:
        return self.query_one("#history-table", HistoryTable)

    @work(thread=True, exclusive=True, group="history-title")
    def _load_title(self) -> None:
        found = customer_title(self.service.engine, self.customer_id)
        self.app.call_from_thread(self._show_title, found)

    def _show_title(self, found: tuple[str, str, bool] | None) -> None:
        title = self.query_one("#history-title", Static)
        if found is None:
            title.update(Content(_("Kunden finns inte.")))
            return
        number, name, gone = found
        text = _("Kund {number} — {name}").format(number=safe(number), name=safe(name)) if name else \
            _("Kund {number}").format(number=safe(number))
        if gone:
            text += " " + (_("(i papperskorgen)") if name else _("(raderad permanent)"))
        title.update(Content(text))
        self.sub_title = text

    def _banner(self, message: str, kind: str = "error") -> None:
        banner = self.query_one("#history-banner", Static)
        banner.update(plain(message, keep_newlines=True))
        banner.set_classes(f"banner -{kind}")
        banner.display = bool(message)

    @on(PagedTable.Reloaded, "#history-table")
    def _reloaded(self, event: PagedTable.Reloaded) -> None:
        if event.row_count == 0:
            self.query_one("#history-detail", Static).update(Content(_("Inga ändringar.")))

    @on(PagedTable.CursorMoved, "#history-table")
    def _cursor_moved(self, event: PagedTable.CursorMoved) -> None:
        if event.row_key is None:
            return
        item = self.source.items.get(int(str(event.row_key)))
        if item is not None:
            self.query_one("#history-detail", Static).update(change_detail(item))

    def action_close(self) -> None:
        self.dismiss(self.changed)

    def action_revert(self) -> None:
        if self.busy:
            return
        row = self.table.current_row()
        if row is None:
            return
        item = self.source.items.get(int(str(row.key)))
        if item is None:
            return
        if item.erased:
            self._refused(_("Kunden är raderad permanent: ändringen kan inte återställas."))
            return
        self.busy = True
        self._revert(item.id)

    @work(thread=True, exclusive=True, group="history-revert")
    def _revert(self, change_id: int) -> None:
        try:
            result = revert_change(self.service.engine, change_id, actor=self.service.actor)
        except RegisterError as exc:
            self.app.call_from_thread(self._refused, str(exc))
        except Exception as exc:
            self.app.call_from_thread(self._refused, _("Ändringen kunde inte återställas: {e}").format(e=exc))
        else:
            self.app.call_from_thread(self._reverted, result)

    def _refused(self, message: str) -> None:
        self.busy = False
        self._banner(message)
        tell(self.app, message, severity="error")

    def _reverted(self, result: RevertResult) -> None:
        self.busy = False
        self.changed = True
        if result.action == "update":
            names = ", ".join(_label(n) for n in result.fields)
            message = ngettext("Ändringen är återställd ({n} fält: {names}).",
                               "Ändringen är återställd ({n} fält: {names}).",
                               len(result.fields)).format(n=thousands(len(result.fields)), names=names)
        elif result.action == "delete":
            message = _("Ändringen är återställd: kunden är tillbaka i kundregistret.")
        else:
            message = _("Ändringen är återställd: kunden ligger nu i papperskorgen.")
        self._banner(message, "ok")
        tell(self.app, message)
        self.table.set_source(self.source)  # the revert is the newest change: cursor to the top
        self._load_title()
