"""Queue, dedup, rate limits and cache: in-process by default, Redis with ``REDIS_URL``.

state = await open_state(settings)
job = await state.queue.put("answer", {...})
...
await state.close()
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Literal

from bot.errors import SharedStateError
from bot.settings import Settings, redact_url
from bot.state.base import (
    Cache,
    DeadLetter,
    Deduper,
    Delivery,
    Job,
    JobQueue,
    QueueStatus,
    RateDecision,
    RateLimiter,
)
from bot.state.memory import MemoryCache, MemoryDeduper, MemoryJobQueue, MemoryRateLimiter

__all__ = [
    "Cache",
    "DeadLetter",
    "Deduper",
    "Delivery",
    "Job",
    "JobQueue",
    "QueueStatus",
    "RateDecision",
    "RateLimiter",
    "SharedState",
    "open_state",
    "unreachable",
]


@dataclass
class SharedState:
    """The four shared-state services, all from one backend."""

    backend: Literal["memory", "redis"]
    queue: JobQueue
    deduper: Deduper
    limiter: RateLimiter
    cache: Cache
    display_url: str = "in-process"
    key_prefix: str = ""
    _client: object | None = None

    def rate_limiter(self, name: str, *, limit: int, window: float) -> RateLimiter:
        """Another limiter on the same backend, with its own limit and key space.

        ``limiter`` counts per user; a second one counts per group of users (a Discord
        guild) against a larger limit.
        """
        if self._client is None:
            return MemoryRateLimiter(limit=limit, window=window)
        from bot.state.redis import RedisRateLimiter

        prefix = f"{self.key_prefix}rate:{name}:"
        return RedisRateLimiter(self._client, prefix=prefix, limit=limit, window=window)  # type: ignore[arg-type]

    async def ping(self) -> None:
        """Raise if Redis does not answer (the in-process backend always does)."""
        if self._client is not None:
            await self._client.ping()  # type: ignore[attr-defined]

    async def close(self) -> None:
        """Release the Redis connection pool, if any."""
        await self.queue.close()
        if self._client is not None:
            await self._client.aclose()  # type: ignore[attr-defined]
            self._client = None


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the shared state cannot be reached (not a bug or a bad command)."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


_REDIS_CONNECTIONS = 100
"""Redis connections one process keeps at most; more at once wait for one."""


async def open_state(settings: Settings, *, consumer: str | None = None) -> SharedState:
    """Build the shared state the settings ask for; checks Redis is reachable.

    Raises:
        SharedStateError: ``REDIS_URL`` is set but the server does not answer.
    """
    if settings.redis_url is None:
        return SharedState(
            backend="memory",
            queue=MemoryJobQueue(
                visibility_timeout=settings.queue_visibility_timeout,
                max_attempts=settings.queue_max_attempts,
            ),
            deduper=MemoryDeduper(),
            limiter=MemoryRateLimiter(limit=settings.rate_limit, window=settings.rate_limit_window),
            cache=MemoryCache(),
        )
    return await _open_redis(settings, consumer=consumer)


async def _open_redis(settings: Settings, *, consumer: str | None) -> SharedState:
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError

    from bot.state.redis import RedisCache, RedisDeduper, RedisJobQueue, RedisRateLimiter
    from bot.state.redis_link import WatchedConnection, WatchedSSLConnection, ride_out

    assert settings.redis_url is not None
    raw = settings.redis_url.get_secret_value()
    url = raw.replace("valkey://", "redis://", 1).replace("valkeys://", "rediss://", 1)
    watched = WatchedSSLConnection if url.startswith("rediss://") else WatchedConnection
    # A burst beyond the pool waits for a free connection: redis-py's default pool raises
    # MaxConnectionsError at 100 in use, which lost acknowledged Slack events under load.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=_REDIS_CONNECTIONS,
        timeout=settings.db_connect_timeout,
        socket_connect_timeout=settings.db_connect_timeout,
        connection_class=watched,
        retry=Retry(NoBackoff(), 0),  # an unreachable REDIS_URL at start fails at once
    )
    client = Redis.from_pool(pool)  # closing the client closes the pool
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SharedStateError(
            f"REDIS_URL: cannot connect to {redact_url(raw)}: {reason}"
        ) from None
    client.set_retry(ride_out())  # from now on a restart is waited out (redis_link)
    prefix = f"{settings.queue_name}:"
    return SharedState(
        backend="redis",
        queue=RedisJobQueue(
            client,
            stream=settings.queue_name,
            consumer=consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            visibility_timeout=settings.queue_visibility_timeout,
            max_attempts=settings.queue_max_attempts,
        ),
        deduper=RedisDeduper(client, prefix=f"{prefix}dedup:"),
        limiter=RedisRateLimiter(
            client,
            prefix=f"{prefix}rate:",
            limit=settings.rate_limit,
            window=settings.rate_limit_window,
        ),
        cache=RedisCache(client, prefix=f"{prefix}cache:"),
        display_url=redact_url(raw),
        key_prefix=prefix,
        _client=client,
    )
