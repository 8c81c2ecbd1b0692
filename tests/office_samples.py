"""Real sample files of the formats beyond PDF and Word, written at test time.

Each is made by the format's own writer where one exists (python-pptx, ebooklib, odfpy,
the standard library's ``email``, extract-msg's OLE writer); RTF, a text format, is written
the way Word writes Korean (``\\ansicpg949`` with ``\\'hh`` bytes, and ``\\uN`` escapes).
"""

from __future__ import annotations

import datetime as dt
import struct
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

__all__ = [
    "make_eml",
    "make_epub",
    "make_msg",
    "make_ods",
    "make_odt",
    "make_pptx",
    "make_rtf",
]


def make_pptx(path: Path) -> Path:
    """Two slides: a Korean title, bullets, a table and speaker notes; then a slide whose
    shapes were added bottom first."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = "2026 분기 보고"
    first = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    first.shapes.title.text = "서울 지사 실적"
    box = first.shapes.add_textbox(Inches(0.5), Inches(1.5), Inches(8), Inches(1))
    box.text_frame.text = "매출이 12% 늘었습니다."
    box.text_frame.add_paragraph().text = "Hiring is on track."
    table = first.shapes.add_table(3, 3, Inches(0.5), Inches(3), Inches(8), Inches(2)).table
    for r, row in enumerate(
        [["지역", "Units", "Revenue"], ["서울", "1200", "35.5"], ["Busan", "310", "9.1"]]
    ):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    first.notes_slide.notes_text_frame.text = "발표자 메모: 환율 효과는 제외했습니다."
    second = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no title
    low = second.shapes.add_textbox(Inches(0.5), Inches(5), Inches(8), Inches(1))
    low.text_frame.text = "Bottom line: ship in March."
    high = second.shapes.add_textbox(Inches(0.5), Inches(1), Inches(8), Inches(1))
    high.text_frame.text = "Top line: the roadmap."
    deck.save(str(path))
    return path


def make_epub(path: Path) -> Path:
    """Three chapters whose spine order differs from their file names' order."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("deskbot-sample")
    book.set_title("사내 안내서")
    book.set_language("ko")
    chapters = []
    for file_name, heading, body in [
        ("c_intro.xhtml", "1장 소개", "<p>한빛로보틱스에 오신 것을 환영합니다.</p>"),
        (
            "b_travel.xhtml",
            "2장 출장",
            "<p>Hotel caps by city:</p><table><tr><th>City</th><th>Cap</th></tr>"
            "<tr><td>Tokyo</td><td>220</td></tr><tr><td>서울</td><td>180</td></tr></table>",
        ),
        ("a_end.xhtml", "3장 맺음말", "<p>Questions go to the people team.</p>"),
    ]:
        chapter = epub.EpubHtml(title=heading, file_name=file_name, lang="ko")
        chapter.content = f"<html><body><h1>{heading}</h1>{body}</body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = chapters
    epub.write_epub(str(path), book)
    return path


def _odt_table(document: object, rows: list[list[str]], *, header_rows: int) -> object:
    from odf.table import Table, TableCell, TableColumn, TableHeaderRows, TableRow
    from odf.text import P

    table = Table(name="Table1")
    table.addElement(TableColumn(numbercolumnsrepeated=len(rows[0])))
    head = TableHeaderRows()
    for index, values in enumerate(rows):
        row = TableRow()
        for value in values:
            cell = TableCell()
            cell.addElement(P(text=value))
            row.addElement(cell)
        (head if index < header_rows else table).addElement(row)
        if index == header_rows - 1:
            table.addElement(head)
    return table


def make_odt(path: Path) -> Path:
    """A heading, Korean prose, a list and a table with a marked header row."""
    from odf.dc import Title
    from odf.opendocument import OpenDocumentText
    from odf.text import H, List, ListItem, P

    document = OpenDocumentText()
    document.meta.addElement(Title(text="복지 제도 안내"))
    document.text.addElement(H(outlinelevel=1, text="휴가 규정"))
    document.text.addElement(P(text="연차는 입사 첫해에 15일입니다."))
    items = List()
    for value in ["Sick leave: 10 days", "Parental leave: 1 year"]:
        item = ListItem()
        item.addElement(P(text=value))
        items.addElement(item)
    document.text.addElement(items)
    rows = [["종류", "Days"], ["연차", "15"], ["Sick", "10"]]
    document.text.addElement(_odt_table(document, rows, header_rows=1))
    document.save(str(path))
    return path


def make_ods(path: Path) -> Path:
    """Two sheets; the first ends in a million repeated empty rows, as LibreOffice writes."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    for name, rows in [
        ("매출", [["지역", "Units"], ["서울", "1200"], ["Busan", "310"]]),
        ("Staff", [["Name", "Team"], ["Kim Minji", "Platform"]]),
    ]:
        sheet = Table(name=name)
        for values in rows:
            row = TableRow()
            for value in values:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=value))
                row.addElement(cell)
            row.addElement(TableCell(numbercolumnsrepeated=16382))
            sheet.addElement(row)
        empty = TableRow(numberrowsrepeated=1048570)
        empty.addElement(TableCell(numbercolumnsrepeated=16384))
        sheet.addElement(empty)
        document.spreadsheet.addElement(sheet)
    document.save(str(path))
    return path


def _rtf_escape(text: str) -> str:
    """Korean as Word writes it under ``\\ansicpg949``: each cp949 byte as ``\\'hh``."""
    out = []
    for char in text:
        if ord(char) < 128:
            out.append(char)
        else:
            out.append("".join(f"\\'{byte:02x}" for byte in char.encode("cp949")))
    return "".join(out)


