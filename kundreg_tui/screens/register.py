"""Kundregister: the start screen. A table paged from the database, search, sort, marks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from kundreg_tui.domain.models import CustomerRecord
from kundreg_tui.domain.register import LIST_FIELDS, RegisterError, RegisterService, Sort
from kundreg_tui.i18n import _, ngettext
from kundreg_tui.ui import Refused, SafeInput, tell, thousands
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
        marked = self.marked
        return [
            Row(key=id_, cells={"mark": MARK_ON if id_ in marked else MARK_OFF, "number": number,
                                "name": name, "city": city, "email": email, "phone": phone})
            for id_, number, name, city, email, phone in self.service.rows(
                self.query, self.sort, offset, limit, LIST_FIELDS)
        ]


class SearchInput(SafeInput):
    """The search field: esc (or ↓) goes back to the table, the search stays."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "to_table", _("Till tabellen"), id="to-table"),
        Binding("down", "to_table", _("Till tabellen"), show=False),
    ]

    def action_to_table(self) -> None:
        self.screen.query_one("#customers").focus()


def register_columns(extra: bool) -> list[Column]:
    columns = [
        Column("mark", " ", width=1, sortable=False),
        # Wide enough for the label and its sort arrow in any language ("Customer number ▲").
        Column("number", _("Kundnummer"), width=max(12, len(_("Kundnummer")) + 2)),
        Column("name", _("Kundnamn"), ratio=3, min_width=12),
        Column("city", _("Ort"), ratio=1, min_width=8),
    ]
    if extra:
        columns += [Column("email", _("E-post"), ratio=2, min_width=10),
                    Column("phone", _("Telefon"), width=16)]
    return columns


