"""What an ingest reports per file, and how one file's failure stays that file's.

A refusal the parser or reader explains is a :class:`~knowledge.errors.ParseError` with its
:data:`~knowledge.errors.Refusal` kind. Anything else that goes wrong in a step of one file
(a bug in a parser's output, an embedder error, a value the database rejects) is caught by
:func:`step`, which names the step, and becomes a ``"failed"`` refusal of that file alone;
its traceback goes to the debug log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from knowledge.errors import KnowledgeError, ParseError, Refusal

if TYPE_CHECKING:
    from knowledge.store import DocumentInfo

__all__ = [
    "FileResult",
    "Progress",
    "StepError",
    "expand_paths",
    "printable_path",
    "read_file",
    "refused",
    "step",
    "unchanged",
]

logger = logging.getLogger("knowledge.ingest")

Status = Literal["stored", "unchanged", "refused"]


@dataclass(frozen=True)
class FileResult:
    """What happened to one file.

    A refused file has ``reason`` (the kind, to group and count by) and ``detail`` (one line
    a user reads: what failed and why).
    """

    path: str
    status: Status
    chunks: int = 0
    tables: int = 0
    # Chunks the model reads for this file (the others reuse the vectors of the version
    # before); a deferred ingest embeds them after every file is stored.
    embedded: int = 0
    version: int | None = None
    document_id: str | None = None
    reason: Refusal | None = None
    detail: str | None = None
    seconds: float = 0.0


class Progress:
    """Receives progress events; the CLI draws bars from them. The default ignores them."""

    def file_started(self, path: str, index: int, total: int) -> None:
        """A file is about to be processed."""

    def chunks_total(self, path: str, total: int) -> None:
        """How many chunks the file has to embed."""

    def chunks_done(self, path: str, count: int) -> None:
        """``count`` more chunks are embedded."""

    def file_finished(self, result: FileResult) -> None:
        """The file is stored, unchanged or refused."""

    def vectors(self, done: int, total: int) -> None:
        """A deferred ingest's fill: every file is stored and searchable, and ``done`` of the
        ``total`` chunks it embeds have their vector (first called with ``done`` 0)."""


class StepError(Exception):
    """An unexpected error in one step of one file; the file is refused, the batch goes on."""

    def __init__(self, step: str, error: Exception) -> None:
        super().__init__(step)
        self.step = step
        self.error = error

    def line(self) -> str:
        """What failed, the exception's class and the first line of its message."""
        lines = str(self.error).strip().splitlines()
        cause = f"{type(self.error).__name__}: {lines[0]}" if lines else type(self.error).__name__
        text = f"{self.step} failed ({cause})"
        return text if len(text) <= 200 else text[:197] + "..."


@contextmanager
def step(name: str) -> Iterator[None]:
    """Name the step an unexpected error came from (as a :class:`StepError`).

    A refusal (:class:`ParseError`) and the collection's own errors (another
    :class:`KnowledgeError`) pass unchanged; so do KeyboardInterrupt and cancellation.
    """
    try:
        yield
    except (KnowledgeError, StepError):
        raise
    except Exception as exc:  # one file's failure, whatever it is
        raise StepError(name, exc) from exc


def refused(shown: str, exc: ParseError | StepError, began: float) -> FileResult:
    """The refused result for ``exc``; an unexpected one's traceback goes to the debug log."""
    seconds = time.perf_counter() - began
    if isinstance(exc, ParseError):
        return FileResult(shown, "refused", reason=exc.reason, detail=str(exc), seconds=seconds)
    logger.debug("%s: %s", shown, exc.line(), exc_info=exc.error)
    return FileResult(shown, "refused", reason="failed", detail=exc.line(), seconds=seconds)


def unchanged(shown: str, current: DocumentInfo, began: float) -> FileResult:
    """The result for a file whose bytes are those of its stored version ``current``."""
    return FileResult(
        shown,
        "unchanged",
        chunks=current.chunks,
        tables=current.tables,
        version=current.version,
        document_id=str(current.id),
        seconds=time.perf_counter() - began,
    )


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files and every file under folders (recursively, sorted, hidden ones skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if child.is_file() and not any(part.startswith(".") for part in relative):
                    yield child
        else:
            yield path


def printable_path(path: Path | str) -> str:
    """``path`` as text that can be stored and printed: a name that is not UTF-8 (its bytes
    held as surrogates by Python) shows its odd bytes as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_file(path: Path, max_bytes: int) -> tuple[str, int, str]:
    """The file's SHA-256 digest, its size and its source name (the resolved path).

    Raises:
        ParseError: The file is missing, unreadable, empty or over ``max_bytes``.
    """
    try:
        size = path.stat().st_size
        if size == 0:
            raise ParseError("empty file (0 bytes)", reason="empty")
        if size > max_bytes:
            mib = 1024 * 1024
            limit = f"{size / mib:.1f} MB > {max_bytes / mib:.1f} MB"
            raise ParseError(f"over the size limit ({limit})", reason="too_large")
        data = path.read_bytes()
        return hashlib.sha256(data).hexdigest(), len(data), printable_path(path.resolve())
    except OSError as exc:
        raise ParseError(_os_reason(exc), reason="unreadable") from None


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return exc.strerror or type(exc).__name__
