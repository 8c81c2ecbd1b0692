"""PDFium's paths as pdfplumber's edges: a page whose lines cannot make a ruled table is not
read by pdfplumber; every page whose lines can, however drawn, still is."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pytest

from knowledge._pdf_edges import may_hold_ruled_table
from knowledge.parsing import parse_file
from tests.test_parsing import grid, make_pdf, rule, text

pytestmark = pytest.mark.unit

ROWS = [["Region", "Units"], ["North", "120"], ["South", "95"]]


def _answer(tmp_path: Path, ops: list[str]) -> bool:
    path = tmp_path / "page.pdf"
    path.write_bytes(make_pdf([ops]))
    document = pdfium.PdfDocument(str(path))
    try:
        page = document[0]
        try:
            return may_hold_ruled_table(page)
        finally:
            page.close()
    finally:
        document.close()


def test_underlines_and_a_signature_line_hold_no_table(tmp_path: Path) -> None:
    ops = [
        text(72, 780, "Quarterly letter", 14),
        rule(72, 772, 300, 772),  # under the title
        text(72, 700, "Thank you for your order of 12 units."),
        rule(72, 690, 210, 690),  # under a phrase
        rule(350, 120, 520, 120),  # the signature line
    ]
    assert not _answer(tmp_path, ops)


def test_a_ruled_grid_holds_one_drawn_with_lines_rectangles_or_scaled(tmp_path: Path) -> None:
    assert _answer(tmp_path, grid(72, 700, [120, 80], ROWS))
    cells = [f"{72 + 120 * c} {700 - 20 * (r + 1)} 120 20 re S" for r in range(3) for c in range(2)]
    assert _answer(tmp_path, ["0.8 w", *cells])
    # Drawn at half size through a matrix, and inside a saved graphics state.
    scaled = ["q 0.5 0 0 0.5 36 350 cm", *grid(72, 700, [120, 80], ROWS), "Q"]
    assert _answer(tmp_path, scaled)


def test_rules_above_under_the_header_and_below_hold_one(tmp_path: Path) -> None:
    ops = [rule(72, y, 400, y) for y in (700, 680, 620)]  # papers' style: no vertical rule
    ops += [text(76, 686, "Model", 10), text(300, 686, "F1", 10)]
    ops += [text(76, 666 - 20 * i, f"M{i}", 10) for i in range(3)]
    assert _answer(tmp_path, ops)


def test_a_page_with_lines_but_no_table_still_gives_its_text(tmp_path: Path) -> None:
    path = tmp_path / "letter.pdf"
    ops = [text(72, 780, "Quarterly letter", 14), rule(72, 772, 300, 772), rule(350, 120, 520, 120)]
    table_page = [*grid(72, 700, [120, 80], ROWS)]
    path.write_bytes(make_pdf([ops, table_page]))
    doc = parse_file(path)
    assert "Quarterly letter" in doc.text
    tables = [block.table for block in doc.blocks if block.table is not None]
    assert [(t.page, t.headers, t.rows) for t in tables] == [(2, ROWS[0], ROWS[1:])]
