"""What a parser produces: a document as blocks in reading order, tables kept as tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Block", "ParsedDocument", "Table", "document_from_text"]


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
    """A whole parsed file."""

    source: str
    title: str
    mime_type: str
    text: str
    blocks: list[Block] = field(default_factory=list)
    pages: int | None = None


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
