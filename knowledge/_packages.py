"""ZIP packages (PPTX, EPUB, ODT, ODS): opened in one place, refused in one line.

:func:`open_package` tells an encrypted or old binary Office file (an OLE container, not a
ZIP) from a corrupt one, and runs the archive guard (:func:`knowledge._archives.
check_zip_file`: unpacked size, compression ratio, member count, XML entity declarations)
before any parser unpacks a member.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from knowledge._archives import check_zip_file
from knowledge.errors import ParseError

__all__ = ["open_package"]

_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def open_package(path: Path, label: str, *, old_format: str | None = None) -> zipfile.ZipFile:
    """The file as an open ZIP, once the archive guard has passed it.

    Args:
        path: The file.
        label: What the format is called in messages ("PPTX").
        old_format: The binary format an OLE file of this kind would be (".ppt").

    Raises:
        ParseError: Encrypted (``encrypted``), an old binary format (``unsupported``), a
            zip or XML bomb (``unsafe``), or not a ZIP package at all (``corrupt``).
    """
    with path.open("rb") as handle:
        magic = handle.read(8)
    if magic.startswith(_OLE_MAGIC):
        raise _ole_refusal(path, label, old_format)
    check_zip_file(path, kind=label)
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ParseError(f"corrupt or truncated {label}: not a ZIP package ({exc})") from None


def _ole_refusal(path: Path, label: str, old_format: str | None) -> ParseError:
    """Office writes a password-protected package into an OLE file with an
    ``EncryptionInfo`` stream; without one, it is the old binary format."""
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            encrypted = ole.exists("EncryptionInfo")
    except (OSError, ValueError):
        encrypted = False
    if encrypted:
        return ParseError(f"password-protected {label}", reason="encrypted")
    old = f"old {old_format} format (save it as {label})" if old_format else "an OLE file"
    return ParseError(f"not a {label} package: {old}", reason="unsupported")
