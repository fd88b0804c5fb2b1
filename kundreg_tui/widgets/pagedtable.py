"""A virtual table that pages its rows from a slow data source.

``PagedTable`` draws with Textual's Line API (``ScrollView`` + ``render_line``) and never holds
the whole data set: it keeps a few pages of rows in an LRU cache and asks the source for the
pages that come into view, from a worker, never while drawing. A register of a million
customers scrolls as fast as one of ten.

Cell values are customer data. They are never parsed as markup: a ``str`` is plain text, and
control and bidi characters are made visible (``␛``, ``<U+202E>``) before they are drawn.

Styling is done with component classes (see ``PagedTable.COMPONENT_CLASSES``). A row's
``style_class`` and a cell's entry in ``cell_classes`` name further component classes; a
subclass declares them in its own ``COMPONENT_CLASSES`` (Textual merges them with ours)::

    class PreviewTable(PagedTable):
        COMPONENT_CLASSES = {"preview--new", "preview--changed"}
        DEFAULT_CSS = "PreviewTable > .preview--new { color: $success; }"

Only the colour and text style of those classes are used (they are laid over the row), so
they combine with the cursor and the zebra stripes. An undeclared class is ignored.

Threads: the source's ``row_count`` and ``fetch`` run in worker threads (through
``asyncio.to_thread``), one call at a time per table (a lock serialises them), never on the
event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, runtime_checkable

from rich.cells import cell_len, split_graphemes
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from kundreg_tui.domain.text import visible
from kundreg_tui.i18n import N_

__all__ = [
    "CellValue",
    "Column",
    "PagedTable",
    "Row",
    "SequenceSource",
    "TableSource",
]

CellValue = str | Text
"""A cell: a plain ``str`` (never markup) or a Rich ``Text`` built by the caller."""

Align = Literal["left", "center", "right"]

ELLIPSIS = "…"
PLACEHOLDER = "…"
SORT_ASCENDING = "▲"
SORT_DESCENDING = "▼"


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a ``PagedTable``.

    Args:
        key: The key of the column's value in ``Row.cells``.
        label: The header text (plain text, never markup).
        width: Content width in cells, or ``None`` to share the width left over.
        align: Alignment of the cell content.
        sortable: A click on the header posts ``HeaderClicked`` (the screen sorts).
        ratio: Share of the left-over width, for a column whose ``width`` is ``None``.
        min_width: Smallest content width of a flexible column.
    """

    key: str
    label: str
    width: int | None = None
    align: Align = "left"
    sortable: bool = True
    ratio: int = 1
    min_width: int = 6


@dataclass(frozen=True, slots=True)
class Row:
    """One row as fetched from a source.

    Args:
        key: Identifies the row (e.g. the customer id); hashable.
        cells: Column key to value. A missing key draws an empty cell.
        style_class: A component class for the whole row (colour / text style), or ``None``.
        cell_classes: Column key to a component class for that cell.
    """

    key: Hashable
    cells: Mapping[str, CellValue]
    style_class: str | None = None
    cell_classes: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class TableSource(Protocol):
    """Where a ``PagedTable`` gets its rows. Both methods are called from a worker thread."""

    def row_count(self) -> int:
        """The number of rows (may be slow: a count over a filter)."""
        ...

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        """Up to ``limit`` rows starting at row ``offset`` in display order."""
        ...


class SequenceSource:
    """A ``TableSource`` over rows already in memory (e.g. an import preview)."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = rows

    def row_count(self) -> int:
        return len(self.rows)

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        return list(self.rows[offset : offset + limit])


@dataclass(slots=True)
class _Page:
    rows: list[Row]
    complete: bool
    serial: int
    stale: bool = False


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where a column lands in a rendered line."""

    column: Column
    x: int  # first cell of the column, padding included
    width: int  # content width, padding excluded


@dataclass(frozen=True, slots=True)
class _Frame:
    """State shared by every line of one paint (read once, not once per line)."""

    width: int
    scroll_x: int
    scroll_y: int
    cursor_row: int
    zebra: bool
    base_style: Style
    cursor_style: Style
    header_style: Style
    token: Hashable


