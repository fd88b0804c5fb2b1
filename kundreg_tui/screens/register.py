"""Kundregister: the start screen. A table paged from the database, search, sort, marks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Static

from kundreg_tui.domain.models import CustomerRecord
from kundreg_tui.domain.register import RegisterError, RegisterService, Sort
from kundreg_tui.i18n import _, ngettext
from kundreg_tui.ui import tell, thousands
from kundreg_tui.widgets.pagedtable import Column, PagedTable, Row

MARK_OFF, MARK_ON = "☐", "☑"
SORTABLE = ("number", "name", "city", "email", "phone")


class RegisterSource:
    """The rows a search shows, in the chosen order, read a page at a time from the database."""

    def __init__(self, service: RegisterService, query: str, sort: Sort, marked: set[int]) -> None:
        self.service = service
        self.query = query
        self.sort = sort
        self.marked = marked

    def row_count(self) -> int:
        return self.service.count(self.query)

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        records = self.service.page(self.query, self.sort, offset, limit)
        return [self.row(r) for r in records]

    def row(self, r: CustomerRecord) -> Row:
        return Row(
            key=r.id,
            cells={
                "mark": MARK_ON if r.id in self.marked else MARK_OFF,
                "number": r.number, "name": r.name, "city": r.city, "email": r.email, "phone": r.phone,
            },
        )


def register_columns(extra: bool) -> list[Column]:
    columns = [
        Column("mark", " ", width=1, sortable=False),
        Column("number", _("Kundnummer"), width=12),
        Column("name", _("Kundnamn"), ratio=3, min_width=12),
        Column("city", _("Ort"), ratio=1, min_width=8),
    ]
    if extra:
        columns += [Column("email", _("E-post"), ratio=2, min_width=10),
                    Column("phone", _("Telefon"), width=16)]
    return columns


class RegisterScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", _("Sök"), id="search", key_display="/"),
        Binding("n", "new", _("Ny kund"), id="new"),
        Binding("enter", "edit", _("Ändra"), id="edit", show=False),
        Binding("space", "mark", _("Markera"), id="mark"),
        Binding("a", "mark_all", _("Markera alla visade"), id="mark_all", show=False),
        Binding("delete", "delete", _("Radera markerade"), id="delete"),
        Binding("ctrl+z,u", "undo_delete", _("Ångra radering"), id="undo", show=False),
        Binding("i", "import_file", _("Import från fil"), id="import"),
        Binding("p", "paste", _("Klistra in"), id="paste"),
        Binding("e", "export", _("Kundlista"), id="export"),
        Binding("1", "sort('number')", _("Sortera på kundnummer"), show=False),
        Binding("2", "sort('name')", _("Sortera på kundnamn"), show=False),
        Binding("3", "sort('city')", _("Sortera på ort"), show=False),
        Binding("4", "sort('email')", _("Sortera på e-post"), show=False),
        Binding("5", "sort('phone')", _("Sortera på telefon"), show=False),
        Binding("c", "toggle_columns", _("Visa e-post och telefon"), id="columns", show=False),
    ]

    def __init__(self, service: RegisterService) -> None:
        super().__init__()
        self.service = service
        self.title = _("Kundregister")
        self.query_text = ""
        self.sort = Sort("number")
        self.marked: set[int] = set()
        self.total: int | None = None
        self.extra_columns = False
        self.last_delete: int | None = None
        self._search_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder=_("Sök på namn, kundnummer, e-post eller organisationsnummer  (/)"),
                    id="search")
        yield PagedTable(register_columns(False), id="customers", zebra_stripes=True)
        yield Static("", id="empty-hint")
        yield Static("", id="status")
        yield Footer()

    @property
    def table(self) -> PagedTable:
        return self.query_one("#customers", PagedTable)

    def on_mount(self) -> None:
        self.query_one("#empty-hint").display = False
        self.table.set_sort_indicator(self.sort.column, self.sort.descending)
        self.reload(keep_position=False)
        self.table.focus()

    # ------------------------------------------------------------------ loading
    def source(self) -> RegisterSource:
        return RegisterSource(self.service, self.query_text, self.sort, self.marked)

    def reload(self, keep_position: bool = True) -> None:
        self.table.set_source(self.source(), keep_position=keep_position)
        self._count_all()

    @work(thread=True, exclusive=True, group="count-all")
    def _count_all(self) -> None:
        total = self.service.count()
        self.app.call_from_thread(self._set_total, total)

    def _set_total(self, total: int) -> None:
        self.total = total
        self._update_status()

    @on(PagedTable.Reloaded)
    def _reloaded(self, _event: PagedTable.Reloaded) -> None:
        self._update_status()

    @on(PagedTable.SourceError)
    def _source_error(self, event: PagedTable.SourceError) -> None:
        tell(self.app, _("Kunde inte läsa registret: {e}").format(e=event.error), severity="error")

    def _update_status(self) -> None:
        shown = self.table.row_count
        total = self.total if self.total is not None else shown
        parts = [
            ngettext("{n} kund", "{n} kunder", total).format(n=thousands(total)),
            _("{n} visas").format(n=thousands(shown)),
            ngettext("{n} markerad", "{n} markerade", len(self.marked)).format(n=thousands(len(self.marked))),
        ]
        self.query_one("#status", Static).update(Content("  ·  ".join(parts)))
        hint = self.query_one("#empty-hint", Static)
        if total == 0:
            hint.update(Content(_(
                "Kundregistret är tomt.\n\nTryck n för Ny kund, i för Import från fil "
                "eller p för att klistra in kunder.")))
            hint.display = True
        elif shown == 0 and self.query_text:
            hint.update(Content(_("Ingen kund matchar sökningen.")))
            hint.display = True
        else:
            hint.display = False

    # ------------------------------------------------------------------ search
    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        value = event.value
        # Typing fast: only the last keystroke's query runs.
        self._search_timer = self.set_timer(0.05, lambda: self._run_search(value))

    def _run_search(self, value: str) -> None:
        if value == self.query_text:
            return
        self.query_text = value
        self.table.set_source(self.source(), keep_position=False)

    @on(Input.Submitted, "#search")
    def _search_done(self) -> None:
        self.table.focus()

    def on_key(self, event: Any) -> None:
        if event.key == "escape" and self.focused is self.query_one("#search", Input):
            event.stop()
            self.table.focus()
        elif event.key == "down" and self.focused is self.query_one("#search", Input):
            event.stop()
            self.table.focus()

    # ------------------------------------------------------------------ sort
    def action_sort(self, column: str) -> None:
        if column not in SORTABLE:
            return
        if column in ("email", "phone") and not self.extra_columns:
            self.action_toggle_columns()
        descending = not self.sort.descending if self.sort.column == column else False
        self.sort = Sort(column, descending)
        self.table.set_sort_indicator(column, descending)
        self.table.set_source(self.source(), keep_position=False)

    @on(PagedTable.HeaderClicked)
    def _header_clicked(self, event: PagedTable.HeaderClicked) -> None:
        self.action_sort(event.column_key)

    def action_toggle_columns(self) -> None:
        self.extra_columns = not self.extra_columns
        self.table.set_columns(register_columns(self.extra_columns))

    # ------------------------------------------------------------------ marks
    def _cursor_key(self) -> int | None:
        row = self.table.current_row()
        return int(row.key) if row is not None else None  # type: ignore[call-overload]

    def action_mark(self) -> None:
        key = self._cursor_key()
        if key is None:
            return
        if key in self.marked:
            self.marked.discard(key)
        else:
            self.marked.add(key)
        self.table.invalidate([key])
        self.table.move_cursor(self.table.cursor_row + 1)
        self._update_status()

    def action_mark_all(self) -> None:
        self._mark_all(self.query_text)

    @work(thread=True, exclusive=True, group="mark-all")
    def _mark_all(self, query: str) -> None:
        ids = set(self.service.ids(query))
        self.app.call_from_thread(self._apply_mark_all, ids)

    def _apply_mark_all(self, ids: set[int]) -> None:
        if ids and ids <= self.marked:
            self.marked -= ids
        else:
            self.marked |= ids
        self.table.invalidate()
        self._update_status()

    # ------------------------------------------------------------------ edit
    def action_new(self) -> None:
        from kundreg_tui.screens.customer_form import CustomerForm

        self.app.push_screen(CustomerForm(self.service), self._form_closed)

    def action_edit(self) -> None:
        key = self._cursor_key()
        if key is not None:
            self._open(key)

    @on(PagedTable.RowSelected)
    def _row_selected(self, event: PagedTable.RowSelected) -> None:
        self._open(int(event.row_key))  # type: ignore[call-overload]

    @work(thread=True, exclusive=True, group="open")
    def _open(self, customer_id: int) -> None:
        record = self.service.get(customer_id)
        self.app.call_from_thread(self._show_form, record)

    def _show_form(self, record: CustomerRecord | None) -> None:
        from kundreg_tui.screens.customer_form import CustomerForm

        if record is None:
            tell(self.app, _("Kunden finns inte längre (någon annan har tagit bort den)."), severity="warning")
            self.reload()
            return
        self.app.push_screen(CustomerForm(self.service, record), self._form_closed)

    def _form_closed(self, saved: CustomerRecord | None) -> None:
        if saved is not None:
            self.reload()

    # ------------------------------------------------------------------ delete
    def action_delete(self) -> None:
        ids = sorted(self.marked) if self.marked else []
        if not ids:
            key = self._cursor_key()
            if key is None:
                return
            ids = [key]
        self._confirm_delete(ids)

    @work(thread=True, exclusive=True, group="delete")
    def _confirm_delete(self, ids: list[int]) -> None:
        preview = self.service.get_many(ids[:10])
        self.app.call_from_thread(self._ask_delete, ids, preview)

    def _ask_delete(self, ids: list[int], preview: list[CustomerRecord]) -> None:
        from kundreg_tui.screens.delete import DeleteScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self._delete(ids)

        self.app.push_screen(DeleteScreen(len(ids), preview), answer)

    @work(thread=True, exclusive=True, group="delete")
    def _delete(self, ids: list[int]) -> None:
        try:
            result = self.service.delete(ids)
        except Exception as exc:
            self.app.call_from_thread(tell, self.app, _("Kunde inte radera: {e}").format(e=exc), severity="error")
            return
        self.app.call_from_thread(self._deleted, result.batch_id, result.count)

    def _deleted(self, batch_id: int, count: int) -> None:
        self.last_delete = batch_id
        self.marked.clear()
        self.reload()
        tell(self.app, ngettext("{n} kund raderad. Ångra med ctrl+z.", "{n} kunder raderade. Ångra med ctrl+z.",
                                count).format(n=thousands(count)))

    def action_undo_delete(self) -> None:
        if self.last_delete is None:
            tell(self.app, _("Det finns ingen radering att ångra."), severity="warning")
            return
        self._undo(self.last_delete)

    @work(thread=True, exclusive=True, group="delete")
    def _undo(self, batch_id: int) -> None:
        try:
            count = self.service.undo_delete(batch_id)
        except RegisterError as exc:
            self.app.call_from_thread(tell, self.app, str(exc), severity="error")
            return
        self.app.call_from_thread(self._undone, count)

    def _undone(self, count: int) -> None:
        self.last_delete = None
        self.reload()
        tell(self.app, ngettext("{n} kund återställd.", "{n} kunder återställda.", count).format(n=thousands(count)))

    # ------------------------------------------------------------------ other screens
    def action_import_file(self) -> None:
        from kundreg_tui.screens.import_wizard import ImportWizard

        self.app.push_screen(ImportWizard(self.service), lambda _r: self.reload())

    def action_paste(self) -> None:
        from kundreg_tui.screens.paste_import import PasteImportScreen

        self.app.push_screen(PasteImportScreen(self.service), lambda _r: self.reload())

    def action_export(self) -> None:
        from kundreg_tui.screens.export import ExportScreen

        ids = sorted(self.marked)
        self.app.push_screen(ExportScreen(self.service, self.query_text, self.sort, ids))
