"""OpenDocument text (``.odt``) and spreadsheets (``.ods``) with odfpy.

Text documents in body order: ``text:h`` are headings, paragraphs and list items prose,
tables tables (``table:table-header-rows`` are their headers, else the first row). Every
sheet of a spreadsheet is a table captioned by its name, as in XLSX, with the cell text as
the spreadsheet shows it. Repeated rows and columns (how OpenDocument writes a run of
identical cells, often a million empty ones to the sheet's end) are expanded only where
they hold text, and at most :data:`_MAX_REPEAT` times; a table that would still hold more
than :data:`_MAX_CELLS` cells is refused as too large. Deleted text kept for tracked changes
is not read.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax import SAXException

from knowledge._packages import open_package
from knowledge._tables import build_table, grid_blocks, table_block, text_block
from knowledge.documents import Block
from knowledge.errors import ParseError

__all__ = ["read_odf"]

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_MAX_REPEAT = 1000
_MAX_CELLS = 1_000_000
_MAX_SPACES = 100
_SKIPPED = frozenset(
    {(_TEXT, "tracked-changes"), (_TEXT, "sequence-decls"), (_OFFICE, "forms")}
    | {(_TABLE, "named-expressions"), (_TABLE, "database-ranges"), (_OFFICE, "annotation")}
)
_ROW_GROUPS = frozenset({(_TABLE, "table-rows"), (_TABLE, "table-row-group")})
_CELLS = frozenset({(_TABLE, "table-cell"), (_TABLE, "covered-table-cell")})


def read_odf(path: Path) -> tuple[list[Block], str | None]:
    """An ODT's or ODS's blocks in reading order, and its ``dc:title``."""
    from odf.opendocument import load

    label = "ODS" if path.suffix.lower() == ".ods" else "ODT"
    with open_package(path, label) as package:
        names = set(package.namelist())
        if "content.xml" not in names:
            raise ParseError(f"corrupt {label}: no content.xml (not an OpenDocument file)")
        has_manifest = "META-INF/manifest.xml" in names
        manifest = package.read("META-INF/manifest.xml") if has_manifest else b""
    if b"encryption-data" in manifest:
        raise ParseError(f"password-protected {label}", reason="encrypted")
    try:
        document = load(str(path))
    except (zipfile.BadZipFile, zlib.error, KeyError, EOFError) as exc:
        raise ParseError(f"corrupt or truncated {label}: {type(exc).__name__}") from None
    except SAXException as exc:
        raise ParseError(f"corrupt {label}: malformed XML ({exc})") from None
    sheets = label == "ODS"
    blocks = list(_blocks(document.body, sheets=sheets))
    return blocks, _title(document)


def _title(document: Any) -> str | None:
    from odf.dc import Title

    titles = document.meta.getElementsByType(Title)
    return _text(titles[0]) if titles else None


def _blocks(element: Any, *, sheets: bool) -> Iterator[Block]:
    for child in element.childNodes:
        qname = getattr(child, "qname", None)
        if qname is None or qname in _SKIPPED:
            continue
        if qname == (_TEXT, "h"):
            heading = " ".join(_text(child).split())
            if heading:
                yield Block(kind="heading", text=heading)
        elif qname == (_TEXT, "p"):
            paragraph = _text(child).strip()
            if paragraph:
                yield text_block(paragraph)
        elif qname == (_TABLE, "table"):
            yield from _table(child, sheets=sheets)
        else:  # sections, lists, frames, text boxes: their paragraphs in order
            yield from _blocks(child, sheets=sheets)


def _table(element: Any, *, sheets: bool) -> Iterator[Block]:
    grid, header_rows = _rows(element)
    if not sheets:
        yield from grid_blocks(grid, header_rows=max(1, header_rows), caption=None)
        return
    table = build_table(grid, header_rows=max(1, header_rows), caption=_attr(element, "name"))
    if table is not None:
        yield table_block(table)


def _rows(element: Any) -> tuple[list[list[str | None]], int]:
    """The table's rows (trailing blanks trimmed) and how many are header rows."""
    grid: list[list[str | None]] = []
    header_rows = cells = 0
    for child in element.childNodes:
        qname = getattr(child, "qname", None)
        if qname == (_TABLE, "table-header-rows"):
            rows, _ = _rows(child)
            header_rows += len(rows)
        elif qname in _ROW_GROUPS:
            rows, inner = _rows(child)
            header_rows += inner if not grid else 0
        elif qname == (_TABLE, "table-row"):
            row = _cells(child)
            count = _repeat(child, "number-rows-repeated") if any(row) else 0
            rows = [list(row) for _ in range(count)]
        else:
            continue
        grid.extend(rows)
        cells += sum(len(row) for row in rows)
        if cells > _MAX_CELLS:
            message = f"a table of over {_MAX_CELLS:,} cells (repeated rows and columns)"
            raise ParseError(message, reason="too_large")
    return grid, header_rows


def _cells(row: Any) -> list[str | None]:
    cells: list[str | None] = []
    for cell in row.childNodes:
        qname = getattr(cell, "qname", None)
        if qname not in _CELLS:
            continue
        # A covered cell lies under a merged one: in the header row it takes that name.
        value = None if qname == (_TABLE, "covered-table-cell") else _cell_text(cell)
        count = _repeat(cell, "number-columns-repeated") if value else 1
        cells.extend([value] * count)
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _cell_text(cell: Any) -> str:
    parts = (_text(child) for child in cell.childNodes if getattr(child, "qname", None))
    return " ".join(part.strip() for part in parts if part.strip())


def _repeat(element: Any, name: str) -> int:
    try:
        return max(1, min(int(_attr(element, name) or "1"), _MAX_REPEAT))
    except ValueError:
        return 1


def _attr(element: Any, name: str) -> str | None:
    value = element.attributes.get((_TABLE, name))
    return str(value) if value is not None else None


def _text(element: Any) -> str:
    """An element's text with ``text:s``, ``text:tab`` and ``text:line-break`` read."""
    parts: list[str] = []
    for child in element.childNodes:
        if child.nodeType == child.TEXT_NODE:
            parts.append(child.data)
            continue
        qname = getattr(child, "qname", None)
        if qname == (_TEXT, "line-break"):
            parts.append("\n")
        elif qname == (_TEXT, "tab"):
            parts.append("\t")
        elif qname == (_TEXT, "s"):
            count = child.attributes.get((_TEXT, "c"))
            parts.append(" " * min(int(count) if str(count or "").isdigit() else 1, _MAX_SPACES))
        elif qname not in _SKIPPED:
            parts.append(_text(child))
    return "".join(parts)
