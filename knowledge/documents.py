"""What a parser produces: a document as blocks in reading order, tables kept as tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from knowledge.errors import ParseError

__all__ = ["Attachment", "Block", "ParsedDocument", "Table", "document_from_text"]


@dataclass(frozen=True)
class Table:
    """A table as header cells and rows of cells (strings, whitespace-normalized).

    ``headers`` has one entry per column (merged or multi-line header cells joined with a
    space; an empty header becomes ``"Column N"``, but the first column's stays empty: it
    holds the rows' labels); every row has ``len(headers)`` cells.
    """

    headers: list[str]
    rows: list[list[str]]
    caption: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class Block:
    """A heading, a paragraph (or a few) of prose, or a table, with where it came from.

    ``char_start``/``char_end`` index into :attr:`ParsedDocument.text`, which is the
    document's text in reading order (tables included as Markdown), so a citation can
    point at the exact span. ``section`` is the nearest heading above the block.
    """

    kind: Literal["heading", "text", "table"]
    text: str
    page: int | None = None
    section: str | None = None
    char_start: int = 0
    char_end: int = 0
    table: Table | None = None


@dataclass
class ParsedDocument:
    """A whole parsed file.

    ``attachments`` are the files a message carries (an e-mail's), each parsed on its own:
    the ingest stores every one as a document of its own, named after the message.
    """

    source: str
    title: str
    mime_type: str
    text: str
    blocks: list[Block] = field(default_factory=list)
    pages: int | None = None
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class Attachment:
    """A file attached to a document: parsed (``document``) or refused (``error``).

    ``name`` is unique within its message (a repeated name gets `` (2)``); an attachment
    of an attached message is named through it (``forwarded.eml#report.pdf``).
    """

    name: str
    digest: str  # SHA-256 of the attachment's bytes
    size_bytes: int
    document: ParsedDocument | None = None
    error: ParseError | None = None


def document_from_text(
    source: str, title: str, text: str, *, mime_type: str = "text/plain"
) -> ParsedDocument:
    """A document from plain text: one text block per paragraph (blank-line separated)."""
    blocks: list[Block] = []
    parts: list[str] = []
    offset = 0
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        if parts:
            offset += 2
        blocks.append(Block("text", paragraph, char_start=offset, char_end=offset + len(paragraph)))
        parts.append(paragraph)
        offset += len(paragraph)
    return ParsedDocument(source, title, mime_type, "\n\n".join(parts), blocks)
