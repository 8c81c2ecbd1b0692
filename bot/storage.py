"""The database: an async SQLAlchemy engine on psycopg 3, embedded or external.

:func:`open_database` is the one way in. With ``DATABASE_URL`` unset it starts (or attaches
to) the embedded PostgreSQL and upgrades the schema; with it set it connects to that server
and checks it, leaving upgrades to ``deskbot db upgrade`` (or ``migrate`` in compose).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.db_reconnect import ride_out_restarts
from bot.embedded_pg import EmbeddedPostgres
from bot.errors import StorageError
from bot.migrate import current_revision, head_revision, upgrade
from bot.settings import Settings, redact_url

__all__ = ["Database", "ServerInfo", "normalize_url", "open_database"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerInfo:
    """What ``doctor`` reports about the server."""

    server_version: str
    pgvector_version: str | None
    revision: str | None
    head: str | None


class Database:
    """An engine plus, in embedded mode, the handle that keeps the server running."""

    def __init__(
        self, engine: AsyncEngine, *, display_url: str, embedded: EmbeddedPostgres | None = None
    ) -> None:
        self.engine = engine
        self.display_url = display_url
        self.embedded = embedded

    @property
    def is_embedded(self) -> bool:
        """True when this process runs (or shares) the embedded server."""
        return self.embedded is not None

    async def info(self) -> ServerInfo:
        """Server version, pgvector version (None if not installed) and schema revision."""
        async with self.engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            vector = (
                await conn.execute(
                    text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                )
            ).scalar_one_or_none()
            revision = await conn.run_sync(current_revision)
        return ServerInfo(str(version), vector, revision, head_revision())

    async def upgrade(self) -> str | None:
        """Apply pending migrations; returns the revision now current."""
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(upgrade)
        except DBAPIError as exc:
            raise StorageError(f"migration failed on {self.display_url}: {_reason(exc)}") from None
        return head_revision()

    async def close(self) -> None:
        """Dispose of the engine and detach from the embedded server."""
        await self.engine.dispose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None


def normalize_url(url: str) -> str:
    """Any PostgreSQL URL as a SQLAlchemy URL for the psycopg 3 driver."""
    _, sep, rest = url.partition("://")
    if not sep:
        raise StorageError("DATABASE_URL: not a URL")
    return f"postgresql+psycopg://{rest}"


def _engine(url: str, settings: Settings) -> AsyncEngine:
    connect_args: dict[str, Any] = {"connect_timeout": max(1, int(settings.db_connect_timeout))}
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


async def open_database(settings: Settings, *, migrate: bool | None = None) -> Database:
    """Connect to the configured database (starting the embedded one if needed).

    Args:
        settings: The application settings.
        migrate: Upgrade the schema to head. Defaults to True in embedded mode only.

    Raises:
        StorageError: The server is unreachable, lacks pgvector, or migration failed.
    """
    embedded: EmbeddedPostgres | None = None
    if settings.database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        await asyncio.to_thread(embedded.start)
        url = embedded.url()
        display = f"embedded PostgreSQL in {embedded.pgdata}"
    else:
        raw = settings.database_url.get_secret_value()
        url = normalize_url(raw)
        display = redact_url(raw)
    db = Database(_engine(url, settings), display_url=display, embedded=embedded)
    try:
        await _check_connection(db, name="DATABASE_URL" if embedded is None else "DESKBOT_DATA_DIR")
        ride_out_restarts(db.engine)  # reached once: a restart from now on is waited out
        if migrate if migrate is not None else embedded is not None:
            await db.upgrade()
    except BaseException:
        await db.close()
        raise
    return db


async def _check_connection(db: Database, *, name: str) -> None:
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OperationalError, psycopg.OperationalError, OSError) as exc:
        where = _where(db)
        raise StorageError(f"{name}: cannot connect to {where}: {_reason(exc)}") from None


def _where(db: Database) -> str:
    if db.embedded is not None:
        return db.display_url
    url = make_url(db.engine.url)
    host = url.host or url.query.get("host") or "localhost"
    return f"{host}:{url.port or 5432}/{url.database or ''}"


_CONNECT_PREFIX = re.compile(r"^(connection failed: |connection to server (at|on) .*? failed: )+")


def _reason(exc: BaseException) -> str:
    """The cause in one line, without psycopg's per-address preamble."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).strip().splitlines() if line.strip()]
    return _CONNECT_PREFIX.sub("", lines[0]) if lines else type(orig).__name__
