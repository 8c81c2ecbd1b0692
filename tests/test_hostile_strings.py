"""Hostile strings through every front door: 0 crashes, each answered or refused.

The strings are generated here (:data:`tests.hostile_paths.HOSTILE`: controls, NUL, RTL
overrides, zero-width, huge numbers, SQL/shell/format-string injections, markup, emoji
sequences, lone surrogates, 100,000 characters); bench/hostile_strings.py runs the same
paths over the 515 strings of the big list of naughty strings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.demo_data import write_demo_database, write_demo_stocks
from bot.settings import Settings
from tests.conftest import FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.hostile_paths import (
    HOSTILE,
    Tally,
    run_cli_paths,
    run_slack_texts,
    run_slack_uploads,
    slack_settings,
    slack_stack,
    string_params,
    tool_rule,
)
from tests.secret_values import OPENAI_KEY

pytestmark = pytest.mark.e2e


def test_ask_its_tool_calls_and_search_never_crash(
    fresh_database: FreshDatabase, openai_server: ScriptedOpenAI, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": fresh_database.url,
        "DESKBOT_DATA_DIR": str(tmp_path / "data"),
        "DESKBOT_LOG_LEVEL": "WARNING",
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "DESKBOT_SQL_URL": f"sqlite:///{write_demo_database(tmp_path / 'company.db')}",
        "DESKBOT_STOCK_DATA_DIR": str(write_demo_stocks(tmp_path / "stocks")[0].parent),
    }
    tools = string_params(env)
    assert {"search_documents", "run_sql", "get_stock_quote"} <= set(tools)
    openai_server.answer_with(tool_rule(tools))
    tally = Tally()

    run_cli_paths(HOSTILE, env, tally)

    assert tally.crashes == [], "\n".join(map(repr, tally.crashes))
    assert sum(tally.counts["ask"].values()) == sum(tally.counts["search"].values()) == len(HOSTILE)
    # Every non-empty question got its tool calls run (or refused) and an answer.
    assert tally.counts["ask"]["answered"] >= len(HOSTILE) - 3  # blank ones are refused
    assert tally.counts["tool"]["refused"] > 0 and tally.counts["tool"]["answered"] > 0


async def test_slack_texts_and_upload_names_never_crash(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
) -> None:
    openai_server.answer_with(tool_rule({"search_documents": ["query"]}))
    values = slack_settings({"database_url": fresh_database.url}, slack_api, openai_server)
    tally = Tally()
    async with slack_stack(make_settings(**values), slack_api) as stack:
        await run_slack_texts(stack, HOSTILE, tally)
        await run_slack_uploads(stack, HOSTILE, tally)

    assert tally.crashes == [], "\n".join(map(repr, tally.crashes))
    assert sum(tally.counts["slack_text"].values()) == len(HOSTILE)
    assert sum(tally.counts["slack_upload"].values()) == len(HOSTILE)
    assert tally.counts["slack_text"]["answered"] >= len(HOSTILE) - 3
