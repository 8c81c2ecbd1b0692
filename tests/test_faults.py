"""Exactly one answer per question, whatever dies: real ``deskbot`` processes under SIGKILL.

Questions go through the signed Slack HTTP endpoint (``deskbot slack --http``) to two or
three ``deskbot worker`` processes on the session's Valkey and PostgreSQL (see
:mod:`tests.cluster`). Workers are killed at points the fakes make exact: the scripted model
holding a question's model call, or the fake Slack API holding the call that shows its
finished answer. Every test ends counting, from the fake Slack API's record, one placeholder
and one finished answer per question.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psycopg
import pytest
from redis.asyncio import Redis

from tests.cluster import (
    Cluster,
    ModelHold,
    Process,
    QuestionModel,
    Tally,
    cluster_env,
    question_ts,
    wait_for,
)
from tests.conftest import FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI, Hold, SlackCall

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

VISIBILITY = 6.0  # seconds before a dead worker's job is taken over
LONG = 13  # paragraphs of a long answer (1,600 characters each): three Slack messages of
# 6, 6 and 1 sections, as Slack takes at most ~12,000 characters of blocks in one message


@pytest.fixture
async def model(openai_server: ScriptedOpenAI) -> QuestionModel:
    rule = QuestionModel()
    openai_server.answer_with(rule)
    return rule


@pytest.fixture
async def cluster(
    tmp_path: Path,
    fresh_database: FreshDatabase,
    redis_url: str,
    openai_server: ScriptedOpenAI,
    slack_api: FakeSlackAPI,
    model: QuestionModel,
) -> AsyncIterator[Cluster]:
    env = cluster_env(
        tmp_path,
        fresh_database.url,
        redis_url,
        openai_server,
        slack_api,
        DESKBOT_QUEUE_VISIBILITY_TIMEOUT=str(VISIBILITY),
    )
    async with Cluster(tmp_path, env) as running:
        await running.start_adapter()
        yield running


def run_statuses(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
    return {str(status): int(count) for status, count in rows}


async def settled_runs(database_url: str) -> dict[str, int]:
    """Run statuses once none is ``in_progress`` (outcomes are written behind the reply)."""
    await wait_for(
        lambda: "in_progress" not in run_statuses(database_url), timeout=20, what="stored runs"
    )
    return run_statuses(database_url)


def shows_answer_to(n: int, slack: FakeSlackAPI):  # type: ignore[no-untyped-def]
    """A predicate for the ``chat.update`` that shows question ``n``'s finished answer."""

    def matches(call: SlackCall) -> bool:
        thread = slack.posted.get(str(call.args.get("ts")), {}).get("thread_ts")
        return (
            call.method == "chat.update"
            and thread == question_ts(n)
            and (f"Answer to q-{n}" in str(call.args.get("text")))
        )

    return matches


async def test_many_questions_on_three_workers_are_each_answered_once(
    cluster: Cluster, slack_api: FakeSlackAPI, fresh_database: FreshDatabase
) -> None:
    await cluster.start_workers(3)
    questions = range(1, 25)

    await asyncio.gather(*(cluster.ask(n) for n in questions))

    tally = await cluster.settle(slack_api, questions)
    assert (tally.answered, tally.duplicates, tally.missing) == (24, [], [])
    assert (await settled_runs(fresh_database.url))["completed"] >= 24
    answered_by = [w.name for w in cluster.workers if w.logged("answering ")]
    assert len(answered_by) >= 2, "the questions were shared between the workers"


def posts_placeholder_of(n: int):  # type: ignore[no-untyped-def]
    """A predicate for the ``chat.postMessage`` of question ``n``'s placeholder."""

    def matches(call: SlackCall) -> bool:
        return call.method == "chat.postMessage" and call.args.get("thread_ts") == question_ts(n)

    return matches


def posts_part_of(n: int, paragraph: int):  # type: ignore[no-untyped-def]
    """A predicate for the ``chat.postMessage`` of the part of ``n``'s long answer that
    starts with ``paragraph``."""

    def matches(call: SlackCall) -> bool:
        return (
            call.method == "chat.postMessage"
            and call.args.get("thread_ts") == question_ts(n)
            and str(call.args.get("text", "")).startswith(f"[q-{n} para {paragraph}]")
        )

    return matches


def parts_shown(slack: FakeSlackAPI, n: int) -> list[list[int]]:
    """Per message question ``n``'s thread shows, the paragraph numbers of its sections."""
    return [
        [
            int(number)
            for block in message.get("blocks", [])
            if block["type"] == "section"
            for number in re.findall(
                rf"^(?:Answer to q-{n}: .*?)?\[q-{n} para (\d+)\]", block["text"]["text"]
            )
        ]
        for message in slack.messages_in("C1", question_ts(n))
    ]


