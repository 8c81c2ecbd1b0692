"""Cells of a table whose columns only whitespace sets apart, read from pdfplumber's words.

Words are grouped into lines, and each line's words into phrases (words closer than a column
gap: one cell's text on that line). The columns are the stretches of the page that some body
line's phrases cover: the blanks no line crosses are the gutters. Each header phrase names
the columns it stands over; a phrase over a short rule (booktabs' ``\\cmidrule``) names every
column the rule spans, so "Scores" over "Precision | Recall" reads "Scores Recall". A body
line with no row label that fills few cells continues the row above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pdfplumber.utils.text import DEFAULT_Y_TOLERANCE

from knowledge._pdf_rules import Rule

__all__ = [
    "Phrase",
    "body_rows",
    "columns_of",
    "continued",
    "headers_over",
    "lines_of",
    "plausible",
]

# Ems between two words of one cell at most (a word space is about a third of one).
_PHRASE_GAP = 0.8
# How far below a header phrase a short rule still underlines it.
_UNDERLINE_REACH = 8.0
# Mean words in a cell at most, and in a header: a line of prose in a column has more.
_MAX_CELL_WORDS = 4.0
_MAX_HEADER_WORDS = 8
_MIN_FIGURE_SHARE = 0.3
_MIN_FILLED_SHARE = 0.6


@dataclass(frozen=True)
class Phrase:
    """Words of one line set closer than a column gap: one cell's text on that line."""

    x0: float
    x1: float
    top: float
    bottom: float
    text: str


def lines_of(words: list[dict[str, Any]]) -> list[list[Phrase]]:
    """Words grouped into lines (top to bottom), each line's words into phrases."""
    rows: list[list[dict[str, Any]]] = []
    for word in sorted(words, key=lambda w: (w["top"], w["x0"])):
        if rows and abs(word["top"] - rows[-1][0]["top"]) <= DEFAULT_Y_TOLERANCE:
            rows[-1].append(word)
        else:
            rows.append([word])
    return [_phrases(sorted(row, key=lambda w: w["x0"])) for row in rows]


def _phrases(words: list[dict[str, Any]]) -> list[Phrase]:
    phrases: list[list[dict[str, Any]]] = []
    for word in words:
        last = phrases[-1][-1] if phrases else None
        em = float(word["bottom"] - word["top"])
        if last is not None and word["x0"] - last["x1"] < _PHRASE_GAP * em:
            phrases[-1].append(word)
        else:
            phrases.append([word])
    return [
        Phrase(
            x0=group[0]["x0"],
            x1=group[-1]["x1"],
            top=min(w["top"] for w in group),
            bottom=max(w["bottom"] for w in group),
            text=" ".join(w["text"] for w in group),
        )
        for group in phrases
    ]


def _spans_table(line: list[Phrase], width: float) -> bool:
    """A line of one phrase across much of the table: a group title or a note, not a row."""
    return len(line) == 1 and line[0].x1 - line[0].x0 > 0.4 * width


def columns_of(lines: list[list[Phrase]], width: float) -> list[tuple[float, float]]:
    """Stretches covered by the body's phrases, left to right (the gaps are the gutters)."""
    spans = sorted(
        (phrase.x0, phrase.x1) for line in lines if not _spans_table(line, width) for phrase in line
    )
    columns: list[tuple[float, float]] = []
    for x0, x1 in spans:
        if columns and x0 <= columns[-1][1] + 1:
            columns[-1] = (columns[-1][0], max(columns[-1][1], x1))
        else:
            columns.append((x0, x1))
    return columns


def _column_at(x: float, columns: list[tuple[float, float]]) -> int:
    """The column holding ``x``, else the one whose middle is nearest."""
    for index, (x0, x1) in enumerate(columns):
        if x0 - 1 <= x <= x1 + 1:
            return index
    return min(range(len(columns)), key=lambda i: abs((columns[i][0] + columns[i][1]) / 2 - x))


