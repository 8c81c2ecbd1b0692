"""PDF to blocks: pypdf's layout-mode text for prose, pdfplumber for ruled tables.

Each page's layout text is put in reading order (two-column regions unfolded, left column
first), split into paragraphs on blank lines, and its runs of spaces collapsed. Text that
pdfplumber placed inside a table is dropped from the prose, and the table block takes the
place of its first row.

Cost: a page's text is extracted once, in layout mode, unless that is known to lose text
(then plain mode decides). pdfplumber, which interprets every character of a page, is run
only on pages whose content stream paints enough lines to hold a ruled table (a scan of
the stream's operators, no interpretation).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pdfplumber
from pdfplumber.page import Page as PlumberPage
from pdfplumber.pdf import PDF as PlumberPDF  # noqa: N811
from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import PyPdfError

from knowledge._tables import (
    PdfTable,
    find_pdf_tables,
    render_markdown,
    table_block,
    text_block,
)
from knowledge.documents import Block, Table
from knowledge.errors import ParseError

__all__ = ["PdfContent", "continue_tables", "read_pdf"]

_SEGMENT_GAP = re.compile(r"\s{3,}")
# Layout text: blanks between two columns, and lines with text on both sides to call it so.
_GUTTER = 3
_MIN_COLUMN_LINES = 4


@dataclass(frozen=True)
class PdfContent:
    """A PDF's blocks in reading order, its metadata title (raw) and its page count."""

    blocks: list[Block]
    title: str | None
    pages: int


def read_pdf(path: Path) -> PdfContent:
    """The PDF's blocks page by page, its metadata title and its page count.

    Raises:
        ParseError: Not a PDF, encrypted with a user password, or unreadable.
    """
    with path.open("rb") as handle:
        if b"%PDF-" not in handle.read(1024):
            raise ParseError("not a PDF file (no %PDF header)")
    plumber = _open_plumber(path)
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ParseError("encrypted PDF: a password is needed", reason="encrypted")
        if not reader.pages:
            raise ParseError("corrupt or truncated PDF: no pages")
        blocks: list[Block] = []
        for number, page in enumerate(reader.pages, 1):
            operators = _PageOperators.of(page)
            ruled = plumber is not None and operators.may_have_ruled_table()
            plumber_page = _plumber_page(plumber, number) if ruled else None
            blocks.extend(_page_blocks(page, operators, plumber_page, number))
        blocks = continue_tables(blocks)
        title = reader.metadata.title if reader.metadata else None
    except PyPdfError as exc:
        raise ParseError(f"corrupt or truncated PDF: {_reason(exc)}") from exc
    finally:
        _close(plumber)
    title = title if isinstance(title, str) else None
    return PdfContent(blocks=blocks, title=title, pages=len(reader.pages))


def continue_tables(blocks: list[Block]) -> list[Block]:
    """Blocks where a table carried over from the previous page reads with that table's
    headers and caption.

    A long table printed over several pages repeats its header row on the first page only;
    pdfplumber sees one table per page and takes each page's first data row for headers, so
    every row after page 1 would read "07/17/2015: 08/03/2015 | Boeing Company: Safeway".
    A page's first table continues the previous page's last table when both have the same
    columns, the previous table's headers hold no figures (so they surely are headers), and
    this table's "header" row is shaped like the previous table's rows: figures in the same
    columns as its last row. A repeated header row is a header (nothing to do); all-text
    tables stay as found (nothing tells a carried-over row from a header there).
    """
    out = list(blocks)
    previous: Table | None = None
    for index, block in enumerate(out):
        table = block.table
        if block.kind != "table" or table is None or table.page is None:
            continue
        # The previous table is on the previous page: this is the first table of its page.
        if previous is not None and _continues(previous, table):
            table = replace(
                previous, rows=[_cells_of_header(table.headers), *table.rows], page=table.page
            )
            out[index] = replace(block, table=table, text=render_markdown(table))
        previous = table
    return out


def _continues(before: Table, after: Table) -> bool:
    if after.page != (before.page or 0) + 1 or not before.rows:
        return False
    if len(after.headers) != len(before.headers) or after.headers == before.headers:
        return False
    if any(_digit_shape(before.headers)):  # headers without figures are surely headers
        return False
    shape = _digit_shape(_cells_of_header(after.headers))
    return any(shape) and shape == _digit_shape(before.rows[-1])


