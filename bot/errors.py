"""Exceptions raised by the ``bot`` package.

Every error that a user can cause or fix derives from :class:`DeskbotError`. Errors carry
no exit code: the CLI prints the message on one line and maps the type to its code
(:mod:`bot.cli.exits`), and other front doors tell the user their own way.

    DeskbotError             a user's error (the CLI exits 1)
    ├── ConfigError          configuration is invalid (exit 2)
    ├── StorageError         the database cannot be reached or prepared (exit 2)
    │   └── EmbeddedPostgresError
    └── SharedStateError     Redis is unreachable or a queue operation failed (exit 2)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeskbotError",
    "EmbeddedPostgresError",
    "SharedStateError",
    "StorageError",
]


class DeskbotError(Exception):
    """Base of every error deskbot reports to a user."""


class ConfigError(DeskbotError):
    """A setting is missing or malformed. The message names the variable."""


class StorageError(DeskbotError):
    """The database is unreachable, lacks pgvector, or cannot be migrated."""


class EmbeddedPostgresError(StorageError):
    """The embedded PostgreSQL server could not be started or shared."""


class SharedStateError(DeskbotError):
    """Redis (queue, dedup, rate limits, cache) is unreachable or failed."""
