"""One page's layout text as paragraphs in reading order, each table put where its rows were.

Layout mode separates columns by runs of spaces: column regions are unfolded (left column
first, three columns as well as two), and text that a table holds is dropped from the prose,
the table block taking the place of its first row.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

from knowledge._pdf_tables import PdfTable
from knowledge._tables import table_block, text_block
from knowledge.documents import Block, Table

__all__ = ["PageProse", "squeeze"]

_SEGMENT_GAP = re.compile(r"\s{3,}")
# Layout text: blanks between two columns, and lines with text on both sides to call it so.
_GUTTER = 3
_MIN_COLUMN_LINES = 4
# Characters a line of a column of prose holds at the least (median), where cells hold fewer.
_MIN_PROSE_WIDTH = 25


def squeeze(text: str) -> str:
    """The text without whitespace: pypdf and pdfplumber space words differently."""
    return "".join(text.split())


@dataclass
class PageProse:
    """Turns one page's layout text into paragraphs, putting each table where its rows were.

    Layout mode separates columns by runs of spaces. A segment of a line is table text when,
    whitespace aside, it occurs in a row of a table and not in the text outside the tables.
    """

    tables: list[PdfTable]
    outside: str
    page: int
    _keys: list[str] = field(default_factory=list)
    _out: list[Block] = field(default_factory=list)
    _lines: list[str] = field(default_factory=list)
    _placed: set[int] = field(default_factory=set)

    def blocks(self, text: str) -> list[Block]:
        """Paragraph and table blocks of the page, in reading order."""
        self._keys = [_table_key(item.table) for item in self.tables]
        for line in _reading_order(text.splitlines()):
            self._add_line(line)
        self._flush()
        for index, item in enumerate(self.tables):
            if index not in self._placed:
                self._out.append(table_block(item.table))
        return self._out

    def _add_line(self, line: str) -> None:
        found = [(part, self._table_of(squeeze(part))) for part in _SEGMENT_GAP.split(line)]
        # A segment that also occurs outside the tables is table text only on a line where
        # another segment is unmistakably text of the same table.
        sure = {
            table
            for part, table in found
            if table is not None and squeeze(part) not in self.outside
        }
        kept: list[str] = []
        for part, table in found:
            if table not in sure:
                kept.extend(part.split())
            elif table is not None and table not in self._placed:
                self._place(table)
        if kept:
            self._lines.append(" ".join(kept))
        elif not line.strip():
            self._flush()

    def _table_of(self, key: str) -> int | None:
        """The first table whose rows contain ``key`` (whitespace aside)."""
        if not key:
            return None
        return next((index for index, table in enumerate(self._keys) if key in table), None)

    def _place(self, index: int) -> None:
        caption = self.tables[index].table.caption
        if caption:
            self._drop_caption_line(caption)
        self._flush()
        self._placed.add(index)
        self._out.append(table_block(self.tables[index].table))

    def _drop_caption_line(self, caption: str) -> None:
        """The caption right above a table (one line, or a label line and one more) travels
        with the table block."""
        if not self._lines and self._out and self._out[-1].kind == "text":
            self._lines = self._out.pop().text.split("\n")
        for count in (1, 2):
            if " ".join(self._lines[-count:]) == caption:
                del self._lines[-count:]
                break
        self._flush()

    def _flush(self) -> None:
        if self._lines:
            self._out.append(text_block("\n".join(self._lines), page=self.page))
            self._lines = []


def _reading_order(lines: list[str]) -> list[str]:
    """Layout lines with each column region unfolded: its left column, then its right (each
    unfolded again where it holds columns itself)."""
    out: list[str] = []
    start = 0
    while start < len(lines):
        end, gutter = _column_region(lines, start)
        if gutter is None:
            out.append(lines[start])
            start += 1
            continue
        region = lines[start:end]
        out.extend([*_reading_order([line[:gutter] for line in region]), ""])
        out.extend([*_reading_order([line[gutter:] for line in region]), ""])
        start = end
    return out


def _column_region(lines: list[str], start: int) -> tuple[int, int | None]:
    """The longest run of lines from ``start`` sharing a blank gutter, and its position.

    The gutter is ``None`` unless the run reads as columns of prose: at least
    ``_MIN_COLUMN_LINES`` lines with text on both sides, and neither side split again into
    short cells (aligned gaps between them mean a table, whose rows must stay whole; a side
    split into lines of prose is columns again).
    """
    if not lines[start].strip():
        return start + 1, None
    candidates = _gaps(lines[start])
    end = start + 1
    while end < len(lines) and candidates:
        narrowed = candidates & _gaps(lines[end])
        if lines[end].strip() and not narrowed:
            break
        candidates = narrowed if lines[end].strip() else candidates
        end += 1
    region = lines[start:end]
    gutter = _best_gutter(region, candidates)
    if gutter is None:
        return end, None
    left = [line[:gutter] for line in region]
    right = [line[gutter:] for line in region]
    if _splits_into_cells(left) or _splits_into_cells(right):
        return end, None
    return end, gutter


def _splits_into_cells(lines: list[str]) -> bool:
    """Whether the lines split again at a gutter into short pieces (a table's cells) rather
    than into lines of prose (a column's)."""
    gutter = _best_gutter(lines, _common_gaps(lines))
    if gutter is None:
        return False
    pieces = [len(part.strip()) for line in lines for part in (line[:gutter], line[gutter:])]
    return statistics.median([size for size in pieces if size]) < _MIN_PROSE_WIDTH


def _gaps(line: str) -> set[int]:
    """Positions (past the line's indent) where ``_GUTTER`` blanks start."""
    indent = len(line) - len(line.lstrip())
    return {
        index
        for index in range(indent + 1, len(line) + 1)
        if not line[index : index + _GUTTER].strip()
    }


def _common_gaps(lines: list[str]) -> set[int]:
    shared: set[int] | None = None
    for line in lines:
        if line.strip():
            shared = _gaps(line) if shared is None else shared & _gaps(line)
    return shared or set()


def _best_gutter(lines: list[str], candidates: set[int]) -> int | None:
    written = [line for line in lines if line.strip()]
    best, best_count = None, 0
    for gutter in sorted(candidates):
        count = sum(bool(line[:gutter].strip() and line[gutter:].strip()) for line in written)
        if count > best_count:
            best, best_count = gutter, count
    enough = best_count >= _MIN_COLUMN_LINES and best_count * 2 >= len(written)
    return best if enough else None


def _table_key(table: Table) -> str:
    """The table's caption and rows, each without whitespace, one per line."""
    rows = [[table.caption or ""], table.headers, *table.rows]
    return "\n".join(squeeze("".join(row)) for row in rows)