def _cells_of_header(headers: list[str]) -> list[str]:
    """Header cells as the row they were read from: a named-for-position ``Column N`` was empty."""
    return ["" if cell == f"Column {n}" else cell for n, cell in enumerate(headers, 1)]


def _digit_shape(cells: list[str]) -> tuple[bool, ...]:
    return tuple(any(char.isdigit() for char in cell) for cell in cells)


def _reason(exc: Exception) -> str:
    """The first line of pypdf's message (pypdf does not put the path in it)."""
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    return reason if len(reason) <= 100 else reason[:97] + "..."


def _open_plumber(path: Path) -> PlumberPDF | None:
    """pdfplumber on the same file, or ``None`` where pdfminer cannot read it (no tables)."""
    try:
        return pdfplumber.open(path, password="")
    except Exception:
        return None


def _close(plumber: PlumberPDF | None) -> None:
    if plumber is None:
        return
    try:
        plumber.close()
    except Exception:  # close() walks every page, and a broken page tree fails there too
        plumber.stream.close()


def _plumber_page(plumber: PlumberPDF | None, number: int) -> PlumberPage | None:
    try:
        return plumber.pages[number - 1] if plumber and number <= len(plumber.pages) else None
    except Exception:  # pdfminer failing on a page costs that page's tables only
        return None


@dataclass(frozen=True)
class _PageOperators:
    """What a page's content stream (and the forms it draws) does, counted cheaply.

    ``None`` counts mean the stream could not be read: every check then answers yes.
    """

    counts: Counter[bytes] | None
    text_in_forms: bool

    @classmethod
    def of(cls, page: PageObject) -> _PageOperators:
        """Scan the page's operators (a few milliseconds; nothing is interpreted)."""
        try:
            contents = page.get_contents()
            if contents is None:
                return cls(Counter(), text_in_forms=False)
            own, forms = _operators(contents.get_data(), page.get("/Resources"), depth=0)
        except Exception:
            return cls(None, text_in_forms=True)
        text_in_forms = any(forms[op] for op in _TEXT_OPERATORS)
        return cls(own + forms, text_in_forms=text_in_forms)

    def may_have_ruled_table(self) -> bool:
        """Whether the page paints enough lines for pdfplumber to find a ruled table.

        pdfplumber reads every object of a page (each character included) before it looks
        for tables, which is most of the cost of parsing a PDF. Its line strategy needs two
        rows and two columns: three rules of one direction and three of the other, or three
        horizontal rules and one vertical (it is told where the missing outer sides are). A
        page painting fewer than four segments cannot hold one (a rectangle counts two: it
        gives two of each direction).
        """
        if self.counts is None:
            return True
        painted = sum(self.counts[op] for op in _PAINT_OPERATORS)
        segments = sum(self.counts[op] for op in _SEGMENT_OPERATORS)
        return painted > 0 and segments + 2 * self.counts[b"re"] >= 4