class PagedTable(ScrollView, can_focus=True):
    """A read-only table of rows paged in from a ``TableSource``, with a row cursor.

    Args:
        columns: The columns, left to right.
        source: A source to load once mounted (rows are counted in a worker).
        page_size: Rows per fetch.
        cache_pages: Pages kept in memory (at least enough for the screen plus neighbours).
        zebra_stripes: Alternate the row background.
    """

    ALLOW_SELECT = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", N_("Upp"), show=False),
        Binding("down", "cursor_down", N_("Ned"), show=False),
        Binding("pageup", "page_up", N_("Sida upp"), show=False),
        Binding("pagedown", "page_down", N_("Sida ned"), show=False),
        Binding("home,ctrl+home", "cursor_first", N_("Första"), show=False),
        Binding("end,ctrl+end", "cursor_last", N_("Sista"), show=False),
        Binding("enter", "select_cursor", N_("Välj"), show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "pagedtable--header",
        "pagedtable--cursor",
        "pagedtable--even-row",
        "pagedtable--odd-row",
        "pagedtable--placeholder",
        "pagedtable--sort-indicator",
    }
    """
    | Class | Description |
    | :- | :- |
    | `pagedtable--header` | The header line. |
    | `pagedtable--cursor` | The row under the cursor. |
    | `pagedtable--even-row` | Even rows (index 0, 2, ...) when `zebra_stripes`. |
    | `pagedtable--odd-row` | Odd rows when `zebra_stripes`. |
    | `pagedtable--placeholder` | The `…` drawn while a row is being fetched. |
    | `pagedtable--sort-indicator` | The ▲ / ▼ after the sorted column's label. |
    """

    DEFAULT_CSS = """
    PagedTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        &:focus {
            background-tint: $foreground 5%;
            & > .pagedtable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .pagedtable--header {
                background-tint: $foreground 5%;
            }
        }
        & > .pagedtable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .pagedtable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .pagedtable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .pagedtable--even-row {
            background: $surface-lighten-1 50%;
        }
        &:dark > .pagedtable--even-row {
            background: $surface-darken-1 40%;
        }
        & > .pagedtable--placeholder {
            color: $text-muted;
        }
        & > .pagedtable--sort-indicator {
            color: $accent;
        }
    }
    """

    cursor_row: reactive[int] = reactive(0, repaint=False, init=False)
    """Index of the row under the cursor (0 when the table is empty)."""

    zebra_stripes: reactive[bool] = reactive(False)
    """Alternate the background of even and odd rows."""

    cell_padding: ClassVar[int] = 1
    """Blank cells on each side of every column."""

    _FETCH_GROUP: ClassVar[str] = "pagedtable-fetch"
    _LOAD_GROUP: ClassVar[str] = "pagedtable-load"

    # ------------------------------------------------------------------ messages

    class CursorMoved(Message):
        """The cursor moved to another row (or the row under it changed after a reload).

        ``row_key`` is ``None`` while the row is still being fetched; the message is posted
        again with the key when it arrives.
        """

        def __init__(self, table: PagedTable, row_index: int, row_key: Hashable | None) -> None:
            super().__init__()
            self.table = table
            self.row_index = row_index
            self.row_key = row_key

        @property
        def control(self) -> PagedTable:
            return self.table

    class RowSelected(Message):
        """Enter (or a double click) on a row. Posted once the row is loaded."""

        def __init__(self, table: PagedTable, row_index: int, row_key: Hashable) -> None:
            super().__init__()
            self.table = table
            self.row_index = row_index
            self.row_key = row_key

        @property
        def control(self) -> PagedTable:
            return self.table

    class HeaderClicked(Message):
        """A click on the header of a sortable column. The screen decides what to do."""

        def __init__(self, table: PagedTable, column_key: str) -> None:
            super().__init__()
            self.table = table
            self.column_key = column_key

        @property
        def control(self) -> PagedTable:
            return self.table

    class Reloaded(Message):
        """A new source (or a reload) is in place: the row count is known, first rows drawn."""

        def __init__(self, table: PagedTable, row_count: int) -> None:
            super().__init__()
            self.table = table
            self.row_count = row_count

        @property
        def control(self) -> PagedTable:
            return self.table

    class SourceError(Message):
        """The source raised while counting or fetching. The rows stay as placeholders."""

        def __init__(self, table: PagedTable, error: BaseException) -> None:
            super().__init__()
            self.table = table
            self.error = error

        @property
        def control(self) -> PagedTable:
            return self.table

    # ------------------------------------------------------------------ construction

    def __init__(
        self,
        columns: Sequence[Column],
        source: TableSource | None = None,
        *,
        page_size: int = 200,
        cache_pages: int = 8,
        zebra_stripes: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._columns: tuple[Column, ...] = tuple(columns)
        self._columns_version = 0
        self._page_size = page_size
        self._pages: LRUCache[int, _Page] = LRUCache(max(4, cache_pages))
        self._strips: LRUCache[Hashable, Strip] = LRUCache(1024)
        self._serials = itertools.count(1)
        self._source: TableSource | None = None
        self._row_count = 0
        self._generation = 0
        self._source_lock = threading.Lock()
        self._loading = False
        self._pending_load: tuple[TableSource, int | None, Sequence[Row] | None, bool] | None = (
            (source, None, None, False) if source is not None else None
        )
        self._fetching = False
        self._fetch_generation = -1
        self._fetch_scheduled = False
        self._failed_pages: set[int] = set()
        self._sort: tuple[str, bool] | None = None
        self._frame: _Frame | None = None
        self._column_layouts: dict[tuple[int, int], tuple[tuple[_Slot, ...], int]] = {}
        self._posted_cursor: tuple[int, Hashable | None] | None = None
        self._pending_select: int | None = None
        self.set_reactive(PagedTable.zebra_stripes, zebra_stripes)

    # ------------------------------------------------------------------ public API

    @property
    def columns(self) -> tuple[Column, ...]:
        return self._columns

    @property
    def source(self) -> TableSource | None:
        return self._source

    @property
    def row_count(self) -> int:
        """Rows in the current source (as last counted)."""
        return self._row_count

    @property
    def page_size(self) -> int:
        return self._page_size

    @property
    def is_loading(self) -> bool:
        """A new source is being counted; the old rows are still shown."""
        return self._loading

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Replace the columns (rows keep their cells; a row without a column's key is blank)."""
        self._columns = tuple(columns)
        self._columns_version += 1
        self._column_layouts.clear()
        self._strips.clear()
        self._update_virtual_size()
        self.refresh()

    def set_source(
        self,
        source: TableSource,
        row_count: int | None = None,
        first_rows: Sequence[Row] | None = None,
        *,
        keep_position: bool = False,
    ) -> None:
        """Show ``source`` instead of the current one.

        With ``row_count`` the switch happens at once (rows are fetched as they come into
        view; ``first_rows``, the rows from offset 0, are drawn straight away). Without it the
        rows are counted in a worker and the old rows stay on screen until the count and the
        first visible page have arrived. Either way ``Reloaded`` is posted when done.

        ``keep_position`` keeps the cursor index and scroll offset (clamped); otherwise the
        cursor goes to the first row.
        """
        self._pending_load = (source, row_count, first_rows, keep_position)
        if self.is_mounted:
            self._start_pending_load()

    def set_row_count(self, row_count: int) -> None:
        """The current source's rows were counted again (e.g. a search's exact count, arriving
        after its first page): rows already fetched stay on screen, only the length changes.
        ``Reloaded`` is posted."""
        if self._loading or self._pending_load is not None:
            return  # a new source is on its way and brings its own count
        self._row_count = max(0, row_count)
        size = self._page_size
        for page_index in list(self._pages.keys()):
            page = self._pages.get(page_index)
            if page is None:
                continue
            expected = min(size, self._row_count - page_index * size)
            if expected <= 0:
                self._pages.discard(page_index)
                continue
            del page.rows[expected:]
            page.complete = len(page.rows) >= expected
        self._strips.clear()
        self._update_virtual_size()
        if self.cursor_row >= self._row_count:
            self.cursor_row = max(0, self._row_count - 1)
        self.refresh()
        self.post_message(self.Reloaded(self, self._row_count))
        self._schedule_fetch()

    def set_data(self, row_count: int, first_rows: Sequence[Row], source: TableSource) -> None:
        """Hand over a count and first rows already fetched elsewhere (synchronous)."""
        self.set_source(source, row_count=row_count, first_rows=first_rows)

    def reload(self, keep_position: bool = True) -> None:
        """Count and fetch again from the current source (after a change in the register)."""
        if self._pending_load is not None:
            source, _count, _rows, keep = self._pending_load
            self.set_source(source, keep_position=keep and keep_position)
        elif self._source is not None:
            self.set_source(self._source, keep_position=keep_position)

    def invalidate(self, row_keys: Iterable[Hashable] | None = None) -> None:
        """The rows with these keys (or all rows) changed in the source: fetch them again.

        The row count is kept. Rows on screen stay drawn until their fresh copy arrives, so
        there is no flicker (e.g. after marking a row).
        """
        if self._loading:
            # A load is under way and will bring fresh rows; start it again in case it
            # already fetched them.
            self.reload()
            return
        visible_pages = set(self._visible_pages())
        keys = None if row_keys is None else set(row_keys)
        for page_index in list(self._pages.keys()):
            page = self._pages.get(page_index)
            if page is None:
                continue
            if keys is not None and not any(row.key in keys for row in page.rows):
                continue
            if page_index in visible_pages:
                page.stale = True
            else:
                self._pages.discard(page_index)
        self._generation += 1
        self._failed_pages.clear()
        self._schedule_fetch()

    def update_row(self, row: Row) -> bool:
        """Replace a cached row that has the same key (no fetch). True if it was cached."""
        found = False
        for page_index in list(self._pages.keys()):
            page = self._pages.get(page_index)
            if page is None:
                continue
            for offset, cached in enumerate(page.rows):
                if cached.key == row.key:
                    page.rows[offset] = row
                    page.serial = next(self._serials)
                    found = True
        if found:
            self.refresh()
        return found

    def row_at(self, index: int) -> Row | None:
        """The row at ``index`` if it is in the cache."""
        if not 0 <= index < self._row_count:
            return None
        page_index, offset = divmod(index, self._page_size)
        page = self._pages.get(page_index)
        if page is None or offset >= len(page.rows):
            return None
        return page.rows[offset]

    def row_key_at(self, index: int) -> Hashable | None:
        """The key of the row at ``index`` if it is in the cache."""
        row = self.row_at(index)
        return None if row is None else row.key

    def current_row(self) -> Row | None:
        """The row under the cursor, if it is loaded."""
        return self.row_at(self.cursor_row) if self._row_count else None

    def set_sort_indicator(self, column_key: str | None, descending: bool = False) -> None:
        """Show ▲ (or ▼ when ``descending``) after a column's label; ``None`` shows none."""
        self._sort = None if column_key is None else (column_key, descending)
        # The header is always the first line of the viewport (``refresh_line`` would
        # subtract the scroll offset).
        self.refresh(Region(0, 0, self.size.width, 1))

    def move_cursor(self, row_index: int) -> None:
        """Move the cursor (clamped) and scroll it into view."""
        self.cursor_row = row_index
        self._scroll_cursor_into_view()

    # ------------------------------------------------------------------ loading

    def _start_pending_load(self) -> None:
        if self._pending_load is None:
            return
        source, row_count, first_rows, keep_position = self._pending_load
        self._generation += 1
        self._failed_pages.clear()
        self.workers.cancel_group(self, self._LOAD_GROUP)
        self.workers.cancel_group(self, self._FETCH_GROUP)
        self._fetching = False
        if row_count is not None:
            self._pending_load = None
            pages: dict[int, list[Row]] = {}
            if first_rows:
                size = self._page_size
                usable = min(len(first_rows), row_count)
                for start in range(0, usable, size):
                    pages[start // size] = list(first_rows[start : min(start + size, usable)])
            self._apply_load(source, row_count, pages, keep_position)
            return
        self._loading = True
        self.run_worker(
            self._load(self._generation, source, keep_position),
            name="pagedtable load",
            group=self._LOAD_GROUP,
            exclusive=True,
            exit_on_error=False,
        )

    async def _load(self, generation: int, source: TableSource, keep_position: bool) -> None:
        try:
            count = await asyncio.to_thread(self._count_blocking, generation, source)
            if count is None or generation != self._generation:
                return
            top = self._target_top(count, keep_position)
            pages: dict[int, list[Row]] = {}
            for page_index in self._pages_for_rows(top, count):
                rows = await asyncio.to_thread(self._fetch_blocking, generation, source, page_index)
                if rows is None or generation != self._generation:
                    return
                pages[page_index] = rows
        except Exception as error:
            if generation == self._generation:
                self._loading = False
                self._pending_load = None
                self.post_message(self.SourceError(self, error))
            return
        if generation == self._generation:
            self._pending_load = None
            self._apply_load(source, count, pages, keep_position)

    def _apply_load(
        self,
        source: TableSource,
        row_count: int,
        pages: Mapping[int, list[Row]],
        keep_position: bool,
    ) -> None:
        self._loading = False
        self._source = source
        self._row_count = max(0, row_count)
        self._pages.clear()
        self._strips.clear()
        size = self._page_size
        for page_index, rows in pages.items():
            expected = min(size, self._row_count - page_index * size)
            self._pages.set(
                page_index, _Page(rows, complete=len(rows) >= expected, serial=next(self._serials))
            )
        top = self._target_top(self._row_count, keep_position)
        cursor = min(self.cursor_row, max(0, self._row_count - 1)) if keep_position else 0
        self._update_virtual_size()
        self._posted_cursor = None
        self._pending_select = None
        self.set_reactive(PagedTable.cursor_row, cursor)
        self.scroll_to(y=top, animate=False, force=True)
        if keep_position:
            self._scroll_cursor_into_view()
        self.refresh()
        self.post_message(self.Reloaded(self, self._row_count))
        self._post_cursor_moved()
        self._schedule_fetch()

    def _count_blocking(self, generation: int, source: TableSource) -> int | None:
        with self._source_lock:
            if generation != self._generation:
                return None
            return int(source.row_count())

    def _fetch_blocking(
        self, generation: int, source: TableSource, page_index: int
    ) -> list[Row] | None:
        with self._source_lock:
            if generation != self._generation:
                return None
            size = self._page_size
            return list(source.fetch(page_index * size, size))

    # ------------------------------------------------------------------ fetching

    def _schedule_fetch(self) -> None:
        """Ask for missing pages soon (never from inside a render)."""
        if not self._fetch_scheduled and self.is_mounted:
            self._fetch_scheduled = True
            self.call_later(self._ensure_fetching)

    def _ensure_fetching(self) -> None:
        self._fetch_scheduled = False
        if self._loading or self._source is None:
            return
        if self._fetching and self._fetch_generation == self._generation:
            return  # the running loop looks at the viewport again after each page
        if self._next_wanted_page() is None:
            return
        self._fetching = True
        self._fetch_generation = self._generation
        self.run_worker(
            self._fetch_loop(self._generation, self._source),
            name="pagedtable fetch",
            group=self._FETCH_GROUP,
            exclusive=True,
            exit_on_error=False,
        )

    async def _fetch_loop(self, generation: int, source: TableSource) -> None:
        """Fetch the pages the viewport needs, one at a time, until it needs none.

        The wanted page is chosen afresh after every fetch, so pages that were scrolled past
        while another page was fetched are never asked for.
        """
        try:
            while generation == self._generation and not self._loading:
                page_index = self._next_wanted_page()
                if page_index is None:
                    return
                try:
                    rows = await asyncio.to_thread(
                        self._fetch_blocking, generation, source, page_index
                    )
                except Exception as error:
                    if generation != self._generation:
                        return
                    self._failed_pages.add(page_index)
                    self.post_message(self.SourceError(self, error))
                    continue
                if rows is None or generation != self._generation:
                    return
                self._store_page(page_index, rows)
        finally:
            if self._fetch_generation == generation:
                self._fetching = False

    def _store_page(self, page_index: int, rows: list[Row]) -> None:
        # Textual's LRUCache.set keeps an existing value: discard first.
        self._pages.discard(page_index)
        self._pages.set(page_index, _Page(rows, complete=True, serial=next(self._serials)))
        size = self._page_size
        first, last = self._visible_row_range()
        if page_index * size <= last and (page_index + 1) * size > first:
            self.refresh()
        cursor = self.cursor_row
        if page_index * size <= cursor < (page_index + 1) * size:
            self._post_cursor_moved()
            if self._pending_select == cursor:
                self._pending_select = None
                row = self.row_at(cursor)
                if row is not None:
                    self.post_message(self.RowSelected(self, cursor, row.key))

    def _next_wanted_page(self) -> int | None:
        count = self._row_count
        if count == 0:
            return None
        size = self._page_size
        first, last = self._visible_row_range()
        first_page, last_page = first // size, last // size
        for page_index in range(first_page, last_page + 1):
            if page_index in self._failed_pages:
                continue
            page = self._pages.get(page_index)
            if page is None or page.stale or not page.complete:
                return page_index
        # Prefetch one page past each edge of the screen.
        for page_index in (last_page + 1, first_page - 1):
            if (
                0 <= page_index
                and page_index * size < count
                and page_index not in self._pages
                and page_index not in self._failed_pages
            ):
                return page_index
        return None

    def _visible_pages(self) -> range:
        first, last = self._visible_row_range()
        return range(first // self._page_size, last // self._page_size + 1)

    def _pages_for_rows(self, top: int, count: int) -> range:
        if count == 0:
            return range(0)
        last = min(count - 1, top + self._visible_capacity() - 1)
        return range(top // self._page_size, last // self._page_size + 1)

    # ------------------------------------------------------------------ geometry

    def _visible_capacity(self) -> int:
        """Rows that fit under the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def _content_width(self) -> int:
        """Width of the lines the table lays out (``size`` includes the scrollbar)."""
        return self.scrollable_content_region.width

    def _visible_row_range(self) -> tuple[int, int]:
        """First and last row index on screen (last < first when there are none)."""
        top = self.scroll_offset.y
        last = min(self._row_count - 1, top + self._visible_capacity() - 1)
        return top, last

    def _target_top(self, count: int, keep_position: bool) -> int:
        if not keep_position:
            return 0
        return max(0, min(self.scroll_offset.y, count - self._visible_capacity()))

    def _min_table_width(self) -> int:
        pad = 2 * self.cell_padding
        return sum(
            (column.width if column.width is not None else column.min_width) + pad
            for column in self._columns
        )

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self._min_table_width(), self._row_count + 1)
        needed = len(self._visible_pages()) + 3
        if needed > self._pages.maxsize:
            self._pages.grow(needed)

    def _layout(self, width: int) -> tuple[tuple[_Slot, ...], int]:
        """Column slots for a viewport ``width``, and the width of the rendered line."""
        key = (width, self._columns_version)
        cached = self._column_layouts.get(key)
        if cached is not None:
            return cached
        pad = 2 * self.cell_padding
        columns = self._columns
        total = max(width, self._min_table_width())
        flexible = [number for number, column in enumerate(columns) if column.width is None]
        # Width left over once every column has its fixed or minimum width.
        spare = total - self._min_table_width()
        ratios = sum(max(1, columns[number].ratio) for number in flexible)
        extra: dict[int, int] = {}
        given = 0
        for position, number in enumerate(flexible):
            if position == len(flexible) - 1:
                share = spare - given
            else:
                share = spare * max(1, columns[number].ratio) // ratios
            extra[number] = share
            given += share
        slots: list[_Slot] = []
        x = 0
        for number, column in enumerate(columns):
            if column.width is not None:
                content = column.width
            else:
                content = column.min_width + extra[number]
            slots.append(_Slot(column, x, content))
            x += content + pad
        result = (tuple(slots), max(total, x))
        if len(self._column_layouts) > 16:
            self._column_layouts.clear()
        self._column_layouts[key] = result
        return result

    def _column_at(self, x: int) -> Column | None:
        slots, _ = self._layout(self._content_width())
        for slot in slots:
            if slot.x <= x < slot.x + slot.width + 2 * self.cell_padding:
                return slot.column
        return None

    # ------------------------------------------------------------------ rendering

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def _make_frame(self) -> _Frame:
        """Everything a line needs that is the same for every line of one paint."""
        scroll_x, scroll_y = self.scroll_offset
        base = self.rich_style
        cursor = self.get_component_rich_style("pagedtable--cursor")
        header = self.get_component_rich_style("pagedtable--header")
        zebra = self.zebra_stripes
        return _Frame(
            width=self._content_width(),
            scroll_x=scroll_x,
            scroll_y=scroll_y,
            cursor_row=self.cursor_row,
            zebra=zebra,
            base_style=base,
            cursor_style=cursor,
            header_style=header,
            token=(base, cursor, header, zebra, self._columns_version),
        )

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = self._make_frame()
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        frame = self._frame or self._make_frame()
        width = frame.width
        scroll_x = frame.scroll_x
        if y == 0:
            strip = self._header_strip(frame)
            style = frame.header_style
        else:
            index = frame.scroll_y + y - 1
            if index >= self._row_count:
                return Strip.blank(width, frame.base_style)
            strip = self._row_strip(index, frame)
            style = frame.base_style
        if scroll_x == 0 and strip.cell_length == width:
            return strip
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    def _header_strip(self, frame: _Frame) -> Strip:
        slots, line_width = self._layout(frame.width)
        key = ("header", line_width, self._sort, frame.token)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        style = frame.header_style
        indicator_style = style + self.get_component_rich_style(
            "pagedtable--sort-indicator", partial=True
        )
        line = _LineBuilder()
        for slot in slots:
            column = slot.column
            label: CellValue = column.label
            if self._sort is not None and self._sort[0] == column.key and slot.width >= 2:
                arrow = SORT_DESCENDING if self._sort[1] else SORT_ASCENDING
                fitted = _fit_text(Text(visible(column.label), end=""), slot.width - 2)
                fitted.append(" " + arrow, indicator_style)
                label = fitted
            line.add_cell(self, label, slot.width, column.align, style, self.cell_padding)
        strip = line.strip(line_width, style)
        self._strips.set(key, strip)
        return strip

    def _row_strip(self, index: int, frame: _Frame) -> Strip:
        slots, line_width = self._layout(frame.width)
        page_index, offset = divmod(index, self._page_size)
        page = self._pages.get(page_index)
        is_cursor = index == frame.cursor_row
        if page is None or offset >= len(page.rows):
            if page is None or not page.complete:
                if page_index not in self._failed_pages:
                    self._schedule_fetch()
                return self._placeholder_strip(frame, slots, line_width, is_cursor)
            # The source returned fewer rows than it counted: draw a blank line.
            return Strip.blank(line_width, self._row_base_style(frame, index, is_cursor, None))
        if page.stale or not page.complete:
            self._schedule_fetch()
        row = page.rows[offset]
        key = (index, page.serial, line_width, is_cursor, frame.token)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        row_style = self._row_base_style(frame, index, is_cursor, row.style_class)
        cells = row.cells
        cell_classes = row.cell_classes
        padding = self.cell_padding
        line = _LineBuilder()
        for slot in slots:
            column = slot.column
            cell_style = row_style
            if cell_classes:
                cell_class = cell_classes.get(column.key)
                if cell_class:
                    cell_style = row_style + self._partial_style(cell_class)
            value = cells.get(column.key, "")
            line.add_cell(self, value, slot.width, column.align, cell_style, padding)
        strip = line.strip(line_width, row_style)
        self._strips.set(key, strip)
        return strip

    def _placeholder_strip(
        self, frame: _Frame, slots: tuple[_Slot, ...], line_width: int, is_cursor: bool
    ) -> Strip:
        key = ("placeholder", line_width, is_cursor, frame.token)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        style = frame.base_style
        if is_cursor:
            style = style + frame.cursor_style
        text_style = style + self.get_component_rich_style("pagedtable--placeholder", partial=True)
        line = _LineBuilder()
        if slots:
            line.add(" " * (slots[0].x + self.cell_padding), style)
            line.add(PLACEHOLDER, text_style)
        strip = line.strip(line_width, style)
        self._strips.set(key, strip)
        return strip

    def _row_base_style(
        self, frame: _Frame, index: int, is_cursor: bool, style_class: str | None
    ) -> Style:
        style = frame.base_style
        if frame.zebra:
            stripe = "pagedtable--even-row" if index % 2 == 0 else "pagedtable--odd-row"
            style = style + self.get_component_rich_style(stripe)
        if style_class:
            style = style + self._partial_style(style_class)
        if is_cursor:
            style = style + frame.cursor_style
        return style

    def _partial_style(self, component_class: str) -> Style:
        return self.get_component_rich_style(component_class, partial=True, default=Style.null())

    # ------------------------------------------------------------------ cursor

    def validate_cursor_row(self, value: int) -> int:
        return max(0, min(value, self._row_count - 1))

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._pending_select = None
        self._refresh_row(old)
        self._scroll_cursor_into_view()
        self._refresh_row(new)
        self._post_cursor_moved()

    def watch_zebra_stripes(self) -> None:
        self._strips.clear()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._schedule_fetch()

    def _refresh_row(self, index: int) -> None:
        # Virtual line of row ``index`` is ``index + 1`` (the header is line 0).
        top = self.scroll_offset.y
        if top <= index < top + self._visible_capacity():
            self.refresh(Region(0, index - top + 1, self.size.width, 1))

    def _post_cursor_moved(self) -> None:
        if self._row_count == 0:
            state: tuple[int, Hashable | None] = (-1, None)
            if self._posted_cursor != state:
                self._posted_cursor = state
            return
        index = self.cursor_row
        state = (index, self.row_key_at(index))
        if state != self._posted_cursor:
            self._posted_cursor = state
            self.post_message(self.CursorMoved(self, index, state[1]))

    def _scroll_cursor_into_view(self) -> None:
        if not self.size:
            return
        top = self.scroll_offset.y
        capacity = self._visible_capacity()
        index = self.cursor_row
        if index < top:
            self.scroll_to(y=index, animate=False, force=True)
        elif index >= top + capacity:
            self.scroll_to(y=index - capacity + 1, animate=False, force=True)

    def _max_top(self) -> int:
        return max(0, self._row_count - self._visible_capacity())

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_down(self) -> None:
        """Scroll a screenful and move the cursor as far (it keeps its place on screen)."""
        capacity = self._visible_capacity()
        top = min(self.scroll_offset.y + capacity, self._max_top())
        self.scroll_to(y=top, animate=False, force=True)
        self.move_cursor(self.cursor_row + capacity)

    def action_page_up(self) -> None:
        capacity = self._visible_capacity()
        top = max(0, self.scroll_offset.y - capacity)
        self.scroll_to(y=top, animate=False, force=True)
        self.move_cursor(self.cursor_row - capacity)

    def action_cursor_first(self) -> None:
        self.scroll_to(y=0, animate=False, force=True)
        self.move_cursor(0)

    def action_cursor_last(self) -> None:
        self.scroll_to(y=self._max_top(), animate=False, force=True)
        self.move_cursor(self._row_count - 1)

    def action_select_cursor(self) -> None:
        """Post ``RowSelected`` for the cursor row (once it is loaded)."""
        if self._row_count == 0:
            return
        index = self.cursor_row
        row = self.row_at(index)
        if row is None:
            self._pending_select = index
            self._schedule_fetch()
        else:
            self.post_message(self.RowSelected(self, index, row.key))

    # ------------------------------------------------------------------ events

    def _on_mount(self, event: events.Mount) -> None:
        self._update_virtual_size()
        if self._pending_load is not None:
            self._start_pending_load()

    def _on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self._schedule_fetch()

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        scroll_x, scroll_y = self.scroll_offset
        if offset.y == 0:
            column = self._column_at(offset.x + scroll_x)
            if column is not None and column.sortable:
                self.post_message(self.HeaderClicked(self, column.key))
            event.stop()
            return
        index = scroll_y + offset.y - 1
        if 0 <= index < self._row_count:
            self.move_cursor(index)
            if event.chain >= 2:
                self.action_select_cursor()
            event.stop()


# ---------------------------------------------------------------------- cell helpers


class _LineBuilder:
    """Collects a line's segments, merging neighbours of the same style."""

    __slots__ = ("length", "segments")

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.length = 0

    def add(self, text: str, style: Style, length: int | None = None) -> None:
        if not text:
            return
        self.length += cell_len(text) if length is None else length
        segments = self.segments
        if segments and segments[-1].style is style:
            segments[-1] = Segment(segments[-1].text + text, style)
        else:
            segments.append(Segment(text, style))

    def add_cell(
        self,
        table: PagedTable,
        value: CellValue,
        width: int,
        align: Align,
        style: Style,
        padding: int,
    ) -> None:
        """``padding`` blanks, exactly ``width`` cells of ``value``, ``padding`` blanks."""
        if isinstance(value, str):
            text = visible(value)
            size = cell_len(text)
            if size > width:
                text = _crop_text(text, width - 1) + ELLIPSIS if width > 0 else ""
                size = cell_len(text)
            spare = width - size
            if align == "right":
                left = spare
            elif align == "center":
                left = spare // 2
            else:
                left = 0
            blank = " " * padding
            self.add(
                f"{blank}{' ' * left}{text}{' ' * (spare - left)}{blank}",
                style,
                width + 2 * padding,
            )
            return
        self.add(" " * padding, style, padding)
        for segment in _cell_segments(value, width, align, style, table):
            self.add(segment.text, segment.style or style)
        self.add(" " * padding, style, padding)

    def strip(self, line_width: int, style: Style) -> Strip:
        if self.length < line_width:
            self.add(" " * (line_width - self.length), style, line_width - self.length)
        return Strip(self.segments, self.length)


def _safe_segments(value: CellValue, style: Style, table: PagedTable) -> list[Segment]:
    """Segments for a cell value with every control / bidi character made visible."""
    if isinstance(value, str):
        return [Segment(visible(value), style)] if value else []
    console = table.app.console
    if not value.spans:
        # Text.render ignores Text.style when there are no spans.
        own = console.get_style(value.style, default=Style.null()) if value.style else None
        text = value.plain
        return [Segment(visible(text), style + own if own else style)] if text else []
    segments: list[Segment] = []
    for segment in value.render(console):
        text, segment_style, control = segment
        if control or not text:
            continue
        segments.append(Segment(visible(text), style + segment_style if segment_style else style))
    return segments


def _fit_text(text: Text, width: int) -> Text:
    """A copy of ``text`` cropped with an ellipsis to at most ``width`` cells (labels)."""
    copy = text.copy()
    copy.truncate(max(0, width), overflow="ellipsis")
    return copy


def _cell_segments(
    value: CellValue, width: int, align: Align, style: Style, table: PagedTable
) -> list[Segment]:
    """Exactly ``width`` cells: the value cropped (with ``…``) or padded per ``align``."""
    if width <= 0:
        return []
    segments = _safe_segments(value, style, table)
    length = sum(cell_len(segment.text) for segment in segments)
    if length > width:
        segments = _crop_segments(segments, width - 1)
        segments.append(Segment(ELLIPSIS, segments[-1].style if segments else style))
        length = sum(cell_len(segment.text) for segment in segments)
    spare = width - length
    if spare <= 0:
        return segments
    if align == "right":
        return [Segment(" " * spare, style), *segments]
    if align == "center":
        left = spare // 2
        return [Segment(" " * left, style), *segments, Segment(" " * (spare - left), style)]
    return [*segments, Segment(" " * spare, style)]


def _crop_segments(segments: list[Segment], width: int) -> list[Segment]:
    """At most ``width`` cells of ``segments``; a wide character that does not fit is dropped."""
    result: list[Segment] = []
    used = 0
    for segment in segments:
        if used >= width:
            break
        text, style, _ = segment
        size = cell_len(text)
        if used + size <= width:
            result.append(segment)
            used += size
            continue
        cropped = _crop_text(text, width - used)
        if cropped:
            result.append(Segment(cropped, style))
        break
    return result


def _crop_text(text: str, width: int) -> str:
    """The longest start of ``text`` (whole graphemes) that fits in ``width`` cells."""
    if cell_len(text) == len(text):
        return text[:width]
    spans, _ = split_graphemes(text)
    used = 0
    end = 0
    for _start, span_end, size in spans:
        if used + size > width:
            break
        used += size
        end = span_end
    return text[:end]
