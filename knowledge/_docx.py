"""DOCX to blocks: python-docx, in body order; ``Heading N``/``Title`` styles are headings.

Tables are read cell by cell (a table nested in a cell is read into that cell); a header
cell spanning the first row's columns makes the first two rows the header.
"""

from __future__ import annotations

import itertools
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table as DocxTable
from docx.table import _Cell
from docx.text.paragraph import Paragraph

from knowledge._archives import check_zip_file
from knowledge._tables import grid_blocks, text_block
from knowledge.documents import Block
from knowledge.errors import ParseError, cause_line

__all__ = ["read_docx"]


def read_docx(path: Path) -> tuple[list[Block], str | None]:
    """The document's blocks and its core-properties title (raw).

    Raises:
        ParseError: An old ``.doc``, an unsafe or corrupt package.
    """
    with path.open("rb") as handle:
        magic = handle.read(8)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise ParseError("old Word .doc format (save it as .docx)", reason="unsupported")
    check_zip_file(path, kind="DOCX")
    try:
        document = docx.Document(str(path))
    except PackageNotFoundError as exc:
        raise ParseError("corrupt or truncated DOCX: not a Word package (zip)") from exc
    except (zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise ParseError(f"corrupt or truncated DOCX: {cause_line(exc, path)}") from exc
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        blocks.extend(_docx_item(item))
    return blocks, document.core_properties.title


def _docx_item(item: Paragraph | DocxTable) -> Iterator[Block]:
    if isinstance(item, Paragraph):
        text = item.text.strip()
        if text:
            style = (item.style.name or "") if item.style is not None else ""
            heading = style.lower().startswith(("heading", "title", "제목"))
            if heading:
                yield Block(kind="heading", text=" ".join(text.split()))
            else:
                yield text_block(text)
    elif isinstance(item, DocxTable):
        yield from _docx_table(item)


def _docx_table(table: DocxTable) -> Iterator[Block]:
    grid: list[list[str | None]] = []
    first_row_spans = False
    for row in table.rows:
        cells = row.cells
        if not grid:
            first_row_spans = any(a._tc is b._tc for a, b in itertools.pairwise(cells))
        values: list[str | None] = [_docx_cell_text(cell) for cell in cells]
        grid.append([""] * row.grid_cols_before + values + [""] * row.grid_cols_after)
    header_rows = 2 if first_row_spans and len(grid) > 2 else 1
    yield from grid_blocks(grid, header_rows=header_rows, caption=None)


def _docx_cell_text(cell: _Cell) -> str:
    parts: list[str] = []
    for item in cell.iter_inner_content():
        if isinstance(item, Paragraph):
            parts.append(item.text)
        elif isinstance(item, DocxTable):
            parts.extend(_docx_cell_text(inner) for row in item.rows for inner in row.cells)
    return " ".join(part for part in parts if part.strip())
