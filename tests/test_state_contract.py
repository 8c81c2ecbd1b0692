"""One contract per shared-state Protocol, run against the in-process and the Redis side.

The Redis side talks to a real embedded Valkey. "Another consumer" is a second queue
object: in-process that is the same queue (one process), on Redis a new consumer name in
the same consumer group, as a second worker process would be.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.errors import SharedStateError
from bot.settings import Settings
from bot.state import Cache, Deduper, JobQueue, RateLimiter, open_state
from bot.state.memory import MemoryCache, MemoryDeduper, MemoryJobQueue, MemoryRateLimiter
from bot.state.redis import RedisCache, RedisDeduper, RedisJobQueue, RedisRateLimiter

pytestmark = pytest.mark.integration

Backend = dict[str, Any]


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Factories for each Protocol on one backend."""
    if request.param == "memory":
        queues: dict[tuple[float, int], MemoryJobQueue] = {}

        def memory_queue(*, visibility_timeout: float = 30.0, max_attempts: int = 3) -> JobQueue:
            key = (visibility_timeout, max_attempts)
            return queues.setdefault(
                key,
                MemoryJobQueue(visibility_timeout=visibility_timeout, max_attempts=max_attempts),
            )

        yield {
            "queue": memory_queue,
            "deduper": MemoryDeduper,
            "limiter": lambda limit, window: MemoryRateLimiter(limit=limit, window=window),
            "cache": MemoryCache,
        }
        return
    url = request.getfixturevalue("redis_url")
    client = Redis.from_url(url)
    stream = f"test:{uuid.uuid4().hex[:8]}"

    def redis_queue(*, visibility_timeout: float = 30.0, max_attempts: int = 3) -> JobQueue:
        return RedisJobQueue(
            client,
            stream=stream,
            consumer=uuid.uuid4().hex[:8],
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
        )

    yield {
        "queue": redis_queue,
        "deduper": lambda: RedisDeduper(client, prefix=f"{stream}:d:"),
        "limiter": lambda limit, window: RedisRateLimiter(
            client, prefix=f"{stream}:r:", limit=limit, window=window
        ),
        "cache": lambda: RedisCache(client, prefix=f"{stream}:c:"),
    }
    await client.aclose()


