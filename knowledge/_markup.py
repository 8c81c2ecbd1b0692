"""HTML (and Markdown rendered to HTML) to blocks, and the text decoding rules.

The walker is the standard library's lenient ``HTMLParser``: headings ``<h1>``-``<h6>``
become heading blocks, block-level elements become paragraphs, ``<br>`` a line break,
``<pre>`` keeps its lines, and ``<table>`` a table block with spans repeated (a nested
table becomes text in its cell). Scripts, styles and other non-text elements are skipped.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from knowledge._tables import HtmlTable, grid_blocks, text_block
from knowledge.documents import Block
from knowledge.errors import ParseError

__all__ = ["decode_html", "decode_text", "html_blocks", "text_paragraphs"]

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_SKIPPED = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas"}
)
_BLOCKS = frozenset(
    {"address", "article", "aside", "blockquote", "body", "dd", "details", "dialog", "div"}
    | {"dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup"}
    | {"hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "ul", "html"}
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BREAK = "\x00"


class _HtmlBlocks(HTMLParser):
    """Walks HTML into heading, paragraph and table blocks (lenient about unclosed tags)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[Block] = []
        self.title: list[str] = []
        self._buffer: list[str] = []
        self._skip = 0
        self._in_title = False
        self._in_heading = False
        self._pre = 0
        self._in_caption = False
        self._tables: list[HtmlTable] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in {"table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption"}:
            self._table_start(tag, dict(attrs))
        elif self._tables:
            self._tables[-1].add_text(" ")
        elif tag == "br":
            self._buffer.append(_BREAK)
        elif tag in _BLOCKS or tag in _HEADINGS:
            self._flush()
            self._in_heading = tag in _HEADINGS
            if tag == "pre":
                self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIPPED:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in {"table", "thead", "caption"}:
            self._table_end(tag)
        elif self._tables:
            self._tables[-1].add_text(" ")
        elif tag in _BLOCKS or tag in _HEADINGS:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title.append(data)
        elif self._tables and self._in_caption:
            self._tables[-1].caption.append(data)
        elif self._tables:
            self._tables[-1].add_text(data)
        else:
            self._buffer.append(data)

    def close(self) -> None:
        """Finish the document: emit what is still open."""
        super().close()
        while self._tables:
            self._table_end("table")
        self._flush()

    def _table_start(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "table":
            if not self._tables:
                self._flush()
            self._tables.append(HtmlTable())
            return
        if not self._tables:
            return
        table = self._tables[-1]
        if tag in {"td", "th"}:
            table.start_cell(
                header=tag == "th", colspan=attrs.get("colspan"), rowspan=attrs.get("rowspan")
            )
        elif tag == "tr":
            table.start_row()
        elif tag == "caption":
            self._in_caption = True
        else:
            table.in_head = tag == "thead"

    def _table_end(self, tag: str) -> None:
        if not self._tables:
            return
        if tag == "caption":
            self._in_caption = False
        elif tag == "thead":
            self._tables[-1].in_head = False
        else:
            self._in_caption = False
            self._close_table(self._tables.pop())

    def _close_table(self, table: HtmlTable) -> None:
        grid = table.grid()
        if self._tables:  # a nested table becomes text in its parent's cell
            self._tables[-1].add_text(" " + " ".join(cell or "" for row in grid for cell in row))
            return
        caption = " ".join(" ".join(table.caption).split()) or None
        self.out.extend(grid_blocks(grid, header_rows=table.header_rows(), caption=caption))

    def _flush(self) -> None:
        raw = "".join(self._buffer)
        self._buffer = []
        if self._pre:
            lines = [line.rstrip() for line in raw.replace(_BREAK, "\n").split("\n")]
            text = "\n".join(lines).strip("\n")
        else:
            text = "\n".join(" ".join(part.split()) for part in raw.split(_BREAK)).strip()
        if text.strip():
            if self._in_heading:
                self.out.append(Block(kind="heading", text=" ".join(text.split())))
            else:
                self.out.append(text_block(text))
        self._in_heading = False


def html_blocks(html: str) -> tuple[list[Block], str]:
    """The page's heading, paragraph and table blocks, and its ``<title>`` text."""
    walker = _HtmlBlocks()
    walker.feed(html)
    walker.close()
    return walker.out, " ".join(" ".join(walker.title).split())


def text_paragraphs(text: str) -> list[Block]:
    """Plain text as prose blocks, one per paragraph (blank-line separated)."""
    paragraphs = re.split(r"\n[ \t\f\v]*\n", text)
    return [
        text_block("\n".join(line.rstrip() for line in paragraph.strip("\n").split("\n")))
        for paragraph in paragraphs
    ]


def decode_html(data: bytes) -> str:
    """A BOM, else UTF-8, else the charset the page declares in a ``<meta>`` tag."""
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return decode_text(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        declared = _META_CHARSET.search(data[:4096])
        if declared is None:
            raise ParseError(_not_utf8(data, exc, 0), reason="not_text") from None
        charset = declared.group(1).decode("ascii")
    try:
        return data.decode(charset)
    except LookupError:
        raise ParseError(f"unknown character set {charset[:40]}", reason="not_text") from None
    except UnicodeDecodeError:
        message = f"text does not match its declared character set {charset}"
        raise ParseError(message, reason="not_text") from None


# A stray NUL in a text file (a tool's padding, a pasted control code) is cleaned away with
# the other controls; many are binary data or UTF-16 without its BOM (every other byte).
_MAX_NUL_SHARE = 0.1


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with a BOM; newlines normalized to ``\\n``."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            message = "not valid UTF-16 text (truncated or corrupt)"
            raise ParseError(message, reason="not_text") from None
    else:
        skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
        try:
            text = data[skip:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(_not_utf8(data, exc, skip), reason="not_text") from None
    if text.count("\x00") > len(text) * _MAX_NUL_SHARE:
        raise ParseError("binary data, not text (NUL bytes)", reason="not_text")
    # Dropped here, not only by the cleaner after parsing: markdown-it would turn each into
    # U+FFFD, in the middle of the word it split.
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


def _not_utf8(data: bytes, exc: UnicodeDecodeError, skip: int) -> str:
    offset = exc.start + skip
    return f"not UTF-8 text (invalid byte 0x{data[offset]:02x} at offset {offset})"
