"""PDF table cells read as their text is drawn, not as stray blanks break it.

Fixed-width report writers pad every field with spaces, and the padding can run on under the
next field's text. Sorted left to right, those blanks land between that text's glyphs and
pdfplumber breaks a word at each one ("0 3 / 2 5 / 2 0 16"); the cells leave them out, while
the spaces each text draws between its own words stay.
"""

from __future__ import annotations

from pathlib import Path

import pdfplumber
import pytest

from knowledge._pdf_tables import _cell_texts, find_pdf_tables
from tests.test_parsing import grid, make_pdf, text

pytestmark = pytest.mark.unit

WIDTHS = [120.0, 120.0, 160.0]
LEFT, TOP = 72.0, 700.0
PAD = " " * 30  # runs on under the next column, as in California's WARN reports


def _edges() -> list[float]:
    return [LEFT + sum(WIDTHS[:i]) for i in range(len(WIDTHS))]


def _padded_rows(rows: list[list[str]]) -> list[str]:
    """Ruled rows whose fields are each drawn followed by their padding, field by field."""
    ops = grid(LEFT, TOP, WIDTHS, [["", "", ""]] * len(rows))
    for r, row in enumerate(rows):
        baseline = TOP - 20 * (r + 1) + 6
        ops += [
            text(x + 4, baseline, value + PAD, 10) for x, value in zip(_edges(), row, strict=True)
        ]
    return ops


def _cells(
    path: Path, page_ops: list[str]
) -> tuple[list[list[str | None]], list[list[str | None]]]:
    """Our cell texts and pdfplumber's ``extract()`` for the page's only table."""
    path.write_bytes(make_pdf([page_ops]))
    with pdfplumber.open(path) as pdf:
        (table,) = pdf.pages[0].find_tables()
        return _cell_texts(table), table.extract()


ROWS = [
    ["Notice Date", "Effective", "Company"],
    ["06/22/2015", "03/25/2016", "Maxim Integrated Product"],
    ["06/30/2015", "08/29/2015", "서울 지점 매출"],
]


def test_padding_under_a_date_does_not_split_it(tmp_path: Path) -> None:
    ours, plumber = _cells(tmp_path / "warn.pdf", _padded_rows(ROWS))
    # pdfplumber breaks the date at each blank of the padding drawn under it.
    assert plumber[1][1] != "03/25/2016"
    assert (plumber[1][1] or "").replace(" ", "") == "03/25/2016"
    assert ours[1][:2] == ["06/22/2015", "03/25/2016"]
    assert ours[2][:2] == ["06/30/2015", "08/29/2015"]


def test_word_spaces_under_padding_stay(tmp_path: Path) -> None:
    ours, _ = _cells(tmp_path / "warn.pdf", _padded_rows(ROWS))
    assert ours == ROWS


def test_find_pdf_tables_reads_joined_dates(tmp_path: Path) -> None:
    path = tmp_path / "warn.pdf"
    path.write_bytes(make_pdf([_padded_rows(ROWS)]))
    with pdfplumber.open(path) as pdf:
        (found,) = find_pdf_tables(pdf.pages[0], 1)
    assert found.table.headers == ROWS[0]
    assert found.table.rows == ROWS[1:]


def test_a_blank_drawn_next_to_its_word_is_left_to_pdfplumber(tmp_path: Path) -> None:
    # The space is drawn just before "Permanent", a point inside its "P" (as some producers
    # draw a bullet's tab under the word after it). It was drawn with that word, not by another
    # run, so it stays where pdfplumber puts it: only blanks drawn apart from a word go.
    x, baseline = _edges()[2] + 4, TOP - 20 * 2 + 6
    after = x + 5.5 * len("Closure")
    ops = grid(LEFT, TOP, WIDTHS, [["Name", "Team", "Status"], ["Ann", "Ops", ""]])
    ops += [text(x, baseline, "Closure", 10), text(after + 1, baseline, " ", 10)]
    ops.append(text(after, baseline, "Permanent", 10))
    ours, plumber = _cells(tmp_path / "overlap.pdf", ops)
    assert ours == plumber
    assert " " in (ours[1][2] or "")


def test_ordinary_cells_read_as_pdfplumber_reads_them(tmp_path: Path) -> None:
    rows = [["Name", "Team", "Note"], ["Kim Min-ji", "Data platform", "분기 실적 개선"]]
    ours, plumber = _cells(tmp_path / "plain.pdf", grid(LEFT, TOP, WIDTHS, rows))
    assert ours == plumber == rows