class TestJobQueue:
    async def test_delivers_jobs_in_order_with_payload_intact(self, backend: Backend) -> None:
        queue: JobQueue = backend["queue"]()
        assert isinstance(queue, JobQueue)
        first = await queue.put("answer", {"text": "휴가 규정 알려줘", "n": 1, "tags": ["a"]})
        await queue.put("answer", {"text": "second"})
        got = await queue.get(timeout=1)
        assert got is not None
        assert got.job == first
        assert got.job.payload["text"] == "휴가 규정 알려줘"
        assert got.attempt == 1
        await queue.ack(got)
        second = await queue.get(timeout=1)
        assert second is not None and second.job.payload == {"text": "second"}
        await queue.ack(second)

    async def test_get_returns_none_when_empty(self, backend: Backend) -> None:
        queue: JobQueue = backend["queue"]()
        assert await queue.get(timeout=0.2) is None

    async def test_get_waits_for_a_job_put_meanwhile(self, backend: Backend) -> None:
        queue: JobQueue = backend["queue"]()
        waiting = asyncio.create_task(queue.get(timeout=3))
        await asyncio.sleep(0.1)
        await queue.put("ingest", {"path": "a.pdf"})
        got = await waiting
        assert got is not None and got.job.kind == "ingest"

    async def test_acked_job_is_never_delivered_again(self, backend: Backend) -> None:
        queue: JobQueue = backend["queue"](visibility_timeout=0.2)
        await queue.put("answer", {})
        got = await queue.get(timeout=1)
        assert got is not None
        await queue.ack(got)
        await asyncio.sleep(0.4)
        assert await backend["queue"](visibility_timeout=0.2).get(timeout=0.3) is None

    async def test_job_of_a_dead_consumer_is_redelivered_to_another(self, backend: Backend) -> None:
        dead = backend["queue"](visibility_timeout=0.3)
        alive = backend["queue"](visibility_timeout=0.3)
        job = await dead.put("answer", {"q": 1})
        taken = await dead.get(timeout=1)
        assert taken is not None  # ... and its worker dies without acking
        assert await alive.get(timeout=0.1) is None  # still within the visibility timeout
        await asyncio.sleep(0.4)
        again = await alive.get(timeout=1)
        assert again is not None
        assert again.job.id == job.id
        assert again.attempt == 2
        await alive.ack(again)

    async def test_an_extended_lease_keeps_a_running_job_from_others(
        self, backend: Backend
    ) -> None:
        working = backend["queue"](visibility_timeout=0.3)
        other = backend["queue"](visibility_timeout=0.3)
        job = await working.put("answer", {"q": "long"})
        taken = await working.get(timeout=1)
        assert taken is not None
        for _ in range(4):  # 0.8 s in all, well past the timeout, still running
            await asyncio.sleep(0.2)
            assert await working.extend(taken) is True
            assert await other.get(timeout=0.01) is None
        await asyncio.sleep(0.4)  # its worker died: no more extensions
        again = await other.get(timeout=1)
        assert again is not None and (again.job.id, again.attempt) == (job.id, 2)
        assert await working.extend(taken) is False  # taken over: not the old worker's
        await other.ack(again)
        assert await other.extend(again) is False  # done

    async def test_retry_redelivers_now_with_the_attempt_counted(self, backend: Backend) -> None:
        queue: JobQueue = backend["queue"]()
        await queue.put("answer", {"q": 1})
        first = await queue.get(timeout=1)
        assert first is not None
        assert await queue.retry(first, "boom") is True
        second = await queue.get(timeout=1)
        assert second is not None
        assert (second.job.id, second.attempt) == (first.job.id, 2)
        await queue.ack(second)

    async def test_job_is_dead_lettered_after_max_attempts(self, backend: Backend) -> None:
        queue: JobQueue = backend["queue"](max_attempts=2)
        job = await queue.put("answer", {"q": "poison"})
        first = await queue.get(timeout=1)
        assert first is not None and await queue.retry(first, "boom 1")
        second = await queue.get(timeout=1)
        assert second is not None
        assert await queue.retry(second, "boom 2") is False
        assert await queue.get(timeout=0.2) is None
        dead = await queue.dead_letters()
        assert [(d.job.id, d.attempts, d.error) for d in dead] == [(job.id, 2, "boom 2")]

    async def test_expired_deliveries_also_count_towards_max_attempts(
        self, backend: Backend
    ) -> None:
        queue: JobQueue = backend["queue"](visibility_timeout=0.2, max_attempts=2)
        job = await queue.put("answer", {})
        for _ in range(2):
            assert await queue.get(timeout=1) is not None  # taken, never acked
            await asyncio.sleep(0.3)
        assert await queue.get(timeout=0.3) is None
        assert [d.job.id for d in await queue.dead_letters()] == [job.id]

    async def test_bury_dead_letters_at_once(self, backend: Backend) -> None:
        queue: JobQueue = backend["queue"]()
        await queue.put("mystery", {})
        got = await queue.get(timeout=1)
        assert got is not None
        await queue.bury(got, "no handler")
        assert await queue.get(timeout=0.2) is None
        assert [(d.job.kind, d.error) for d in await queue.dead_letters()] == [
            ("mystery", "no handler")
        ]

    async def test_concurrent_consumers_each_get_a_job_once(self, backend: Backend) -> None:
        producer: JobQueue = backend["queue"]()
        ids = {(await producer.put("answer", {"i": i})).id for i in range(20)}
        consumers = [backend["queue"]() for _ in range(4)]
        seen: list[str] = []

        async def consume(queue: JobQueue) -> None:
            while (got := await queue.get(timeout=0.3)) is not None:
                seen.append(got.job.id)
                await queue.ack(got)

        await asyncio.gather(*(consume(q) for q in consumers))
        assert sorted(seen) == sorted(ids)

    async def test_status_counts_waiting_in_flight_and_dead(self, backend: Backend) -> None:
        queue: JobQueue = backend["queue"](max_attempts=1)
        empty = await queue.status()
        assert (empty.waiting, empty.in_flight, empty.oldest_age, empty.dead) == (0, 0, None, 0)
        for i in range(3):
            await queue.put("answer", {"i": i})
        await asyncio.sleep(0.2)
        taken = await queue.get(timeout=1)
        failed = await queue.get(timeout=1)
        assert taken is not None and failed is not None
        assert await queue.retry(failed, "boom") is False  # max_attempts=1: dead at once
        status = await queue.status()
        assert (status.waiting, status.in_flight, status.dead) == (1, 1, 1)
        assert status.oldest_age is not None and 0.2 <= status.oldest_age < 30
        await queue.ack(taken)
        after = await queue.status()
        assert (after.waiting, after.in_flight, after.dead) == (1, 0, 1)

    async def test_a_dead_letter_goes_back_by_id_with_fresh_attempts(
        self, backend: Backend
    ) -> None:
        queue: JobQueue = backend["queue"](max_attempts=1)
        first = await queue.put("answer", {"q": "첫 번째"})
        second = await queue.put("answer", {"q": "second"})
        for _ in range(2):
            got = await queue.get(timeout=1)
            assert got is not None
            await queue.bury(got, "no handler")
        assert await queue.requeue_dead("no-such-id") == []
        back = await queue.requeue_dead(first.id)
        assert [(j.id, j.kind, dict(j.payload)) for j in back] == [
            (first.id, "answer", {"q": "첫 번째"})
        ]
        assert [d.job.id for d in await queue.dead_letters()] == [second.id]
        assert await queue.requeue_dead(first.id) == []  # not dead any more: not twice
        again = await backend["queue"](max_attempts=1).get(timeout=1)
        assert again is not None
        assert (again.job.id, again.attempt) == (first.id, 1)
        await queue.ack(again)
        assert (await queue.status()).dead == 1

    async def test_every_dead_letter_goes_back_at_once(self, backend: Backend) -> None:
        queue: JobQueue = backend["queue"](max_attempts=1)
        ids = {(await queue.put("answer", {"i": i})).id for i in range(3)}
        for _ in range(3):
            got = await queue.get(timeout=1)
            assert got is not None
            await queue.bury(got, "boom")
        assert {j.id for j in await queue.requeue_dead()} == ids
        status = await queue.status()
        assert (status.waiting, status.dead) == (3, 0)
        assert await queue.requeue_dead() == []


