"""Excel workbooks: each worksheet a table with its headers, bad workbooks refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openpyxl import Workbook

from knowledge.errors import ParseError
from knowledge.parsing import SUPPORTED_SUFFIXES, parse_file

pytestmark = pytest.mark.unit


def _workbook(path: Path) -> Path:
    book = Workbook()
    sales = book.active
    sales.title = "Sales 2025"
    sales.append(["Region", "Units", "Revenue (KRW)", "Closed"])
    sales.append(["서울", 1200, 35_500_000.0, dt.date(2025, 3, 31)])
    sales.append(["Busan", 310, 0.1 + 0.2, dt.datetime(2025, 6, 30, 0, 0)])
    sales.append([None, None, None, None])  # a blank row between data is dropped
    sales.append(["Daegu", 95, 1.5, None])
    book.create_sheet("Empty")
    notes = book.create_sheet("Staff")
    notes.append(["Name", "Team"])
    notes.append(["Kim Minji", "Platform"])
    book.save(path)
    return path


def test_each_sheet_is_a_table_captioned_by_its_name(tmp_path: Path) -> None:
    assert ".xlsx" in SUPPORTED_SUFFIXES
    parsed = parse_file(_workbook(tmp_path / "report.xlsx"))
    tables = [block.table for block in parsed.blocks if block.table is not None]
    assert [t.caption for t in tables] == ["Sales 2025", "Staff"]  # the empty sheet is skipped
    sales = tables[0]
    assert sales.headers == ["Region", "Units", "Revenue (KRW)", "Closed"]
    assert sales.rows == [
        ["서울", "1200", "35500000", "2025-03-31"],
        ["Busan", "310", "0.3", "2025-06-30"],
        ["Daegu", "95", "1.5", ""],
    ]
    assert "| 서울 | 1200 |" in parsed.text


def test_a_corrupt_workbook_is_refused_in_one_line(tmp_path: Path) -> None:
    good = _workbook(tmp_path / "good.xlsx").read_bytes()
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good[: len(good) // 2])
    with pytest.raises(ParseError) as caught:
        parse_file(broken)
    assert "\n" not in str(caught.value)
    assert "XLSX" in str(caught.value)


def test_a_password_protected_or_old_xls_workbook_is_refused(tmp_path: Path) -> None:
    ole = tmp_path / "locked.xlsx"  # encrypted workbooks are OLE containers, like .xls
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    with pytest.raises(ParseError, match=r"password-protected or old \.xls workbook"):
        parse_file(ole)