def kill_point(
    point: str, victim: int, model: QuestionModel, slack: FakeSlackAPI
) -> ModelHold | Hold:
    """Make question ``victim`` wait at ``point`` (``reached`` once it does) until released."""
    if point == "model call in flight":
        return model.hold(f"q-{victim}")
    if point == "placeholder posted, not recorded":
        return slack.hold(posts_placeholder_of(victim))
    if point == "third part of a long answer posted, not recorded":
        model.answer_long(f"q-{victim}", LONG)
        return slack.hold(posts_part_of(victim, 12))
    return slack.hold(shows_answer_to(victim, slack))


@pytest.mark.parametrize(
    "point",
    [
        "model call in flight",
        "placeholder posted, not recorded",
        "third part of a long answer posted, not recorded",
        "answer shown, job not acked",
    ],
)
async def test_a_worker_killed_mid_answer_leaves_exactly_one_answer(
    cluster: Cluster,
    model: QuestionModel,
    slack_api: FakeSlackAPI,
    fresh_database: FreshDatabase,
    point: str,
) -> None:
    await cluster.start_workers(2)
    victim = 5
    hold = kill_point(point, victim, model, slack_api)
    questions = range(1, 21)

    await asyncio.gather(*(cluster.ask(n) for n in questions))
    await wait_for(hold.reached.is_set, what=f"q-{victim} to reach the kill point")
    holder = cluster.holder_of(victim)
    cluster.kill(holder)  # SIGKILL: no clean-up, no ack, no retry
    hold.release()  # a held Slack call goes through: its message is up, never recorded

    (survivor,) = cluster.workers
    await wait_for(  # after the visibility timeout, even when the answer was already shown
        lambda: any(question_ts(victim) in r["msg"] for r in survivor.logged("answering ")),
        timeout=VISIBILITY * 5,
        what="the survivor to take the job over",
    )
    tally = await cluster.settle(slack_api, questions, timeout=60)
    assert tally.missing == []
    assert set(tally.answers.values()) == {1}  # never a second answer
    assert (tally.placeholders[victim], tally.answers[victim]) == (1, 1)
    # Nor a second placeholder, for the victim or any other job the dead worker had going
    # (one killed between posting its placeholder and recording it is found by its metadata).
    assert tally.duplicates == []
    # Every run the dead worker had going (up to its concurrency) is closed, not left running.
    # (An answer shown whose outcome the worker died before storing is expired too.)
    statuses = await settled_runs(fresh_database.url)
    assert statuses["completed"] + statuses.get("expired", 0) >= 20
    if point == "model call in flight":
        assert statuses["expired"] >= 1
    if point.startswith("third part"):  # each part once, in order, edited in place
        assert parts_shown(slack_api, victim) == [list(range(6)), list(range(6, 12)), [12]]
        posts = slack_api.calls_to("chat.postMessage")
        assert [sum(map(posts_part_of(victim, p), posts)) for p in (6, 12)] == [1, 1]


async def test_an_event_that_could_not_be_queued_is_refused_and_its_retry_answered(
    tmp_path: Path,
    fresh_database: FreshDatabase,
    redis_url: str,
    openai_server: ScriptedOpenAI,
    slack_api: FakeSlackAPI,
    model: QuestionModel,
) -> None:
    stream = f"faults:{tmp_path.name}"
    env = cluster_env(
        tmp_path,
        fresh_database.url,
        redis_url,
        openai_server,
        slack_api,
        DESKBOT_QUEUE_NAME=stream,
    )
    redis = Redis.from_url(redis_url)
    await redis.set(stream, "not a stream")  # every XADD to the queue fails (WRONGTYPE)
    async with Cluster(tmp_path, env) as cluster:
        await cluster.start_adapter()
        await cluster.start_workers(1)

        refused = await cluster.ask(1, expect_ok=False)
        assert refused.status_code == 503  # not a 200 that loses the event: Slack retries
        await redis.delete(stream)  # the queue works again
        await cluster.ask(1, retry=1)  # Slack's retry is not a duplicate: the claim was let go
        await cluster.ask(1, retry=2)  # a later one is

        tally = await cluster.settle(slack_api, [1])
        (adapter,) = [p for p in cluster.processes if p.name == "slack"]
        assert len(adapter.logged("event not queued")) == 1
    await redis.aclose()
    assert (tally.answered, tally.duplicates, tally.missing) == (1, [], [])


