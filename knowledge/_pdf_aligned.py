"""Tables whose columns only whitespace sets apart: between horizontal rules, or bare.

Papers rule a table above, under its header and below, and draw no vertical line; a ruled
line strategy finds no cells there. Each stack of rules with the same ends is read from its
top rule: the lines above the next rule are the header, those down to the lowest rule that
still gives a table are the body (:mod:`knowledge._pdf_columns` reads the cells). Reports
also print tables with no rule at all: a header line over lines of figures cut into the
same three or more columns; pdfplumber reads such a page only when its layout text shows
a run of lines cut by wide blanks, most of the pieces figures.

What stays prose: every column but the labels' has a short header; most rows fill two
cells or more; cells are a few words; many hold figures (or there are three columns or
more of very short cells); a header phrase standing over several columns must have a rule
under it. Columns of prose (long cells, no headers) and lists (no header) fail these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pdfplumber.page import Page as PlumberPage
from pdfplumber.utils.text import extract_words

from knowledge._pdf_columns import (
    Phrase,
    body_rows,
    columns_of,
    continued,
    headers_over,
    lines_of,
    plausible,
)
from knowledge._pdf_rules import WORD_GAP, Rule, caption_above, horizontal_rules, rule_stacks
from knowledge._pdf_tables import PdfTable
from knowledge._tables import build_table

__all__ = [
    "MAX_TABLE_GAP",
    "find_aligned_tables",
    "find_whitespace_tables",
    "may_have_whitespace_table",
]

Box = tuple[float, float, float, float]
# Points: the most a header band between two rules may take, and a whole table.
_MAX_HEADER = 60.0
MAX_TABLE_GAP = 600.0


def find_aligned_tables(
    page: PlumberPage, page_number: int, taken: Sequence[Box]
) -> list[PdfTable]:
    """Tables between stacks of horizontal rules, outside the ``taken`` boxes."""
    # Rules of the tables found already are theirs: only the others can bound a table.
    rules = [rule for rule in horizontal_rules(page) if not _overlaps(_box(rule), taken)]
    stacks = rule_stacks(rules, max_gap=MAX_TABLE_GAP)
    if not stacks:
        return []
    words = extract_words(page.chars, x_tolerance_ratio=WORD_GAP)
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
        header_lines = lines_of(self._words_in((x0, top[2], x1, head[2])))
        body_lines = lines_of(self._words_in((x0, head[2], x1, bottom[2])))
        columns = columns_of(body_lines, x1 - x0)
        if len(columns) < 2 or not header_lines or len(body_lines) < 2:
            return None
        underlines = [rule for rule in self.rules if top[2] < rule[2] < head[2]]
        headers = headers_over(header_lines, columns, underlines)
        rows = continued(body_rows(body_lines, columns))
        if headers is None or not plausible(headers, rows):
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
        for word in extract_words(page.chars, x_tolerance_ratio=WORD_GAP)
        if not _overlaps((word["x0"], word["top"], word["x1"], word["bottom"]), taken)
    ]
    found: list[PdfTable] = []
    for run in _aligned_runs(lines_of(words)):
        table = _whitespace_table(page, page_number, run)
        if table is not None:
            found.append(table)
    return found


def _aligned_runs(lines: list[list[Phrase]]) -> list[list[list[Phrase]]]:
    """Runs of consecutive, evenly close lines of two phrases or more."""
    runs: list[list[list[Phrase]]] = [[]]
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
    page: PlumberPage, page_number: int, run: list[list[Phrase]]
) -> PdfTable | None:
    header, body = run[0], run[1:]
    x0 = min(phrase.x0 for line in run for phrase in line)
    x1 = max(phrase.x1 for line in run for phrase in line)
    columns = columns_of(body, x1 - x0)
    if len(columns) < _MIN_WHITESPACE_COLUMNS or _numeric(header):
        return None
    rows = body_rows(body, columns)
    headers = headers_over([header], columns, [])
    if headers is None or not plausible(headers, rows):
        return None
    values = [cell for row in rows for cell in row[1:] if cell]
    if sum(any(char.isdigit() for char in cell) for cell in values) < _FIGURES * len(values):
        return None  # with no rules to bound it, a table must be mostly figures
    bbox = (x0, min(p.top for p in header), x1, max(p.bottom for p in body[-1]))
    table = build_table([headers, *rows], caption=caption_above(page, bbox), page=page_number)
    return PdfTable(bbox=bbox, table=table) if table and table.rows else None


def _numeric(line: list[Phrase]) -> bool:
    """Whether a line reads as figures (a data row), not as column names."""
    figures = sum(any(char.isdigit() for char in phrase.text) for phrase in line[1:])
    return figures * 2 > len(line) - 1
