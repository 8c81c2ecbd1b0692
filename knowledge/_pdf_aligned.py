"""Tables whose columns only whitespace sets apart, between horizontal rules.

Papers rule a table above, under its header and below, and draw no vertical line; a ruled
line strategy finds no cells there. Between a stack of such rules the body's words are
grouped into lines, and the columns are the stretches of the page that some body line's
words cover: the blanks no line crosses are the gutters. Each header phrase names the
columns it stands over; a phrase over a short rule (booktabs' ``\\cmidrule``) names every
column the rule spans, so "Scores" over "Precision | Recall" reads "Scores Recall". A body
line with no row label that fills few cells continues the row above.

What stays prose: a region must hold at least two columns, a header and two body rows,
most rows filling two cells or more, short cells, and figures in many of them (or three
columns or more of very short cells). Two columns of prose (long cells) and lists (no
header between the rules) fail these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pdfplumber.page import Page as PlumberPage
from pdfplumber.utils.text import DEFAULT_Y_TOLERANCE, extract_words

from knowledge._pdf_rules import Rule, caption_above, horizontal_rules, rule_stacks
from knowledge._pdf_tables import PdfTable
from knowledge._tables import build_table

__all__ = ["find_aligned_tables", "find_whitespace_tables", "may_have_whitespace_table"]

Box = tuple[float, float, float, float]
# Ems between two words of one cell at most (a word space is about a third of one).
_PHRASE_GAP = 0.8
# Points: the most a header band between two rules may take, and a whole table.
_MAX_HEADER = 60.0
_MAX_TABLE = 600.0
# How far below a header phrase a short rule still underlines it.
_UNDERLINE_REACH = 8.0
# Mean words in a cell at most, and in a header: a line of prose in a column has more.
_MAX_CELL_WORDS = 4.0
_MAX_HEADER_WORDS = 8
_MIN_FIGURE_SHARE = 0.3
_MIN_FILLED_SHARE = 0.6


@dataclass(frozen=True)
class _Phrase:
    """Words of one line set closer than a column gap: one cell's text on that line."""

    x0: float
    x1: float
    top: float
    bottom: float
    text: str


def find_aligned_tables(
    page: PlumberPage, page_number: int, taken: Sequence[Box]
) -> list[PdfTable]:
    """Tables between stacks of horizontal rules, outside the ``taken`` boxes."""
    # Rules of the tables found already are theirs: only the others can bound a table.
    rules = [rule for rule in horizontal_rules(page) if not _overlaps(_box(rule), taken)]
    stacks = rule_stacks(rules, max_gap=_MAX_TABLE)
    if not stacks:
        return []
    words = extract_words(page.chars)
    found: list[PdfTable] = []
    for stack in stacks:
        reader = _Region(page, page_number, words, rules)
        found += [item for item in reader.tables(stack) if not _overlaps(item.bbox, taken)]
    return found


def _box(rule: Rule) -> Box:
    return (rule[0], rule[2] - 1, rule[1], rule[2] + 1)


def _overlaps(box: Box, taken: Sequence[Box]) -> bool:
    return any(
        box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]
        for other in taken
    )


@dataclass
class _Region:
    """Reads the tables of one stack of rules: top rule, header rule, ..., bottom rule."""

    page: PlumberPage
    page_number: int
    words: list[dict[str, Any]]
    rules: list[Rule]

    def tables(self, stack: list[Rule]) -> list[PdfTable]:
        """The stack's tables, each from a top rule to the lowest rule that reads as one."""
        found: list[PdfTable] = []
        start = 0
        while start + 2 < len(stack):
            table = None
            if stack[start + 1][2] - stack[start][2] <= _MAX_HEADER:
                for end in range(len(stack) - 1, start + 1, -1):
                    table = self._read(stack[start], stack[start + 1], stack[end])
                    if table is not None:
                        found.append(table)
                        start = end
                        break
            start += 1
        return found

    def _read(self, top: Rule, head: Rule, bottom: Rule) -> PdfTable | None:
        x0, x1 = min(top[0], bottom[0]), max(top[1], bottom[1])
        header_lines = _lines(self._words_in((x0, top[2], x1, head[2])))
        body_lines = _lines(self._words_in((x0, head[2], x1, bottom[2])))
        columns = _columns(body_lines, x1 - x0)
        if len(columns) < 2 or not header_lines or len(body_lines) < 2:
            return None
        underlines = [rule for rule in self.rules if top[2] < rule[2] < head[2]]
        headers = _headers(header_lines, columns, underlines)
        rows = _continued(_body_rows(body_lines, columns))
        if headers is None or not _plausible(headers, rows):
            return None
        bbox = (x0, top[2], x1, bottom[2])
        caption = caption_above(self.page, bbox)
        table = build_table([headers, *rows], caption=caption, page=self.page_number)
        return PdfTable(bbox=bbox, table=table) if table and table.rows else None

    def _words_in(self, box: Box) -> list[dict[str, Any]]:
        x0, top, x1, bottom = box
        return [
            word
            for word in self.words
            if x0 - 1 <= (word["x0"] + word["x1"]) / 2 <= x1 + 1
            and top < (word["top"] + word["bottom"]) / 2 < bottom
        ]


def _lines(words: list[dict[str, Any]]) -> list[list[_Phrase]]:
    """Words grouped into lines (top to bottom), each line's words into phrases."""
    rows: list[list[dict[str, Any]]] = []
    for word in sorted(words, key=lambda w: (w["top"], w["x0"])):
        if rows and abs(word["top"] - rows[-1][0]["top"]) <= DEFAULT_Y_TOLERANCE:
            rows[-1].append(word)
        else:
            rows.append([word])
    return [_phrases(sorted(row, key=lambda w: w["x0"])) for row in rows]