async def test_a_job_whose_retries_are_spent_tells_the_user_once(
    tmp_path: Path,
    fresh_database: FreshDatabase,
    redis_url: str,
    openai_server: ScriptedOpenAI,
    slack_api: FakeSlackAPI,
    model: QuestionModel,
) -> None:
    env = cluster_env(
        tmp_path,
        fresh_database.url,
        redis_url,
        openai_server,
        slack_api,
        DESKBOT_QUEUE_VISIBILITY_TIMEOUT="2",
        DESKBOT_QUEUE_MAX_ATTEMPTS="2",
        DESKBOT_UPKEEP_INTERVAL="1",
    )
    held = model.hold("q-1")  # every attempt's model call hangs until its worker is killed
    async with Cluster(tmp_path, env) as cluster:
        await cluster.start_adapter()
        await cluster.ask(1)
        for _ in range(2):
            (worker,) = await cluster.start_workers(1)
            await wait_for(lambda w=worker: w.logged("answering "), what="an attempt")
            await wait_for(held.reached.is_set)
            held.reached.clear()
            cluster.kill(worker, signal.SIGKILL)
        await cluster.start_workers(1)  # finds the job out of attempts

        await wait_for(lambda: Tally.of(slack_api, [1]).failures[1], timeout=30)
        await asyncio.sleep(2.5)  # more upkeep rounds: still told once
        tally = Tally.of(slack_api, [1])
        held.release()

    assert (tally.placeholders[1], tally.failures[1], tally.answers[1]) == (1, 1, 0)
    assert await settled_runs(fresh_database.url) == {"expired": 2}


async def test_a_run_longer_than_the_visibility_timeout_is_answered_once_by_one_model_run(
    cluster: Cluster,
    model: QuestionModel,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
) -> None:
    await cluster.start_workers(2)
    held = model.hold("q-1")  # its first model call takes 2.5 visibility timeouts
    await cluster.ask(1)
    await wait_for(held.reached.is_set)
    await asyncio.sleep(VISIBILITY * 2.5)
    held.release()

    tally = await cluster.settle(slack_api, [1])
    assert (tally.answered, tally.duplicates) == (1, [])
    asked = [r for r in openai_server.chat_requests() if "q-1" in json.dumps(r["messages"])]
    assert len(asked) == 2  # the tool call and the answer: never a second run
    assert not any(w.logged("taken over") for w in cluster.workers)


async def test_sigterm_drains_a_worker_and_hands_back_what_outlives_the_grace(
    cluster: Cluster, model: QuestionModel, slack_api: FakeSlackAPI
) -> None:
    (first,) = await cluster.start_workers(1, DESKBOT_SHUTDOWN_GRACE="3")
    quick, slow = model.hold("q-1"), model.hold("q-2")
    await asyncio.gather(cluster.ask(1), cluster.ask(2))
    await wait_for(lambda: quick.reached.is_set() and slow.reached.is_set())

    cluster.kill(first, signal.SIGTERM)
    (second,) = await cluster.start_workers(1)
    await cluster.ask(3)  # taken by the second worker only: the first takes nothing new
    quick.release()  # q-1 finishes within the grace; q-2 does not
    await wait_for(lambda: first.logged("handing 1 unfinished job(s) back"), timeout=15)
    stopped = asyncio.get_running_loop().time()
    slow.release()

    tally = await cluster.settle(slack_api, [1, 2, 3], timeout=VISIBILITY * 10)
    assert (tally.answered, tally.duplicates, tally.missing) == (3, [], [])
    assert first.popen.wait(timeout=10) == 0
    assert asyncio.get_running_loop().time() - stopped < 30  # not the visibility timeout

    def took(worker: Process, n: int) -> bool:
        return any(question_ts(n) in r["msg"] for r in worker.logged("answering "))

    assert (took(first, 1), took(first, 3), took(second, 2), took(second, 3)) == (
        True,
        False,
        True,
        True,
    )


async def test_a_second_sigterm_stops_at_once_and_the_adapter_stops_taking_events(
    cluster: Cluster, model: QuestionModel, slack_api: FakeSlackAPI
) -> None:
    (first,) = await cluster.start_workers(1, DESKBOT_SHUTDOWN_GRACE="600")
    held = model.hold("q-1")
    await cluster.ask(1)
    await wait_for(held.reached.is_set)

    cluster.kill(first, signal.SIGTERM)
    await wait_for(lambda: first.logged("finishing 1 running job"), timeout=15)
    cluster.kill(first, signal.SIGTERM)
    assert await asyncio.to_thread(first.popen.wait, 10) == 0  # not 600 s
    assert first.logged("handing 1 unfinished job(s) back")
    held.release()
    await cluster.start_workers(1)
    tally = await cluster.settle(slack_api, [1])
    assert (tally.answered, tally.duplicates) == (1, [])

    adapter = cluster.processes[0]
    cluster.kill(adapter, signal.SIGTERM)
    assert await asyncio.to_thread(adapter.popen.wait, 30) == 0
    with pytest.raises(httpx.ConnectError):
        await cluster.ask(2)
