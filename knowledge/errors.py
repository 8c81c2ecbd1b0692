"""Exceptions raised by the knowledge package.

KnowledgeError
├── ParseError           a file cannot be read as a document (the message is the reason)
├── EmbeddingMismatchError    a collection was embedded by another model or dimension
└── NotFoundError             no such collection or document

A refused file's :data:`Refusal` is the closed set of reasons that callers group by; the
message beside it is the one line a user reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = [
    "EmbeddingMismatchError",
    "KnowledgeError",
    "NotFoundError",
    "ParseError",
    "Refusal",
    "cause_line",
]

Refusal = Literal[
    "unsupported",  # a file type or format variant not read (.exe, old .doc and .xls)
    "too_large",  # over the size limit, or too large to parse in memory
    "empty",  # zero bytes
    "no_text",  # read, but nothing to index (a scanned PDF, an empty sheet)
    "unreadable",  # missing, not a regular file, permission denied
    "not_text",  # a text format whose bytes are not text in a known encoding
    "corrupt",  # truncated, malformed, or the parser library gave up on it
    "encrypted",  # needs a password
    "unsafe",  # a zip bomb or XML entity expansion, refused before unpacking
    "timeout",  # the parser ran past its time limit and was stopped
    "crashed",  # the parser process died or its code failed
    "failed",  # an unexpected error chunking, embedding or storing it
]


class KnowledgeError(Exception):
    """Base of the knowledge package's errors; messages are one line for users."""


class ParseError(KnowledgeError):
    """The file was refused; ``str(exc)`` says why in one line (no path, no traceback).

    Args:
        message: The line a user reads.
        reason: The kind of refusal, for grouping (``"corrupt"`` unless said otherwise).
    """

    def __init__(self, message: str, *, reason: Refusal = "corrupt") -> None:
        super().__init__(message)
        self.reason: Refusal = reason

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive pickle's default ``cls(*args)``.
        return (_rebuild_parse_error, (str(self), self.reason))


def _rebuild_parse_error(message: str, reason: Refusal) -> ParseError:
    return ParseError(message, reason=reason)


class EmbeddingMismatchError(KnowledgeError):
    """The collection's recorded embedding model or dimension differs from the current one."""


class NotFoundError(KnowledgeError):
    """A collection or document that does not exist."""


def cause_line(exc: BaseException, path: Path) -> str:
    """``Type: first line of the message``, without the path, at most ~120 characters: what
    a parser library said, fit for a refusal's line."""
    message = str(exc).replace(str(path), "<file>").replace(path.name, "<file>")
    line = message.strip().splitlines()[0] if message.strip() else ""
    text = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."
