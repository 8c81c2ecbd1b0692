"""Tables for the parsers: cell grids to :class:`Table`, Markdown rendering, HTML spans, PDFs.

A parser hands over a grid (rows of cell strings, or ``None`` where a merged cell covers the
position) and how many leading rows are headers; :func:`build_table` pads ragged rows, merges
multi-row headers into one header per column and drops empty rows. :class:`HtmlTable` expands
``colspan``/``rowspan`` by repeating the cell's value. :func:`find_pdf_tables` asks pdfplumber
for ruled tables, closing tables whose outer side rules are missing (common in Korean forms)
and reading apart the rows of a body that is not ruled between its rows.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from pdfplumber.page import Page as PlumberPage
from pdfplumber.table import Table as PlumberTable
from pdfplumber.utils.text import DEFAULT_X_TOLERANCE, DEFAULT_Y_TOLERANCE, extract_words
from pdfplumber.utils.text import extract_text as pdfplumber_text

from knowledge.chunking import render_markdown_table
from knowledge.documents import Block, Table

__all__ = [
    "HtmlTable",
    "PdfTable",
    "build_table",
    "find_pdf_tables",
    "grid_blocks",
    "normalize_cell",
    "render_markdown",
    "table_block",
    "text_block",
]

_WHITESPACE = re.compile(r"\s+")
_CAPTION_PREFIX = re.compile(r"^(table|tab\.)\s+\w|^<?(표|表)", re.IGNORECASE)
# Points: how far above a table a caption line may sit, and tolerances for joining rules.
_CAPTION_REACH = 24.0
_RULE_TOLERANCE = 3.0
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
    (when there is none). Returns ``None`` when no cell has text.
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
    headers = [headers[column] or f"Column {index}" for index, column in enumerate(keep, 1)]
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


# --- PDF --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PdfTable:
    """A table pdfplumber found on a page: where it is, and what it holds."""

    bbox: tuple[float, float, float, float]
    table: Table


def find_pdf_tables(page: PlumberPage, page_number: int) -> list[PdfTable]:
    """Ruled tables on ``page`` (at least two rows and two columns), top to bottom."""
    settings: dict[str, Any] = {"explicit_vertical_lines": _side_rules(page)}
    found: list[PdfTable] = []
    for candidate in page.find_tables(settings):
        rows = [row for row in _cell_texts(candidate) if any(cell and cell.strip() for cell in row)]
        if len(rows) < 2 or max((len(row) for row in rows), default=0) < 2:
            continue
        caption = _caption_above(page, candidate.bbox)
        header_rows = _pdf_header_rows(rows)
        rows = rows[:header_rows] + [line for row in rows[header_rows:] for line in _unstack(row)]
        table = build_table(rows, header_rows=header_rows, caption=caption, page=page_number)
        if table is not None and table.rows:
            found.append(PdfTable(bbox=candidate.bbox, table=table))
    return sorted(found, key=lambda item: (item.bbox[1], item.bbox[0]))


def _cell_texts(table: PlumberTable) -> list[list[str | None]]:
    """``table.extract()``, the same cell texts, without testing every character of the page
    against every row (pdfplumber's way; most of a table's cost on a text-heavy page).

    A character belongs to the cell holding its centre (pdfplumber's rule, half-open boxes);
    the characters are narrowed to the table's box once, then to each row's. Unlike
    ``extract()``, blanks another text run laid inside a word are left out
    (:func:`_without_stray_blanks`).
    """
    inside = _without_stray_blanks(_chars_in(table.page.chars, table.bbox))
    grid: list[list[str | None]] = []
    for row in table.rows:
        row_chars = _chars_in(inside, row.bbox)
        grid.append(
            [None if cell is None else _text_of(_chars_in(row_chars, cell)) for cell in row.cells]
        )
    return _spread_headers(table, inside, grid)


# Most rows a header band may have above a table's first fully ruled row.
_HEADER_SCAN = 3


def _spread_headers(
    table: PlumberTable, chars: list[dict[str, Any]], grid: list[list[str | None]]
) -> list[list[str | None]]:
    """``grid`` with header cells that span columns only for want of vertical rules spread
    over those columns.

    A statistics table often rules its header band without the rules between the columns
    below: pdfplumber then reads "Permit Handgun Long Gun *Other" as one cell over six
    columns, and each column would get all six names. Where a line of such a cell has
    words over every column it spans (by the columns of a fully ruled row below), each
    word goes to the column under it; a line above those, narrower than the span
    ("Pre-Pawn" over "Handgun Long Gun *Other"), is a group title and leads each column's
    name. A cell with no such line (a title, a real merged header) stays as found.
    """
    first_full = next(
        (i for i, row in enumerate(table.rows) if all(cell is not None for cell in row.cells)),
        None,
    )
    # The band must sit right above the ruled body: spans further down are something else
    # (two tables pdfplumber took for one, say).
    if first_full is None or first_full > _HEADER_SCAN:
        return grid
    columns = [(c[0], c[2]) for c in table.rows[first_full].cells if c is not None]
    for index, row in enumerate(table.rows[:first_full]):
        cells = row.cells
        for start, cell in enumerate(cells):
            end = start + 1
            while end < len(cells) and cells[end] is None:
                end += 1
            if cell is None or end - start < 2 or len(cells) != len(columns):
                continue
            spread = _spread(_chars_in(chars, cell), columns[start:end])
            if spread is not None:
                grid[index][start:end] = spread
    return grid


def _spread(chars: list[dict[str, Any]], columns: list[tuple[float, float]]) -> list[str] | None:
    """One header per column from a spanning cell's words, or ``None`` to keep the cell."""
    lines: list[list[dict[str, Any]]] = []
    for word in sorted(extract_words(chars), key=lambda w: (w["top"], w["x0"])):
        if lines and abs(word["top"] - lines[-1][0]["top"]) <= DEFAULT_Y_TOLERANCE:
            lines[-1].append(word)
        else:
            lines.append([word])
    titles: list[str] = []
    names: list[list[str]] = [[] for _ in columns]
    spread = False
    for line in lines:
        owners = [_column_of((w["x0"] + w["x1"]) / 2, columns) for w in line]
        if None not in owners and len(set(owners)) == len(columns) and _apart(line, owners):
            for word, owner in zip(line, owners, strict=True):
                names[owner].append(word["text"])  # type: ignore[index]
            spread = True
        elif spread:  # text under the column names: not a header band this rule knows
            return None
        else:
            titles.append(" ".join(w["text"] for w in line))
    if not spread:
        return None
    return [" ".join([*titles, *column]) for column in names]


def _apart(line: list[dict[str, Any]], owners: list[int | None]) -> bool:
    """Whether the words of different columns are set apart by more than a word space
    (a wide title's words fall under several columns too, a word space apart)."""
    return all(
        b["x0"] - a["x1"] >= _COLUMN_GAP * (a["bottom"] - a["top"])
        for (a, first), (b, second) in pairwise(zip(line, owners, strict=True))
        if first != second
    )


# Ems between the words of two columns; a word space is about a third of one.
_COLUMN_GAP = 0.6


def _column_of(x: float, columns: list[tuple[float, float]]) -> int | None:
    return next((i for i, (x0, x1) in enumerate(columns) if x0 <= x < x1), None)


def _chars_in(chars: list[dict[str, Any]], bbox: tuple[float, float, float, float]) -> list[Any]:
    x0, top, x1, bottom = bbox
    return [
        char
        for char in chars
        if x0 <= (char["x0"] + char["x1"]) / 2 < x1
        and top <= (char["top"] + char["bottom"]) / 2 < bottom
    ]


def _text_of(chars: list[dict[str, Any]]) -> str:
    return pdfplumber_text(chars) if chars else ""


def _without_stray_blanks(chars: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``chars`` (in drawing order) less the blanks another text run laid inside a word.

    Fixed-width report writers pad each field with spaces, and the padding can run on under
    the next field's text (the WARN reports' dates). Sorted left to right, those blanks land
    between a word's glyphs and pdfplumber breaks the word at each one: "0 3 / 2 5 / 2 0 16".
    A blank is dropped only where it falls between two glyphs drawn one right after the other
    that pdfplumber would join (same line, touching), and was itself drawn apart from them: a
    real word space is drawn between its words, and gaps that read as spaces stay spaces.
    """
    # (first glyph's x0, second glyph's x0, line top, first glyph's index) of such pairs
    spans = sorted(
        (a["x0"], b["x0"], a["top"], index)
        for index, (a, b) in enumerate(pairwise(chars))
        if _joined(a, b)
    )
    if not spans or not any(char["text"].isspace() for char in chars):
        return chars
    starts = [span[0] for span in spans]
    longest = max(end - start for start, end, _, _ in spans)

    def stray(index: int, blank: dict[str, Any]) -> bool:
        x, top = blank["x0"], blank["top"]
        near = spans[bisect_left(starts, x - longest) : bisect_left(starts, x)]
        return any(
            start < x < end
            and abs(top - line) <= DEFAULT_Y_TOLERANCE
            and index not in (first - 1, first + 2)  # not the pair's own leading/trailing blank
            for start, end, line, first in near
        )

    return [
        char
        for index, char in enumerate(chars)
        if not (char["text"].isspace() and stray(index, char))
    ]


def _joined(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether pdfplumber keeps glyph ``b`` in the word of glyph ``a`` just before it."""
    return (
        a["upright"]
        and b["upright"]
        and not a["text"].isspace()
        and not b["text"].isspace()
        and abs(a["top"] - b["top"]) <= DEFAULT_Y_TOLERANCE
        and a["x0"] <= b["x0"] <= a["x1"] + DEFAULT_X_TOLERANCE
    )


def _unstack(row: list[str | None]) -> list[list[str | None]]:
    """A body row as the rows stacked in it, where a table rules only some of its rows.

    Without a rule between two rows, pdfplumber's line strategy reads them as one row whose
    cells hold a line each: "FY2013\nFY2014 | 7,723,293\n7,793,704". Read that way, no
    value can be told from its neighbour's. When every filled cell of a row (three or more)
    holds the same number of lines, line ``i`` of each cell is row ``i``. Cells that wrap
    their text give uneven counts and stay whole; header rows are never unstacked (their
    cells often wrap to two lines together).
    """
    lines = [None if cell is None else cell.strip().split("\n") for cell in row]
    depths = {len(cell) for cell in lines if cell is not None and cell != [""]}
    filled = sum(1 for cell in lines if cell is not None and cell != [""])
    if filled < 3 or len(depths) != 1 or (depth := depths.pop()) < 2:
        return [row]
    return [
        [None if cell is None else (cell[i] if cell != [""] else "") for cell in lines]
        for i in range(depth)
    ]


def _pdf_header_rows(rows: list[list[str | None]]) -> int:
    # A header cell spanning columns (``None`` to its right) means the next row holds the
    # sub-headers, as in "2023 | (merged)" over "Q1 | Q2".
    first = rows[0]
    spans = any(cell is None for cell in first[1:])
    return 2 if spans and len(rows) > 2 else 1


def _side_rules(page: PlumberPage) -> list[dict[str, Any]]:
    """Vertical rules at both ends of stacked horizontal rules of the same extent.

    Many tables have horizontal rules and inner column rules but no outer left and right
    borders; pdfplumber's line strategy needs the borders to close the cells.
    """
    rules: list[dict[str, Any]] = []
    for stack in _rule_stacks(_horizontal_rules(page)):
        top, bottom = stack[0][2], stack[-1][2]
        x0 = min(rule[0] for rule in stack)
        x1 = max(rule[1] for rule in stack)
        for x in (x0, x1):
            rules.append(
                {
                    "object_type": "line",
                    "x0": x,
                    "x1": x,
                    "top": top,
                    "bottom": bottom,
                    "width": 0.0,
                    "height": bottom - top,
                }
            )
    return rules


def _horizontal_rules(page: PlumberPage) -> list[tuple[float, float, float]]:
    """Horizontal edges as ``(x0, x1, y)``, with touching segments of one row joined."""
    edges = sorted(
        (float(edge["top"]), float(edge["x0"]), float(edge["x1"]))
        for edge in page.horizontal_edges
        if float(edge["width"]) >= 10
    )
    joined: list[tuple[float, float, float]] = []
    for y, x0, x1 in edges:
        if joined:
            last_x0, last_x1, last_y = joined[-1]
            near_row = abs(last_y - y) <= _RULE_TOLERANCE
            if near_row and x0 <= last_x1 + _RULE_TOLERANCE:
                joined[-1] = (last_x0, max(last_x1, x1), last_y)
                continue
        joined.append((x0, x1, y))
    return joined


def _rule_stacks(
    rules: list[tuple[float, float, float]],
) -> list[list[tuple[float, float, float]]]:
    """Groups of three or more rules with the same ends, each close below the previous."""
    stacks: list[list[tuple[float, float, float]]] = []
    for rule in sorted(rules, key=lambda item: item[2]):
        for stack in stacks:
            last = stack[-1]
            same_ends = (
                abs(last[0] - rule[0]) <= _RULE_TOLERANCE
                and abs(last[1] - rule[1]) <= _RULE_TOLERANCE
            )
            if same_ends and 0 < rule[2] - last[2] <= _MAX_ROW_GAP:
                stack.append(rule)
                break
        else:
            stacks.append([rule])
    return [stack for stack in stacks if len(stack) >= 3]


def _caption_above(page: PlumberPage, bbox: tuple[float, float, float, float]) -> str | None:
    """The line right above the table if it reads like a title ("Table 3 ...", "표 2", short)."""
    x0, top, x1, _ = bbox
    left, right = max(page.bbox[0], x0 - 20), min(page.bbox[2], x1 + 20)
    upper = max(page.bbox[1], top - _CAPTION_REACH)
    if top - upper < 1 or right - left < 1:
        return None
    band = (left, upper, right, top)
    lines = page.within_bbox(band).extract_text_lines(strip=True)
    if not lines:
        return None
    text = normalize_cell(str(lines[-1]["text"]))
    return text if _looks_like_caption(text) else None


def _looks_like_caption(text: str) -> bool:
    if not text or not any(char.isalpha() for char in text):
        return False
    if _CAPTION_PREFIX.match(text):
        return True
    return len(text) <= 60 and len(text.split()) <= 10 and not text.endswith((".", ","))
