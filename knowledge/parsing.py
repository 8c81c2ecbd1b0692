"""Files to :class:`ParsedDocument`: PDF, Office and OpenDocument, EPUB, e-mail, web and text.

:func:`parse_file` is synchronous and CPU-bound; the caller runs it in a worker process with
a timeout. It returns a document or raises :class:`ParseError` whose message is one line a
user understands (no path, no traceback).

- PDF (:mod:`knowledge._pdf`): pypdf's layout-mode text for prose, pdfplumber for ruled
  tables; table text is not repeated as prose.
- DOCX (:mod:`knowledge._docx`): python-docx, in body order; ``Heading N``/``Title`` styles
  are headings.
- XLSX (:mod:`knowledge._xlsx`), PPTX (:mod:`knowledge._pptx`), ODT and ODS
  (:mod:`knowledge._odf`), EPUB (:mod:`knowledge._epub`), RTF (:mod:`knowledge._rtf`).
- EML and MSG (:mod:`knowledge._mail`): headers and body; attachments are parsed here too,
  each as a document of its own (:mod:`knowledge._attachments`).
- HTML and Markdown rendered by markdown-it-py (:mod:`knowledge._markup`): one HTML walker.
- TXT and CSV: UTF-8 (a BOM is fine; UTF-16 needs its BOM).

Whatever the format, the text, titles, headings and table cells that come back hold no NUL,
no other control character but tab and newline, and no lone surrogate.

unstructured's partitioners are not used: classifying a plain paragraph loads spaCy's
``en_core_web_sm`` and, when it is missing, downloads and installs it into site-packages at
run time, with no argument to turn that off; importing ``unstructured`` also sends a
telemetry request unless ``DO_NOT_TRACK`` is set.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath

from markdown_it import MarkdownIt

from knowledge._attachments import MAX_DEPTH, RawAttachment, parse_attachments
from knowledge._clean import clean_block, clean_text
from knowledge._docx import read_docx
from knowledge._epub import read_epub
from knowledge._mail import MailContent, read_eml, read_msg
from knowledge._markup import decode_html, decode_text, html_blocks, text_paragraphs
from knowledge._odf import read_odf
from knowledge._pdf import read_pdf
from knowledge._pptx import read_pptx
from knowledge._rtf import read_rtf
from knowledge._tables import build_table, table_block
from knowledge._xlsx import read_xlsx
from knowledge.documents import Block, ParsedDocument
from knowledge.errors import ParseError, cause_line

__all__ = ["SUPPORTED_SUFFIXES", "parse_file"]

_MIME_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".epub": "application/epub+zip",
    ".rtf": "application/rtf",
    ".eml": "message/rfc822",
    ".msg": "application/vnd.ms-outlook",
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_MIME_TYPES)

_KIB = 1024
_MIB = 1024 * 1024
_JUNK_TITLES = re.compile(
    r"^(untitled\b.*|title|(word |pdf )?document|slide \d+|microsoft word - .*"
    r"|.*\.(docx?|pdf|html?|indd|xlsx?|pptx?|txt|md))$",
    re.IGNORECASE,
)


@dataclass
class _Parsed:
    """What a format parser found: blocks (offsets and sections not set yet) and metadata."""

    blocks: list[Block]
    title: str | None = None
    pages: int | None = None
    empty_reason: str = "no text found in the document"
    attachments: list[RawAttachment] = field(default_factory=list)


def parse_file(
    path: Path, *, max_bytes: int = 50 * 1024 * 1024, name: str | None = None
) -> ParsedDocument:
    """Parse one file into blocks of headings, prose and tables, in reading order.

    Args:
        path: The file; its suffix (case-insensitive) picks the parser.
        max_bytes: Files larger than this are refused before being read, and so are
            documents with more characters of text than this: a compressed format may not
            unpack to more text than the largest plain file accepted, which keeps the work
            after parsing (chunking, embedding) bounded.
        name: The file's name as its user knows it (default: the path's).

    Returns:
        The document; ``text`` is the blocks' texts joined by blank lines and each block's
        ``char_start``/``char_end`` index its text there. An e-mail's attachments are
        parsed too, each on its own, in ``attachments``.

    Raises:
        ParseError: The file is unsupported, empty, too big, encrypted, corrupt or has no
            text; the message says which in one line.
    """
    return _parse(path, name or path.name, max_bytes, 0)


def _parse(path: Path, name: str, max_bytes: int, depth: int) -> ParsedDocument:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        message = f"unsupported file type {suffix or '(no extension)'}"
        raise ParseError(message, reason="unsupported")
    _check_size(path, max_bytes)
    parser = _PARSERS[suffix]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # parser libraries warn about every oddity
            parsed = parser(path)
    except ParseError:
        raise
    except MemoryError:
        raise ParseError("too large to parse in memory", reason="too_large") from None
    except Exception as exc:
        raise ParseError(f"cannot parse this {_LABELS[suffix]}: {cause_line(exc, path)}") from exc
    document = _assemble(name, suffix, _cleaned(parsed), max_chars=max_bytes)
    if parsed.attachments and depth < MAX_DEPTH:
        document.attachments = parse_attachments(
            parsed.attachments, _parse, max_bytes=max_bytes, depth=depth
        )
    return document


def _cleaned(parsed: _Parsed) -> _Parsed:
    """Every format's output through the one cleaner: no NUL, control or lone surrogate
    reaches the store, whichever parser read the file (see :mod:`knowledge._clean`)."""
    title = clean_text(parsed.title).strip() if parsed.title else None
    blocks = [clean_block(block) for block in parsed.blocks]
    return replace(parsed, blocks=blocks, title=title or None)


def _check_size(path: Path, max_bytes: int) -> None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ParseError("file not found", reason="unreadable") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ParseError(f"cannot read the file ({reason})", reason="unreadable") from None
    if not path.is_file():
        raise ParseError("not a regular file", reason="unreadable")
    if stat.st_size == 0:
        raise ParseError("empty file (0 bytes)", reason="empty")
    if stat.st_size > max_bytes:
        limit = f"{_size(stat.st_size)} > {_size(max_bytes)}"
        raise ParseError(f"over the size limit ({limit})", reason="too_large")


def _size(count: int) -> str:
    if count >= _MIB:
        return f"{count / _MIB:.1f} MB"
    if count >= _KIB:
        return f"{count / _KIB:.1f} KB"
    return f"{count} bytes"


def _assemble(name: str, suffix: str, parsed: _Parsed, *, max_chars: int) -> ParsedDocument:
    """Number the blocks into one text, give each its section, and pick the title."""
    length = sum(len(block.text) for block in parsed.blocks)
    if length > max_chars:
        limit = f"{length:,} characters, over the limit of {max_chars:,}"
        raise ParseError(f"too much text ({limit})", reason="too_large")
    blocks: list[Block] = []
    section: str | None = None
    position = 0
    for block in parsed.blocks:
        text = block.text.strip()
        if not text:
            continue
        if block.kind == "heading":
            section = text
        start = position + 2 if blocks else 0
        blocks.append(
            replace(block, text=text, section=section, char_start=start, char_end=start + len(text))
        )
        position = start + len(text)
    if not blocks:
        raise ParseError(parsed.empty_reason, reason="no_text")
    first_heading = next((block.text for block in blocks if block.kind == "heading"), None)
    return ParsedDocument(
        source=clean_text(name),  # a name that is not UTF-8 holds surrogates
        title=parsed.title or first_heading or clean_text(PurePath(name).stem),
        mime_type=_MIME_TYPES[suffix],
        text="\n\n".join(block.text for block in blocks),
        blocks=blocks,
        pages=parsed.pages,
    )


def _meaningful_title(value: object) -> str | None:
    """A metadata title worth showing (not "Untitled", "Microsoft Word - x.doc", a file name)."""
    if not isinstance(value, str):
        return None
    title = " ".join(value.split())
    if len(title) < 3 or not any(char.isalpha() for char in title) or _JUNK_TITLES.match(title):
        return None
    return title


# --- PDF, HTML and Markdown ------------------------------------------------------------


def _parse_pdf(path: Path) -> _Parsed:
    content = read_pdf(path)
    empty = "no text layer (scanned or image-only PDF)"
    title = _meaningful_title(content.title)
    return _Parsed(blocks=content.blocks, title=title, pages=content.pages, empty_reason=empty)


def _parse_html(path: Path) -> _Parsed:
    blocks, title = html_blocks(decode_html(path.read_bytes()))
    return _Parsed(blocks=blocks, title=_meaningful_title(title))


def _parse_markdown(path: Path) -> _Parsed:
    renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    blocks, _ = html_blocks(renderer.render(decode_text(path.read_bytes())))
    return _Parsed(blocks=blocks)  # the title is the first heading


# --- DOCX -------------------------------------------------------------------------------


def _parse_docx(path: Path) -> _Parsed:
    blocks, title = read_docx(path)
    return _Parsed(blocks=blocks, title=_meaningful_title(title))


# --- Plain text and CSV -----------------------------------------------------------------


def _parse_txt(path: Path) -> _Parsed:
    return _Parsed(blocks=text_paragraphs(decode_text(path.read_bytes())))


def _parse_csv(path: Path) -> _Parsed:
    text = decode_text(path.read_bytes())
    try:
        grid: list[list[str | None]] = [
            list(row) for row in csv.reader(io.StringIO(text), delimiter=_csv_delimiter(text))
        ]
    except csv.Error as exc:
        raise ParseError(f"malformed CSV: {exc}") from None
    grid = [row for row in grid if any(cell and cell.strip() for cell in row)]
    table = build_table(grid) if grid else None
    return _Parsed(blocks=[table_block(table)] if table is not None else [])


def _parse_xlsx(path: Path) -> _Parsed:
    blocks, title = read_xlsx(path)
    return _Parsed(blocks=blocks, title=_meaningful_title(title))


# --- Formats read by their own modules --------------------------------------------------


def _parse_pptx(path: Path) -> _Parsed:
    blocks, title, slides = read_pptx(path)
    return _Parsed(blocks=blocks, title=_meaningful_title(title), pages=slides)


def _parse_odf(path: Path) -> _Parsed:
    blocks, title = read_odf(path)
    return _Parsed(blocks=blocks, title=_meaningful_title(title))


def _parse_epub(path: Path) -> _Parsed:
    blocks, title = read_epub(path)
    return _Parsed(blocks=blocks, title=_meaningful_title(title))


def _parse_rtf(path: Path) -> _Parsed:
    return _Parsed(blocks=read_rtf(path))


def _parse_mail(content: MailContent) -> _Parsed:
    # A subject is the message's title even when it looks like a file name ("report.pdf").
    return _Parsed(blocks=content.blocks, title=content.subject, attachments=content.attachments)


def _parse_eml(path: Path) -> _Parsed:
    return _parse_mail(read_eml(path))


def _parse_msg(path: Path) -> _Parsed:
    return _parse_mail(read_msg(path))


def _csv_delimiter(text: str) -> str:
    """csv.Sniffer's guess among comma, semicolon and tab; else the header's commonest."""
    try:
        return csv.Sniffer().sniff(text[: 64 * _KIB], delimiters=",;\t").delimiter
    except csv.Error:
        header = text.split("\n", 1)[0]
        return max(",;\t", key=header.count)


_PARSERS: dict[str, Callable[[Path], _Parsed]] = {
    ".pdf": _parse_pdf,
    ".docx": _parse_docx,
    ".html": _parse_html,
    ".htm": _parse_html,
    ".md": _parse_markdown,
    ".markdown": _parse_markdown,
    ".txt": _parse_txt,
    ".csv": _parse_csv,
    ".xlsx": _parse_xlsx,
    ".pptx": _parse_pptx,
    ".odt": _parse_odf,
    ".ods": _parse_odf,
    ".epub": _parse_epub,
    ".rtf": _parse_rtf,
    ".eml": _parse_eml,
    ".msg": _parse_msg,
}
_LABELS = {
    ".pdf": "PDF",
    ".docx": "Word document",
    ".html": "HTML page",
    ".htm": "HTML page",
    ".md": "Markdown file",
    ".markdown": "Markdown file",
    ".txt": "text file",
    ".csv": "CSV file",
    ".xlsx": "Excel workbook",
    ".pptx": "PowerPoint presentation",
    ".odt": "OpenDocument text",
    ".ods": "OpenDocument spreadsheet",
    ".epub": "EPUB book",
    ".rtf": "RTF document",
    ".eml": "e-mail message",
    ".msg": "Outlook message",
}
