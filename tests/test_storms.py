"""The model and Slack in a storm: 429 with ``Retry-After``, 500s and timeouts.

The agent runs on the real OpenAI SDK against the scripted server (no retries in the SDK,
as the app builds it): it retries with backoff, waits what ``Retry-After`` says, stops at
the run's deadline, and ends with one message. Through Slack's front door, a question
whose model stays down gets one failure message in its thread and its job is not retried;
Slack's own 429 on posting is waited out, unless the wait ends past the job's deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.agent import Agent, OpenAIBackend
from bot.agent.run import Limits
from bot.agent.store import ConversationStore
from bot.messages import ThreadKey
from bot.settings import Settings
from bot.storage import Database
from tests.conftest import FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.secret_values import OPENAI_KEY
from tests.test_slack import BOT, Stack, event, final_updates, serve_slack, texts, until
from tools.base import ToolContext, ToolRegistry

KEY = ThreadKey("api", "storm")


@pytest.fixture
async def store(database: Database) -> AsyncIterator[ConversationStore]:
    conversations = ConversationStore(database.engine)
    yield conversations
    await conversations.drain()


def agent(
    server: ScriptedOpenAI, store: ConversationStore, *, timeout: float = 60, **limits: Any
) -> Agent:
    """The agent as the app builds it: the SDK does not retry, the loop does."""
    backend = OpenAIBackend(
        model="gpt-test", api_key=OPENAI_KEY, base_url=server.base_url, timeout=timeout
    )
    return Agent(backend, ToolRegistry([]), store, limits=Limits(**limits))


@pytest.mark.integration
async def test_a_storm_of_429s_and_500s_is_ridden_out_honouring_retry_after(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    openai_server.reply_error(429, "slow down", retry_after=0.4)
    openai_server.reply_error(500, "upstream exploded")
    openai_server.reply_error(429, "slow down", retry_after=0.4)
    openai_server.reply_text("Here it is.")
    began = time.monotonic()

    answer = await agent(openai_server, store, model_retries=3).ask(KEY, "Hi", ToolContext())

    assert (answer.status, answer.text) == ("completed", "Here it is.")
    assert len(openai_server.chat_requests()) == 4
    assert time.monotonic() - began >= 0.8  # both Retry-After waits were kept


@pytest.mark.integration
async def test_a_storm_past_the_retries_ends_with_one_message(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    for _ in range(4):
        openai_server.reply_error(503, "overloaded", retry_after=0)

    answer = await agent(openai_server, store, model_retries=3).ask(KEY, "Hi", ToolContext())

    assert answer.status == "failed"
    assert answer.text.startswith(
        "I could not get an answer from the language model: the language model refused "
        "the request (503):"
    )
    assert answer.text.endswith("overloaded (4 tries)")
    assert answer.text.count("\n") == 0
    assert len(openai_server.chat_requests()) == 4
    stored = await store.get_run(answer.run_id)
    assert stored is not None and stored.status == "failed"


@pytest.mark.integration
async def test_a_retry_after_past_the_deadline_fails_at_once(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    openai_server.reply_error(429, "slow down", retry_after=120)
    began = time.monotonic()

    answer = await agent(openai_server, store, deadline=20).ask(KEY, "안녕하세요", ToolContext())

    assert time.monotonic() - began < 10  # not slept into the deadline
    assert answer.status == "failed"
    assert answer.text.startswith("언어 모델에서 답을 받지 못했습니다")  # the asker's language
    assert "asked to wait 120 s" in answer.text
    assert len(openai_server.chat_requests()) == 1


@pytest.mark.integration
async def test_a_model_that_times_out_is_asked_again(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    openai_server.reply_text("too late", delay=3)
    openai_server.reply_text("In time.")

    answer = await agent(openai_server, store, timeout=1).ask(KEY, "Hi", ToolContext())

    assert (answer.status, answer.text) == ("completed", "In time.")
    assert len(openai_server.chat_requests()) == 2


@pytest.mark.integration
async def test_backoff_stops_at_the_run_deadline(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    for _ in range(50):  # down for good
        openai_server.reply_error(500, "down")
    began = time.monotonic()

    answer = await agent(openai_server, store, deadline=2.5, model_retries=50).ask(
        KEY, "Hi", ToolContext()
    )

    assert time.monotonic() - began < 6
    assert answer.status in {"failed", "expired"}
    assert 2 <= len(openai_server.chat_requests()) < 10  # backoff, not a hot loop


# --- through Slack ---------------------------------------------------------------------


@pytest.fixture
async def slack_stack(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
) -> AsyncIterator[Stack]:
    async with serve_slack(
        make_settings, fresh_database, slack_api, openai_server, llm_max_retries=2, rate_limit=1000
    ) as served:
        yield served


@pytest.mark.e2e
async def test_slack_a_model_down_for_good_is_said_once_and_the_job_is_not_retried(
    slack_stack: Stack,
) -> None:
    for _ in range(3):
        slack_stack.openai.reply_error(429, "Rate limit reached", retry_after=0.2)

    await slack_stack.post(event("1700000101.000100", f"<@{BOT}> how much is a hotel?"))
    await until(lambda: final_updates(slack_stack.slack))
    await asyncio.sleep(2)  # a job handed back would be asked again by now

    finals = final_updates(slack_stack.slack)
    assert len(finals) == 1
    assert "Rate limit reached" in texts(finals[0]) and "3 tries" in texts(finals[0])
    assert len(slack_stack.openai.chat_requests()) == 3  # no hot loop, no second run
    assert len(slack_stack.slack.calls_to("chat.postMessage")) == 1  # one placeholder


@pytest.mark.e2e
async def test_slack_rate_limiting_the_placeholder_is_waited_out(slack_stack: Stack) -> None:
    slack_stack.slack.fail_next("chat.postMessage", "ratelimited", retry_after=1)
    slack_stack.openai.reply_text("Two hundred and twenty dollars.")

    await slack_stack.post(event("1700000102.000100", f"<@{BOT}> hotel cap?"))
    await until(lambda: final_updates(slack_stack.slack))

    posts = slack_stack.slack.calls_to("chat.postMessage")
    assert len(posts) == 2  # refused once, then posted after the Retry-After
    finals = final_updates(slack_stack.slack)
    assert len(finals) == 1 and "Two hundred and twenty" in texts(finals[0])


@pytest.mark.e2e
async def test_slack_server_errors_on_the_answer_are_retried_and_shown_once(
    slack_stack: Stack,
) -> None:
    slack_stack.openai.reply_text("Two hundred and twenty dollars.")
    slack_stack.slack.fail_next("chat.update", "internal_error", status=500, times=2)

    await slack_stack.post(event("1700000103.000100", f"<@{BOT}> hotel cap?"))
    # two refused with a 500, then the same edit again after the client's backoff
    await until(lambda: len(slack_stack.slack.calls_to("chat.update")) >= 3)
    await asyncio.sleep(1)  # a second answer would be posted by now

    shown = {str(args["ts"]) for args in final_updates(slack_stack.slack)}
    assert len(shown) == 1  # one message holds the answer
    assert "Two hundred and twenty" in texts(final_updates(slack_stack.slack)[-1])
    assert len(slack_stack.slack.calls_to("chat.postMessage")) == 1  # no second placeholder


@pytest.mark.e2e
async def test_slack_asking_to_wait_past_the_jobs_deadline_fails_at_once(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack_api.fail_next("chat.postMessage", "ratelimited", retry_after=600)
    async with serve_slack(
        make_settings, fresh_database, slack_api, openai_server, run_deadline=2.0
    ) as served:
        began = time.monotonic()
        await served.post(event("1700000104.000100", f"<@{BOT}> hotel cap?"))
        await until(lambda: len(slack_api.calls_to("chat.postMessage")) >= 2)
        waited = time.monotonic() - began
        await asyncio.sleep(1)  # nothing more comes

    posts = slack_api.calls_to("chat.postMessage")
    assert waited < 20  # not the 600 s Slack asked for
    assert len(posts) == 2  # the refused placeholder, then the one message saying why
    assert "went wrong" in str(posts[1].args.get("text"))
    (said,) = [r for r in caplog.records if "past the job's deadline" in r.getMessage()]
    assert "wait 600 s before retrying chat.postMessage" in said.getMessage()
    assert openai_server.chat_requests() == []  # no run started without its placeholder
