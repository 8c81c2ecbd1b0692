"""A message's attached files, each parsed as a document of its own.

An e-mail parser hands over its attachments as bytes (:class:`RawAttachment`); here each is
written to a temporary file in the same worker process and parsed by the format its name
says, under the message's own time limit. One attachment that cannot be read is refused
alone (:attr:`Attachment.error`); the message and its other attachments are kept. An
attached message's own attachments come along, named through it
(``forwarded.eml#report.pdf``), down to :data:`MAX_DEPTH` messages deep.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath, PureWindowsPath

from knowledge.documents import Attachment, ParsedDocument
from knowledge.errors import ParseError

__all__ = ["MAX_ATTACHMENTS", "MAX_DEPTH", "RawAttachment", "parse_attachments"]

MAX_ATTACHMENTS = 100
MAX_DEPTH = 3
_UNSAFE = re.compile(r"[\x00-\x1f\x7f#]+")

# (file, its name as the user knows it, max_bytes, depth) -> the parsed document
Parse = Callable[[Path, str, int, int], ParsedDocument]


@dataclass(frozen=True)
class RawAttachment:
    """An attached file as the message holds it."""

    name: str | None
    data: bytes
    content_type: str | None = None


def parse_attachments(
    raw: list[RawAttachment], parse: Parse, *, max_bytes: int, depth: int
) -> list[Attachment]:
    """Each attachment parsed (or refused), and the attachments of attached messages.

    Beyond :data:`MAX_ATTACHMENTS` the rest are refused by name, unread.
    """
    out: list[Attachment] = []
    names: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="deskbot-attachments-") as folder:
        for index, item in enumerate(raw, 1):
            name = _unique(attachment_name(item, index), names)
            attachment = Attachment(name, hashlib.sha256(item.data).hexdigest(), len(item.data))
            if index > MAX_ATTACHMENTS:
                error = ParseError(f"more than {MAX_ATTACHMENTS} attachments in one message")
                out.append(replace(attachment, error=error))
                continue
            # Only the suffix of the name reaches the file system: it picks the parser.
            path = Path(folder) / f"{index}{PurePosixPath(name).suffix[:16]}"
            path.write_bytes(item.data)
            try:
                document = parse(path, name, max_bytes, depth + 1)
            except ParseError as exc:
                out.append(replace(attachment, error=exc))
                continue
            finally:
                path.unlink()
            nested, document.attachments = document.attachments, []
            out.append(replace(attachment, document=document))
            out.extend(replace(inner, name=f"{name}#{inner.name}") for inner in nested)
    return out


def attachment_name(item: RawAttachment, index: int) -> str:
    """The attachment's own file name without folders, else ``attachment-N`` with the
    extension its content type implies."""
    raw = item.name or ""
    # Mail clients send Windows and Unix paths alike; the last part is the file's name.
    name = PureWindowsPath(PurePosixPath(raw).name).name
    name = " ".join(_UNSAFE.sub(" ", name).split()).strip(". ")
    if name:
        return name[:200]
    content_type = (item.content_type or "").split(";")[0].strip().lower()
    suffix = {"message/rfc822": ".eml", "text/plain": ".txt"}.get(content_type)
    suffix = suffix or mimetypes.guess_extension(content_type) or ""
    return f"attachment-{index}{suffix}"


def _unique(name: str, taken: set[str]) -> str:
    candidate, count = name, 1
    while candidate in taken:
        count += 1
        path = PurePosixPath(name)
        candidate = f"{path.stem} ({count}){path.suffix}"
    taken.add(candidate)
    return candidate
