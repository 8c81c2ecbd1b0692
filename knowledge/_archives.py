"""Guards for ZIP-based formats (DOCX, XLSX and every other OOXML, ODF or EPUB file).

:func:`check_zip_file` runs before any parser library opens the file, and refuses it with a
:class:`~knowledge.errors.ParseError` of reason ``"unsafe"`` when

- it holds more than :attr:`ArchiveLimits.max_members` members,
- its members unpack to more than :attr:`ArchiveLimits.max_total_bytes` in all, or
- a member larger than :attr:`ArchiveLimits.ratio_floor_bytes` unpacked is compressed more
  than :attr:`ArchiveLimits.max_ratio` times (deflate tops out near 1,032x; real documents'
  XML parts stay under ~50x, a zip bomb's sit near the top), or
- an XML member declares an entity (billion laughs, quadratic blow-up, external entities).

Nothing is decompressed for the size checks: they read the central directory. Its sizes
cannot lie to the parsers either: :mod:`zipfile` stops a member at its declared size (and
fails its CRC), and python-docx, openpyxl and the ODF/EPUB readers all read through it.

The XML check streams each ``.xml``-like member through expat only up to its root element,
the last place a DTD may appear, so it costs a few kilobytes per member. A ``<!DOCTYPE>``
naming an external DTD (EPUB's XHTML does) is allowed; no parser here fetches it.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.parsers import expat

from knowledge.errors import ParseError

__all__ = ["DEFAULT_LIMITS", "ArchiveLimits", "check_archive", "check_xml", "check_zip_file"]

_MIB = 1024 * 1024
_XML_SUFFIXES = (".xml", ".rels", ".xhtml", ".htm", ".html", ".opf", ".ncx", ".svg", ".vml")
_CHUNK = 16 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """What a ZIP-based document may hold before it is refused unopened."""

    max_members: int = 10_000
    max_total_bytes: int = 256 * _MIB
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1 * _MIB  # small members may compress well; they cannot bomb

    def __post_init__(self) -> None:
        if self.max_members < 1 or self.max_total_bytes < 1 or self.max_ratio <= 1:
            raise ValueError("archive limits must be positive (the ratio above 1)")


DEFAULT_LIMITS = ArchiveLimits()


def check_zip_file(path: Path, *, kind: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Refuse ``path`` (a ``kind`` file, e.g. ``"DOCX"``) if it is a zip bomb or XML bomb.

    A file that is not a ZIP archive at all passes: the format's parser reports that in its
    own words.

    Raises:
        ParseError: ``reason="unsafe"``; the message names the limit and the figures.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    with archive:
        check_archive(archive, kind=kind, limits=limits)
        for info in archive.infolist():
            if info.filename.lower().endswith(_XML_SUFFIXES) and not info.is_dir():
                try:
                    with archive.open(info) as member:
                        check_xml(member, kind=kind)
                except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
                    continue  # a broken member is the parser's to report


def check_archive(
    archive: zipfile.ZipFile, *, kind: str, limits: ArchiveLimits = DEFAULT_LIMITS
) -> None:
    """Member count, total unpacked size and per-member ratio, from the central directory.

    Raises:
        ParseError: ``reason="unsafe"`` when a limit is passed.
    """
    members = archive.infolist()
    if len(members) > limits.max_members:
        message = f"{len(members):,} files inside, over the limit of {limits.max_members:,}"
        raise _unsafe(kind, message)
    total = 0
    for info in members:
        total += info.file_size
        if total > limits.max_total_bytes:
            message = f"unpacks to over {_mb(limits.max_total_bytes)}"
            raise _unsafe(kind, message)
        if info.file_size > limits.ratio_floor_bytes:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                message = (
                    f"a part compressed {ratio:,.0f}x ({_mb(info.compress_size)} -> "
                    f"{_mb(info.file_size)}; the limit is {limits.max_ratio:g}x)"
                )
                raise _unsafe(kind, message)


def check_xml(stream: IO[bytes], *, kind: str) -> None:
    """Refuse XML that declares entities; read only up to its root element.

    Raises:
        ParseError: ``reason="unsafe"`` on an ``<!ENTITY`` declaration (internal or external).
    """
    parser = expat.ParserCreate()
    found: list[str] = []

    def entity(name: str, *_: object) -> None:
        found.append(name)
        raise _EnoughReadError

    def root(*_: object) -> None:
        raise _EnoughReadError

    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.StartElementHandler = root
    try:
        while chunk := stream.read(_CHUNK):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except _EnoughReadError:
        pass
    except expat.ExpatError:
        return  # malformed XML is the parser's to report
    if found:
        raise _unsafe(kind, f"its XML declares entities ({found[0]!r}: entity expansion)")


class _EnoughReadError(Exception):
    """Enough was read."""


def _unsafe(kind: str, detail: str) -> ParseError:
    return ParseError(f"unsafe {kind} (a zip or XML bomb): {detail}", reason="unsafe")


def _mb(count: int) -> str:
    return f"{count / _MIB:,.1f} MB" if count >= _MIB else f"{count / 1024:,.1f} KB"
