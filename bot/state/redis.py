"""Redis implementations of the shared-state Protocols (many processes, one Redis).

The queue is a Redis Stream read through a consumer group: a delivered entry stays in the
group's pending list until it is acked, and entries idle past the visibility timeout (a
worker died holding them) are taken over with ``XAUTOCLAIM``; a worker still running a
job keeps it by resetting the entry's idle time (``XCLAIM ... JUSTID``, only while the
entry is still its own). Attempts are counted per job
id in a hash, so a retried job keeps its count when it is re-added to the stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.metrics import JOBS_DEAD_LETTERED, JOBS_RETRIED
from bot.state.base import DeadLetter, Delivery, Job, QueueStatus, RateDecision

__all__ = ["RedisCache", "RedisDeduper", "RedisJobQueue", "RedisRateLimiter"]


def _encode(job: Job) -> dict[str, str]:
    return {
        "id": job.id,
        "kind": job.kind,
        "payload": json.dumps(job.payload, ensure_ascii=False),
        "enqueued_at": repr(job.enqueued_at),
    }


def _decode(fields: Mapping[bytes, bytes]) -> Job:
    return Job(
        kind=fields[b"kind"].decode(),
        payload=json.loads(fields[b"payload"]),
        id=fields[b"id"].decode(),
        enqueued_at=float(fields[b"enqueued_at"]),
    )


# Dead letters back onto the queue in one step, so two operators retrying the same one
# at once put it back once. ARGV[1]: a job id, or '' for all; ARGV[2]: the new enqueued_at.
_REQUEUE = """
local found = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local fields, job = {}, {}
  for i = 1, #entry[2], 2 do
    local k, v = entry[2][i], entry[2][i + 1]
    if k == 'enqueued_at' then v = ARGV[2] end
    if k ~= 'attempts' and k ~= 'error' then
      table.insert(fields, k); table.insert(fields, v); job[k] = v
    end
  end
  if ARGV[1] == '' or job['id'] == ARGV[1] then
    redis.call('XADD', KEYS[2], '*', unpack(fields))
    redis.call('XDEL', KEYS[1], entry[1])
    redis.call('HDEL', KEYS[3], job['id'])
    table.insert(found, fields)
  end
end
return found
"""


# Reset a pending entry's idle time, only while this consumer holds it: XCLAIM alone would
# take it back from a consumer that took it over. JUSTID leaves the delivery count alone.
# ARGV: group, consumer, entry id.
_EXTEND = """
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #mine == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""


