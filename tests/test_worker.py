"""The worker on both queue backends: ack on success, retry on failure, dead letters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from bot.app import open_app
from bot.jobs import make_worker
from bot.messages import ThreadKey
from bot.settings import Settings
from bot.state import Delivery, Job, JobQueue
from bot.state.memory import MemoryJobQueue
from bot.state.redis import RedisJobQueue
from bot.worker import Handler, Worker
from tests.conftest import FreshDatabase

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "redis"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[JobQueue]:
    if request.param == "memory":
        yield MemoryJobQueue(visibility_timeout=5, max_attempts=3)
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisJobQueue(
        client,
        stream=f"w:{uuid.uuid4().hex[:6]}",
        consumer="w1",
        visibility_timeout=5,
        max_attempts=3,
    )
    await client.aclose()


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def wait_until(predicate: object, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_successful_jobs_are_acked_once(queue: JobQueue) -> None:
    done: list[str] = []

    async def handle(job: Job) -> None:
        done.append(job.payload["q"])

    worker = Worker(queue, {"answer": handle}, poll_timeout=0.1)
    async with running(worker):
        for q in ("a", "b", "c"):
            await queue.put("answer", {"q": q})
        await wait_until(lambda: len(done) == 3)
    assert sorted(done) == ["a", "b", "c"]
    assert await queue.get(timeout=0.2) is None
    assert worker.processed == 3


async def test_a_failing_job_is_retried_until_it_succeeds(queue: JobQueue) -> None:
    attempts: list[int] = []

    async def flaky(job: Job) -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 2:
            raise RuntimeError("LLM unavailable")

    worker = Worker(queue, {"answer": flaky}, poll_timeout=0.1)
    async with running(worker):
        await queue.put("answer", {})
        await wait_until(lambda: worker.processed == 1)
    assert attempts == [1, 2]
    assert await queue.dead_letters() == []


async def test_a_job_that_always_fails_ends_in_dead_letters(queue: JobQueue) -> None:
    async def broken(job: Job) -> None:
        raise ValueError("bad payload")

    worker = Worker(queue, {"answer": broken}, poll_timeout=0.1)
    async with running(worker):
        job = await queue.put("answer", {})
        await wait_until(lambda: worker.failed == 3)
    dead = await queue.dead_letters()
    assert [(d.job.id, d.attempts, d.error) for d in dead] == [
        (job.id, 3, "ValueError: bad payload")
    ]


async def test_unknown_kind_is_dead_lettered_without_retries(queue: JobQueue) -> None:
    worker = Worker(queue, {}, poll_timeout=0.1)
    async with running(worker):
        await queue.put("teleport", {})
        await wait_until(lambda: worker.failed == 1)
    dead = await queue.dead_letters()
    assert [(d.job.kind, d.attempts) for d in dead] == [("teleport", 1)]
    assert "no handler" in dead[0].error


async def test_concurrency_is_bounded_and_stop_waits_for_running_jobs(queue: JobQueue) -> None:
    active = 0
    peak = 0
    finished = 0

    async def slow(job: Job) -> None:
        nonlocal active, peak, finished
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.2)
        active -= 1
        finished += 1

    handlers: dict[str, Handler] = {"answer": slow}
    worker = Worker(queue, handlers, concurrency=2, poll_timeout=0.05)
    for _ in range(5):
        await queue.put("answer", {})
    async with running(worker):
        await wait_until(lambda: finished >= 1)
    # Stopped: whatever had started has finished, nothing is half done.
    assert active == 0
    assert peak == 2


async def test_a_job_running_past_the_visibility_timeout_is_not_taken_over(
    queue: JobQueue,
) -> None:
    if isinstance(queue, RedisJobQueue):  # a second worker process: another consumer
        other: JobQueue = RedisJobQueue(
            queue.client, stream=queue.stream, consumer="w2", visibility_timeout=0.4
        )
        queue.visibility_timeout = 0.4
    else:
        queue.visibility_timeout = 0.4  # one process: both workers share the queue
        other = queue
    runs: list[str] = []

    async def long_run(job: Job) -> None:
        runs.append(job.id)
        await asyncio.sleep(1.5)  # almost four visibility timeouts

    first = Worker(queue, {"answer": long_run}, poll_timeout=0.05)
    second = Worker(other, {"answer": long_run}, poll_timeout=0.05)
    await queue.put("answer", {})
    async with running(first), running(second):
        await wait_until(lambda: first.processed + second.processed == 1)
        await asyncio.sleep(0.5)
    assert len(runs) == 1  # run once, by whichever worker took it
    assert (first.failed, second.failed) == (0, 0)


class _QueueThatDropsOut:
    """A JobQueue whose backend is unreachable for the first ``outages`` reads."""

    def __init__(self, inner: JobQueue, outages: int, error: Exception | None = None) -> None:
        self.inner = inner
        self.outages = outages
        self.error = error or ConnectionError(
            "Error 111 connecting to redis:6379. Connection refused."
        )

    async def get(self, *, timeout: float = 1.0) -> Delivery | None:
        if self.outages:
            self.outages -= 1
            raise self.error
        return await self.inner.get(timeout=timeout)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_worker_outlives_a_queue_outage_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = MemoryJobQueue()
    done: list[Job] = []

    async def handle(job: Job) -> None:
        done.append(job)

    flaky = _QueueThatDropsOut(inner, outages=6)
    worker = Worker(flaky, {"answer": handle}, poll_timeout=0.05, backoff=0.02)  # type: ignore[arg-type]
    await inner.put("answer", {})
    with caplog.at_level("INFO", logger="bot.worker"):
        async with running(worker):
            await wait_until(lambda: len(done) == 1)
    assert flaky.outages == 0
    went = [r for r in caplog.records if "queue unavailable" in r.getMessage()]
    back = [r for r in caplog.records if "queue reachable again" in r.getMessage()]
    assert (len(went), len(back)) == (1, 1)  # not once per poll
    assert "Connection refused" in went[0].getMessage()
    assert not went[0].exc_info  # a plain outage: one line, no traceback


async def test_a_queue_failing_for_another_reason_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = _QueueThatDropsOut(MemoryJobQueue(), outages=3, error=ValueError("bad reply"))
    worker = Worker(flaky, {}, poll_timeout=0.05, backoff=0.02)  # type: ignore[arg-type]
    with caplog.at_level("INFO", logger="bot.worker"):
        async with running(worker):
            await wait_until(lambda: flaky.outages == 0)
            await wait_until(lambda: "queue reachable again" in caplog.text)
    (went,) = [r for r in caplog.records if "queue unavailable" in r.getMessage()]
    assert went.exc_info is not None and "ValueError: bad reply" in went.getMessage()


async def test_redis_queue_recovers_when_its_stream_is_deleted(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    queue = RedisJobQueue(client, stream="w:gone", consumer="w1")
    await queue.put("answer", {})
    await client.flushall()
    assert await queue.get(timeout=0.1) is None
    job = await queue.put("answer", {"after": True})
    got = await queue.get(timeout=1)
    assert got is not None
    assert got.job.id == job.id
    await client.aclose()


async def test_a_run_left_in_progress_by_a_dead_worker_is_expired(
    make_settings: Callable[..., Settings], fresh_database: FreshDatabase
) -> None:
    async with open_app(make_settings(database_url=fresh_database.url)) as app:
        store = app.conversations
        values = {"user_id": "U1", "model": "m", "instructions": "Hi."}
        crashed, _ = await store.begin_run(ThreadKey("api", "crashed"), question="q", **values)
        live, _ = await store.begin_run(ThreadKey("api", "live"), question="q", **values)
        async with store.engine.begin() as conn:  # the crashed worker started an hour ago
            await conn.execute(
                text("UPDATE runs SET started_at = now() - interval '1 hour' WHERE id = :id"),
                {"id": crashed.run_id},
            )

        async with running(make_worker(app)):

            async def status(run_id: uuid.UUID) -> str:
                stored = await store.get_run(run_id)
                assert stored is not None
                return stored.status

            deadline = asyncio.get_running_loop().time() + 10
            while await status(crashed.run_id) != "expired":
                assert asyncio.get_running_loop().time() < deadline, "the stale run stayed"
                await asyncio.sleep(0.05)

        assert await status(live.run_id) == "in_progress"  # a run that may still finish
        expired = await store.get_run(crashed.run_id)
        assert expired is not None
        assert expired.error == "the process running it stopped"
