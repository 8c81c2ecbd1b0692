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
    found = [
        table
        for candidate in page.find_tables(settings)
        if (table := _ruled_table(page, candidate, page_number)) is not None
    ]
    return sorted(found, key=lambda item: (item.bbox[1], item.bbox[0]))


def _ruled_table(page: PlumberPage, candidate: PlumberTable, page_number: int) -> PdfTable | None:
    grid = _cell_texts(candidate)
    band = _header_band(candidate)
    if any(char.isdigit() for row in grid[:band] for cell in row if cell for char in cell):
        band = 1  # figures: data rows beside a label cell spanning them, not headers
    heads = [row for row in grid[:band] if _filled(row)]
    rows = heads + [row for row in grid[band:] if _filled(row)]
    if len(rows) < 2 or max(len(row) for row in rows) < 2:
        return None
    header_rows = min(max(len(heads), _pdf_header_rows(rows)), len(rows) - 1)
    heads, body = _merge_header_only_columns(rows[:header_rows], rows[header_rows:])
    rows = heads + [line for row in body for line in _unstack(row)]
    caption = caption_above(page, candidate.bbox)
    table = build_table(rows, header_rows=header_rows, caption=caption, page=page_number)
    return PdfTable(bbox=candidate.bbox, table=table) if table and table.rows else None


def _filled(row: list[str | None]) -> bool:
    return any(cell and cell.strip() for cell in row)


def _header_band(table: PlumberTable) -> int:
    """Rows of the header band: the first row, and the rows beside its taller cells.

    A header cell that spans two rows ("Category" beside "Results" over "Accuracy | Time")
    makes the rows it stands beside header rows too.
    """
    bottoms = [cell[3] for cell in table.rows[0].cells if cell is not None]
    low = max(bottoms, default=0.0)
    band = 1
    while band < len(table.rows) and table.rows[band].bbox[1] < low - 1:
        band += 1
    return band if band <= _HEADER_SCAN else 1


def _merge_header_only_columns(
    heads: list[list[str | None]], body: list[list[str | None]]
) -> tuple[list[list[str | None]], list[list[str | None]]]:
    """Header and body rows with the columns that only the header band rules apart merged.

    A header row can be ruled finer than the body: "Count" in a narrow cell inside the
    span of each body row's value cell. Read column by column, "Count" would head an empty
    column and the values would get no name. Columns where no body row starts a cell are
    joined to the column on their left, their header texts together.
    """
    width = max(len(row) for row in [*heads, *body])
    starts = sorted({0} | {i for row in body for i, cell in enumerate(row) if cell is not None})
    if len(starts) < 2 or len(starts) == width:
        return heads, body
    groups = list(pairwise([*starts, width]))

    def header(row: list[str | None]) -> list[str | None]:
        merged: list[str | None] = []
        for a, b in groups:
            present = [cell for cell in row[a:b] if cell is not None]
            texts = dict.fromkeys(cell.strip() for cell in present if cell.strip())
            merged.append(" ".join(texts) if present else None)
        return merged

    padded = [row + [None] * (width - len(row)) for row in body]
    return [header(row) for row in heads], [[row[a] for a, _ in groups] for row in padded]


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
