"""Tables for the parsers: cell grids to :class:`Table`, Markdown rendering, HTML spans.

A parser hands over a grid (rows of cell strings, or ``None`` where a merged cell covers the
position) and how many leading rows are headers; :func:`build_table` pads ragged rows, merges
multi-row headers into one header per column and drops empty rows. :class:`HtmlTable` expands
``colspan``/``rowspan`` by repeating the cell's value. PDF tables are found by
:mod:`knowledge._pdf_tables` (ruled) and :mod:`knowledge._pdf_aligned` (aligned by
whitespace) and built here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from knowledge.chunking import render_markdown_table
from knowledge.documents import Block, Table

__all__ = [
    "HtmlTable",
    "build_table",
    "grid_blocks",
    "normalize_cell",
    "render_markdown",
    "table_block",
    "text_block",
]

_WHITESPACE = re.compile(r"\s+")
_MAX_CAPTION = 120
_MAX_ROW_GAP = 120.0


def normalize_cell(value: str | None) -> str:
    """Collapse a cell's whitespace (newlines included) to single spaces; ``None`` is ``""``."""
    return _WHITESPACE.sub(" ", value or "").strip()


def build_table(
    grid: Sequence[Sequence[str | None]],
    *,
    header_rows: int = 1,
    caption: str | None = None,
    page: int | None = None,
) -> Table | None:
    """A :class:`Table` from a grid whose first ``header_rows`` rows are headers.

    ``None`` cells in the first row take the value on their left (a merged header spans the
    columns it covers); elsewhere they become ``""``. Empty rows and empty columns (spacers)
    are dropped; a first row holding one short value across all columns becomes the caption
    (when there is none). An empty header is named ``Column N``, except the first column's
    (row labels). Returns ``None`` when no cell has text.
    """
    grid = [row for row in grid if any(normalize_cell(cell) for cell in row)]
    if not grid:
        return None
    width = max(len(row) for row in grid)
    first = _pad(_fill_right(grid[0]), width)
    band = first[0] and len(first[0]) <= _MAX_CAPTION and first.count(first[0]) == width
    if band and width > 1 and len(grid) > 2:
        # One short value across the whole first row is the table's title, not its headers.
        rest, header_rows = grid[1:], max(1, header_rows - 1)
        return build_table(rest, header_rows=header_rows, caption=caption or first[0], page=page)
    rows = [_pad([normalize_cell(cell) for cell in row], width) for row in grid]
    header_rows = max(1, min(header_rows, len(rows)))
    heads = [first, *rows[1:header_rows]]
    headers = _merge_headers(heads, width)
    body = rows[header_rows:]
    keep = [column for column in range(width) if headers[column] or any(r[column] for r in body)]
    # The first column without a header holds the rows' labels: it needs no name.
    headers = [
        headers[column] or ("" if index == 1 else f"Column {index}")
        for index, column in enumerate(keep, 1)
    ]
    body = [[row[column] for column in keep] for row in body]
    return Table(headers=headers, rows=body, caption=caption or None, page=page)


def _pad(row: list[str], width: int) -> list[str]:
    return row + [""] * (width - len(row))


def _fill_right(row: Sequence[str | None]) -> list[str]:
    filled: list[str] = []
    for cell in row:
        filled.append(filled[-1] if cell is None and filled else normalize_cell(cell))
    return filled


def _merge_headers(rows: list[list[str]], width: int) -> list[str]:
    merged: list[str] = []
    for column in range(width):
        parts: list[str] = []
        for row in rows:
            if row[column] and row[column] not in parts:
                parts.append(row[column])
        merged.append(" ".join(parts))
    return merged


def render_markdown(table: Table) -> str:
    """The table as a Markdown pipe table, its caption (if any) on the line above."""
    markdown = render_markdown_table(table)
    return f"{table.caption}\n{markdown}" if table.caption else markdown


def text_block(text: str, *, page: int | None = None) -> Block:
    """A prose block (sections and offsets are set when the document is assembled)."""
    return Block(kind="text", text=text, page=page)


def table_block(table: Table) -> Block:
    """A table block whose text is the table as Markdown."""
    return Block(kind="table", text=render_markdown(table), page=table.page, table=table)


def grid_blocks(
    grid: list[list[str | None]], *, header_rows: int = 1, caption: str | None = None
) -> Iterator[Block]:
    """A table block, or text blocks when the grid is a layout box (one row or one column)."""
    width = max((len(row) for row in grid), default=0)
    if len(grid) < 2 or width < 2:
        seen: set[str] = set()
        for value in (cell for row in grid for cell in row):
            if value and value.strip() and value not in seen:
                seen.add(value)
                yield text_block(value)
        return
    table = build_table(grid, header_rows=header_rows, caption=caption)
    if table is not None:
        yield table_block(table)


# --- HTML -------------------------------------------------------------------------------


@dataclass
class _HtmlCell:
    text: list[str] = field(default_factory=list)
    colspan: int = 1
    rowspan: int = 1
    header: bool = False


@dataclass
class HtmlTable:
    """A ``<table>`` as the HTML parser meets it: rows of cells with their spans."""

    rows: list[list[_HtmlCell]] = field(default_factory=list)
    head_rows: int = 0
    caption: list[str] = field(default_factory=list)
    in_head: bool = False

    def start_row(self) -> None:
        """Begin a ``<tr>``; rows inside ``<thead>`` (``in_head``) are header rows."""
        self.rows.append([])
        if self.in_head and self.head_rows == len(self.rows) - 1:
            self.head_rows += 1

    def start_cell(self, *, header: bool, colspan: str | None, rowspan: str | None) -> None:
        """Begin a ``<td>``/``<th>``; a cell outside any ``<tr>`` starts a row."""
        if not self.rows:
            self.start_row()
        cell = _HtmlCell(colspan=_span(colspan, 100), rowspan=_span(rowspan, 10_000), header=header)
        self.rows[-1].append(cell)

    def add_text(self, text: str) -> None:
        """Text that belongs to the current cell (ignored between cells)."""
        if self.rows and self.rows[-1]:
            self.rows[-1][-1].text.append(text)

    def grid(self) -> list[list[str | None]]:
        """Rows of cell values with spans expanded by repeating the value."""
        grid: list[list[str | None]] = []
        pending: dict[tuple[int, int], str] = {}
        for row_index, row in enumerate(self.rows):
            out: list[str | None] = []
            for cell in row:
                while (row_index, len(out)) in pending:
                    out.append(pending.pop((row_index, len(out))))
                value = normalize_cell(" ".join(cell.text))
                for below in range(1, min(cell.rowspan, len(self.rows) - row_index)):
                    for offset in range(cell.colspan):
                        pending[(row_index + below, len(out) + offset)] = value
                out.extend([value] * cell.colspan)
            last = max((col for r, col in pending if r == row_index), default=-1)
            out.extend(pending.pop((row_index, col), None) for col in range(len(out), last + 1))
            grid.append(out)
        return grid

    def header_rows(self) -> int:
        """``<thead>`` rows, else the leading rows made only of ``<th>``, else one."""
        if self.head_rows:
            return self.head_rows
        count = 0
        for row in self.rows:
            if not row or not all(cell.header for cell in row):
                break
            count += 1
        return max(count, 1)


def _span(value: str | None, limit: int) -> int:
    try:
        return max(1, min(int(value or "1"), limit))
    except ValueError:
        return 1