class RedisJobQueue:
    """A stream + consumer group; ``consumer`` must be unique per worker process."""

    def __init__(
        self,
        client: Redis,
        *,
        stream: str,
        consumer: str,
        group: str = "workers",
        visibility_timeout: float = 300.0,
        max_attempts: int = 5,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.visibility_timeout = visibility_timeout
        self.max_attempts = max_attempts
        self._attempts_key = f"{stream}:attempts"
        self._dead_key = f"{stream}:dead"
        self._group_ready = False
        self._requeue = client.register_script(_REQUEUE)
        self._extend = client.register_script(_EXTEND)

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def put(self, kind: str, payload: Mapping[str, Any]) -> Job:
        job = Job(kind=kind, payload=dict(payload))
        await self._ensure_group()
        await self.client.xadd(self.stream, _encode(job))  # type: ignore[arg-type]
        return job

    async def get(self, *, timeout: float = 1.0) -> Delivery | None:
        try:
            return await self._get(timeout)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream was deleted under us (FLUSHALL, a new Redis): recreate and go on.
            self._group_ready = False
            return await self._get(timeout)

    async def _get(self, timeout: float) -> Delivery | None:
        await self._ensure_group()
        deadline = time.monotonic() + timeout
        while True:
            delivery = await self._claim_stale()
            if delivery is not None:
                return delivery
            remaining = deadline - time.monotonic()
            # Block in short slices so stale entries are noticed while waiting.
            block_ms = max(1, int(min(remaining, self.visibility_timeout, 1.0) * 1000))
            reply: Any = await self.client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=1, block=block_ms
            )
            if reply:
                _, entries = reply[0]
                entry_id, fields = entries[0]
                delivery = await self._start(entry_id, fields)
                if delivery is not None:
                    return delivery
            elif time.monotonic() >= deadline:
                return None

    async def _claim_stale(self) -> Delivery | None:
        while True:
            reply: Any = await self.client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=int(self.visibility_timeout * 1000),
                start_id="0-0",
                count=1,
            )
            claimed = reply[1]
            if not claimed:
                return None
            entry_id, fields = claimed[0]
            delivery = await self._start(entry_id, fields)
            if delivery is not None:
                return delivery

    async def _start(
        self, entry_id: bytes, fields: Mapping[bytes, bytes] | None
    ) -> Delivery | None:
        """Count the attempt; bury the job instead if it has used them all."""
        if not fields:  # the entry was deleted while pending
            await self.client.xack(self.stream, self.group, entry_id)
            return None
        job = _decode(fields)
        attempt = int(await self.client.hincrby(self._attempts_key, job.id, 1))
        delivery = Delivery(job=job, attempt=attempt, receipt=entry_id.decode())
        if attempt > self.max_attempts:
            await self.bury(delivery, "visibility timeout expired (consumer died?)")
            return None
        return delivery

    async def bury(self, delivery: Delivery, error: str) -> None:
        dead = {**_encode(delivery.job), "attempts": str(delivery.attempt), "error": error}
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self._dead_key, dead, maxlen=1000, approximate=True)  # type: ignore[arg-type]
            self._finish(pipe, delivery)
            await pipe.execute()
        JOBS_DEAD_LETTERED.labels(delivery.job.kind).inc()

    def _finish(self, pipe: Any, delivery: Delivery) -> None:
        pipe.xack(self.stream, self.group, delivery.receipt)
        pipe.xdel(self.stream, delivery.receipt)
        pipe.hdel(self._attempts_key, delivery.job.id)

    async def ack(self, delivery: Delivery) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            self._finish(pipe, delivery)
            await pipe.execute()

    async def extend(self, delivery: Delivery) -> bool:
        args = [self.group, self.consumer, delivery.receipt]
        return bool(await self._extend(keys=[self.stream], args=args))

    async def retry(self, delivery: Delivery, error: str) -> bool:
        if delivery.attempt >= self.max_attempts:
            await self.bury(delivery, error)
            return False
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, _encode(delivery.job))  # type: ignore[arg-type]
            pipe.xack(self.stream, self.group, delivery.receipt)
            pipe.xdel(self.stream, delivery.receipt)
            await pipe.execute()
        JOBS_RETRIED.labels(delivery.job.kind).inc()
        return True

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        entries: Any = await self.client.xrevrange(self._dead_key, count=limit)
        return [
            DeadLetter(
                job=_decode(fields),
                attempts=int(fields[b"attempts"]),
                error=fields[b"error"].decode(),
            )
            for _, fields in reversed(entries)
        ]

    async def status(self) -> QueueStatus:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xlen(self.stream)
            pipe.xlen(self._dead_key)
            pipe.xrange(self.stream, count=1)
            total, dead, first = await pipe.execute()
        try:
            pending: Any = await self.client.xpending(self.stream, self.group)
            in_flight = int(pending["pending"])
        except ResponseError as exc:  # no group yet: no worker has read anything
            if "NOGROUP" not in str(exc):
                raise
            in_flight = 0
        oldest = _decode(first[0][1]).enqueued_at if first else None
        return QueueStatus(
            waiting=max(0, int(total) - in_flight),
            in_flight=in_flight,
            oldest_age=None if oldest is None else max(0.0, time.time() - oldest),
            dead=int(dead),
        )

    async def requeue_dead(self, job_id: str | None = None) -> list[Job]:
        keys = [self._dead_key, self.stream, self._attempts_key]
        found: Any = await self._requeue(keys=keys, args=[job_id or "", repr(time.time())])
        return [_decode(dict(zip(f[::2], f[1::2], strict=True))) for f in found]

    async def close(self) -> None:
        return None  # the client belongs to the SharedState that made this queue


class RedisDeduper:
    """``SET key 1 NX PX ttl``."""

    def __init__(self, client: Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def claim(self, key: str, *, ttl: float) -> bool:
        return bool(
            await self.client.set(f"{self.prefix}{key}", b"1", nx=True, px=max(1, int(ttl * 1000)))
        )

    async def release(self, key: str) -> None:
        await self.client.delete(f"{self.prefix}{key}")


# GCRA in one round trip, on the server's clock so that every process agrees.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if allow_at - now > 1e-9 then
  return {0, 0, tostring(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.max(1, math.ceil((new_tat - now) * 1000)))
local remaining = math.floor((now - allow_at) / interval + 1e-9)
if remaining > limit - 1 then remaining = limit - 1 end
return {1, remaining, '0'}
"""


class RedisRateLimiter:
    """GCRA in a Lua script; one key per rate-limited subject."""

    def __init__(self, client: Redis, *, prefix: str, limit: int, window: float) -> None:
        self.client = client
        self.prefix = prefix
        self.limit = limit
        self.window = window
        self._script = client.register_script(_GCRA)

    async def hit(self, key: str) -> RateDecision:
        allowed, remaining, retry_after = await self._script(
            keys=[f"{self.prefix}{key}"], args=[self.limit, self.window]
        )
        return RateDecision(bool(allowed), int(remaining), float(retry_after))


class RedisCache:
    """``SET key value PX ttl`` / ``GET`` / ``DEL``."""

    def __init__(self, client: Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value: Any = await self.client.get(f"{self.prefix}{key}")
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        await self.client.set(f"{self.prefix}{key}", value, px=max(1, int(ttl * 1000)))

    async def delete(self, key: str) -> None:
        await self.client.delete(f"{self.prefix}{key}")
