"""PDF to blocks: PDFium's text laid out as printed for prose, pdfplumber for tables.

Each page's layout text (:mod:`knowledge._pdf_text`; pypdf's layout mode where PDFium
cannot read the page or finds no text on it) is put in reading order (column regions
unfolded, left column first), split into paragraphs on blank lines, and its runs of spaces
collapsed. Text that pdfplumber placed inside a table is dropped from the prose, and the
table block takes the place of its first row.

Cost: PDFium reads a page's text in milliseconds (pypdf, in the fallback, reads it again in
plain mode where layout mode is known to lose text). pdfplumber, which interprets every
character of a page, is run only on pages whose content stream paints enough lines to hold
a ruled table (a scan of the stream's operators, no interpretation) or whose text has
columns of figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pdfplumber
from pdfplumber.page import Page as PlumberPage
from pdfplumber.pdf import PDF as PlumberPDF  # noqa: N811
from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import PyPdfError

from knowledge._pdf_aligned import (
    find_aligned_tables,
    find_whitespace_tables,
    may_have_whitespace_table,
)
from knowledge._pdf_operators import PageOperators
from knowledge._pdf_prose import PageProse, squeeze
from knowledge._pdf_tables import PdfTable, find_pdf_tables
from knowledge._pdf_text import PdfiumText
from knowledge._tables import render_markdown
from knowledge.documents import Block, Table
from knowledge.errors import ParseError

__all__ = ["PdfContent", "continue_tables", "read_pdf"]


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
    pdfium = PdfiumText(path)
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ParseError("encrypted PDF: a password is needed", reason="encrypted")
        if not reader.pages:
            raise ParseError("corrupt or truncated PDF: no pages")
        blocks: list[Block] = []
        for number, page in enumerate(reader.pages, 1):
            text = pdfium.page_text(number - 1)
            blocks.extend(_page_blocks(page, plumber, number, text, pdfium))
        blocks = continue_tables(blocks)
        title = reader.metadata.title if reader.metadata else None
    except PyPdfError as exc:
        raise ParseError(f"corrupt or truncated PDF: {_reason(exc)}") from exc
    finally:
        _close(plumber)
        pdfium.close()
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


def _page_blocks(
    page: PageObject,
    plumber: PlumberPDF | None,
    number: int,
    text: str | None,
    pdfium: PdfiumText,
) -> list[Block]:
    """The page's prose and tables from its layout ``text`` (PDFium's; pypdf's where that is
    ``None`` or blank); pdfplumber reads the page only where a table may be: its operators
    paint lines and PDFium's paths of them make edges a ruled table can start from, or its
    text has columns of figures."""
    operators = PageOperators.of(page)
    if text is None or not text.strip():
        text = _page_text(page, operators)
    ruled = operators.may_have_ruled_table() and pdfium.may_hold_ruled_table(number - 1)
    finders = _TableFinders(ruled=ruled, whitespace=may_have_whitespace_table(text))
    plumber_page = _plumber_page(plumber, number) if finders.ruled or finders.whitespace else None
    tables: list[PdfTable] = []
    outside = ""
    if plumber_page is not None:
        tables, outside = _pdf_tables(plumber_page, number, finders)
        plumber_page.close()
    return PageProse(tables, squeeze(outside), number).blocks(text)


@dataclass(frozen=True)
class _TableFinders:
    """Which table finders a page needs: rules drawn, or whitespace-aligned figures."""

    ruled: bool
    whitespace: bool


def _page_text(page: PageObject, operators: PageOperators) -> str:
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
        if len(squeeze(text)) >= 0.9 * len(squeeze(plain)):
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


def _pdf_tables(
    page: PlumberPage, number: int, finders: _TableFinders
) -> tuple[list[PdfTable], str]:
    """The page's tables, and the text pdfplumber sees outside them."""
    try:
        tables: list[PdfTable] = []
        if finders.ruled:
            tables += find_pdf_tables(page, number)
            tables += find_aligned_tables(page, number, [item.bbox for item in tables])
        if finders.whitespace:
            tables += find_whitespace_tables(page, number, [item.bbox for item in tables])
        if not tables:
            return [], ""
        rest = page
        for item in tables:
            rest = rest.outside_bbox(item.bbox)
        return tables, rest.extract_text()
    except Exception:  # a table finder failure costs the tables, not the page's text
        return [], ""
