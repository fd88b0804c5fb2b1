"""Pilot tests for the paged virtual table (kundreg_tui.widgets.pagedtable)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

import pytest
from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.message import Message
from textual.pilot import Pilot
from textual.strip import Strip

from kundreg_tui.widgets import Column, PagedTable, Row, SequenceSource

M = TypeVar("M", bound=Message)

MILLION = 1_000_000
SIZE = (80, 24)  # 24 lines: header + 23 rows (no horizontal scrollbar with these columns)
VISIBLE_ROWS = SIZE[1] - 1

COLUMNS = [
    Column("mark", "", width=1, sortable=False),
    Column("number", "Kundnummer", width=10, align="right"),
    Column("name", "Kundnamn"),
    Column("city", "Ort", width=12),
]


class SyntheticSource:
    """``count`` rows computed on demand (never stored); counts the calls it gets."""

    def __init__(
        self, count: int = MILLION, *, delay: float = 0.0, count_delay: float = 0.0
    ) -> None:
        self.count = count
        self.delay = delay
        self.count_delay = count_delay
        self.fetches: list[tuple[int, int]] = []
        self.counts = 0
        self.fail = False
        self.threads: set[int] = set()
        self.version = ""

    def row_count(self) -> int:
        self.counts += 1
        self.threads.add(threading.get_ident())
        if self.count_delay:
            time.sleep(self.count_delay)
        return self.count

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        self.fetches.append((offset, limit))
        self.threads.add(threading.get_ident())
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("database is gone")
        return [self.row(index) for index in range(offset, min(self.count, offset + limit))]

    def row(self, index: int) -> Row:
        return Row(
            key=index + 1,
            cells={
                "mark": "☐",
                "number": str(index + 1),
                "name": f"Kund {index + 1}{self.version}",
                "city": "Göteborg",
            },
        )


class TableApp(App[None]):
    def __init__(self, table: PagedTable) -> None:
        super().__init__()
        self.table = table
        self.messages: list[Message] = []

    def compose(self) -> ComposeResult:
        yield self.table

    def on_mount(self) -> None:
        self.table.focus()

    @on(PagedTable.CursorMoved)
    @on(PagedTable.RowSelected)
    @on(PagedTable.HeaderClicked)
    @on(PagedTable.Reloaded)
    @on(PagedTable.SourceError)
    def record(self, message: Message) -> None:
        self.messages.append(message)

    def of_type(self, kind: type[M]) -> list[M]:
        return [message for message in self.messages if isinstance(message, kind)]


async def wait_for(pilot: Pilot[None], predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.01)


def screen_lines(table: PagedTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


def row_line(table: PagedTable, index: int) -> str:
    """The drawn text of row ``index`` (must be on screen)."""
    y = index - table.scroll_offset.y + 1
    assert 1 <= y < table.scrollable_content_region.height, "row not on screen"
    return table.render_line(y).text


def loaded(table: PagedTable) -> bool:
    return not table.is_loading and table.row_count > 0 and table.current_row() is not None


def measure_page_down(table: PagedTable, presses: int) -> float:
    """Benchmark helper: mean seconds of widget work for one page-down plus a full repaint.

    Runs synchronously on the event loop thread (call it from a running app); rows come from
    the cache or are drawn as placeholders, exactly as in the app.
    """
    region = table.scrollable_content_region
    started = time.perf_counter()
    for _ in range(presses):
        table.action_page_down()
        table.render_lines(region.reset_offset)
    return (time.perf_counter() - started) / presses


# ---------------------------------------------------------------------- paging


async def test_only_pages_near_the_viewport_are_fetched() -> None:
    source = SyntheticSource()
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        await pilot.pause(0.1)
        assert table.row_count == MILLION
        assert source.counts == 1
        # The first screen, plus at most one page of read-ahead.
        assert {offset for offset, _ in source.fetches} <= {0, 200}
        assert all(limit == table.page_size for _, limit in source.fetches)
        assert "Kund 1" in row_line(table, 0)
        assert app.of_type(PagedTable.Reloaded)[0].row_count == MILLION

        await pilot.press("end")
        await wait_for(pilot, lambda: table.current_row() is not None)
        await pilot.pause(0.1)
        assert table.cursor_row == MILLION - 1
        assert row_line(table, MILLION - 1).split()[1:3] == ["1000000", "Kund"]
        offsets = {offset for offset, _ in source.fetches}
        assert offsets <= {0, 200, 999_800, 999_600}
        assert len(source.fetches) <= 4
        # The source is never called on the event loop thread.
        assert threading.get_ident() not in source.threads


async def test_rows_are_drawn_with_columns_and_header() -> None:
    source = SyntheticSource(count=3)
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        lines = screen_lines(table)
        width = table.scrollable_content_region.width
        assert all(cell_len(line) == width for line in lines)
        assert lines[0].startswith("    Kundnummer  Kundnamn")
        assert lines[0].rstrip().endswith("Ort")
        # Right-aligned number, flexible name column, fixed city column.
        assert lines[1].startswith(" ☐ " + " " + "1".rjust(10) + "  Kund 1 ")
        assert lines[1].rstrip().endswith("Göteborg")
        assert lines[3].split()[1] == "3"
        assert lines[4].strip() == ""  # past the last row: nothing


async def test_empty_source_draws_only_the_header() -> None:
    app = TableApp(PagedTable(COLUMNS, SyntheticSource(count=0)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: bool(app.of_type(PagedTable.Reloaded)))
        lines = screen_lines(table)
        assert "Kundnamn" in lines[0]
        assert all(line.strip() == "" for line in lines[1:])
        await pilot.press("down", "pagedown", "end", "enter")
        assert table.cursor_row == 0
        assert table.current_row() is None
        assert not app.of_type(PagedTable.RowSelected)
        assert not app.of_type(PagedTable.CursorMoved)


# ---------------------------------------------------------------------- keys


async def test_keys_move_the_cursor_and_keep_it_in_view() -> None:
    source = SyntheticSource()
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        await pilot.press("down", "down")
        assert table.cursor_row == 2
        await pilot.press("up")
        assert table.cursor_row == 1

        await pilot.press("pagedown")
        assert table.cursor_row == 1 + VISIBLE_ROWS
        assert table.scroll_offset.y == VISIBLE_ROWS  # the cursor keeps its place on screen
        await pilot.press("pagedown", "pagedown")
        assert table.cursor_row == 1 + 3 * VISIBLE_ROWS
        await pilot.press("pageup")
        assert table.cursor_row == 1 + 2 * VISIBLE_ROWS

        await pilot.press("end")
        assert table.cursor_row == MILLION - 1
        assert table.scroll_offset.y == MILLION - VISIBLE_ROWS
        await pilot.press("down")
        assert table.cursor_row == MILLION - 1
        await pilot.press("up")
        assert table.cursor_row == MILLION - 2

        await pilot.press("home")
        assert (table.cursor_row, table.scroll_offset.y) == (0, 0)
        await pilot.press("ctrl+end")
        assert table.cursor_row == MILLION - 1
        await pilot.press("ctrl+home")
        assert table.cursor_row == 0

        # Moving down past the bottom edge scrolls one row at a time.
        for _ in range(VISIBLE_ROWS):
            await pilot.press("down")
        assert table.cursor_row == VISIBLE_ROWS
        assert table.scroll_offset.y == 1


async def test_cursor_moved_carries_the_row_key() -> None:
    source = SyntheticSource(delay=0.05)
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        await pilot.pause(0.2)
        first = app.of_type(PagedTable.CursorMoved)
        assert (first[-1].row_index, first[-1].row_key) == (0, 1)
        await pilot.press("down")
        moved = app.of_type(PagedTable.CursorMoved)[-1]
        assert (moved.row_index, moved.row_key) == (1, 2)
        assert moved.control is table

        # Far away: first without a key (the page is on its way), then with it.
        await pilot.press("end")
        await wait_for(pilot, lambda: table.current_row() is not None)
        await pilot.pause(0.05)
        tail = [
            (m.row_index, m.row_key)
            for m in app.of_type(PagedTable.CursorMoved)
            if m.row_index == MILLION - 1
        ]
        assert tail == [(MILLION - 1, None), (MILLION - 1, MILLION)]


async def test_enter_posts_row_selected() -> None:
    app = TableApp(PagedTable(COLUMNS, SyntheticSource()))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        selected = app.of_type(PagedTable.RowSelected)
        assert [(m.row_index, m.row_key) for m in selected] == [(2, 3)]


async def test_enter_on_a_row_not_yet_loaded_selects_it_when_it_arrives() -> None:
    source = SyntheticSource(delay=0.2)
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        await pilot.press("end", "enter")
        assert table.current_row() is None
        assert not app.of_type(PagedTable.RowSelected)
        await wait_for(pilot, lambda: bool(app.of_type(PagedTable.RowSelected)))
        selected = app.of_type(PagedTable.RowSelected)
        assert [(m.row_index, m.row_key) for m in selected] == [(MILLION - 1, MILLION)]


# ---------------------------------------------------------------------- mouse


async def test_click_on_a_row_moves_the_cursor_and_double_click_selects() -> None:
    app = TableApp(PagedTable(COLUMNS, SyntheticSource()))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        await pilot.click(PagedTable, offset=(20, 5))
        assert table.cursor_row == 4
        assert not app.of_type(PagedTable.RowSelected)
        await pilot.click(PagedTable, offset=(20, 3), times=2)
        await pilot.pause()
        assert table.cursor_row == 2
        assert [(m.row_index, m.row_key) for m in app.of_type(PagedTable.RowSelected)] == [(2, 3)]


async def test_header_click_posts_header_clicked_and_sort_indicator_is_drawn() -> None:
    app = TableApp(PagedTable(COLUMNS, SyntheticSource(count=5)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        header = table.render_line(0).text
        await pilot.click(PagedTable, offset=(header.index("Kundnamn") + 2, 0))
        await pilot.click(PagedTable, offset=(header.index("Ort"), 0))
        await pilot.click(PagedTable, offset=(1, 0))  # the mark column is not sortable
        await pilot.pause()
        assert [m.column_key for m in app.of_type(PagedTable.HeaderClicked)] == ["name", "city"]
        assert table.cursor_row == 0  # a header click does not move the cursor

        table.set_sort_indicator("name")
        assert "Kundnamn ▲" in table.render_line(0).text
        table.set_sort_indicator("name", descending=True)
        assert "Kundnamn ▼" in table.render_line(0).text
        table.set_sort_indicator(None)
        assert "▲" not in table.render_line(0).text and "▼" not in table.render_line(0).text


# ---------------------------------------------------------------------- safety


HOSTILE = [
    "Ann [/] Berg",
    "[@click=app.quit]x",
    "Acme [AB] Ltd",
    "\x1b]0;X\x07",
    "\u202eevil",
    "[bold red]loud[/]",
    "two\nlines",
]


async def test_markup_and_control_characters_are_drawn_literally() -> None:
    rows = [
        Row(key=number, cells={"number": str(number), "name": value, "city": value})
        for number, value in enumerate(HOSTILE)
    ]
    wide = [Column("number", "Nr", width=3), Column("name", "Namn", width=30)]
    app = TableApp(PagedTable(wide, SequenceSource(rows)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        lines = screen_lines(table)
        assert "Ann [/] Berg" in lines[1]
        assert "[@click=app.quit]x" in lines[2]
        assert "Acme [AB] Ltd" in lines[3]
        assert "␛]0;X␇" in lines[4]
        assert "<U+202E>evil" in lines[5]
        assert "[bold red]loud[/]" in lines[6]
        assert "two↵ lines" in lines[7]
        for y in range(len(HOSTILE) + 1):
            strip = table.render_line(y)
            for segment in strip:
                assert not any(ch in segment.text for ch in "\x1b\x07\u202e\n")
                assert not (segment.style and segment.style.meta), "markup became an action"
                assert not (segment.style and segment.style.link)
        # Clicking the would-be action does nothing but move the cursor.
        await pilot.click(PagedTable, offset=(8, 2))
        await pilot.pause()
        assert app.is_running
        assert table.cursor_row == 1
        screenshot = app.export_screenshot()
        assert "\x1b]0;" not in screenshot and "\u202e" not in screenshot


async def test_control_characters_inside_rich_text_cells_are_made_visible() -> None:
    value = Text("ok ")
    value.append("\x1b[31mred\u202e", style="bold")
    rows = [Row(key=0, cells={"number": "0"}), Row(key=1, cells={"number": "1", "name": value})]
    app = TableApp(PagedTable(COLUMNS, SequenceSource(rows)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        strip = table.render_line(2)  # not the cursor row (the cursor is bold too)
        assert "ok ␛[31mred<U+202E>" in strip.text
        assert all("\x1b" not in segment.text for segment in strip)
        bold = [segment for segment in strip if segment.style and segment.style.bold]
        assert "".join(segment.text for segment in bold).startswith("␛[31mred")


async def test_wide_characters_are_cropped_to_the_column_with_an_ellipsis() -> None:
    rows = [
        Row(key=1, cells={"a": "😀😀😀😀😀", "b": "Österlund"}),
        Row(key=2, cells={"a": "abcdefghij", "b": "漢字漢字漢字"}),
        Row(key=3, cells={"a": "a😀b", "b": Text("styled and long", style="italic")}),
    ]
    columns = [Column("a", "A", width=6), Column("b", "B", width=7), Column("c", "C", width=3)]
    app = TableApp(PagedTable(columns, SequenceSource(rows)))
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        width = table.scrollable_content_region.width
        for y in range(4):
            strip = table.render_line(y)
            assert strip.cell_length == width
            assert cell_len(strip.text) == width
        # Column a occupies cells 1..6, column b cells 9..15 (one blank each side).
        assert _cells(table.render_line(1), [(1, 6), (9, 7)]) == ["😀😀… ", "Österl…"]
        assert _cells(table.render_line(2), [(1, 6), (9, 7)]) == ["abcde…", "漢字漢…"]
        third = _cells(table.render_line(3), [(1, 6), (9, 7)])
        assert third == ["a😀b  ", "styled…"]
        italic = [seg for seg in table.render_line(3) if seg.style and seg.style.italic]
        assert "".join(seg.text for seg in italic) == "styled…"


def _cells(strip: Strip, spans: list[tuple[int, int]]) -> list[str]:
    """The text of the cells at (first cell, width) in a strip."""
    return [strip.crop(start, start + width).text for start, width in spans]


# ---------------------------------------------------------------------- slow sources


async def test_a_slow_source_does_not_block_the_interface() -> None:
    """Keys are handled while the source counts and fetches (no timing: the source is far slower
    than a key, however busy the machine is; the benchmark measures speed)."""
    source = SyntheticSource(delay=3.0, count_delay=3.0)
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await pilot.pause()
        assert table.is_loading
        await pilot.press("down")
        assert table.is_loading  # handled while the count is still running
        await wait_for(pilot, lambda: bool(app.of_type(PagedTable.Reloaded)), timeout=30)
        assert loaded(table)

        await pilot.press("end")
        assert table.cursor_row == MILLION - 1  # moved at once, the page still on its way
        # Placeholders while the page is on its way.
        assert row_line(table, MILLION - 1).strip() == "…"
        await wait_for(pilot, lambda: table.current_row() is not None, timeout=30)
        assert "Kund 1000000" in row_line(table, MILLION - 1)


async def test_fast_paging_over_a_slow_source_skips_pages_scrolled_past() -> None:
    source = SyntheticSource(delay=0.4)
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        await pilot.pause(0.9)
        source.fetches.clear()
        source.delay = 1.5  # far slower than the key repeat, however busy the machine is
        for _ in range(60):  # 60 screens = 1380 rows = 7 pages, at key-repeat speed
            table.action_page_down()
            await asyncio.sleep(0.005)
        await wait_for(pilot, lambda: table.current_row() is not None)
        await pilot.pause(0.3)
        assert table.cursor_row == 60 * VISIBLE_ROWS
        fetched_pages = [offset // table.page_size for offset, _ in source.fetches]
        assert len(fetched_pages) == len(set(fetched_pages))  # never twice
        # Pages scrolled past while another page was being fetched were never asked for.
        assert set(range(2, 7)) - set(fetched_pages)
        assert table.cursor_row // table.page_size in fetched_pages


async def test_old_rows_stay_while_a_new_source_is_counted() -> None:
    first = SyntheticSource(count=50)
    app = TableApp(PagedTable(COLUMNS, first))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        second = SyntheticSource(count=7, count_delay=0.3)
        second.version = " (ny)"
        table.set_source(second)
        await pilot.pause(0.05)
        assert table.is_loading
        assert table.row_count == 50
        assert "Kund 1 " in row_line(table, 0)
        await wait_for(pilot, lambda: not table.is_loading)
        assert table.row_count == 7
        assert "Kund 1 (ny)" in row_line(table, 0)
        # The message may still be on its way through the queue.
        await wait_for(pilot, lambda: len(app.of_type(PagedTable.Reloaded)) >= 2)
        assert [m.row_count for m in app.of_type(PagedTable.Reloaded)] == [50, 7]
        assert table.virtual_size.height == 8


async def test_set_data_draws_handed_over_rows_without_fetching() -> None:
    source = SyntheticSource()
    app = TableApp(PagedTable(COLUMNS))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        assert table.row_count == 0
        table.set_data(MILLION, [source.row(index) for index in range(200)], source)
        assert table.row_count == MILLION
        assert "Kund 1 " in row_line(table, 0)
        assert table.row_key_at(199) == 200
        assert table.row_key_at(200) is None
        await pilot.pause(0.2)
        assert (0, 200) not in source.fetches
        assert source.counts == 0


async def test_invalidate_keeps_rows_on_screen_until_fresh_ones_arrive() -> None:
    source = SyntheticSource(count=100, delay=0.2)
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        source.version = " ☑"
        table.invalidate([3])
        await pilot.pause(0.05)
        assert "Kund 3 " in row_line(table, 2)  # stale, but drawn: no flicker to "…"
        await wait_for(pilot, lambda: "Kund 3 ☑" in row_line(table, 2))

        assert table.update_row(Row(key=3, cells={"name": "Bytt lokalt"}))
        assert "Bytt lokalt" in row_line(table, 2)
        assert not table.update_row(Row(key=12345, cells={}))


async def test_reload_keeps_the_position() -> None:
    source = SyntheticSource(count=1000)
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        await pilot.press("pagedown", "pagedown", "down")
        position = (table.cursor_row, table.scroll_offset.y)
        source.count = 500
        table.reload()
        await wait_for(pilot, lambda: len(app.of_type(PagedTable.Reloaded)) == 2)
        assert (table.cursor_row, table.scroll_offset.y) == position
        assert table.row_count == 500
        source.count = 10
        table.reload()
        await wait_for(pilot, lambda: len(app.of_type(PagedTable.Reloaded)) == 3)
        assert table.cursor_row == 9
        assert table.scroll_offset.y == 0


async def test_source_errors_are_reported_not_fatal() -> None:
    source = SyntheticSource(count=10_000)
    app = TableApp(PagedTable(COLUMNS, source))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        source.fail = True
        await pilot.press("end")
        await wait_for(pilot, lambda: bool(app.of_type(PagedTable.SourceError)))
        await pilot.pause(0.1)
        assert app.is_running
        assert row_line(table, 9_999).strip() == "…"
        calls = len(source.fetches)
        await pilot.pause(0.2)
        assert len(source.fetches) == calls  # no retry loop
        source.fail = False
        table.invalidate()
        await wait_for(pilot, lambda: table.current_row() is not None)


# ---------------------------------------------------------------------- styling


class PreviewTable(PagedTable):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"preview--new", "preview--changed"}
    DEFAULT_CSS = """
    PreviewTable > .preview--new { color: #00ff00; }
    PreviewTable > .preview--changed { color: #ff0000; text-style: underline; }
    """


async def test_row_and_cell_component_classes_style_the_row() -> None:
    rows = [
        Row(key=1, cells={"number": "1", "name": "Ny"}, style_class="preview--new"),
        Row(
            key=2,
            cells={"number": "2", "name": "Ändrad", "city": "Lund"},
            cell_classes={"name": "preview--changed"},
        ),
        Row(key=3, cells={"number": "3", "name": "Okänd"}, style_class="no-such-class"),
    ]
    table = PreviewTable(COLUMNS, SequenceSource(rows))
    assert {"preview--new", "pagedtable--cursor"} <= table._get_component_classes()
    app = TableApp(table)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(table))
        await pilot.press("end")  # take the cursor off the first rows

        def style_of(y: int, text: str) -> Style:
            for segment in table.render_line(y):
                if text in segment.text and segment.style is not None:
                    return segment.style
            raise AssertionError(f"{text!r} not drawn")

        new = style_of(1, "Ny")
        assert new.color is not None and new.color.triplet == (0, 255, 0)
        changed = style_of(2, "Ändrad")
        assert changed.color is not None and changed.color.triplet == (255, 0, 0)
        assert changed.underline
        assert style_of(2, "Lund").color != changed.color
        assert "Okänd" in table.render_line(3).text  # an undeclared class is ignored


async def test_cursor_row_uses_the_cursor_component_style() -> None:
    app = TableApp(PagedTable(COLUMNS, SyntheticSource(count=5)))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        cursor = table.get_component_rich_style("pagedtable--cursor")
        assert table.render_line(1).text == table.render_line(1).text
        first = next(iter(table.render_line(1)))
        other = next(iter(table.render_line(2)))
        assert first.style is not None and first.style.bgcolor == cursor.bgcolor
        assert other.style is not None and other.style.bgcolor != cursor.bgcolor
        await pilot.press("down")
        await pilot.pause()
        assert next(iter(table.render_line(2))).style.bgcolor == cursor.bgcolor  # type: ignore[union-attr]


# ---------------------------------------------------------------------- speed


@pytest.mark.parametrize("cached", [True, False])
async def test_page_down_at_a_million_rows_never_fetches_while_drawing(cached: bool) -> None:
    # Timing is the benchmark's job (benchmarks/bench_register.py); here: no work while drawing.
    source = SyntheticSource()
    app = TableApp(PagedTable(COLUMNS, source, cache_pages=64 if cached else 8))
    async with app.run_test(size=(120, 50)) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        if cached:
            # Fill the cache for the screens the benchmark will visit.
            table.set_data(MILLION, [source.row(index) for index in range(10_000)], source)
        table.move_cursor(0)
        fetches = len(source.fetches)
        mean = measure_page_down(table, 100)
        print(f"page-down ({'cached rows' if cached else 'placeholders'}): {mean * 1000:.2f} ms")
        assert len(source.fetches) == fetches  # never fetched while drawing
        assert table.cursor_row == 100 * 49


# ---------------------------------------------------------------------- geometry


async def test_a_narrow_terminal_scrolls_header_and_rows_sideways_together() -> None:
    columns = [
        Column("number", "Kundnummer", width=10),
        Column("name", "Kundnamn", width=30),
        Column("city", "Ort", width=20),
    ]
    app = TableApp(PagedTable(columns, SyntheticSource(count=50)))
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        assert table.virtual_size.width == 66
        assert table.show_horizontal_scrollbar
        assert "Ort" not in table.render_line(0).text
        await pilot.press("right", "right", "right", "right", "right")
        await pilot.pause()
        assert table.scroll_offset.x > 0
        table.scroll_to(x=table.max_scroll_x, animate=False)
        await pilot.pause()
        header, first = table.render_line(0).text, table.render_line(1).text
        assert "Ort" in header and "Göteborg" in first
        assert header.index("Ort") == first.index("Göteborg")
        # The horizontal scrollbar takes a line: rows fit above it.
        assert table.scrollable_content_region.height == 11
        await pilot.press("end")
        assert table.scroll_offset.y == 50 - 10


async def test_setting_cursor_row_scrolls_it_into_view_and_sort_header_stays_fixed() -> None:
    app = TableApp(PagedTable(COLUMNS, SyntheticSource()))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        table.cursor_row = 5_000
        assert table.scroll_offset.y == 5_000 - VISIBLE_ROWS + 1
        table.cursor_row = 10
        assert table.scroll_offset.y == 10
        table.cursor_row = -3
        assert table.cursor_row == 0
        table.cursor_row = 2 * MILLION
        assert table.cursor_row == MILLION - 1
        # The header stays on the first line when scrolled, and so does its sort arrow.
        table.set_sort_indicator("number", descending=True)
        await pilot.pause()
        # A label that leaves no room for the arrow is cropped, the arrow stays.
        assert "Kundnum… ▼" in table.render_line(0).text
        assert "▼" in app.export_screenshot()


async def test_zebra_stripes_alternate_the_row_background() -> None:
    app = TableApp(PagedTable(COLUMNS, SyntheticSource(count=10), zebra_stripes=True))
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: loaded(table))
        await pilot.press("end")

        def background(y: int) -> object:
            segment = next(iter(table.render_line(y)))
            assert segment.style is not None
            return segment.style.bgcolor

        assert background(1) == background(3) != background(2) == background(4)
        table.zebra_stripes = False
        assert background(1) == background(2)
