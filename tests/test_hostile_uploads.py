"""Uploads built to hurt: zip bombs and XML entity bombs are refused before unpacking.

The bombs are built here, small on disk: a member is deflated once and its bytes reused, by
a minimal ZIP writer, so a 300 MB archive costs a few hundred kilobytes and milliseconds.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from openpyxl import Workbook

from knowledge._archives import ArchiveLimits, check_zip_file
from knowledge._parse_pool import ParsePool
from knowledge.errors import ParseError
from knowledge.parsing import parse_file
from tests.conftest import CliResult, FreshDatabase

pytestmark = pytest.mark.unit

_MIB = 1024 * 1024

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE x [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
)


def raw_zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A ZIP written by hand from ``(name, deflated bytes, CRC-32, unpacked size)``."""
    out = io.BytesIO()
    central = []
    for name, data, crc, size in members:
        offset = out.tell()
        encoded = name.encode()
        sizes = (crc, len(data), size, len(encoded))
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, *sizes, 0) + encoded)
        out.write(data)
        fields = (b"PK\x01\x02", 20, 20, 0, 8, 0, 0, *sizes, 0, 0, 0, 0, 0, offset)
        central.append(struct.pack("<4s6H3L5H2L", *fields) + encoded)
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    count = len(members)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0))
    return out.getvalue()


def deflate_repeated(head: bytes, block: bytes, count: int, tail: bytes) -> tuple[bytes, int, int]:
    """``head + block * count + tail`` deflated without inflating it here: each piece is a
    byte-aligned, self-contained run of deflate blocks (a full flush), so the block's bytes
    can be repeated. Returns the deflated bytes, the CRC-32 and the unpacked size."""
    pieces = []
    for data in (head, block, tail):
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        pieces.append(packer.compress(data) + packer.flush(zlib.Z_FULL_FLUSH))
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    stream = pieces[0] + pieces[1] * count + pieces[2] + b"\x03\x00"  # an empty final block
    return stream, crc, len(head) + len(block) * count + len(tail)


def docx_with(tmp_path: Path, name: str, replace: dict[str, bytes]) -> Path:
    """A real DOCX from python-docx, with some parts replaced."""
    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("Quarterly report")
    document.save(buffer)
    path = tmp_path / name
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = replace.get(info.filename, source.read(info.filename))
            target.writestr(info.filename, data, zipfile.ZIP_DEFLATED)
    return path


