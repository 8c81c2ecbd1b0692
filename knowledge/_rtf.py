"""Rich Text Format (``.rtf``) with striprtf: text in order, tables as tables.

striprtf follows the document's code page (``\\ansicpg949`` for Korean Word files), its
fonts' character sets and ``\\uN`` escapes, and skips pictures and other destinations. RTF
marks no headings a reader could trust (they are only bigger fonts), so the text is prose,
one block per paragraph. A table's cells end in ``\\cell`` and its rows in ``\\row``; the
lines they make are read back into a table whose first row is its headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from knowledge._markup import text_paragraphs
from knowledge._tables import grid_blocks
from knowledge.documents import Block
from knowledge.errors import ParseError

__all__ = ["read_rtf"]

_CELL = "|"  # what striprtf writes for \cell
_BRACES = re.compile(r"\\.|[{}]", re.DOTALL)


def read_rtf(path: Path) -> list[Block]:
    """The document's paragraphs and tables in order.

    Raises:
        ParseError: Not RTF, or cut short (its outer group never closes).
    """
    from striprtf.striprtf import rtf_to_text

    convert: Callable[..., str] = rtf_to_text  # striprtf's function has no annotations

    data = path.read_bytes()
    if not data.lstrip().startswith(b"{\\rtf"):
        raise ParseError("not an RTF document (it does not start with {\\rtf)")
    # RTF is 7-bit text; other bytes are \'hh escapes, which striprtf decodes by code page.
    source = data.decode("latin-1")
    if not _closed(source):
        raise ParseError("truncated RTF: the document's outer group never closes")
    text = convert(source, errors="replace").replace("\r\n", "\n")
    return _blocks(text)


def _closed(source: str) -> bool:
    """Whether the first group closes (``\\{``, ``\\}`` and ``\\\\`` are text, not braces)."""
    depth = 0
    for token in _BRACES.finditer(source):
        if token.group() == "{":
            depth += 1
        elif token.group() == "}":
            depth -= 1
            if depth == 0:
                return True
    return False


def _blocks(text: str) -> list[Block]:
    """Paragraphs, with each run of table lines (``a|b|c|``) as one table."""
    blocks: list[Block] = []
    prose: list[str] = []
    rows: list[list[str | None]] = []
    for line in [*text.split("\n"), ""]:
        if line.rstrip().endswith(_CELL):
            if prose:
                blocks.extend(text_paragraphs("\n".join(prose)))
                prose = []
            cells: list[str | None] = [c.strip() for c in line.rstrip()[:-1].split(_CELL)]
            rows.append(cells)
            continue
        if rows:
            blocks.extend(grid_blocks(rows, header_rows=1, caption=None))
            rows = []
        prose.append(line)
    if prose:
        blocks.extend(text_paragraphs("\n".join(prose)))
    return blocks