def make_rtf(path: Path) -> Path:
    """Korean in code-page bytes and in ``\\u`` escapes, and a two-row table."""
    cells = lambda values: "".join(f"\\pard\\intbl {_rtf_escape(v)}\\cell " for v in values)  # noqa: E731
    body = (
        "{\\rtf1\\ansi\\ansicpg949\\deff0{\\fonttbl{\\f0\\fnil\\fcharset129 Malgun Gothic;}}"
        "{\\*\\generator Riched20 10.0.19041}\\viewkind4\\uc1\n"
        f"\\pard\\f0\\fs22 {_rtf_escape('출장 규정 안내')}\\par\n"
        "\\pard Hotel caps are set per city.\\par\n"
        "\\pard \\u54620?\\u48731? office closes at 6.\\par\n"
        "\\trowd\\cellx2000\\cellx4000\n"
        f"{cells(['City', 'Cap'])}\\row\n"
        "\\trowd\\cellx2000\\cellx4000\n"
        f"{cells(['도쿄', '220'])}\\row\n"
        "\\pard After the table.\\par\n}"
    )
    path.write_text(body, encoding="ascii")
    return path


def make_eml(path: Path, attachments: list[tuple[str, bytes, str]]) -> Path:
    """A Korean message with a plain and an HTML body, an inline image and attachments
    (name, bytes, MIME type; ``message/rfc822`` attaches those bytes as a message)."""
    message = EmailMessage()
    message["From"] = "김민지 <minji@hanbit.example>"
    message["To"] = "team@hanbit.example"
    message["Date"] = format_datetime(dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC))
    message["Subject"] = "3분기 출장비 정산 안내"
    message.set_content("안녕하세요.\n\n출장비 정산은 12월 5일까지입니다.\n")
    message.add_alternative(
        "<p>안녕하세요.</p><p>출장비 정산은 12월 5일까지입니다.</p>", subtype="html"
    )
    html = message.get_payload()[1]
    html.add_related(b"\x89PNG fake logo", maintype="image", subtype="png", cid="<logo>")
    for name, data, mime in attachments:
        if mime == "message/rfc822":
            from email import message_from_bytes
            from email.policy import default

            message.add_attachment(message_from_bytes(data, policy=default), filename=name)
        else:
            maintype, subtype = mime.split("/")
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    path.write_bytes(bytes(message))
    return path


def make_msg(path: Path, *, attachment: tuple[str, bytes] | None = None) -> Path:
    """An Outlook message: MAPI properties as streams of an OLE file (extract-msg's writer).

    The streams are those [MS-OXMSG] names: ``__substg1.0_PPPPTTTT`` for each string
    property (``001F``: UTF-16), a ``__properties_version1.0`` stream of fixed-size
    properties (the submit time), a recipient storage and an attachment storage.
    """
    from extract_msg import OleWriter

    def utf16(value: str) -> bytes:
        return value.encode("utf-16-le") + b"\x00\x00"

    def props(header: bytes, entries: list[tuple[int, int, bytes]]) -> bytes:
        # each entry: property tag, flags, 8 bytes of value
        return header + b"".join(
            struct.pack("<II", tag, flags) + value for tag, flags, value in entries
        )

    submitted = int(
        (
            dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC) - dt.datetime(1601, 1, 1, tzinfo=dt.UTC)
        ).total_seconds()
        * 10**7
    )
    writer = OleWriter()
    strings = {
        "001A": "IPM.Note",  # message class
        "0037": "분기 예산 회의",  # subject
        "0C1A": "이서준",  # sender name
        "5D01": "seojun@hanbit.example",  # sender SMTP address
        "0E04": "team@hanbit.example",  # display to
        "1000": "예산 회의는 목요일 오후 2시입니다.\r\n\r\nBring the Q3 figures.",  # body
    }
    for prop, value in strings.items():
        writer.addEntry(f"__substg1.0_{prop}001F", utf16(value))
    count = 1 if attachment else 0
    fixed = [(0x00390040, 6, struct.pack("<Q", submitted))]  # client submit time (PT_SYSTIME)
    writer.addEntry(
        "__properties_version1.0",
        props(b"\x00" * 8 + struct.pack("<IIII", 1, count, 1, count) + b"\x00" * 8, fixed),
    )
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("__substg1.0_00020102", "__substg1.0_00030102", "__substg1.0_00040102"):
        writer.addEntry(f"__nameid_version1.0/{stream}", b"")
    writer.addEntry("__recip_version1.0_#00000000", storage=True)
    writer.addEntry("__recip_version1.0_#00000000/__substg1.0_3001001F", utf16("Team"))
    writer.addEntry(
        "__recip_version1.0_#00000000/__substg1.0_39FE001F", utf16("team@hanbit.example")
    )
    writer.addEntry(
        "__recip_version1.0_#00000000/__properties_version1.0",
        props(b"\x00" * 8, [(0x0C150003, 6, struct.pack("<Q", 1))]),
    )
    if attachment is not None:
        name, data = attachment
        folder = "__attach_version1.0_#00000000"
        writer.addEntry(folder, storage=True)
        writer.addEntry(f"{folder}/__substg1.0_3707001F", utf16(name))  # long file name
        writer.addEntry(f"{folder}/__substg1.0_3704001F", utf16(name))  # short file name
        writer.addEntry(f"{folder}/__substg1.0_37010102", data)  # the bytes
        writer.addEntry(
            f"{folder}/__properties_version1.0",
            props(b"\x00" * 8, [(0x37050003, 6, struct.pack("<Q", 1))]),
        )  # attach method: by value
    writer.write(str(path))
    return path
