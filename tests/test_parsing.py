"""parse_file on small files of every supported type, built here at test time.

PDFs are written by a tiny writer below (one non-embedded CID font with a ToUnicode map,
so Korean survives): text lines, ruled table grids and filled rectangles are enough to
exercise pypdf's layout text, pdfplumber's table finder and the refusals.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from knowledge.documents import ParsedDocument, Table
from knowledge.errors import ParseError
from knowledge.parsing import SUPPORTED_SUFFIXES, parse_file

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent

# --- a minimal PDF writer ---------------------------------------------------------------


def text(x: float, y: float, value: str, size: int = 11) -> str:
    """Draw ``value`` with its baseline at (x, y), in points from the bottom left."""
    codes = "".join(f"{ord(char):04X}" for char in value)
    return f"BT /F1 {size} Tf {x} {y} Td <{codes}> Tj ET"


def rule(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"0.8 w {x0} {y0} m {x1} {y1} l S"


def grid(x: float, top: float, widths: list[float], rows: list[list[str]]) -> list[str]:
    """A fully ruled table; row height 20 points, text inset 4 points."""
    height = 20
    right = x + sum(widths)
    bottom = top - height * len(rows)
    ops = [rule(x, top - height * i, right, top - height * i) for i in range(len(rows) + 1)]
    edges = [x + sum(widths[:i]) for i in range(len(widths) + 1)]
    ops += [rule(edge, top, edge, bottom) for edge in edges]
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            ops.append(text(edges[c] + 4, top - height * (r + 1) + 6, cell, 10))
    return ops


def make_pdf(pages: list[list[str]]) -> bytes:
    """A PDF of A4 pages, each drawn by its content-stream operators."""
    chars = sorted(
        {
            chr(int(code[i : i + 4], 16))
            for page in pages
            for op in page
            for code in re.findall(r"<([0-9A-F]+)> Tj", op)
            for i in range(0, len(code), 4)
        }
    )
    bfchars = "\n".join(f"<{ord(c):04X}> <{ord(c):04X}>" for c in chars)
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CMapName /TestUCS def /CMapType 2 def\n"
        "1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
        f"{len(chars)} beginbfchar\n{bfchars}\nendbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "",  # the page tree, once the pages have numbers
        "<< /Type /Font /Subtype /Type0 /BaseFont /TestSans /Encoding /Identity-H"
        " /DescendantFonts [4 0 R] /ToUnicode 5 0 R >>",
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /TestSans /FontDescriptor 6 0 R"
        " /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >>"
        " /DW 1000 /W [32 126 550] >>",
        _stream(cmap),
        "<< /Type /FontDescriptor /FontName /TestSans /Flags 32 /FontBBox [0 -200 1000 900]"
        " /ItalicAngle 0 /Ascent 900 /Descent -200 /CapHeight 700 /StemV 80 >>",
    ]
    kids = []
    for ops in pages:
        objects.append(_stream("\n".join(ops)))
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
            f" /Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects)} 0 R >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    out.write("".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode())
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    out.write(trailer.encode())
    return out.getvalue()


def _stream(content: str) -> str:
    return f"<< /Length {len(content.encode('latin-1'))} >>\nstream\n{content}\nendstream"


def rewrite_pdf(data: bytes, change: Callable[[PdfWriter], None]) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


SALES = [
    ["지역", "매출", "Growth"],
    ["서울", "1,200", "12%"],
    ["부산", "850", "-3%"],
    ["Daegu", "430", "7%"],
]
REPORT_PAGE = [
    text(72, 780, "Quarterly summary for the northern branches."),
    text(72, 764, "분기 실적은 전년 대비 개선되었습니다."),
    text(72, 712, "Table 1: Sales by region"),
    *grid(72, 700, [120, 120, 120], SALES),
    text(72, 580, "Figures are unaudited and may change."),
]


@pytest.fixture
def report_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf([REPORT_PAGE, [text(72, 780, "Second page closing remarks.")]]))
    return path


# --- invariants every format keeps ------------------------------------------------------


def assert_well_formed(doc: ParsedDocument) -> None:
    assert doc.blocks
    assert doc.text == "\n\n".join(block.text for block in doc.blocks)
    for block in doc.blocks:
        assert doc.text[block.char_start : block.char_end] == block.text
        assert block.text == block.text.strip()
        if block.kind == "table":
            assert block.table is not None
            assert all(len(row) == len(block.table.headers) for row in block.table.rows)


def only_table(doc: ParsedDocument) -> Table:
    tables = [block.table for block in doc.blocks if block.table is not None]
    assert len(tables) == 1
    return tables[0]


MARKDOWN = """# 분기 보고서

