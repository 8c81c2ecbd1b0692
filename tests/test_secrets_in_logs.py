"""No secret reaches a log line, an error or ``doctor --json``.

Real-looking tokens, keys and passwords are set for the paths that hold them: ``doctor``
(every check, at DEBUG, with Slack answering ``invalid_auth`` so its error path runs), and
a Slack mention answered end to end at DEBUG with the model failing once (its error path).
Every log record of those runs is searched for every secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import pytest

from bot.settings import Settings
from tests.conftest import CliResult, FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.hostile_paths import ANSWER, mention, slack_settings, slack_stack, tool_rule

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-proj-Xq7rTz2LmN9vB4kW1aYcD6eF8gH0jK3pQ5sU7wZ9xC2vB4nM6" + "Tt1Rr3Ee5Ww7Qq9"
SLACK_BOT = "xoxb-2718281828-3141592653589-Zk3Jq8Lw0Pn5Rt7Vx9Bz2Cd4"
SLACK_APP = "xapp-1-A0123456789-5772156649015-6b2f0c1e9d8a7f6e5d4c3b2a1908f7e6d5c4b3a29"
SIGNING = "8f14e45fceea167a5a36dedd4bea2543"
DISCORD = "MTA5ODc2NTQzMjEwOTg3NjU0.GxYz12.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab"
DB_PASSWORD = "pg-Pa55w0rd-7c1e9d"
SECRETS = (OPENAI_KEY, SLACK_BOT, SLACK_APP, SIGNING, DISCORD, DB_PASSWORD)


def leaks(text: str) -> list[str]:
    return [secret[:12] + "..." for secret in SECRETS if secret in text]


def test_doctor_json_and_its_logs_hold_no_secret(
    run_cli: Callable[..., CliResult],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
) -> None:
    # The embedded server trusts local connections: the password is carried, never checked.
    url = fresh_database.url.replace("postgres:@", f"postgres:{DB_PASSWORD}@")
    env = {
        "DATABASE_URL": url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": openai_server.base_url,
        "SLACK_BOT_TOKEN": SLACK_BOT,  # not the fake's token: auth.test says invalid_auth
        "SLACK_APP_TOKEN": SLACK_APP,
        "SLACK_SIGNING_SECRET": SIGNING,
        "SLACK_API_URL": slack_api.api_url,
        "DISCORD_TOKEN": DISCORD,
        "DESKBOT_LOG_LEVEL": "DEBUG",
    }
    result = run_cli("doctor", "--json", env=env)
    assert result.stdout.strip(), result.stderr
    json.loads(result.stdout)
    assert leaks(result.stdout) == []
    assert leaks(result.stderr) == []
    bad = run_cli("doctor", env={**env, "DATABASE_URL": url.replace("?host=", "?port=1&host=")})
    assert leaks(bad.stdout + bad.stderr) == []


async def test_a_slack_answer_at_debug_logs_no_secret(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    openai_server: ScriptedOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    openai_server.reply_error(500, "upstream exploded")  # the retry path logs too
    openai_server.answer_with(tool_rule({"search_documents": ["query"]}))
    with FakeSlackAPI(token=SLACK_BOT) as slack:
        values = slack_settings({"database_url": fresh_database.url}, slack, openai_server)
        values.update(openai_api_key=OPENAI_KEY, slack_app_token=SLACK_APP)
        async with slack_stack(make_settings(**values), slack) as stack:
            await stack.post(mention(1, "what is the hotel cap?"))
            for _ in range(300):
                if any(ANSWER in json.dumps(c.args) for c in slack.calls_to("chat.update")):
                    break
                await asyncio.sleep(0.1)
    records = "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''} {getattr(r, '__dict__', {})!r}"
        for r in caplog.records
    )
    assert len(caplog.records) > 20  # DEBUG really was on: the HTTP clients logged
    assert leaks(records) == []