def docx_bomb(tmp_path: Path) -> Path:
    """A DOCX whose document part unpacks to 300 MB of paragraphs; about 1.2 MB on disk."""
    plain = docx_with(tmp_path, "plain.docx", {})
    with zipfile.ZipFile(plain) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    head, _ = parts.pop("word/document.xml").split(b"<w:body>")
    paragraph = b"<w:p><w:r><w:t>" + b"a" * 200 + b"</w:t></w:r></w:p>"
    document = deflate_repeated(
        head + b"<w:body>", paragraph * (_MIB // len(paragraph)), 300, b"</w:body></w:document>"
    )
    members = [(name, *deflate_repeated(data, b"", 0, b"")) for name, data in parts.items()]
    path = tmp_path / "bomb.docx"
    path.write_bytes(raw_zip([*members, ("word/document.xml", *document)]))
    return path


def test_a_docx_whose_document_unpacks_to_300_mb_is_refused_unopened(tmp_path: Path) -> None:
    path = docx_bomb(tmp_path)
    assert path.stat().st_size < 2 * _MIB
    head = zipfile.ZipFile(docx_with(tmp_path, "plain.docx", {})).read("word/document.xml")[:200]
    with zipfile.ZipFile(path) as archive:  # a valid archive: the first megabyte inflates
        assert archive.open("word/document.xml").read(_MIB).startswith(head[:100])
    started = time.monotonic()
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert caught.value.reason == "unsafe"
    assert str(caught.value) == "unsafe DOCX (a zip or XML bomb): unpacks to over 256.0 MB"
    assert time.monotonic() - started < 5  # refused from the directory: nothing was inflated


def test_one_part_compressed_a_thousandfold_is_refused(tmp_path: Path) -> None:
    member = b"<w:p/>" * (20 * _MIB // 6)
    path = docx_with(tmp_path, "ratio.docx", {"word/document.xml": member})
    with pytest.raises(ParseError, match=r"^unsafe DOCX \(a zip or XML bomb\): a part compressed"):
        parse_file(path)


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.xlsx"
    empty = deflate_repeated(b"", b"", 0, b"")
    path.write_bytes(raw_zip([(f"xl/m{i}.bin", *empty) for i in range(10_001)]))
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert caught.value.reason == "unsafe"
    assert "10,001 files inside, over the limit of 10,000" in str(caught.value)


def test_an_ordinary_docx_and_xlsx_pass_the_guard(tmp_path: Path) -> None:
    document = docx_with(tmp_path, "ok.docx", {})
    assert parse_file(document).text == "Quarterly report"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in range(2000):  # repetitive, so it compresses well: still far from a bomb
        sheet.append(["Seoul", "Tokyo", row, "same text in every row " * 4])
    path = tmp_path / "ok.xlsx"
    workbook.save(path)
    assert "Tokyo" in parse_file(path).text


@pytest.mark.parametrize("prolog", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "external"])
def test_a_docx_whose_xml_declares_entities_is_refused(tmp_path: Path, prolog: bytes) -> None:
    body = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    body += b"<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    body = body.replace(b"&lol9;", b"&xxe;") if prolog is EXTERNAL_ENTITY else body
    path = docx_with(tmp_path, "laughs.docx", {"word/document.xml": prolog + body})
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert caught.value.reason == "unsafe"
    assert "its XML declares entities" in str(caught.value)


def test_an_xlsx_sheet_declaring_entities_is_refused(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["x"])
    plain = tmp_path / "plain.xlsx"
    workbook.save(plain)
    path = tmp_path / "laughs.xlsx"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = BILLION_LAUGHS + data.split(b"?>", 1)[-1].replace(b">x<", b">&lol9;<")
            target.writestr(info.filename, data, zipfile.ZIP_DEFLATED)
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert caught.value.reason == "unsafe"


def test_html_with_an_entity_bomb_is_read_as_text_not_expanded(tmp_path: Path) -> None:
    # The HTML walker (html.parser) never expands DTD entities: the bomb stays one word.
    path = tmp_path / "laughs.html"
    path.write_bytes(BILLION_LAUGHS + b"<html><body><p>Hello &lol9; world</p></body></html>")
    text = parse_file(path).text
    assert text.endswith("Hello &lol9; world")
    assert len(text) < 100


def test_a_file_that_is_not_a_zip_is_left_to_its_parser(tmp_path: Path) -> None:
    path = tmp_path / "fake.docx"
    path.write_bytes(b"this is not a zip archive at all")
    check_zip_file(path, kind="DOCX")  # no verdict of its own
    with pytest.raises(ParseError, match=r"^corrupt or truncated DOCX"):
        parse_file(path)


def test_archive_limits_validate_themselves() -> None:
    with pytest.raises(ValueError, match="positive"):
        ArchiveLimits(max_ratio=1)


async def test_a_parse_past_the_memory_limit_refuses_that_file_and_the_next_parses(
    tmp_path: Path,
) -> None:
    # A CSV of many short cells: 6 MB on disk, some 250 MB as Python lists.
    heavy = tmp_path / "heavy.csv"
    heavy.write_bytes(b"a,b,c,d,e,f,g,h\n" + b"1,2,3,4,5,6,7,8\n" * 400_000)
    light = tmp_path / "light.csv"
    light.write_text("city,cap\nSeoul,180\n")
    pool = ParsePool(memory_mb=200)
    try:
        with pytest.raises(ParseError) as caught:
            await pool.parse(heavy, max_bytes=50 * _MIB, timeout=60)
        assert caught.value.reason == "too_large"
        assert str(caught.value) == "too large to parse in memory"  # 6 MB: the limit's doing
        document = await pool.parse(light, max_bytes=50 * _MIB, timeout=60)
        assert "Seoul" in document.text
    finally:
        await pool.aclose()


def test_text_longer_than_the_largest_file_accepted_is_refused(tmp_path: Path) -> None:
    # What kept `deskbot ingest` busy for minutes: a compressed part whose text, once parsed,
    # went on to be chunked and embedded. The text may not outgrow the upload limit.
    paragraphs = b"".join(
        b"<w:p><w:r><w:t>%s</w:t></w:r></w:p>"
        % b" ".join(b"w%07d" % (i * 1250 + j) for j in range(1250))
        for i in range(200)
    )
    path = docx_with(tmp_path, "long.docx", {})
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    head, _ = parts["word/document.xml"].split(b"<w:body>")
    parts["word/document.xml"] = head + b"<w:body>" + paragraphs + b"</w:body></w:document>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    with pytest.raises(ParseError) as caught:
        parse_file(path, max_bytes=1 * _MIB)
    assert caught.value.reason == "too_large"
    assert str(caught.value) == "too much text (2,249,800 characters, over the limit of 1,048,576)"


@pytest.mark.e2e
def test_deskbot_ingest_refuses_the_bombs_and_stores_the_rest(
    run_cli: Callable[..., CliResult], fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    docx_bomb(folder).rename(folder / "bomb.docx")
    (folder / "plain.docx").unlink()
    laughs = '<!DOCTYPE x [<!ENTITY a "aaaa">]><w:document xmlns:w="urn:w">&a;</w:document>'
    docx_with(folder, "laughs.docx", {"word/document.xml": laughs.encode()})
    (folder / "guide.md").write_text("# Guide\n\nBadges open every door on weekdays.\n")
    env = {"DATABASE_URL": fresh_database.url}
    result = run_cli("ingest", str(folder), "-c", "uploads", "--json", env=env)
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    rows = {Path(row["path"]).name: row for row in json.loads(result.stdout)}
    assert rows["guide.md"]["status"] == "stored"
    assert rows["bomb.docx"]["reason"] == rows["laughs.docx"]["reason"] == "unsafe"
    assert (
        rows["bomb.docx"]["detail"] == "unsafe DOCX (a zip or XML bomb): unpacks to over 256.0 MB"
    )


@pytest.mark.e2e
def test_a_parse_memory_limit_below_what_parsers_need_is_one_line(
    run_cli: Callable[..., CliResult],
) -> None:
    result = run_cli("doctor", env={"DESKBOT_PARSE_MEMORY_MB": "100"})
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        "deskbot: DESKBOT_PARSE_MEMORY_MB: must be at least 256 (MB), or 0 for no limit"
    ]
