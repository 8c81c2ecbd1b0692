"""How text lays out on every chat surface: monospace columns, aligned tables, safe cuts.

Neither Slack nor Discord draws a Markdown pipe table, so both show a table as aligned plain
text in a code block. Aligning needs each cell's width in a monospace font, where Hangul and
other wide characters take two columns and combining marks none. Cutting a message to a
platform's limit must not separate a character from the marks or joiners that belong to it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from markdown_it.tree import SyntaxTreeNode

__all__ = [
    "display_width",
    "grid_lines",
    "grid_width",
    "joins_previous",
    "pad",
    "plain_inline",
    "table_rows",
]


def display_width(text: str) -> int:
    """Columns a monospace font gives ``text``: wide (Hangul, CJK) 2, combining marks 0."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def pad(text: str, width: int, align: str) -> str:
    """``text`` padded with spaces to ``width`` columns, aligned "left", "right" or "center"."""
    gap = width - display_width(text)
    if align == "right":
        return " " * gap + text
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


def plain_inline(node: SyntaxTreeNode) -> str:
    """The text of a markdown-it inline node without its markup; line breaks become spaces."""
    if node.type in ("softbreak", "hardbreak"):
        return " "
    if node.type in ("text", "code_inline"):
        return node.content
    return "".join(plain_inline(child) for child in node.children)


def table_rows(table: SyntaxTreeNode) -> tuple[list[list[str]], list[str]]:
    """A markdown-it ``table`` node's cells as plain text (header row first) and the header's
    alignments ("left", "right", "center" or "")."""
    cells = [row.children for section in table.children for row in section.children]
    texts = [[" ".join(plain_inline(cell).split()) for cell in row] for row in cells]
    aligns = [str(cell.attrs.get("style", "")).removeprefix("text-align:") for cell in cells[0]]
    return texts, aligns


def _column_widths(rows: Sequence[Sequence[str]]) -> list[int]:
    count = max(len(row) for row in rows)
    return [max((display_width(r[i]) for r in rows if i < len(r)), default=0) for i in range(count)]


def grid_width(rows: Sequence[Sequence[str]]) -> int:
    """Columns the aligned grid of :func:`grid_lines` takes."""
    widths = _column_widths(rows)
    return sum(widths) + 3 * (len(widths) - 1)


def grid_lines(rows: Sequence[Sequence[str]], aligns: Sequence[str]) -> list[str]:
    """Rows drawn as an aligned grid: the header, a ``---+---`` rule, then the other rows.

    Columns are separated by `` | `` and padded by display width; lines have no trailing spaces.
    """
    widths = _column_widths(rows)
    lines = [
        " | ".join(pad(t, w, a) for t, w, a in zip(r, widths, aligns, strict=False)).rstrip()
        for r in rows
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return lines


def joins_previous(char: str) -> bool:
    """Whether ``char`` belongs to the character before it (marks, joiners, selectors, jamo),
    so that no cut may fall just before it."""
    code = ord(char)
    if code < 0x300:  # nothing below the combining diacritics joins
        return False
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or code == 0x200D  # zero-width joiner
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0x1160 <= code <= 0x11FF  # Hangul medial vowels and final consonants (NFD)
        or 0xDC00 <= code <= 0xDFFF  # a low surrogate, should one be present
    )
