"""PDF parsing shortcuts keep what the slow path found.

Each page's text is extracted once in layout mode; plain mode is consulted only where
layout mode is known to lose text (rotated text, text inside forms). pdfplumber, which
reads every character of a page, looks for tables only on pages that paint enough lines
to hold one, and assigns characters to cells a row at a time.
"""

from __future__ import annotations

import io
from pathlib import Path

import pdfplumber
import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
)

from knowledge._pdf_operators import PageOperators
from knowledge._pdf_tables import _cell_texts
from knowledge.parsing import parse_file
from tests.test_parsing import (
    REPORT_PAGE,
    SALES,
    grid,
    make_pdf,
    only_table,
    rewrite_pdf,
    rule,
    text,
)

pytestmark = pytest.mark.unit

TEXT_PAGE = [text(72, 780, "Only prose on this page."), text(72, 764, "No rules at all.")]


def _into_form(writer: PdfWriter, *, outside: str = "") -> None:
    """Move the first page's drawing into a form XObject the page draws with ``Do``.

    ``outside``: operators the page keeps drawing itself, after the form.
    """
    page = writer.pages[0]
    form = DecodedStreamObject()
    form.set_data(page.get_contents().get_data())  # type: ignore[union-attr]
    form.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): ArrayObject([FloatObject(v) for v in (0, 0, 595, 842)]),
            NameObject("/Resources"): page["/Resources"],
        }
    )
    own = page["/Resources"].get_object()
    assert isinstance(own, DictionaryObject)
    resources = DictionaryObject(own)
    resources[NameObject("/XObject")] = DictionaryObject(
        {NameObject("/Fm0"): writer._add_object(form)}
    )
    page[NameObject("/Resources")] = resources
    contents = DecodedStreamObject()
    contents.set_data(f"q /Fm0 Do Q\n{outside}".encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(contents)


def _operators(data: bytes) -> PageOperators:
    return PageOperators.of(PdfReader(io.BytesIO(data)).pages[0])


def test_text_drawn_inside_a_form_is_kept(tmp_path: Path) -> None:
    # Layout mode skips forms without a warning: it finds only the line outside the form.
    lines = [f"Form line number {n} with some words." for n in range(5)]
    page = [text(72, 700 - 14 * n, line) for n, line in enumerate(lines)]
    path = tmp_path / "form.pdf"
    path.write_bytes(
        rewrite_pdf(
            make_pdf([[*page, text(72, 780, "Outside the form.")]]),
            lambda writer: _into_form(writer, outside=text(72, 780, "Outside the form.")),
        )
    )
    body = "\n".join(block.text for block in parse_file(path).blocks)
    assert "Outside the form." in body
    assert all(line in body for line in lines)


def test_rotated_text_is_kept(tmp_path: Path) -> None:
    upright = text(72, 780, "An upright heading line.")
    rotated = (
        "BT /F1 11 Tf 0 1 -1 0 300 200 Tm <0052006F0074006100740065006400200062006F00640079> Tj ET"
    )
    path = tmp_path / "rotated.pdf"
    path.write_bytes(make_pdf([[upright, rotated, rotated.replace("300 200", "320 200")]]))
    body = " ".join(block.text for block in parse_file(path).blocks)
    assert "An upright heading line." in body
    assert body.count("Rotated body") == 2


def test_a_table_drawn_inside_a_form_is_found(tmp_path: Path) -> None:
    path = tmp_path / "form-table.pdf"
    path.write_bytes(rewrite_pdf(make_pdf([REPORT_PAGE]), _into_form))
    table = only_table(parse_file(path))
    assert (table.headers, table.rows) == (SALES[0], SALES[1:])


def test_the_smallest_ruled_table_is_still_looked_for(tmp_path: Path) -> None:
    # Three horizontal rules and one inner column rule: four segments, the least a table
    # pdfplumber can find needs (it is told where the missing outer sides are).
    ops = [rule(72, 700 - 20 * i, 372, 700 - 20 * i) for i in range(3)]
    ops.append(rule(172, 700, 172, 660))
    ops += [text(76, 686, "Item", 10), text(176, 686, "Limit", 10)]
    ops += [text(76, 666, "Hotel", 10), text(176, 666, "150,000", 10)]
    path = tmp_path / "small.pdf"
    path.write_bytes(make_pdf([ops]))
    table = only_table(parse_file(path))
    assert (table.headers, table.rows) == (["Item", "Limit"], [["Hotel", "150,000"]])


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        (TEXT_PAGE, False),
        ([*TEXT_PAGE, "72 600 300 100 re f"], False),  # one filled box: no table
        ([*TEXT_PAGE, rule(72, 600, 372, 600)], False),  # an underline
        ([*TEXT_PAGE, rule(72, 600, 372, 600), rule(72, 580, 372, 580)], False),
        # Top, header and bottom rules: a table in a paper's style.
        ([*TEXT_PAGE, *(rule(72, y, 372, y) for y in (600, 580, 500))], True),
        # Operators inside a string are text, not drawing.
        (["BT /F1 11 Tf 72 700 Td (0 0 m 9 9 l 1 1 l 2 2 l 3 3 l S) Tj ET"], False),
        (grid(72, 700, [120, 120], [["a", "b"], ["c", "d"]]), True),
        ([*TEXT_PAGE, "72 600 300 100 re 72 500 300 100 re f"], True),
    ],
)
def test_pages_that_cannot_hold_a_ruled_table_skip_the_table_finder(
    ops: list[str], expected: bool
) -> None:
    assert _operators(make_pdf([ops])).may_have_ruled_table() is expected


def test_forms_are_looked_into() -> None:
    ruled = rewrite_pdf(make_pdf([REPORT_PAGE]), _into_form)
    operators = _operators(ruled)
    assert operators.may_have_ruled_table()
    assert operators.text_in_forms
    assert not _operators(make_pdf([REPORT_PAGE])).text_in_forms


def test_cells_are_read_as_pdfplumber_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    wide = [["Name", "Team", "Note"], *[[f"Person {i}", f"Team {i % 3}", ""] for i in range(12)]]
    path.write_bytes(make_pdf([[*REPORT_PAGE, *grid(72, 520, [150, 100, 100], wide)]]))
    with pdfplumber.open(path) as pdf:
        tables = pdf.pages[0].find_tables()
        assert len(tables) == 2
        for table in tables:
            assert _cell_texts(table) == table.extract()
