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
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from tests.cluster import Cluster, QuestionModel, cluster_env, question_ts, wait_for
from tests.conftest import FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI, SlackCall

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

VISIBILITY = 4.0  # seconds before a dead worker's job is taken over


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
    assert run_statuses(fresh_database.url) == {"completed": 24}
    answered_by = [w.name for w in cluster.workers if w.logged("answering ")]
    assert len(answered_by) >= 2, "the questions were shared between the workers"


@pytest.mark.parametrize("point", ["model call in flight", "answer shown, job not acked"])
async def test_a_worker_killed_mid_answer_leaves_exactly_one_answer(
    cluster: Cluster,
    model: QuestionModel,
    slack_api: FakeSlackAPI,
    fresh_database: FreshDatabase,
    point: str,
) -> None:
    await cluster.start_workers(2)
    victim = 5
    if point == "model call in flight":
        held = model.hold(f"q-{victim}")
        reached = held.reached.is_set
    else:
        hold = slack_api.hold(shows_answer_to(victim, slack_api))
        reached = hold.reached.is_set
    questions = range(1, 21)

    await asyncio.gather(*(cluster.ask(n) for n in questions))
    await wait_for(reached, what=f"q-{victim} to reach the kill point")
    holder = cluster.holder_of(victim)
    cluster.kill(holder)  # SIGKILL: no clean-up, no ack, no retry
    if point == "model call in flight":
        held.release()
    else:
        hold.release()

    tally = await cluster.settle(slack_api, questions, timeout=60)
    assert (tally.answered, tally.duplicates, tally.missing) == (20, [], [])
    (survivor,) = cluster.workers
    assert any(question_ts(victim) in r["msg"] for r in survivor.logged("taken over"))
    # Every run the dead worker had going (up to its concurrency) is closed, not left running.
    statuses = run_statuses(fresh_database.url)
    assert statuses.get("in_progress", 0) == 0
    assert statuses["completed"] >= 20
    if point == "model call in flight":
        assert statuses["expired"] >= 1
