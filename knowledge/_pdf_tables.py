"""Ruled tables on a PDF page, read by pdfplumber's line strategy.

Tables whose outer side rules are missing (common in Korean forms) are closed, a header band
whose columns are ruled apart only in the body gets one header per column, and the rows of a
body that is not ruled between its rows are read apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from pdfplumber.page import Page as PlumberPage
from pdfplumber.table import Table as PlumberTable
from pdfplumber.utils.text import DEFAULT_Y_TOLERANCE, extract_words

from knowledge._pdf_cells import chars_in, text_of, without_stray_blanks
from knowledge._pdf_rules import caption_above, side_rules
from knowledge._tables import build_table
from knowledge.documents import Table

__all__ = ["PdfTable", "find_pdf_tables"]


@dataclass(frozen=True)
class PdfTable:
    """A table pdfplumber found on a page: where it is, and what it holds."""

    bbox: tuple[float, float, float, float]
    table: Table


def find_pdf_tables(page: PlumberPage, page_number: int) -> list[PdfTable]:
    """Ruled tables on ``page`` (at least two rows and two columns), top to bottom."""
    settings: dict[str, Any] = {"explicit_vertical_lines": side_rules(page)}
    found: list[PdfTable] = []
    for candidate in page.find_tables(settings):
        rows = [row for row in _cell_texts(candidate) if any(cell and cell.strip() for cell in row)]
        if len(rows) < 2 or max((len(row) for row in rows), default=0) < 2:
            continue
        caption = caption_above(page, candidate.bbox)
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
    inside = without_stray_blanks(chars_in(table.page.chars, table.bbox))
    grid: list[list[str | None]] = []
    for row in table.rows:
        row_chars = chars_in(inside, row.bbox)
        grid.append(
            [None if cell is None else text_of(chars_in(row_chars, cell)) for cell in row.cells]
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
            spread = _spread(chars_in(chars, cell), columns[start:end])
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