def _phrases(words: list[dict[str, Any]]) -> list[_Phrase]:
    phrases: list[list[dict[str, Any]]] = []
    for word in words:
        last = phrases[-1][-1] if phrases else None
        em = float(word["bottom"] - word["top"])
        if last is not None and word["x0"] - last["x1"] < _PHRASE_GAP * em:
            phrases[-1].append(word)
        else:
            phrases.append([word])
    return [
        _Phrase(
            x0=group[0]["x0"],
            x1=group[-1]["x1"],
            top=min(w["top"] for w in group),
            bottom=max(w["bottom"] for w in group),
            text=" ".join(w["text"] for w in group),
        )
        for group in phrases
    ]


def _spans_table(line: list[_Phrase], width: float) -> bool:
    """A line of one phrase across much of the table: a group title or a note, not a row."""
    return len(line) == 1 and line[0].x1 - line[0].x0 > 0.4 * width


def _columns(lines: list[list[_Phrase]], width: float) -> list[tuple[float, float]]:
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


def _body_rows(lines: list[list[_Phrase]], columns: list[tuple[float, float]]) -> list[list[str]]:
    width = columns[-1][1] - columns[0][0]
    rows: list[list[str]] = []
    for line in lines:
        cells = [""] * len(columns)
        for phrase in line:
            index = 0 if _spans_table(line, width) else _column_at(_middle(phrase), columns)
            cells[index] = f"{cells[index]} {phrase.text}".strip()
        rows.append(cells)
    return rows


def _middle(phrase: _Phrase) -> float:
    return (phrase.x0 + phrase.x1) / 2


def _continued(rows: list[list[str]]) -> list[list[str]]:
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


def _headers(
    lines: list[list[_Phrase]], columns: list[tuple[float, float]], underlines: list[Rule]
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


def _underlined(phrase: _Phrase, underlines: list[Rule]) -> tuple[float, float]:
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


def _plausible(headers: list[str], rows: list[list[str]]) -> bool:
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


# --- tables with no rules at all -------------------------------------------------------

_LAYOUT_GAP = re.compile(r"\S\s{3,}(?=\S)")
# Lines of whitespace-aligned cells in a row that make a page worth reading with pdfplumber.
_MIN_ALIGNED_LINES = 4
_MIN_WHITESPACE_COLUMNS = 3
# Share of the value cells holding figures in a table no rule bounds.
_FIGURES = 0.5
# Ems from one line's top to the next within a table.
_MAX_LINE_STEP = 2.5


def may_have_whitespace_table(layout_text: str) -> bool:
    """Whether a page's layout text has a run of lines cut in three or more by wide blanks,
    most of the cuts holding figures: cheap to check, and needed before pdfplumber runs on
    a page that draws no rules."""
    run = 0
    for line in layout_text.splitlines():
        parts = _LAYOUT_GAP.split(line.strip())
        figures = sum(any(char.isdigit() for char in part) for part in parts[1:])
        aligned = len(parts) >= _MIN_WHITESPACE_COLUMNS and figures * 2 >= len(parts) - 1
        run = run + 1 if aligned else 0
        if run >= _MIN_ALIGNED_LINES - 1:  # the header line seldom holds figures
            return True
    return False


def find_whitespace_tables(
    page: PlumberPage, page_number: int, taken: Sequence[Box]
) -> list[PdfTable]:
    """Tables with no rules: a header line over three or more lines of figures, every
    line's cells in the same three or more columns, outside the ``taken`` boxes."""
    words = [
        word
        for word in extract_words(page.chars)
        if not _overlaps((word["x0"], word["top"], word["x1"], word["bottom"]), taken)
    ]
    found: list[PdfTable] = []
    for run in _aligned_runs(_lines(words)):
        table = _whitespace_table(page, page_number, run)
        if table is not None:
            found.append(table)
    return found


def _aligned_runs(lines: list[list[_Phrase]]) -> list[list[list[_Phrase]]]:
    """Runs of consecutive, evenly close lines of two phrases or more."""
    runs: list[list[list[_Phrase]]] = [[]]
    for line in lines:
        last = runs[-1][-1] if runs[-1] else None
        if len(line) < 2:
            runs.append([])
            continue
        if last is not None:
            em = last[0].bottom - last[0].top
            if line[0].top - last[0].top > _MAX_LINE_STEP * em:
                runs.append([])
        runs[-1].append(line)
    return [run for run in runs if len(run) >= _MIN_ALIGNED_LINES]


def _whitespace_table(
    page: PlumberPage, page_number: int, run: list[list[_Phrase]]
) -> PdfTable | None:
    header, body = run[0], run[1:]
    x0 = min(phrase.x0 for line in run for phrase in line)
    x1 = max(phrase.x1 for line in run for phrase in line)
    columns = _columns(body, x1 - x0)
    if len(columns) < _MIN_WHITESPACE_COLUMNS or _numeric(header):
        return None
    rows = _body_rows(body, columns)
    headers = _headers([header], columns, [])
    if headers is None or not _plausible(headers, rows):
        return None
    values = [cell for row in rows for cell in row[1:] if cell]
    if sum(any(char.isdigit() for char in cell) for cell in values) < _FIGURES * len(values):
        return None  # with no rules to bound it, a table must be mostly figures
    bbox = (x0, min(p.top for p in header), x1, max(p.bottom for p in body[-1]))
    table = build_table([headers, *rows], caption=caption_above(page, bbox), page=page_number)
    return PdfTable(bbox=bbox, table=table) if table and table.rows else None


def _numeric(line: list[_Phrase]) -> bool:
    """Whether a line reads as figures (a data row), not as column names."""
    figures = sum(any(char.isdigit() for char in phrase.text) for phrase in line[1:])
    return figures * 2 > len(line) - 1