class RegisterScreen(Screen[None]):
    AUTO_FOCUS = "#customers"
    # Footer descriptions are short (the footer must fit 100 columns); Hjälp shows the tooltip.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", _("Sök"), id="search", key_display="/",
                tooltip=_("Sök på namn, kundnummer, e-post eller org.nummer")),
        Binding("n", "new", _("Ny kund"), id="new"),
        # Priority: the table's own enter would only "select"; here it opens the customer.
        Binding("enter", "edit", _("Ändra"), id="edit", key_display="⏎", priority=True,
                tooltip=_("Ändra kunden under markören")),
        Binding("space", "mark", _("Markera"), id="mark",
                tooltip=_("Markera / avmarkera kunden under markören")),
        Binding("a", "mark_all", _("Markera alla visade"), id="mark_all", show=False,
                tooltip=_("Markera alla visade (en gång till: avmarkera dem)")),
        Binding("delete", "delete", _("Radera"), id="delete",
                tooltip=_("Radera markerade (eller kunden under markören)")),
        Binding("ctrl+z,u", "undo_delete", _("Ångra radering"), id="undo", show=False),
        Binding("i", "import_file", _("Import"), id="import", tooltip=_("Import från fil")),
        Binding("p", "paste", _("Klistra in"), id="paste", tooltip=_("Importera kunder — klistra in")),
        Binding("e", "export", _("Export"), id="export", tooltip=_("Kundlista (export)")),
        Binding("question_mark", "app.help", _("Hjälp"), id="help", key_display="?"),
        Binding("f1", "app.help", _("Hjälp"), id="help-f1", show=False),
        Binding("1", "sort('number')", _("Sortera på kundnummer (igen: omvänt)"), show=False),
        Binding("2", "sort('name')", _("Sortera på kundnamn (igen: omvänt)"), show=False),
        Binding("3", "sort('city')", _("Sortera på ort (igen: omvänt)"), show=False),
        Binding("4", "sort('email')", _("Sortera på e-post (igen: omvänt)"), show=False),
        Binding("5", "sort('phone')", _("Sortera på telefon (igen: omvänt)"), show=False),
        Binding("c", "toggle_columns", _("Visa / dölj e-post och telefon"), id="columns", show=False),
        Binding("h", "history", _("Historik"), id="history", show=False,
                tooltip=_("Historik för kunden under markören")),
        Binding("t", "trash", _("Papperskorg"), id="trash", show=False,
                tooltip=_("Papperskorg: återställ eller radera permanent")),
        Binding("I", "imports", _("Importer"), id="imports", show=False, key_display="I",
                tooltip=_("Importer: tidigare importer, kvittens och Ångra import")),
        Binding("escape", "clear_search", _("Rensa sökningen"), id="clear", show=False),
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
        self._undo_focus: int | None = None
        # The search field's newest text, and whether a first page is being fetched: a keystroke
        # runs its search at once when none is; typing on, only the newest text runs next.
        self._wanted_query = ""
        self._searching = False
        self._bindings_state: tuple[bool, bool] | None = None
        self._cursor_target: int | None = None
        self._opening = False
        self._count_pending = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield SearchInput(placeholder=_("Sök på namn, kundnummer, e-post eller organisationsnummer  (/)"),
                          id="search")
        yield PagedTable(register_columns(False), id="customers", zebra_stripes=True)
        yield Static("", id="empty-hint")
        yield Static("", id="status")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def table(self) -> PagedTable:
        return self.query_one("#customers", PagedTable)

    @property
    def search_input(self) -> SearchInput:
        return self.query_one("#search", SearchInput)

    def on_mount(self) -> None:
        self.query_one("#empty-hint").display = False
        self.table.set_sort_indicator(self.sort.column, self.sort.descending)
        # The first page at once, the count after it (on a big register counting takes longer).
        self._first_page(self.source(), None)
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "edit":
            # enter in the search field submits the search; elsewhere it opens the customer.
            if self.focused is not self.table:
                return False
            return True if self.table.row_count else None
        if action in ("mark", "delete") and self.table.row_count == 0 and not self.marked:
            return None  # shown dimmed
        if action == "clear_search":
            return bool(self.query_text)
        return True

    # ------------------------------------------------------------------ loading
    def source(self) -> RegisterSource:
        return RegisterSource(self.service, self.query_text, self.sort, self.marked)

    def reload(self, keep_position: bool = True, focus_id: int | None = None) -> None:
        """Read the register again; with ``focus_id`` the cursor lands on that customer (or,
        when it is gone, where it was)."""
        self._cursor_target = None
        self._count_pending = False
        self.table.set_source(self.source(), keep_position=keep_position)
        self._count_all()
        if focus_id is not None:
            self._find_position(focus_id, self.query_text, self.sort)

    @work(thread=True, exclusive=True, group="count-all")
    def _count_all(self) -> None:
        total = self.service.count()
        self.app.call_from_thread(self._set_total, total)

    def _set_total(self, total: int) -> None:
        self.total = total
        self._update_status()

    @work(thread=True, exclusive=True, group="position")
    def _find_position(self, customer_id: int, query: str, sort: Sort) -> None:
        try:
            index = self.service.position(customer_id, query, sort)
        except Exception:  # only the cursor's place is lost
            return
        if index is not None:
            self.app.call_from_thread(self._place_cursor, index, query, sort)

    def _place_cursor(self, index: int, query: str, sort: Sort) -> None:
        if query != self.query_text or sort != self.sort:
            return
        if self.table.is_loading:
            self._cursor_target = index  # applied when the rows are in (Reloaded)
        else:
            self.table.move_cursor(index)

    @on(PagedTable.Reloaded)
    def _reloaded(self, _event: PagedTable.Reloaded) -> None:
        if self._cursor_target is not None:
            target, self._cursor_target = self._cursor_target, None
            self.table.move_cursor(target)
        self._update_status()
        self._refresh_bindings_if_changed()

    def _refresh_bindings_if_changed(self) -> None:
        """Refresh the footer only when what ``check_action`` answers can have changed: the
        footer is rebuilt on every refresh, which costs a frame (tens of ms) per keystroke."""
        state = (self.table.row_count == 0, bool(self.marked))  # esc (clear) is not in the footer
        if state != self._bindings_state:
            self._bindings_state = state
            self.refresh_bindings()

    @on(PagedTable.SourceError)
    def _source_error(self, event: PagedTable.SourceError) -> None:
        self._tell_read_error(event.error)

    def _tell_read_error(self, error: BaseException) -> None:
        tell(self.app, _("Kunde inte läsa registret: {e}").format(e=error), severity="error")

    def _update_status(self) -> None:
        shown = self.table.row_count
        total = self.total if self.total is not None else shown
        parts = [
            ngettext("{n} kund", "{n} kunder", total).format(n=thousands(total)),
            (_("minst {n} visas").format(n=thousands(shown)) if self._count_pending
             else _("{n} visas").format(n=thousands(shown))),
            ngettext("{n} markerad", "{n} markerade", len(self.marked)).format(n=thousands(len(self.marked))),
        ]
        # One line of fixed height: no layout pass (a full repaint of the screen) for it.
        self.query_one("#status", Static).update(Content("  ·  ".join(parts)), layout=False)
        hint = self.query_one("#empty-hint", Static)
        if self.total == 0 and not self.table.is_loading:
            hint.update(Content(_(
                "Kundregistret är tomt.\n\nTryck n för Ny kund, i för Import från fil "
                "eller p för att klistra in kunder.")))
            empty = True
        elif shown == 0 and self.query_text and not self.table.is_loading:
            hint.update(Content(_("Ingen kund matchar sökningen. Esc rensar sökningen.")))
            empty = True
        else:
            empty = False
        hint.display = empty
        self.set_class(empty, "-no-rows")

    # ------------------------------------------------------------------ search
    def action_search(self) -> None:
        self.search_input.focus()

    @on(SafeInput.Changed, "#search")
    def _search_changed(self, event: SafeInput.Changed) -> None:
        self._wanted_query = event.value
        if not self._searching:
            self._run_search(event.value)

    def _run_search(self, value: str) -> None:
        if value == self.query_text:
            return
        self.query_text = value
        self._cursor_target = None
        self._first_page(self.source(), None)
        self._refresh_bindings_if_changed()

    def _settled(self) -> None:
        """A first page arrived (or failed): run the newest search text if it has not run."""
        self._searching = False
        if self._wanted_query != self.query_text:
            self._run_search(self._wanted_query)

    def _first_page(self, source: RegisterSource, count: int | None) -> None:
        """Show ``source`` from its top: the first page, fetched in a worker, goes on screen at
        once, then the exact count follows (unless ``count`` is known or the page is not full).

        The first page of a search is one indexed query that stops after a page of matches;
        counting every match may take longer on a big register, so it runs after the rows are
        on screen.
        """
        self._searching = True
        self._fetch_first_page(source, count)

    @work(thread=True, exclusive=True, group="search")
    def _fetch_first_page(self, source: RegisterSource, count: int | None) -> None:
        size = self.table.page_size
        try:
            rows = source.fetch(0, size)
        except Exception as error:  # told like any read error of the table
            self.app.call_from_thread(self._first_page_failed, error)
            return
        self.app.call_from_thread(self._show_first_page, source, rows, count)

    def _first_page_failed(self, error: Exception) -> None:
        self._settled()
        self._tell_read_error(error)

    def _show_first_page(self, source: RegisterSource, rows: Sequence[Row], count: int | None) -> None:
        if source.query != self.query_text or source.sort != self.sort:
            self._settled()
            return  # typed on: a newer keystroke's rows are coming
        exact = count is not None or len(rows) < self.table.page_size
        self._count_pending = not exact
        self.table.set_source(source, row_count=count if count is not None else len(rows), first_rows=rows)
        if exact and not source.query.strip():
            self.total = count if count is not None else len(rows)
        if not exact:
            self._count_search(source)
        self._settled()

    @work(thread=True, exclusive=True, group="search-count")
    def _count_search(self, source: RegisterSource) -> None:
        try:
            count = source.row_count()
        except Exception as error:
            self.app.call_from_thread(self._first_page_failed, error)
            return
        self.app.call_from_thread(self._show_count, source, count)

    def _show_count(self, source: RegisterSource, count: int) -> None:
        if source.query != self.query_text or source.sort != self.sort or self.table.source is not source:
            return
        self._count_pending = False
        if not source.query.strip():
            self.total = count
        self.table.set_row_count(count)

    @on(SafeInput.Submitted, "#search")
    def _search_done(self) -> None:
        self.table.focus()

    @on(Refused, "#search")
    def _search_refused(self, event: Refused) -> None:
        event.stop()
        tell(self.app, _("Sökningen kan inte innehålla styr- eller riktningstecken."), severity="warning")

    def action_clear_search(self) -> None:
        if self.query_text or self.search_input.value:
            self._wanted_query = ""
            self.search_input.value = ""
            self._run_search("")

    # ------------------------------------------------------------------ sort
    def action_sort(self, column: str) -> None:
        if column not in SORTABLE:
            return
        if column in ("email", "phone") and not self.extra_columns:
            self.action_toggle_columns()
        descending = not self.sort.descending if self.sort.column == column else False
        # The cursor stays on the customer it was moved to; from the top row it stays on top.
        focus = self._cursor_key() if self.table.cursor_row > 0 else None
        self.sort = Sort(column, descending)
        self.table.set_sort_indicator(column, descending)
        # The same customers in another order: the count is known, only rows are fetched.
        self._cursor_target = None
        count = None if self._count_pending or self.table.is_loading else self.table.row_count
        if focus is None:
            self._first_page(self.source(), count)  # the new order's top, in one step
        else:
            self.table.set_source(self.source(), row_count=count, keep_position=False)
            self._find_position(focus, self.query_text, self.sort)

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
        self.app.call_from_thread(self._apply_mark_all, ids, query)

    def _apply_mark_all(self, ids: set[int], query: str) -> None:
        if query != self.query_text or not ids:
            return
        if ids <= self.marked:
            self.marked -= ids  # every shown customer was marked: a second `a` unmarks them
        else:
            self.marked |= ids
        self.table.invalidate()
        self._update_status()
        self._refresh_bindings_if_changed()

    # ------------------------------------------------------------------ edit
    def action_new(self) -> None:
        from kundreg_tui.screens.customer_form import CustomerForm

        if self.app.screen is self:
            self.app.push_screen(CustomerForm(self.service), self._form_closed)

    def action_edit(self) -> None:
        # Through the table: it waits for the cursor's row when that is still being fetched.
        self.table.action_select_cursor()

    @on(PagedTable.RowSelected)
    def _row_selected(self, event: PagedTable.RowSelected) -> None:
        if self._opening or self.app.screen is not self:
            return
        self._opening = True
        self._open(int(event.row_key))  # type: ignore[call-overload]

    @work(thread=True, exclusive=True, group="open")
    def _open(self, customer_id: int) -> None:
        try:
            record = self.service.get(customer_id)
        except Exception as exc:
            self.app.call_from_thread(self._open_failed, exc)
            return
        self.app.call_from_thread(self._show_form, record)

    def _open_failed(self, exc: Exception) -> None:
        self._opening = False
        tell(self.app, _("Kunde inte läsa kunden: {e}").format(e=exc), severity="error")

    def _show_form(self, record: CustomerRecord | None) -> None:
        from kundreg_tui.screens.customer_form import CustomerForm

        self._opening = False
        if record is None:
            tell(self.app, _("Kunden finns inte längre (någon annan har tagit bort den)."), severity="warning")
            self.reload()
            return
        if self.app.screen is self:
            self.app.push_screen(CustomerForm(self.service, record), self._form_closed)

    def _form_closed(self, saved: CustomerRecord | None) -> None:
        self.table.focus()
        if saved is not None:
            self.reload(focus_id=saved.id)

    # ------------------------------------------------------------------ delete
    def action_delete(self) -> None:
        cursor = self._cursor_key()
        ids = sorted(self.marked)
        if not ids:
            if cursor is None:
                return
            ids = [cursor]
        self._confirm_delete(ids, cursor)

    @work(thread=True, exclusive=True, group="delete")
    def _confirm_delete(self, ids: list[int], cursor: int | None) -> None:
        try:
            preview = self.service.get_many(ids[:10])
        except Exception as exc:
            self.app.call_from_thread(tell, self.app, _("Kunde inte läsa kunderna: {e}").format(e=exc),
                                      severity="error")
            return
        self.app.call_from_thread(self._ask_delete, ids, preview, cursor)

    def _ask_delete(self, ids: list[int], preview: list[CustomerRecord], cursor: int | None) -> None:
        from kundreg_tui.screens.delete import DeleteScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self._delete(ids, cursor, preview)

        if self.app.screen is self:
            self.app.push_screen(DeleteScreen(len(ids), preview), answer)

    @work(thread=True, exclusive=True, group="delete")
    def _delete(self, ids: list[int], cursor: int | None, preview: list[CustomerRecord]) -> None:
        try:
            result = self.service.delete(ids)
        except Exception as exc:
            self.app.call_from_thread(tell, self.app, _("Kunde inte radera: {e}").format(e=exc), severity="error")
            return
        self.app.call_from_thread(self._deleted, result.batch_id, result.count, ids, cursor, preview)

    def _deleted(self, batch_id: int, count: int, ids: list[int], cursor: int | None,
                 preview: list[CustomerRecord]) -> None:
        self.last_delete = batch_id
        # After an undo the cursor goes to the customer it was on, or the first one restored.
        self._undo_focus = cursor if cursor in ids else preview[0].id if preview else ids[0]
        single = preview[0] if count == 1 and len(preview) == 1 else None
        self.marked.difference_update(ids)
        # The cursor stays on its customer, or on the one after it when that was deleted.
        self.reload(focus_id=cursor)
        if single is not None:
            message = _("{number} {name} raderad. Ångra med ctrl+z.").format(number=single.number, name=single.name)
        else:
            message = ngettext("{n} kund raderad. Ångra med ctrl+z.", "{n} kunder raderade. Ångra med ctrl+z.",
                               count).format(n=thousands(count))
        tell(self.app, message)

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
        except Exception as exc:
            self.app.call_from_thread(tell, self.app, _("Kunde inte ångra: {e}").format(e=exc), severity="error")
            return
        self.app.call_from_thread(self._undone, count)

    def _undone(self, count: int) -> None:
        self.last_delete = None
        focus, self._undo_focus = self._undo_focus, None
        self.reload(focus_id=focus)
        tell(self.app, ngettext("{n} kund återställd.", "{n} kunder återställda.", count).format(n=thousands(count)))

    # ------------------------------------------------------------------ other screens
    def _push_other(self, screen: Any, callback: Any = None) -> None:
        if self.app.screen is self:
            self.app.push_screen(screen, callback)

    def _after_import(self, _result: object) -> None:
        self.table.focus()
        self.reload()

    def action_import_file(self) -> None:
        from kundreg_tui.screens.import_wizard import ImportWizard

        self._push_other(ImportWizard(self.service), self._after_import)

    def action_paste(self) -> None:
        from kundreg_tui.screens.paste_import import PasteImportScreen

        self._push_other(PasteImportScreen(self.service), self._after_import)

    def _after_other(self, changed: bool | None) -> None:
        self.table.focus()
        if changed:
            self.reload()

    def action_history(self) -> None:
        from kundreg_tui.screens.history import HistoryScreen

        key = self._cursor_key()
        if key is not None:
            self._push_other(HistoryScreen(self.service, key), self._after_other)

    def action_trash(self) -> None:
        from kundreg_tui.screens.trash import TrashScreen

        self._push_other(TrashScreen(self.service), self._after_other)

    def action_imports(self) -> None:
        from kundreg_tui.screens.imports import ImportsScreen

        self._push_other(ImportsScreen(self.service), self._after_other)

    def action_export(self) -> None:
        from kundreg_tui.screens.export import ExportScreen

        self._push_other(ExportScreen(self.service, self.query_text, self.sort, sorted(self.marked)))
