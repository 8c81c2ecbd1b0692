"""Alembic, driven from code: the app combines each package's metadata.

``migrations/`` holds the revisions. Upgrades take a PostgreSQL advisory lock, so two
processes starting at once (two workers, or ``migrate`` racing ``slack`` in compose)
apply each revision exactly once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, text

import migrations
from bot.schema import BotBase
from knowledge.schema import KnowledgeBase

__all__ = ["ALL_METADATA", "current_revision", "head_revision", "make_revision", "upgrade"]

ALL_METADATA: list[MetaData] = [KnowledgeBase.metadata, BotBase.metadata]
MIGRATIONS_DIR = Path(migrations.__file__).parent
# Any constant works; it only has to be the same in every deskbot process.
_LOCK_KEY = 0x6465736B626F74  # "deskbot"


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    cfg.attributes["target_metadata"] = ALL_METADATA
    return cfg


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade the schema on ``connection`` (inside its transaction) to ``revision``."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    command.upgrade(_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None before the first upgrade."""
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of deskbot."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def make_revision(connection: Connection, message: str) -> None:
    """Autogenerate a new revision from the difference between models and database."""
    command.revision(_config(connection), message=message, autogenerate=True)