def body_rows(lines: list[list[Phrase]], columns: list[tuple[float, float]]) -> list[list[str]]:
    """One row of cells per line; a line across the table (a group title) is its label."""
    width = columns[-1][1] - columns[0][0]
    rows: list[list[str]] = []
    for line in lines:
        cells = [""] * len(columns)
        for phrase in line:
            index = 0 if _spans_table(line, width) else _column_at(_middle(phrase), columns)
            cells[index] = f"{cells[index]} {phrase.text}".strip()
        rows.append(cells)
    return rows


def _middle(phrase: Phrase) -> float:
    return (phrase.x0 + phrase.x1) / 2


def continued(rows: list[list[str]]) -> list[list[str]]:
    """Rows with lines that continue the row above (no label, few cells) joined to it."""
    labelled = sum(bool(row[0]) for row in rows)
    if labelled < 0.8 * len(rows):
        return rows
    out: list[list[str]] = []
    for row in rows:
        filled = sum(bool(cell) for cell in row)
        if out and not row[0] and filled * 2 <= len(row):
            out[-1] = [f"{a} {b}".strip() for a, b in zip(out[-1], row, strict=True)]
        else:
            out.append(row)
    return out


def headers_over(
    lines: list[list[Phrase]], columns: list[tuple[float, float]], underlines: list[Rule]
) -> list[str] | None:
    """One header per column: the phrases over it, top line first.

    ``None`` when a phrase stands over several columns with no rule under it to say it
    spans them: text across the columns (a form's fields, a title), not their headers.
    """
    names: list[list[str]] = [[] for _ in columns]
    for line in lines:
        for phrase in line:
            extent = _underlined(phrase, underlines)
            covered = _covered(extent, columns)
            if len(covered) > 1 and extent == (phrase.x0, phrase.x1):
                return None
            for index in covered:
                names[index].append(phrase.text)
    return [" ".join(parts) for parts in names]


def _underlined(phrase: Phrase, underlines: list[Rule]) -> tuple[float, float]:
    """The phrase's extent, widened to a short rule right under it (a spanning header)."""
    x0, x1 = phrase.x0, phrase.x1
    for rx0, rx1, y in underlines:
        if 0 <= y - phrase.bottom <= _UNDERLINE_REACH and rx0 < phrase.x1 and phrase.x0 < rx1:
            x0, x1 = min(x0, rx0), max(x1, rx1)
    return x0, x1


def _covered(extent: tuple[float, float], columns: list[tuple[float, float]]) -> list[int]:
    """Columns a header stands over: overlapping at least half the narrower of the two."""
    x0, x1 = extent
    covered = [
        index
        for index, (c0, c1) in enumerate(columns)
        if min(x1, c1) - max(x0, c0) >= 0.5 * min(x1 - x0, c1 - c0)
    ]
    return covered or [_column_at((x0 + x1) / 2, columns)]


def plausible(headers: list[str], rows: list[list[str]]) -> bool:
    """Whether a header and rows read as a table rather than prose or a list.

    Every column but the labels' has a short header; most rows fill two cells or more; cells
    are a few words (a line of prose in a column is more); and many hold figures, or there
    are three columns or more of very short cells.
    """
    if len(rows) < 2 or not all(headers[1:]):
        return False
    if max(len(header.split()) for header in headers) > _MAX_HEADER_WORDS:
        return False
    filled = sum(sum(bool(cell) for cell in row) >= 2 for row in rows)
    cells = [cell for row in rows for cell in row if cell]
    values = [cell for row in rows for cell in row[1:] if cell]
    if filled < _MIN_FILLED_SHARE * len(rows) or not values:
        return False
    words = sum(len(cell.split()) for cell in cells) / len(cells)
    if words > _MAX_CELL_WORDS:
        return False
    figures = sum(any(char.isdigit() for char in cell) for cell in values) / len(values)
    return figures >= _MIN_FIGURE_SHARE or (len(headers) >= 3 and words <= 3)