Intro paragraph with **bold** text.

## 매출

서울 지점의 매출이 크게 늘었습니다.
두 번째 줄입니다.

| 지역 | 매출 |
|------|-----:|
| 서울 | 1,200 |
| 부산 | 850 |

## Risks

- supply | chain
"""

HTML = """<!DOCTYPE html><html><head><title>Team handbook</title>
<style>p { color: red }</style><script>var leaked = "script text";</script></head>
<body><nav>Home</nav><h1>On-call</h1><p>Rotate weekly &amp; hand over on Monday.<br>Page
the lead if unsure.</p>
<table><caption>Rota</caption>
<thead><tr><th rowspan="2">Week</th><th colspan="2">People</th></tr>
<tr><th>Primary</th><th>Backup</th></tr></thead>
<tbody><tr><td>1</td><td colspan="2">김민수</td></tr>
<tr><td>2</td><td>Ana</td><td>Bo</td></tr></tbody></table>
<h2>Escalation</h2><ul><li>Call the lead<li>Open an incident</ul>
"""


def write_docx(path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "Onboarding guide"
    document.add_heading("Welcome", level=1)
    document.add_paragraph("첫 주에는 노트북을 받고 계정을 만듭니다.")
    table = document.add_table(rows=3, cols=3)
    for r, values in enumerate([["Day", "Task", "Owner"], ["1", "Laptop", "IT"], ["2", "", ""]]):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    merged = table.cell(2, 1).merge(table.cell(2, 2))
    merged.text = "계정 생성"
    document.add_heading("Next steps", level=2)
    document.add_paragraph("Meet your buddy.")
    document.save(str(path))


SAMPLES: dict[str, Callable[[Path], None]] = {
    "doc.md": lambda p: p.write_text(MARKDOWN, encoding="utf-8"),
    "doc.html": lambda p: p.write_text(HTML, encoding="utf-8"),
    "doc.txt": lambda p: p.write_text("첫 문단입니다.\n둘째 줄.\n\n\nSecond paragraph.\n"),
    "doc.csv": lambda p: p.write_text("a;b\n1;2\n", encoding="utf-8"),
    "doc.docx": write_docx,
    "doc.pdf": lambda p: p.write_bytes(make_pdf([REPORT_PAGE])),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_block_indexes_its_own_text(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    SAMPLES[name](path)
    doc = parse_file(path)
    assert_well_formed(doc)
    assert doc.source == name


def test_supported_suffixes() -> None:
    assert {".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt", ".csv"} <= set(
        SUPPORTED_SUFFIXES
    )


# --- Markdown, HTML, text, CSV ----------------------------------------------------------


def test_markdown_headings_sections_and_pipe_table(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = parse_file(path)
    assert doc.title == "분기 보고서"
    assert doc.mime_type == "text/markdown"
    kinds = [(block.kind, block.section) for block in doc.blocks]
    assert kinds == [
        ("heading", "분기 보고서"),
        ("text", "분기 보고서"),
        ("heading", "매출"),
        ("text", "매출"),
        ("table", "매출"),
        ("heading", "Risks"),
        ("text", "Risks"),
    ]
    assert doc.blocks[1].text == "Intro paragraph with bold text."
    assert "서울 지점의 매출이 크게 늘었습니다." in doc.blocks[3].text
    table = only_table(doc)
    assert table.headers == ["지역", "매출"]
    assert table.rows == [["서울", "1,200"], ["부산", "850"]]
    assert doc.blocks[4].text == "| 지역 | 매출 |\n| --- | --- |\n| 서울 | 1,200 |\n| 부산 | 850 |"
    assert doc.blocks[6].text == "supply | chain"


def test_html_skips_scripts_and_expands_spans(tmp_path: Path) -> None:
    path = tmp_path / "handbook.html"
    path.write_text(HTML, encoding="utf-8")
    doc = parse_file(path)
    assert doc.title == "Team handbook"
    assert "script text" not in doc.text and "color: red" not in doc.text
    texts = [block.text for block in doc.blocks]
    assert "Rotate weekly & hand over on Monday.\nPage the lead if unsure." in texts
    assert texts[-2:] == ["Call the lead", "Open an incident"]
    assert doc.blocks[-1].section == "Escalation"
    table = only_table(doc)
    assert table.caption == "Rota"
    assert table.headers == ["Week", "People Primary", "People Backup"]
    assert table.rows == [["1", "김민수", "김민수"], ["2", "Ana", "Bo"]]


def test_html_title_band_becomes_the_caption_and_spacer_columns_go(tmp_path: Path) -> None:
    path = tmp_path / "fees.html"
    path.write_text(
        "<table><tr><td colspan=3>2024 요금표</td></tr>"
        "<tr><td>Plan</td><td></td><td>Fee</td></tr>"
        "<tr><td>Basic</td><td></td><td>9,900원</td></tr>"
        "<tr><td>Pro</td><td></td><td>19,900원</td></tr></table>",
        encoding="utf-8",
    )
    table = only_table(parse_file(path))
    assert table.caption == "2024 요금표"
    assert table.headers == ["Plan", "Fee"]
    assert table.rows == [["Basic", "9,900원"], ["Pro", "19,900원"]]


def test_html_declared_charset_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "legacy.htm"
    page = '<html><head><meta charset="euc-kr"></head><body><p>한국어 문서</p></body></html>'
    path.write_bytes(page.encode("euc-kr"))
    assert parse_file(path).text == "한국어 문서"


def test_text_paragraphs_and_encodings(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeff첫 문단입니다.\r\n둘째 줄.\r\n \r\nSecond paragraph.".encode())
    doc = parse_file(path)
    assert [block.text for block in doc.blocks] == ["첫 문단입니다.\n둘째 줄.", "Second paragraph."]
    assert all(block.kind == "text" and block.section is None for block in doc.blocks)
    assert doc.title == "notes"
    path.write_bytes("한글 UTF-16".encode("utf-16"))
    assert parse_file(path).text == "한글 UTF-16"


def test_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes(b"caf\xe9 ok" + b"\xff")
    with pytest.raises(
        ParseError, match=r"^not UTF-8 text \(invalid byte 0xe9 at offset 3\)$"
    ) as caught:
        parse_file(path)
    assert caught.value.reason == "not_text"


def test_csv_sniffs_semicolons_and_pads_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("품목;가격;재고\n사과;1.99;739\n바나나;1.89\n", encoding="utf-8-sig")
    table = only_table(parse_file(path))
    assert table.headers == ["품목", "가격", "재고"]
    assert table.rows == [["사과", "1.99", "739"], ["바나나", "1.89", ""]]


def test_csv_tabs(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name\tteam\nAna\tOps\nBo\tDev\n", encoding="utf-8")
    assert only_table(parse_file(path)).rows == [["Ana", "Ops"], ["Bo", "Dev"]]


# --- DOCX -------------------------------------------------------------------------------


def test_docx_headings_paragraphs_and_merged_cells(tmp_path: Path) -> None:
    path = tmp_path / "guide.docx"
    write_docx(path)
    doc = parse_file(path)
    assert doc.title == "Onboarding guide"
    assert [(block.kind, block.section) for block in doc.blocks] == [
        ("heading", "Welcome"),
        ("text", "Welcome"),
        ("table", "Welcome"),
        ("heading", "Next steps"),
        ("text", "Next steps"),
    ]
    assert doc.blocks[1].text == "첫 주에는 노트북을 받고 계정을 만듭니다."
    table = only_table(doc)
    assert table.headers == ["Day", "Task", "Owner"]
    assert table.rows == [["1", "Laptop", "IT"], ["2", "계정 생성", "계정 생성"]]


def test_truncated_docx_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.docx"
    write_docx(whole)
    path = tmp_path / "cut.docx"
    path.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(ParseError, match=r"^corrupt or truncated DOCX: "):
        parse_file(path)


def test_unexpected_failure_inside_a_parser_becomes_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    whole = tmp_path / "whole.docx"
    write_docx(whole)
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, b"<w:document" if item.filename == "word/document.xml" else data)
    with pytest.raises(ParseError, match=r"^cannot parse this Word document: ") as caught:
        parse_file(path)
    assert "\n" not in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


# --- PDF --------------------------------------------------------------------------------


def test_pdf_ruled_table_becomes_a_table_block_in_place(report_pdf: Path) -> None:
    doc = parse_file(report_pdf)
    assert doc.pages == 2
    assert doc.mime_type == "application/pdf"
    assert [(block.kind, block.page) for block in doc.blocks] == [
        ("text", 1),
        ("table", 1),
        ("text", 1),
        ("text", 2),
    ]
    assert doc.blocks[0].text == (
        "Quarterly summary for the northern branches.\n분기 실적은 전년 대비 개선되었습니다."
    )
    table = only_table(doc)
    assert table.page == 1
    assert table.caption == "Table 1: Sales by region"
    assert table.headers == SALES[0]
    assert table.rows == SALES[1:]
    assert doc.blocks[1].text.startswith("Table 1: Sales by region\n| 지역 | 매출 | Growth |")
    prose = "\n".join(block.text for block in doc.blocks if block.kind == "text")
    for cell in ("1,200", "서울", "Daegu", "Sales by region"):
        assert cell not in prose  # table text is not repeated as prose
    assert doc.blocks[2].text == "Figures are unaudited and may change."


def test_pdf_table_without_outer_borders_is_found(tmp_path: Path) -> None:
    # Horizontal rules and one inner column rule, no left or right border: a common style.
    rows = [["항목", "내용"], ["할인점", "이마트, 홈플러스"], ["주유", "모든 주유소"]]
    ops = [rule(72, 700 - 20 * i, 372, 700 - 20 * i) for i in range(4)]
    ops.append(rule(172, 700, 172, 640))
    for r, (left, right) in enumerate(rows):
        ops += [text(76, 686 - 20 * r, left, 10), text(176, 686 - 20 * r, right, 10)]
    path = tmp_path / "open.pdf"
    path.write_bytes(make_pdf([ops]))
    table = only_table(parse_file(path))
    assert table.headers == ["항목", "내용"]
    assert table.rows == [["할인점", "이마트, 홈플러스"], ["주유", "모든 주유소"]]


def test_pdf_two_columns_read_column_by_column(tmp_path: Path) -> None:
    left = [f"left column sentence {n} goes here" for n in range(6)]
    right = [f"right column sentence {n} follows" for n in range(6)]
    ops = [text(72, 700 - 14 * n, line) for n, line in enumerate(left)]
    ops += [text(320, 700 - 14 * n, line) for n, line in enumerate(right)]
    path = tmp_path / "columns.pdf"
    path.write_bytes(make_pdf([ops]))
    texts = [block.text for block in parse_file(path).blocks]
    assert texts == ["\n".join(left), "\n".join(right)]


def test_pdf_metadata_title_wins(report_pdf: Path) -> None:
    titled = report_pdf.with_name("titled.pdf")
    titled.write_bytes(
        rewrite_pdf(report_pdf.read_bytes(), lambda w: w.add_metadata({"/Title": "Q3 report"}))
    )
    assert parse_file(titled).title == "Q3 report"
    assert parse_file(report_pdf).title == "report"


def test_pdf_with_a_user_password_is_refused(report_pdf: Path) -> None:
    path = report_pdf.with_name("locked.pdf")
    path.write_bytes(
        rewrite_pdf(report_pdf.read_bytes(), lambda w: w.encrypt("s3cret", algorithm="AES-128"))
    )
    with pytest.raises(ParseError, match=r"^encrypted PDF: a password is needed$") as caught:
        parse_file(path)
    assert caught.value.reason == "encrypted"


def test_pdf_with_only_an_owner_password_opens(report_pdf: Path) -> None:
    path = report_pdf.with_name("restricted.pdf")
    path.write_bytes(
        rewrite_pdf(report_pdf.read_bytes(), lambda w: w.encrypt("", "owner", algorithm="RC4-128"))
    )
    assert only_table(parse_file(path)).rows == SALES[1:]


def test_truncated_pdf_is_refused(report_pdf: Path) -> None:
    data = report_pdf.read_bytes()
    path = report_pdf.with_name("cut.pdf")
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ParseError, match=r"^corrupt or truncated PDF: ") as caught:
        parse_file(path)
    assert caught.value.reason == "corrupt"


def test_image_only_pdf_has_no_text_layer(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([["0.2 0.4 0.8 rg 72 400 300 300 re f"]]))
    with pytest.raises(
        ParseError, match=r"^no text layer \(scanned or image-only PDF\)$"
    ) as caught:
        parse_file(path)
    assert caught.value.reason == "no_text"


def test_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "page.pdf"
    path.write_text("<html>not a pdf</html>")
    with pytest.raises(ParseError, match=r"^not a PDF file"):
        parse_file(path)


# --- refusals before parsing ------------------------------------------------------------


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.touch()
    with pytest.raises(ParseError, match=r"^empty file \(0 bytes\)$") as caught:
        parse_file(path)
    assert caught.value.reason == "empty"


def test_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"\xff" * 3000)  # not even UTF-8: the size check comes first
    with pytest.raises(
        ParseError, match=r"^over the size limit \(2\.9 KB > 100 bytes\)$"
    ) as caught:
        parse_file(path, max_bytes=100)
    assert caught.value.reason == "too_large"


def test_size_limit_in_megabytes(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("wb") as handle:
        handle.truncate(3 * 1024 * 1024 + 200 * 1024)
    with pytest.raises(ParseError, match=r"^over the size limit \(3\.2 MB > 1\.0 MB\)$"):
        parse_file(path, max_bytes=1024 * 1024)


@pytest.mark.parametrize(("name", "message"), [("tool.exe", ".exe"), ("README", "(no extension)")])
def test_unsupported_type(tmp_path: Path, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"MZ")
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert str(caught.value) == f"unsupported file type {message}"
    assert caught.value.reason == "unsupported"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"^file not found$") as caught:
        parse_file(tmp_path / "gone.md")
    assert caught.value.reason == "unreadable"


def test_whitespace_only_markdown_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text("\n   \n<!-- nothing -->\n")
    with pytest.raises(ParseError, match=r"^no text found in the document$"):
        parse_file(path)


def test_parsing_needs_no_model_downloads(tmp_path: Path) -> None:
    # unstructured's partitioners download a spaCy model on first use; the parser must not
    # load unstructured (or spaCy, or NLTK) at all.
    script = (
        "import sys; from pathlib import Path; from knowledge.parsing import parse_file; "
        f"[parse_file(Path({str(tmp_path)!r}) / name) for name in ('a.md', 'a.html')]; "
        "print(sorted(m for m in ('unstructured', 'spacy', 'nltk') if m in sys.modules))"
    )
    (tmp_path / "a.md").write_text("# Title\n\nA plain narrative sentence is here.\n")
    (tmp_path / "a.html").write_text("<p>Another narrative paragraph that reads like prose.</p>")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- what every format hands over -------------------------------------------------------

_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("log.txt", b"Door 4\x00 opened\x0cat 06:00\x1b[0m by the guard.\r\nDone\x7f."),
        ("stock.csv", b"Item,Count\nBol\x00ts,1\x002\nNuts,\x017\n"),
        ("page.html", b"<title>Ro\x00ta</title><h1>Sh\x01ifts</h1><p>Early\x00 shift.</p>"),
        (
            "notes.md",
            b"# Ro\x00ta\n\nEarly\x1f shift.\n\n| Day | Who |\n|---|---|\n| Mon | A\x00na |\n",
        ),
    ],
)
def test_no_control_character_comes_back_from_any_format(
    tmp_path: Path, name: str, data: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    doc = parse_file(path)
    cells = [
        cell
        for b in doc.blocks
        if b.table
        for row in [b.table.headers, *b.table.rows]
        for cell in row
    ]
    sections = [b.section or "" for b in doc.blocks]
    for value in [doc.title, doc.text, *[b.text for b in doc.blocks], *cells, *sections]:
        assert not _CONTROLS.search(value), (value, doc)
    assert_well_formed(doc)


def test_clean_text_keeps_tabs_newlines_and_whole_characters() -> None:
    from knowledge._clean import clean_text

    assert clean_text("a\tb\r\nc\rd\x0ce") == "a\tb\nc\nd\ne"
    assert clean_text("R\x00e\x00p\x00") == "Rep"
    assert clean_text("smile \ud83d\ude00, lone \udce9") == "smile \U0001f600, lone \ufffd"
    assert clean_text("plain 한국어") == "plain 한국어"
