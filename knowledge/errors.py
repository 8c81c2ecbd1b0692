"""Exceptions raised by the knowledge package.

KnowledgeError
├── ParseError           a file cannot be read as a document (the message is the reason)
├── EmbeddingMismatchError    a collection was embedded by another model or dimension
└── NotFoundError             no such collection or document
"""

from __future__ import annotations

__all__ = ["EmbeddingMismatchError", "KnowledgeError", "NotFoundError", "ParseError"]


class KnowledgeError(Exception):
    """Base of the knowledge package's errors; messages are one line for users."""


class ParseError(KnowledgeError):
    """The file was refused; ``str(exc)`` says why in one line (no path, no traceback)."""


class EmbeddingMismatchError(KnowledgeError):
    """The collection's recorded embedding model or dimension differs from the current one."""


class NotFoundError(KnowledgeError):
    """A collection or document that does not exist."""
