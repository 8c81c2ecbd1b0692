"""Daily token budgets through the real agent, the scripted OpenAI server and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from bot.agent import Agent, ConversationStore, OpenAIBackend, ThreadKey
from bot.agent.budget import DailyBudget, midnight_utc
from bot.settings import Settings
from bot.storage import Database
from knowledge.search import Scope
from tests.conftest import FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.secret_values import OPENAI_KEY
from tests.test_slack import BOT, Stack, event, final_updates, serve_slack, texts, until
from tools.base import ToolContext, ToolRegistry

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(database: Database) -> AsyncIterator[ConversationStore]:
    conversations = ConversationStore(database.engine)
    yield conversations
    await conversations.drain()


def budget_agent(
    server: ScriptedOpenAI,
    store: ConversationStore,
    *,
    per_user: int | None = None,
    per_workspace: int | None = None,
) -> Agent:
    backend = OpenAIBackend(model="gpt-test", api_key=OPENAI_KEY, base_url=server.base_url)
    budget = DailyBudget(store.engine, per_user=per_user, per_workspace=per_workspace)
    return Agent(backend, ToolRegistry(), store, budget=budget)


def as_user(user: str) -> ToolContext:
    return ToolContext(scope=Scope(channel_id="C1", user_id=user), user_id=user, channel_id="C1")


def in_workspace(team: str, n: int) -> ThreadKey:
    return ThreadKey.of("slack", team, "C1", f"17000000{n:02d}.000100")


def refusals(scope: str) -> float:
    return REGISTRY.get_sample_value("deskbot_budget_refusals_total", {"scope": scope}) or 0.0


async def test_a_user_over_the_daily_budget_is_told_in_their_language_until_midnight(
    openai_server: ScriptedOpenAI, store: ConversationStore, database: Database
) -> None:
    agent = budget_agent(openai_server, store, per_user=100)
    openai_server.reply_text("The hotel cap is 180 USD.", prompt_tokens=80, completion_tokens=30)
    first = await agent.ask(in_workspace("T1", 1), "Hotel cap?", as_user("U1"))
    assert first.status == "completed"
    await store.drain()  # the run's usage is stored behind the reply
    before = refusals("user")

    refused = await agent.ask(in_workspace("T1", 2), "And in Osaka?", as_user("U1"))
    assert refused.status == "failed"
    assert refused.text.startswith("You have used today's allowance of 100 tokens.")
    assert "renews at midnight UTC, in " in refused.text
    korean = await agent.ask(in_workspace("T1", 3), "오사카 숙박비 한도는?", as_user("U1"))
    assert korean.text.startswith("오늘 쓸 수 있는 토큰 100개를 모두 쓰셨습니다.")
    assert "UTC 자정에 다시 채워집니다" in korean.text
    assert len(openai_server.chat_requests()) == 1  # refused before any model call
    assert refusals("user") == before + 2

    stored = await store.get_run(refused.run_id)
    assert stored is not None
    assert (stored.status, stored.error) == (
        "failed",
        "daily token budget per user spent (110 of 100)",
    )

    openai_server.reply_text("Osaka: 150 USD.")
    other = await agent.ask(in_workspace("T1", 4), "And in Osaka?", as_user("U2"))
    assert other.status == "completed"  # the budget is per user

    # Midnight UTC: yesterday's runs no longer count.
    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE runs SET started_at = started_at - interval '1 day'"))
    openai_server.reply_text("Osaka: 150 USD.")
    renewed = await agent.ask(in_workspace("T1", 5), "And in Osaka?", as_user("U1"))
    assert renewed.status == "completed"


async def test_a_workspace_budget_counts_every_member_and_only_that_workspace(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    agent = budget_agent(openai_server, store, per_workspace=150)
    for n, user in enumerate(("U1", "U2")):
        openai_server.reply_text("ok", prompt_tokens=60, completion_tokens=20)
        answer = await agent.ask(in_workspace("T1", n), "Question?", as_user(user))
        assert answer.status == "completed"
        await store.drain()
    before = refusals("workspace")

    refused = await agent.ask(in_workspace("T1", 9), "Question?", as_user("U3"))
    assert refused.status == "failed"
    assert refused.text.startswith("This workspace has used today's allowance of 150 tokens.")
    assert refusals("workspace") == before + 1

    openai_server.reply_text("ok")
    elsewhere = await agent.ask(in_workspace("T2", 1), "Question?", as_user("U3"))
    assert elsewhere.status == "completed"
    spent = await DailyBudget(store.engine, per_user=None, per_workspace=150).spent("U3", "T1")
    assert spent.workspace == 160


def test_budgets_renew_at_midnight_utc() -> None:
    seoul = dt.timezone(dt.timedelta(hours=9))
    now = dt.datetime(2026, 12, 5, 8, 30, tzinfo=seoul)  # 23:30 UTC on the 4th
    assert midnight_utc(now) == dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


@pytest.fixture
async def slack_stack(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
) -> AsyncIterator[Stack]:
    """The Slack HTTP endpoint and its in-process worker, with a budget of 100 tokens a user."""
    async with serve_slack(
        make_settings, fresh_database, slack_api, openai_server, daily_tokens_per_user=100
    ) as served:
        yield served


async def test_over_budget_in_slack_the_user_reads_why_in_the_thread(slack_stack: Stack) -> None:
    slack_stack.openai.reply_text(
        "출장 숙박비 한도는 180달러입니다.", prompt_tokens=90, completion_tokens=20
    )
    await slack_stack.post(event("1700000001.000100", f"<@{BOT}> 도쿄 숙박비 한도는?"))
    await until(lambda: final_updates(slack_stack.slack))
    await slack_stack.app.conversations.drain()

    await slack_stack.post(event("1700000002.000100", f"<@{BOT}> 오사카는?"))
    _, refused = await until(
        lambda: len(final_updates(slack_stack.slack)) == 2 and final_updates(slack_stack.slack)
    )
    assert "오늘 쓸 수 있는 토큰 100개를 모두 쓰셨습니다" in texts(refused)
    assert refused["ts"] != final_updates(slack_stack.slack)[0]["ts"]  # its own thread
    assert len(slack_stack.openai.chat_requests()) == 1  # the model was not asked again
