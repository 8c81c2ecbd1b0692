"""Text that PostgreSQL, the tokenizers and a terminal all accept, for every format.

Parsers hand over what the file holds, and files hold odd things: a NUL in a PDF's
metadata title (image tools write UTF-16 titles into byte strings), a form feed between
pages, a lone surrogate from a file name that is not UTF-8. PostgreSQL refuses NUL in text
and psycopg cannot encode a surrogate, so one such character would make the whole write
fail. :func:`clean_text` runs on everything a parser returns, at one place
(:func:`knowledge.parsing.parse_file`), so no format can forget it.
"""

from __future__ import annotations

import re
from dataclasses import replace

from knowledge.documents import Block, Table

__all__ = ["clean_block", "clean_text"]

# C0 controls but tab and newline, DEL, C1 controls, and UTF-16 surrogates (in a Python
# str a surrogate is always unpaired or half of a pair that was never joined).
_SUSPECT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Line breaks of other systems and page or line feeds become newlines; the other controls
# carry no text and go (a NUL between the letters of a UTF-16 title read as bytes).
_LINE_BREAKS = {ord("\v"): "\n", ord("\f"): "\n", ord("\r"): "\n", 0x85: "\n"}
_DROPPED = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)])
_TABLE: dict[int, str | None] = {**_DROPPED, **_LINE_BREAKS, ord("\t"): "\t", ord("\n"): "\n"}


def clean_text(text: str) -> str:
    """``text`` without NUL and other control characters (tab and newline kept; carriage
    returns, form and line feeds as newlines) and with lone surrogates as U+FFFD."""
    if not _SUSPECT.search(text):
        return text
    if _SURROGATE.search(text):
        # A high and low surrogate side by side are one character written in two halves.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.replace("\r\n", "\n").translate(_TABLE)


def clean_block(block: Block) -> Block:
    """The block with :func:`clean_text` applied to its text, section and table cells."""
    table = block.table
    if table is not None:
        table = Table(
            headers=[clean_text(cell) for cell in table.headers],
            rows=[[clean_text(cell) for cell in row] for row in table.rows],
            caption=None if table.caption is None else clean_text(table.caption),
            page=table.page,
        )
    section = None if block.section is None else clean_text(block.section)
    return replace(block, text=clean_text(block.text), section=section, table=table)
