"""PPTX, EPUB, ODT, ODS, RTF, EML and MSG: real files written here, parsed, and bad ones
refused in one line with a typed reason."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from knowledge.documents import ParsedDocument, Table
from knowledge.errors import ParseError
from knowledge.parsing import SUPPORTED_SUFFIXES, parse_file
from tests.office_samples import (
    make_eml,
    make_epub,
    make_msg,
    make_ods,
    make_odt,
    make_pptx,
    make_rtf,
)

pytestmark = pytest.mark.unit


def _tables(doc: ParsedDocument) -> list[Table]:
    return [block.table for block in doc.blocks if block.table is not None]


def _refusal(path: Path) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert "\n" not in str(caught.value)
    return caught.value


def _truncated(good: Path, name: str) -> Path:
    bad = good.with_name(name)
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    return bad


def test_every_new_format_is_supported() -> None:
    assert {".pptx", ".epub", ".odt", ".ods", ".rtf", ".eml", ".msg"} <= SUPPORTED_SUFFIXES


# --- PPTX -------------------------------------------------------------------------------


def test_a_deck_reads_slide_by_slide_with_tables_and_speaker_notes(tmp_path: Path) -> None:
    doc = parse_file(make_pptx(tmp_path / "deck.pptx"))
    assert (doc.title, doc.pages) == ("2026 분기 보고", 2)
    assert [(b.kind, b.page, b.section) for b in doc.blocks] == [
        ("heading", 1, "서울 지사 실적"),
        ("text", 1, "서울 지사 실적"),
        ("table", 1, "서울 지사 실적"),
        ("text", 1, "서울 지사 실적"),
        ("heading", 2, "Slide 2"),  # a slide without a title is named by its number
        ("text", 2, "Slide 2"),
        ("text", 2, "Slide 2"),
    ]
    (table,) = _tables(doc)
    assert table.headers == ["지역", "Units", "Revenue"]
    assert table.rows == [["서울", "1200", "35.5"], ["Busan", "310", "9.1"]]
    assert table.page == 1
    assert doc.blocks[1].text == "매출이 12% 늘었습니다.\nHiring is on track."
    assert doc.blocks[3].text == "Speaker notes: 발표자 메모: 환율 효과는 제외했습니다."
    # shapes in reading order (top first), not in the order they were added
    assert [b.text for b in doc.blocks[5:]] == [
        "Top line: the roadmap.",
        "Bottom line: ship in March.",
    ]


def test_a_truncated_deck_is_corrupt(tmp_path: Path) -> None:
    bad = _truncated(make_pptx(tmp_path / "deck.pptx"), "cut.pptx")
    error = _refusal(bad)
    assert error.reason == "corrupt"
    assert "PPTX" in str(error)


def test_a_password_protected_deck_and_an_old_ppt_are_told_apart(tmp_path: Path) -> None:
    from extract_msg import OleWriter

    # Office writes an encrypted OOXML package into an OLE file with these two streams.
    locked = OleWriter()
    locked.addEntry("EncryptionInfo", b"\x04\x00\x04\x00" + b"\x00" * 60)
    locked.addEntry("EncryptedPackage", b"\x00" * 4096)
    locked.write(str(tmp_path / "locked.pptx"))
    error = _refusal(tmp_path / "locked.pptx")
    assert (error.reason, str(error)) == ("encrypted", "password-protected PPTX")

    old = OleWriter()
    old.addEntry("PowerPoint Document", b"\x00" * 4096)
    old.write(str(tmp_path / "old.pptx"))
    error = _refusal(tmp_path / "old.pptx")
    assert error.reason == "unsupported"
    assert "old .ppt format" in str(error)


# --- EPUB -------------------------------------------------------------------------------


def test_a_book_reads_in_spine_order_with_its_headings_and_tables(tmp_path: Path) -> None:
    doc = parse_file(make_epub(tmp_path / "book.epub"))
    assert doc.title == "사내 안내서"
    headings = [b.text for b in doc.blocks if b.kind == "heading"]
    assert headings == ["1장 소개", "2장 출장", "3장 맺음말"]  # the files sort the other way
    (table,) = _tables(doc)
    assert table.headers == ["City", "Cap"]
    assert table.rows == [["Tokyo", "220"], ["서울", "180"]]
    assert next(b for b in doc.blocks if b.kind == "table").section == "2장 출장"


def test_bad_books_are_refused_with_their_reason(tmp_path: Path) -> None:
    good = make_epub(tmp_path / "book.epub")
    assert _refusal(_truncated(good, "cut.epub")).reason == "corrupt"

    with zipfile.ZipFile(tmp_path / "plain.epub", "w") as plain:
        plain.writestr("chapter.xhtml", "<p>no container</p>")
    error = _refusal(tmp_path / "plain.epub")
    assert (error.reason, str(error)) == ("corrupt", "not an EPUB: no META-INF/container.xml")

    drm = tmp_path / "drm.epub"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(drm, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr(
            "META-INF/encryption.xml",
            '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"'
            ' xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
            '<enc:CipherData><enc:CipherReference URI="EPUB/b_travel.xhtml"/></enc:CipherData>'
            "</enc:EncryptedData></encryption>",
        )
    assert _refusal(drm).reason == "encrypted"


# --- ODT and ODS ------------------------------------------------------------------------


def test_an_odt_keeps_headings_lists_and_tables(tmp_path: Path) -> None:
    doc = parse_file(make_odt(tmp_path / "welfare.odt"))
    assert doc.title == "복지 제도 안내"
    assert [(b.kind, b.text) for b in doc.blocks if b.kind != "table"] == [
        ("heading", "휴가 규정"),
        ("text", "연차는 입사 첫해에 15일입니다."),
        ("text", "Sick leave: 10 days"),
        ("text", "Parental leave: 1 year"),
    ]
    (table,) = _tables(doc)
    assert (table.headers, table.rows) == (["종류", "Days"], [["연차", "15"], ["Sick", "10"]])
    assert all(b.section == "휴가 규정" for b in doc.blocks[1:])


def test_each_ods_sheet_is_a_table_and_repeated_blanks_are_not_expanded(
    tmp_path: Path,
) -> None:
    doc = parse_file(make_ods(tmp_path / "sales.ods"))
    sales, staff = _tables(doc)
    assert (sales.caption, sales.headers, sales.rows) == (
        "매출",
        ["지역", "Units"],
        [["서울", "1200"], ["Busan", "310"]],
    )
    assert (staff.caption, staff.rows) == ("Staff", [["Kim Minji", "Platform"]])


def test_bad_opendocument_files_are_refused(tmp_path: Path) -> None:
    assert _refusal(_truncated(make_odt(tmp_path / "a.odt"), "cut.odt")).reason == "corrupt"
    assert _refusal(_truncated(make_ods(tmp_path / "a.ods"), "cut.ods")).reason == "corrupt"
    with zipfile.ZipFile(tmp_path / "renamed.odt", "w") as package:
        package.writestr("word/document.xml", "<w:document/>")
    error = _refusal(tmp_path / "renamed.odt")
    assert (error.reason, "no content.xml" in str(error)) == ("corrupt", True)


# --- RTF --------------------------------------------------------------------------------


def test_rtf_korean_in_code_page_bytes_and_escapes_and_its_table(tmp_path: Path) -> None:
    doc = parse_file(make_rtf(tmp_path / "travel.rtf"))
    assert doc.blocks[0].text == (
        "출장 규정 안내\nHotel caps are set per city.\n한빛 office closes at 6."
    )
    (table,) = _tables(doc)
    assert (table.headers, table.rows) == (["City", "Cap"], [["도쿄", "220"]])
    assert doc.blocks[-1].text == "After the table."


def test_bad_rtf_is_refused(tmp_path: Path) -> None:
    error = _refusal(_truncated(make_rtf(tmp_path / "a.rtf"), "cut.rtf"))
    assert (error.reason, "truncated RTF" in str(error)) == ("corrupt", True)
    (tmp_path / "fake.rtf").write_text("just text, not rtf")
    assert "not an RTF document" in str(_refusal(tmp_path / "fake.rtf"))


# --- EML and MSG ------------------------------------------------------------------------


def test_an_eml_has_headers_body_and_each_attachment_parsed_on_its_own(
    tmp_path: Path,
) -> None:
    inner = make_eml(
        tmp_path / "inner.eml", [("notes.txt", "내부 메모: 예산 확정".encode(), "text/plain")]
    )
    mail = make_eml(
        tmp_path / "mail.eml",
        [
            ("정산 규정.md", "# 정산 규정\n\n영수증은 필수입니다.\n".encode(), "text/markdown"),
            ("broken.pdf", b"%PDF-1.7\n1 0 obj <<", "application/pdf"),
            ("fwd.eml", inner.read_bytes(), "message/rfc822"),
            ("photo.jpg", b"\xff\xd8\xff\xe0", "image/jpeg"),
        ],
    )
    doc = parse_file(mail)
    assert doc.title == "3분기 출장비 정산 안내"
    assert doc.blocks[1].text == (
        "From: 김민지 <minji@hanbit.example>\nTo: team@hanbit.example\n"
        "Date: Fri, 20 Nov 2026 09:30:00 +0000\nSubject: 3분기 출장비 정산 안내"
    )
    assert [b.text for b in doc.blocks[2:]] == ["안녕하세요.", "출장비 정산은 12월 5일까지입니다."]
    found = {a.name: a for a in doc.attachments}
    # the logo the HTML body shows by Content-ID is not an attachment
    assert list(found) == [
        "정산 규정.md",
        "broken.pdf",
        "fwd.eml",
        "fwd.eml#notes.txt",
        "photo.jpg",
    ]
    policy = found["정산 규정.md"].document
    assert policy is not None and (policy.source, policy.title) == ("정산 규정.md", "정산 규정")
    assert found["정산 규정.md"].size_bytes == len("# 정산 규정\n\n영수증은 필수입니다.\n".encode())
    broken, photo = found["broken.pdf"].error, found["photo.jpg"].error
    assert broken is not None and broken.reason == "corrupt"
    assert photo is not None and photo.reason == "unsupported"
    notes = found["fwd.eml#notes.txt"].document
    assert notes is not None and notes.text == "내부 메모: 예산 확정"


def test_an_html_only_eml_keeps_its_table(tmp_path: Path) -> None:
    (tmp_path / "html.eml").write_bytes(
        "From: a@example.com\nSubject: 표\nContent-Type: text/html; charset=utf-8\n\n"
        "<p>Caps:</p><table><tr><th>City</th><th>Cap</th></tr><tr><td>서울</td><td>180</td>"
        "</tr></table>".encode()
    )
    (table,) = _tables(parse_file(tmp_path / "html.eml"))
    assert (table.headers, table.rows) == (["City", "Cap"], [["서울", "180"]])


def test_a_file_that_is_not_a_message_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.eml").write_bytes(b"\x00\x01binary\xff\xfe junk without headers")
    error = _refusal(tmp_path / "junk.eml")
    assert (error.reason, "not an e-mail message" in str(error)) == ("corrupt", True)


def test_an_outlook_message_with_an_attachment(tmp_path: Path) -> None:
    table = "지역,Units\n서울,1200\n".encode()
    doc = parse_file(make_msg(tmp_path / "budget.msg", attachment=("표.csv", table)))
    assert doc.title == "분기 예산 회의"
    header = doc.blocks[1].text
    assert "Subject: 분기 예산 회의" in header and "Date: 2026-11-21 08:00:00" in header
    assert "From: 이서준 <seojun@hanbit.example>" in header
    assert "To: Team <team@hanbit.example>" in header
    assert [b.text for b in doc.blocks[2:]] == [
        "예산 회의는 목요일 오후 2시입니다.",
        "Bring the Q3 figures.",
    ]
    (attachment,) = doc.attachments
    assert attachment.document is not None
    (parsed,) = _tables(attachment.document)
    assert (parsed.headers, parsed.rows) == (["지역", "Units"], [["서울", "1200"]])


def test_a_truncated_outlook_message_is_corrupt(tmp_path: Path) -> None:
    bad = _truncated(make_msg(tmp_path / "a.msg"), "cut.msg")
    assert _refusal(bad).reason == "corrupt"


@pytest.mark.parametrize(
    ("maker", "name"),
    [(make_pptx, "deck.pptx"), (make_epub, "book.epub"), (make_odt, "a.odt"), (make_ods, "a.ods")],
)
def test_the_archive_guard_refuses_an_xml_bomb_inside_every_zip_format(
    tmp_path: Path, maker: Callable[[Path], Path], name: str
) -> None:
    good = maker(tmp_path / name)
    bomb = tmp_path / f"bomb-{name}"
    laughs = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>'
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("extra/laughs.xml", laughs)
    assert _refusal(bomb).reason == "unsafe"


def test_attachment_names_lose_their_folders_and_repeats_are_numbered(tmp_path: Path) -> None:
    mail = make_eml(
        tmp_path / "names.eml",
        [
            ("..\\..\\windows\\회의록.txt", "첫 번째 회의록".encode(), "text/plain"),
            ("/tmp/../회의록.txt", "두 번째 회의록".encode(), "text/plain"),
        ],
    )
    found = [
        (a.name, a.document.text if a.document else None) for a in parse_file(mail).attachments
    ]
    assert found == [("회의록.txt", "첫 번째 회의록"), ("회의록 (2).txt", "두 번째 회의록")]


def test_an_ods_whose_repeats_would_make_millions_of_cells_is_too_large(tmp_path: Path) -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    sheet = Table(name="폭탄")
    for _ in range(3):  # each row: 1,000 copies of a row of 1,000 copies of a cell
        row = TableRow(numberrowsrepeated=1000)
        cell = TableCell(numbercolumnsrepeated=1000, valuetype="string")
        cell.addElement(P(text="x"))
        row.addElement(cell)
        sheet.addElement(row)
    document.spreadsheet.addElement(sheet)
    document.save(str(tmp_path / "repeats.ods"))
    error = _refusal(tmp_path / "repeats.ods")
    assert (error.reason, "over 1,000,000 cells" in str(error)) == ("too_large", True)
