"""In-process implementations of the shared-state Protocols (one process, no Redis).

They share one event loop with their callers and hold everything in dicts; expired
entries are pruned lazily on access, and the cache is bounded (least recently used out).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any

from bot.metrics import JOBS_DEAD_LETTERED, JOBS_RETRIED
from bot.state.base import DeadLetter, Delivery, Job, QueueStatus, RateDecision, gcra

__all__ = ["MemoryCache", "MemoryDeduper", "MemoryJobQueue", "MemoryRateLimiter"]


class MemoryJobQueue:
    """An asyncio queue with visibility timeouts, retries and a dead-letter list."""

    def __init__(self, *, visibility_timeout: float = 300.0, max_attempts: int = 5) -> None:
        self.visibility_timeout = visibility_timeout
        self.max_attempts = max_attempts
        self._ready: deque[tuple[Job, int]] = deque()
        self._pending: dict[str, tuple[Delivery, float]] = {}
        self._dead: deque[DeadLetter] = deque(maxlen=1000)
        self._wakeup = asyncio.Event()

    async def put(self, kind: str, payload: Mapping[str, Any]) -> Job:
        job = Job(kind=kind, payload=dict(payload))
        self._ready.append((job, 0))
        self._wakeup.set()
        return job

    async def get(self, *, timeout: float = 1.0) -> Delivery | None:
        deadline = time.monotonic() + timeout
        while True:
            delivery = self._take()
            if delivery is not None:
                return delivery
            now = time.monotonic()
            if now >= deadline:
                return None
            wait = deadline - now
            if self._pending:
                next_expiry = min(expiry for _, expiry in self._pending.values())
                wait = min(wait, max(next_expiry - now, 0.0))
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait)

    def _take(self) -> Delivery | None:
        now = time.monotonic()
        for receipt, (delivery, expiry) in list(self._pending.items()):
            if expiry <= now:
                del self._pending[receipt]
                if delivery.attempt >= self.max_attempts:
                    self._bury(delivery, "visibility timeout expired (consumer died?)")
                else:
                    return self._deliver(delivery.job, delivery.attempt)
        if self._ready:
            job, attempts = self._ready.popleft()
            return self._deliver(job, attempts)
        return None

    def _deliver(self, job: Job, previous_attempts: int) -> Delivery:
        delivery = Delivery(job=job, attempt=previous_attempts + 1, receipt=uuid.uuid4().hex)
        self._pending[delivery.receipt] = (delivery, time.monotonic() + self.visibility_timeout)
        return delivery

    async def bury(self, delivery: Delivery, error: str) -> None:
        self._pending.pop(delivery.receipt, None)
        self._bury(delivery, error)

    def _bury(self, delivery: Delivery, error: str) -> None:
        self._dead.append(DeadLetter(job=delivery.job, attempts=delivery.attempt, error=error))
        JOBS_DEAD_LETTERED.labels(delivery.job.kind).inc()

    async def ack(self, delivery: Delivery) -> None:
        self._pending.pop(delivery.receipt, None)

    async def extend(self, delivery: Delivery) -> bool:
        if delivery.receipt not in self._pending:
            return False
        self._pending[delivery.receipt] = (delivery, time.monotonic() + self.visibility_timeout)
        return True

    async def retry(self, delivery: Delivery, error: str) -> bool:
        if self._pending.pop(delivery.receipt, None) is None:
            return True  # already redelivered elsewhere after its timeout
        if delivery.attempt >= self.max_attempts:
            self._bury(delivery, error)
            return False
        self._ready.append((delivery.job, delivery.attempt))
        self._wakeup.set()
        JOBS_RETRIED.labels(delivery.job.kind).inc()
        return True

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        return list(self._dead)[-limit:]

    async def status(self) -> QueueStatus:
        jobs = [job for job, _ in self._ready] + [d.job for d, _ in self._pending.values()]
        oldest = min((job.enqueued_at for job in jobs), default=None)
        return QueueStatus(
            waiting=len(self._ready),
            in_flight=len(self._pending),
            oldest_age=None if oldest is None else max(0.0, time.time() - oldest),
            dead=len(self._dead),
        )

    async def requeue_dead(self, job_id: str | None = None) -> list[Job]:
        chosen = [d for d in self._dead if job_id is None or d.job.id == job_id]
        requeued = []
        for dead in chosen:
            self._dead.remove(dead)
            job = dataclasses.replace(dead.job, enqueued_at=time.time())
            self._ready.append((job, 0))
            requeued.append(job)
        if requeued:
            self._wakeup.set()
        return requeued

    async def close(self) -> None:
        return None


class MemoryDeduper:
    """Keys with expiry times in a dict."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    async def claim(self, key: str, *, ttl: float) -> bool:
        now = time.monotonic()
        if len(self._seen) > 10_000:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
        expiry = self._seen.get(key)
        if expiry is not None and expiry > now:
            return False
        self._seen[key] = now + ttl
        return True

    async def release(self, key: str) -> None:
        self._seen.pop(key, None)


class MemoryRateLimiter:
    """GCRA over a dict of theoretical arrival times."""

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._tat: dict[str, float] = {}

    async def hit(self, key: str) -> RateDecision:
        now = time.monotonic()
        new_tat, decision = gcra(self._tat.get(key), now, limit=self.limit, window=self.window)
        if new_tat is not None:
            self._tat[key] = new_tat
        if len(self._tat) > 10_000:
            self._tat = {k: t for k, t in self._tat.items() if t > now}
        return decision


class MemoryCache:
    """A bounded LRU dict of ``(value, expiry)``."""

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        value, expiry = item
        if expiry <= time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        self._items[key] = (value, time.monotonic() + ttl)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)