# Strings are blanked before tokenizing, so that text cannot pass for an operator; what is
# left can over-count (inline image data), which costs time, never a table or text.
_PDF_STRING = re.compile(rb"\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>")
_PDF_TOKEN = re.compile(rb"/[^\s()<>\[\]{}/%]*|[^\s()<>\[\]{}/%]+")
_PAINT_OPERATORS = (b"S", b"s", b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*")
_SEGMENT_OPERATORS = (b"l", b"c", b"v", b"y", b"h")
_TEXT_OPERATORS = (b"Tj", b"TJ", b"'", b'"')
_MAX_FORM_DEPTH = 8


def _operators(data: bytes, resources: Any, *, depth: int) -> tuple[Counter[bytes], Counter[bytes]]:
    """Token counts of a content stream, and those of the forms it draws (recursively)."""
    tokens = _PDF_TOKEN.findall(_PDF_STRING.sub(b" ", data))
    own = Counter(tokens)
    forms: Counter[bytes] = Counter()
    if not own[b"Do"] or depth >= _MAX_FORM_DEPTH or resources is None:
        return own, forms
    xobjects = resources.get_object().get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else {}
    drawn = {name for name, op in itertools.pairwise(tokens) if op == b"Do" and name[:1] == b"/"}
    for name in drawn:
        form = xobjects.get(name.decode("latin-1"))
        form = form.get_object() if form is not None else None
        if form is not None and form.get("/Subtype") == "/Form":
            inner = form.get("/Resources", resources)
            counts, deeper = _operators(form.get_data(), inner, depth=depth + 1)
            forms.update(counts)
            forms.update(deeper)
    return own, forms


def _page_blocks(
    page: PageObject, operators: _PageOperators, plumber_page: PlumberPage | None, number: int
) -> list[Block]:
    tables: list[PdfTable] = []
    outside = ""
    if plumber_page is not None:
        tables, outside = _pdf_tables(plumber_page, number)
        plumber_page.close()
    return _PageProse(tables, _squeeze(outside), number).blocks(_page_text(page, operators))


def _page_text(page: PageObject, operators: _PageOperators) -> str:
    """Layout-mode text, unless layout mode lost text that plain mode finds.

    Layout mode drops rotated text (whole pages of it, when a page is drawn with a rotated
    matrix) and gives up on some fonts, and pypdf logs a warning for both; it also skips
    text drawn inside forms (XObjects), silently. A page with none of these is extracted
    once; only the others are compared with plain mode (and with layout mode keeping
    rotated text).
    """
    with _PypdfWarnings() as warned:
        text = _extract(page, {"extraction_mode": "layout"})
    if not warned.count and not operators.text_in_forms and text.strip():
        return text
    plain = _extract(page, {})
    for options in ({}, {"layout_mode_strip_rotated": False}):
        if options:
            text = _extract(page, {"extraction_mode": "layout", **options})
        if len(_squeeze(text)) >= 0.9 * len(_squeeze(plain)):
            return text
    return plain


class _PypdfWarnings(logging.Handler):
    """Counts the warnings pypdf logs inside a ``with`` block.

    When pypdf's logger would drop warnings (logging disabled, a higher level), every
    extraction counts as warned, so the caller falls back to comparing with plain mode.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self._logger = logging.getLogger("pypdf")

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1

    def __enter__(self) -> _PypdfWarnings:
        if not self._logger.isEnabledFor(logging.WARNING):
            self.count = 1
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)


def _extract(page: PageObject, options: dict[str, Any]) -> str:
    try:
        return page.extract_text(**options)
    except Exception:  # pypdf gives up on some fonts and content streams
        return ""


def _squeeze(text: str) -> str:
    """The text without whitespace: pypdf and pdfplumber space words differently."""
    return "".join(text.split())


def _pdf_tables(page: PlumberPage, number: int) -> tuple[list[PdfTable], str]:
    """The page's tables, and the text pdfplumber sees outside them."""
    try:
        tables = find_pdf_tables(page, number)
        if not tables:
            return [], ""
        rest = page
        for item in tables:
            rest = rest.outside_bbox(item.bbox)
        return tables, rest.extract_text()
    except Exception:  # a table finder failure costs the tables, not the page's text
        return [], ""


@dataclass
class _PageProse:
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
        found = [(part, self._table_of(_squeeze(part))) for part in _SEGMENT_GAP.split(line)]
        # A segment that also occurs outside the tables is table text only on a line where
        # another segment is unmistakably text of the same table.
        sure = {
            table
            for part, table in found
            if table is not None and _squeeze(part) not in self.outside
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
        """The caption line right above a table travels with the table block."""
        if self._lines:
            if self._lines[-1] == caption:
                self._lines.pop()
            return
        if self._out and self._out[-1].kind == "text":
            *rest, last = self._out[-1].text.split("\n")
            if last == caption:
                self._out.pop()
                if rest:
                    self._out.append(text_block("\n".join(rest), page=self.page))

    def _flush(self) -> None:
        if self._lines:
            self._out.append(text_block("\n".join(self._lines), page=self.page))
            self._lines = []


def _reading_order(lines: list[str]) -> list[str]:
    """Layout lines with each two-column region unfolded: its left column, then its right."""
    out: list[str] = []
    start = 0
    while start < len(lines):
        end, gutter = _column_region(lines, start)
        if gutter is None:
            out.append(lines[start])
            start += 1
            continue
        region = lines[start:end]
        out.extend([*(line[:gutter] for line in region), ""])
        out.extend([*(line[gutter:] for line in region), ""])
        start = end
    return out


def _column_region(lines: list[str], start: int) -> tuple[int, int | None]:
    """The longest run of lines from ``start`` sharing a blank gutter, and its position.

    The gutter is ``None`` unless the run reads as two columns of prose: at least
    ``_MIN_COLUMN_LINES`` lines with text on both sides, and neither side split again
    (aligned gaps on a side mean a table, whose rows must stay whole).
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
    if _best_gutter(left, _common_gaps(left)) or _best_gutter(right, _common_gaps(right)):
        return end, None
    return end, gutter


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
    return "\n".join(_squeeze("".join(row)) for row in rows)
