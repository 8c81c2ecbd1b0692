"""The shared-state Protocols and the values they pass around.

Each Protocol has an in-process implementation (:mod:`bot.state.memory`, one process) and a
Redis one (:mod:`bot.state.redis`, many processes); ``tests/test_state_contract.py`` runs
the same tests against both.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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
    "gcra",
]


@dataclass(frozen=True)
class Job:
    """A unit of work: a kind that selects the handler, and a JSON-serializable payload."""

    kind: str
    payload: Mapping[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    enqueued_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Delivery:
    """A job handed to one consumer; ``attempt`` is 1 the first time, 2 on redelivery ..."""

    job: Job
    attempt: int
    receipt: str


@dataclass(frozen=True)
class DeadLetter:
    """A job given up on after too many attempts, with the last error."""

    job: Job
    attempts: int
    error: str


@dataclass(frozen=True)
class QueueStatus:
    """What a queue holds now: jobs waiting, taken but not acked, the oldest one's age."""

    waiting: int
    in_flight: int
    oldest_age: float | None
    """Seconds since the oldest waiting or in-flight job was enqueued; None when empty."""
    dead: int


@runtime_checkable
class JobQueue(Protocol):
    """At-least-once job queue.

    A delivered job stays pending until :meth:`ack`. One that is neither acked nor
    retried within the visibility timeout (its consumer died) is delivered again, to any
    consumer; a consumer still working on it keeps it by :meth:`extend`-ing its lease. After
    ``max_attempts`` deliveries it becomes a :class:`DeadLetter`.
    """

    visibility_timeout: float
    """Seconds a delivery stays invisible to other consumers without an :meth:`extend`."""

    async def put(self, kind: str, payload: Mapping[str, Any]) -> Job:
        """Enqueue a job and return it (with its id)."""
        ...

    async def get(self, *, timeout: float = 1.0) -> Delivery | None:
        """Wait up to ``timeout`` seconds for a job; None if there was none."""
        ...

    async def ack(self, delivery: Delivery) -> None:
        """Mark the delivery done; it will not be delivered again."""
        ...

    async def extend(self, delivery: Delivery) -> bool:
        """Restart the delivery's visibility timeout (its consumer is still working on it).

        False if the delivery is no longer this consumer's (acked, or taken over after its
        timeout): the consumer should expect its work to be done again elsewhere.
        """
        ...

    async def retry(self, delivery: Delivery, error: str) -> bool:
        """Give the job back for another attempt now; False if it was dead-lettered instead."""
        ...

    async def bury(self, delivery: Delivery, error: str) -> None:
        """Dead-letter the job now, without further attempts."""
        ...

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The most recent jobs given up on, oldest first."""
        ...

    async def status(self) -> QueueStatus:
        """Counts of waiting, in-flight and dead jobs, and the oldest job's age."""
        ...

    async def requeue_dead(self, job_id: str | None = None) -> list[Job]:
        """Put dead letters back on the queue with a fresh count of attempts.

        ``job_id`` picks one (an empty list when no dead letter has that id); None takes
        them all. Returns the jobs put back, which keep their ids.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class Deduper(Protocol):
    """Remembers keys (event ids) for a while, so duplicates can be dropped."""

    async def claim(self, key: str, *, ttl: float) -> bool:
        """True the first time ``key`` is claimed within ``ttl`` seconds, False after."""
        ...

    async def release(self, key: str) -> None:
        """Forget a claim whose work could not be done, so the next delivery is not a duplicate."""
        ...


@dataclass(frozen=True)
class RateDecision:
    """Whether a hit is allowed; if not, how long until it would be."""

    allowed: bool
    remaining: int
    retry_after: float


@runtime_checkable
class RateLimiter(Protocol):
    """``limit`` hits per ``window`` seconds per key, replenished smoothly (GCRA)."""

    async def hit(self, key: str) -> RateDecision:
        """Count one hit against ``key`` if it is allowed."""
        ...


@runtime_checkable
class Cache(Protocol):
    """Bytes by key, each with a time to live."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None if absent or expired."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        ...


def gcra(
    tat: float | None, now: float, *, limit: int, window: float
) -> tuple[float | None, RateDecision]:
    """One step of the generic cell rate algorithm.

    ``tat`` is the stored theoretical arrival time (None for a new key). Returns the new
    value to store (None to leave it unchanged) and the decision. The Redis implementation
    runs the same arithmetic in a Lua script.
    """
    interval = window / limit
    tat = max(tat or now, now)
    new_tat = tat + interval
    allow_at = new_tat - window
    if allow_at - now > 1e-9:  # tolerance: tat + w/l - w can round above now
        return None, RateDecision(False, 0, allow_at - now)
    remaining = int((now - allow_at) / interval + 1e-9)
    return new_tat, RateDecision(True, min(remaining, limit - 1), 0.0)
