"""The Redis connection of one process: riding out a restart, and saying so once.

Every Redis command retries on a lost connection or a timeout with jittered backoff for
about 20 s (:data:`RIDE_OUT_RETRIES`), so a Redis restart (append-only file on) costs the
adapters and workers a pause, not a lost acknowledgement, job or dedup claim. Connections
are made through :class:`WatchedConnection`, which logs one warning when Redis stops
answering and one info line when it is back, however many commands and processes' tasks
are waiting meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

__all__ = ["RIDE_OUT_RETRIES", "WatchedConnection", "WatchedSSLConnection", "ride_out"]

log = logging.getLogger("bot.state.redis")

RIDE_OUT_RETRIES = 14
"""Retries per command: 0.1 s doubling to 2 s apart, about 20 s in all."""


class _Link:
    """Whether this process can reach Redis; logs each change once."""

    down_since: float | None = None

    @classmethod
    def lost(cls, exc: BaseException) -> None:
        if cls.down_since is None:
            cls.down_since = time.monotonic()
            log.warning(
                "redis unavailable (%s); commands wait and retry until it is back",
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )

    @classmethod
    def up(cls) -> None:
        if cls.down_since is not None:
            seconds = time.monotonic() - cls.down_since
            cls.down_since = None
            log.info("redis reachable again after %.1f s", seconds)


async def _watch(connect: Awaitable[None]) -> None:
    try:
        await connect
    except (OSError, TimeoutError) as exc:
        _Link.lost(exc)
        raise
    _Link.up()


def _dropped(error: Exception | None) -> None:
    if error is not None:  # a command lost its connection; it is retried
        _Link.lost(error)


class _Watched:
    """Reports Redis going away and coming back; mixed in before a redis-py connection."""

    async def _connect(self) -> None:
        await _watch(super()._connect())  # type: ignore[misc]

    async def disconnect(
        self,
        nowait: bool = False,
        error: Exception | None = None,
        failure_count: int | None = None,
        health_check_failed: bool = False,
    ) -> None:
        _dropped(error)
        await super().disconnect(  # type: ignore[misc]
            nowait, error, failure_count, health_check_failed
        )


class WatchedConnection(_Watched, Connection):
    """A TCP connection that reports Redis going away and coming back."""


class WatchedSSLConnection(_Watched, SSLConnection):
    """The same for ``rediss://``."""


def ride_out() -> Retry:
    """The retry policy commands run under once the first connection succeeded."""
    backoff: Any = ExponentialWithJitterBackoff(base=0.1, cap=2.0)
    return Retry(backoff, RIDE_OUT_RETRIES)
