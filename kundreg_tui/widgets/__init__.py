"""Reusable widgets of the kundreg terminal interface."""

from kundreg_tui.widgets.pagedtable import (
    CellValue,
    Column,
    PagedTable,
    Row,
    SequenceSource,
    TableSource,
)

__all__ = [
    "CellValue",
    "Column",
    "PagedTable",
    "Row",
    "SequenceSource",
    "TableSource",
]
