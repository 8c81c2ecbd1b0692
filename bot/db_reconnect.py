"""Riding out a PostgreSQL restart: new connections wait for the server, and say so once.

Once a process has reached its database, a connection that cannot be made (the server
restarting, a failover) is tried again with backoff for about 20 s
(:data:`RIDE_OUT_SECONDS`) before the error goes up, so work that needs the database waits
for it instead of failing; the pool's pre-ping replaces connections the restart broke. The
process logs one warning when the database goes and one info line when it is back. A
statement cut off mid-way still fails (its transaction was rolled back by the server); the
callers that matter retry it (:mod:`bot.agent.store`, :mod:`bot.answering`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

__all__ = ["RIDE_OUT_SECONDS", "is_disconnect", "ride_out_restarts"]

log = logging.getLogger("bot.storage")

RIDE_OUT_SECONDS = 20.0
"""How long a new connection keeps trying before the error reaches the caller."""


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` is the database going away (not a bad statement or a constraint)."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class _Link:
    """Whether the database answers; logs each change once per process."""

    down_since: float | None = None

    @classmethod
    def lost(cls, exc: BaseException) -> None:
        if cls.down_since is None:
            cls.down_since = time.monotonic()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("database unavailable (%s); reconnecting", first)

    @classmethod
    def up(cls) -> None:
        if cls.down_since is not None:
            seconds = time.monotonic() - cls.down_since
            cls.down_since = None
            log.info("database reachable again after %.1f s", seconds)


def ride_out_restarts(engine: AsyncEngine) -> None:
    """From now on, ``engine``'s new connections wait out a restart (see above)."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
        failure = dialect.loaded_dbapi.OperationalError
        deadline = time.monotonic() + RIDE_OUT_SECONDS
        delay = 0.1
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except failure as exc:
                _Link.lost(exc)
                if time.monotonic() + delay > deadline:
                    raise
                await_only(asyncio.sleep(delay))  # this runs on the event loop's greenlet
                delay = min(2.0, delay * 2)
                continue
            _Link.up()
            return connection

    @event.listens_for(engine.sync_engine, "handle_error")
    def dropped(context: Any) -> None:
        # A cancelled command (SIGTERM, Ctrl-C) invalidates its connection too: not an outage.
        if context.is_disconnect and isinstance(context.original_exception, Exception):
            _Link.lost(context.original_exception)
