"""``deskbot queue status|dead|retry`` run as a user runs them, on the embedded Valkey."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from bot.state.redis import RedisJobQueue
from tests.conftest import CliResult

pytestmark = pytest.mark.integration

STREAM = "ops-test:jobs"


@pytest.fixture
async def jobs(redis_url: str) -> AsyncIterator[RedisJobQueue]:
    """The queue the CLI will look at, as a worker sees it."""
    client = Redis.from_url(redis_url)
    yield RedisJobQueue(client, stream=STREAM, consumer="test-worker", max_attempts=2)
    await client.aclose()


async def _bury_one(jobs: RedisJobQueue, error: str) -> str:
    got = await jobs.get(timeout=1)
    assert got is not None
    await jobs.bury(got, error)
    return got.job.id


async def test_status_dead_and_retry_through_the_cli(
    jobs: RedisJobQueue, redis_url: str, run_cli: Callable[..., CliResult]
) -> None:
    env = {"REDIS_URL": redis_url, "DESKBOT_QUEUE_NAME": STREAM}
    for i in range(4):
        await jobs.put("answer", {"i": i})
    poison = await _bury_one(jobs, "ValueError: no such channel")
    other = await _bury_one(jobs, "no handler for job kind 'x'")
    assert await jobs.get(timeout=1) is not None  # taken, not acked: in flight

    status = run_cli("queue", "status", "--json", env=env)
    assert status.code == 0, status.stderr
    body = json.loads(status.stdout)
    assert (body["waiting"], body["in_flight"], body["dead"]) == (1, 1, 2)
    assert body["oldest_age_seconds"] >= 0
    text = run_cli("queue", "status", env=env)
    assert "1 waiting, 1 in flight" in text.stdout and "2 dead letter(s)" in text.stdout

    dead = run_cli("queue", "dead", "--json", env=env)
    assert [(d["id"], d["kind"], d["error"]) for d in json.loads(dead.stdout)] == [
        (poison, "answer", "ValueError: no such channel"),
        (other, "answer", "no handler for job kind 'x'"),
    ]
    assert poison in run_cli("queue", "dead", env=env).stdout

    retried = run_cli("queue", "retry", poison, env=env)
    assert (retried.code, retried.stdout.strip()) == (
        0,
        "1 job(s) back on the queue with fresh attempts",
    )
    again = run_cli("queue", "retry", poison, env=env)
    assert again.code == 1
    assert again.stderr.strip() == (
        f"deskbot: no dead letter with id {poison} (see `deskbot queue dead`)"
    )
    waiting, back = await jobs.get(timeout=1), await jobs.get(timeout=1)
    assert waiting is not None and back is not None
    assert (back.job.id, back.attempt) == (poison, 1)  # behind the job already waiting

    everything = run_cli("queue", "retry", "--all", env=env)
    assert everything.code == 0 and everything.stdout.startswith("1 job(s)")
    assert (await jobs.status()).dead == 0
    assert run_cli("queue", "dead", env=env).stdout.strip() == "No dead letters."


def test_without_redis_there_is_no_shared_queue_to_show(
    run_cli: Callable[..., CliResult],
) -> None:
    for args in (("status",), ("dead", "--json"), ("retry", "--all")):
        result = run_cli("queue", *args)
        assert result.code == 2
        assert result.stderr.startswith("deskbot: REDIS_URL: not set, so there is no shared queue")
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stdout == ""


def test_retry_needs_an_id_or_all(run_cli: Callable[..., CliResult], redis_url: str) -> None:
    result = run_cli("queue", "retry", env={"REDIS_URL": redis_url})
    assert result.code == 2
    assert "give one job id or --all" in result.stderr
    assert "Traceback" not in result.stderr
