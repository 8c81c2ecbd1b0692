"""EPUB books: the spine's XHTML documents in reading order, through the HTML walker.

An EPUB is a ZIP: ``META-INF/container.xml`` names the package document (OPF), whose
manifest lists the files and whose spine gives their reading order. Each spine document is
XHTML, read by :func:`knowledge._markup.html_blocks` like any web page, so chapter headings
become headings and tables stay tables. The package documents are read with the standard
library's parser, which expands no external entity. A book whose chapters are encrypted
(DRM) is refused; fonts obfuscated the standard way are not a reason.
"""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

from knowledge._markup import decode_html, html_blocks
from knowledge._packages import open_package
from knowledge.documents import Block
from knowledge.errors import ParseError

__all__ = ["read_epub"]

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_ENC = "{http://www.w3.org/2001/04/xmlenc#}"
_DOCUMENT_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/xml"})


def read_epub(path: Path) -> tuple[list[Block], str | None]:
    """The book's blocks in spine order and its ``dc:title``."""
    with open_package(path, "EPUB") as book:
        try:
            opf_name = _package_document(book)
            opf = _xml(book, opf_name)
            chapters = _spine(opf, posixpath.dirname(opf_name))
            _refuse_encrypted(book, chapters)
            blocks: list[Block] = []
            for name in chapters:
                found, _ = html_blocks(decode_html(book.read(name)))
                blocks.extend(found)
        except KeyError as exc:
            raise ParseError(f"corrupt EPUB: {exc.args[0]} is missing") from None
        except (zipfile.BadZipFile, EOFError) as exc:
            raise ParseError(f"corrupt or truncated EPUB: {exc}") from None
    title = opf.findtext(f"{_OPF}metadata/{_DC}title")
    return blocks, title


def _xml(book: zipfile.ZipFile, name: str) -> ElementTree.Element:
    try:
        # The archive guard refused any member declaring entities (knowledge._archives).
        return ElementTree.fromstring(book.read(name))  # noqa: S314
    except ElementTree.ParseError as exc:
        raise ParseError(f"corrupt EPUB: {name} is not well-formed XML ({exc})") from None


def _package_document(book: zipfile.ZipFile) -> str:
    if "META-INF/container.xml" not in book.namelist():
        raise ParseError("not an EPUB: no META-INF/container.xml")
    container = _xml(book, "META-INF/container.xml")
    rootfile = container.find(f"{_CONTAINER}rootfiles/{_CONTAINER}rootfile")
    name = rootfile.get("full-path") if rootfile is not None else None
    if not name:
        raise ParseError("corrupt EPUB: container.xml names no package document")
    return name


def _spine(opf: ElementTree.Element, base: str) -> list[str]:
    """The spine's documents as names in the ZIP, in reading order."""
    manifest = {item.get("id"): item for item in opf.iterfind(f"{_OPF}manifest/{_OPF}item")}
    names: list[str] = []
    for ref in opf.iterfind(f"{_OPF}spine/{_OPF}itemref"):
        item = manifest.get(ref.get("idref"))
        if item is None or item.get("media-type") not in _DOCUMENT_TYPES:
            continue
        href = unquote((item.get("href") or "").split("#")[0])
        names.append(posixpath.normpath(posixpath.join(base, href)))
    if not names:
        raise ParseError("corrupt EPUB: its spine lists no document")
    return names


def _refuse_encrypted(book: zipfile.ZipFile, chapters: list[str]) -> None:
    if "META-INF/encryption.xml" not in book.namelist():
        return
    encryption = _xml(book, "META-INF/encryption.xml")
    encrypted = {
        unquote(reference.get("URI") or "")
        for reference in encryption.iter(f"{_ENC}CipherReference")
    }
    if encrypted & set(chapters):
        raise ParseError("encrypted EPUB (DRM)", reason="encrypted")
