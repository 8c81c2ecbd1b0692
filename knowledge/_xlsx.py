"""Excel workbooks (``.xlsx``): every worksheet becomes a table led by the sheet's name.

openpyxl reads the file in read-only mode (rows streamed, not the whole workbook in
memory) with ``data_only``: formulas give the value Excel last computed and stored.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

from knowledge._archives import check_zip_file
from knowledge._tables import build_table, table_block
from knowledge.documents import Block
from knowledge.errors import ParseError

__all__ = ["cell_text", "read_xlsx"]

_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def cell_text(value: Any) -> str | None:
    """A cell value as people read it: ``71137``, not ``71137.0``; ``0.3``, not ``0.3000…04``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.15g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def read_xlsx(path: Path) -> tuple[list[Block], str | None]:
    """A table block per non-empty worksheet (its caption the sheet's name), and the title."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    with path.open("rb") as handle:
        if handle.read(8).startswith(_OLE_MAGIC):
            # Encrypted .xlsx files and old .xls files are both OLE containers.
            raise ParseError(
                "password-protected or old .xls workbook (save it as .xlsx)", reason="unsupported"
            )
    check_zip_file(path, kind="XLSX")
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError) as exc:
        raise ParseError(f"corrupt or truncated XLSX: {' '.join(str(exc).split())}") from None
    try:
        blocks = []
        for sheet in workbook.worksheets:
            grid = [
                [cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)
            ]
            table = build_table(grid, caption=sheet.title) if grid else None
            if table is not None:
                blocks.append(table_block(table))
        return blocks, workbook.properties.title
    finally:
        workbook.close()
