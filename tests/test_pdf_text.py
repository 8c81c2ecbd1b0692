"""PDF prose from PDFium's characters: every word, in reading order, columns unfolded."""

from __future__ import annotations

import re
from pathlib import Path

import pdfplumber
import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, NumberObject

from knowledge._pdf_text import PdfiumText
from knowledge.parsing import parse_file
from tests.test_parsing import make_pdf, text

pytestmark = pytest.mark.unit


def columns_page(lefts: list[float], lines: int) -> tuple[list[str], list[list[str]]]:
    """A page of prose in columns starting at ``lefts``; each column's lines, in order."""
    ops: list[str] = []
    columns: list[list[str]] = []
    for number, left in enumerate(lefts, 1):
        column = [f"Column{number} line{n} says word{number}x{n} here." for n in range(lines)]
        ops += [text(left, 760 - 14 * n, line, size=8) for n, line in enumerate(column)]
        columns.append(column)
    return ops, columns


def body(path: Path) -> str:
    return "\n".join(block.text for block in parse_file(path).blocks)


@pytest.mark.parametrize("lefts", [[50, 310], [40, 220, 400]], ids=["two", "three"])
def test_columns_read_one_after_the_other_with_every_word(
    tmp_path: Path, lefts: list[float]
) -> None:
    ops, columns = columns_page(lefts, lines=8)
    path = tmp_path / "columns.pdf"
    path.write_bytes(make_pdf([ops]))

    read = body(path)

    # Every word pdfplumber finds on the page (pdfminer's reading of the characters) is there.
    with pdfplumber.open(path) as pdf:
        words = [word["text"] for word in pdf.pages[0].extract_words()]
    assert sorted(read.split()) == sorted(words)
    # ... and the columns come whole, left to right: no line of one column between another's.
    assert " ".join(read.split()) == " ".join(line for column in columns for line in column)


def test_a_phrase_stays_one_segment_and_a_figure_column_stays_apart(tmp_path: Path) -> None:
    ops = [text(72, 700, "Total revenue for the year"), text(400, 700, "1,234")]
    path = tmp_path / "figure.pdf"
    path.write_bytes(make_pdf([ops]))

    (line,) = [line for line in (PdfiumText(path).page_text(0) or "").splitlines() if line]

    # Three blanks or more separate segments (columns, cells); a phrase's words have fewer.
    segments = [part.split() for part in re.split(r"\s{3,}", line.strip())]
    assert segments == [["Total", "revenue", "for", "the", "year"], ["1,234"]]


def test_a_page_turned_sideways_reads_as_displayed(tmp_path: Path) -> None:
    # The text runs up the page in page space, as a landscape page set sideways does.
    lines = ["First sideways line here.", "Second sideways line here."]
    ops = [
        f"BT /F1 11 Tf 0 1 -1 0 {100 + 20 * n} 300 Tm "
        + "<"
        + "".join(f"{ord(c):04X}" for c in line)
        + "> Tj ET"
        for n, line in enumerate(lines)
    ]
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(make_pdf([ops]))
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.pages[0][NameObject("/Rotate")] = NumberObject(90)
    turned = tmp_path / "turned.pdf"
    with turned.open("wb") as handle:
        writer.write(handle)

    assert " ".join(body(turned).split()) == " ".join(lines)


def test_a_file_pdfium_cannot_open_gives_no_text_rather_than_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nnot really a PDF\n")

    assert PdfiumText(path).page_text(0) is None


def test_a_word_placed_far_off_the_page_adds_a_bounded_run_of_blanks(tmp_path: Path) -> None:
    """A hostile file cannot blow one page's text up to millions of spaces and newlines."""
    ops = [text(72, 700, "Near"), text(100_000_000, 700, "Far"), text(72, -1e9, "Below")]
    path = tmp_path / "far.pdf"
    path.write_bytes(make_pdf([ops]))

    page = PdfiumText(path).page_text(0) or ""

    assert page.split() == ["Near", "Far", "Below"]
    assert len(page) < 2_000  # 16.5 million characters before the columns were bounded