class TestDeduper:
    async def test_first_claim_wins_until_the_ttl_ends(self, backend: Backend) -> None:
        deduper: Deduper = backend["deduper"]()
        assert isinstance(deduper, Deduper)
        assert await deduper.claim("Ev01", ttl=0.3) is True
        assert await deduper.claim("Ev01", ttl=0.3) is False
        assert await deduper.claim("Ev02", ttl=0.3) is True
        await asyncio.sleep(0.4)
        assert await deduper.claim("Ev01", ttl=0.3) is True

    async def test_one_winner_among_concurrent_claims(self, backend: Backend) -> None:
        deduper: Deduper = backend["deduper"]()
        wins = await asyncio.gather(*(deduper.claim("Ev03", ttl=5) for _ in range(25)))
        assert wins.count(True) == 1

    async def test_a_released_claim_can_be_claimed_again(self, backend: Backend) -> None:
        deduper: Deduper = backend["deduper"]()
        assert await deduper.claim("Ev04", ttl=30) is True
        await deduper.release("Ev04")  # its work failed: the next delivery is not a duplicate
        assert await deduper.claim("Ev04", ttl=30) is True
        assert await deduper.claim("Ev04", ttl=30) is False
        await deduper.release("never-claimed")


class TestRateLimiter:
    async def test_allows_limit_then_refuses_with_retry_after(self, backend: Backend) -> None:
        limiter: RateLimiter = backend["limiter"](3, 1.5)
        assert isinstance(limiter, RateLimiter)
        decisions = [await limiter.hit("U1") for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
        assert 0.2 < decisions[3].retry_after <= 0.5

    async def test_replenishes_after_retry_after(self, backend: Backend) -> None:
        limiter: RateLimiter = backend["limiter"](2, 0.6)
        await limiter.hit("U1")
        await limiter.hit("U1")
        refused = await limiter.hit("U1")
        assert not refused.allowed
        await asyncio.sleep(refused.retry_after + 0.05)
        assert (await limiter.hit("U1")).allowed

    async def test_very_high_limits_work(self, backend: Backend) -> None:
        # An interval below float resolution must not produce a zero expiry.
        limiter: RateLimiter = backend["limiter"](10**9, 1)
        assert all([(await limiter.hit("bulk")).allowed for _ in range(20)])

    async def test_keys_are_independent(self, backend: Backend) -> None:
        limiter: RateLimiter = backend["limiter"](1, 10)
        assert (await limiter.hit("U1")).allowed
        assert not (await limiter.hit("U1")).allowed
        assert (await limiter.hit("U2")).allowed


class TestCache:
    async def test_set_get_delete(self, backend: Backend) -> None:
        cache: Cache = backend["cache"]()
        assert isinstance(cache, Cache)
        assert await cache.get("AAPL") is None
        await cache.set("AAPL", b"\x00\xff 189.5", ttl=5)
        assert await cache.get("AAPL") == b"\x00\xff 189.5"
        await cache.set("AAPL", "190.1 원".encode(), ttl=5)
        assert (await cache.get("AAPL") or b"").decode() == "190.1 원"
        await cache.delete("AAPL")
        assert await cache.get("AAPL") is None

    async def test_entries_expire(self, backend: Backend) -> None:
        cache: Cache = backend["cache"]()
        await cache.set("k", b"v", ttl=0.2)
        await asyncio.sleep(0.3)
        assert await cache.get("k") is None


async def test_open_state_picks_the_backend_from_settings(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    memory = await open_state(make_settings())
    assert memory.backend == "memory"
    await memory.close()
    shared = await open_state(make_settings(redis_url=redis_url))
    assert shared.backend == "redis"
    await shared.queue.put("answer", {})
    assert (await shared.queue.get(timeout=1)) is not None
    await shared.close()


async def test_unreachable_redis_is_one_clear_error(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(redis_url="redis://:hunter2@127.0.0.1:9/0", db_connect_timeout=1)
    with pytest.raises(SharedStateError) as caught:
        await open_state(settings)
    message = str(caught.value)
    assert message.startswith("REDIS_URL: cannot connect to redis://:***@127.0.0.1:9/0")
    assert "hunter2" not in message
    assert "\n" not in message
