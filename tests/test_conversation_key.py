"""A conversation's key is the same wherever it is built: Slack adapter, worker, job payload.

The adapter asks whether a thread is one the bot answered in; the worker answered it and
remembered its id under the key it built. When both build the key the same way, the
adapter's question is answered from that memory, without a database round trip on the
event path that must acknowledge Slack within three seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import event

from bot.app import open_app
from bot.messages import IncomingMessage, ReplyAddress, ThreadKey
from bot.settings import Settings
from bot.slack.server import embedded_worker, http_app, slack_adapter
from tests.conftest import FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.secret_values import OPENAI_KEY
from tests.test_slack import BOT, SECRET, TEAM, until
from tests.test_slack import event as envelope


@pytest.mark.e2e
async def test_a_follow_up_is_known_without_a_database_lookup(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
) -> None:
    settings = make_settings(
        database_url=fresh_database.url,
        slack_bot_token=slack_api.token,
        slack_signing_secret=SECRET,
        slack_api_url=slack_api.api_url,
        openai_base_url=openai_server.base_url,
        openai_api_key=OPENAI_KEY,
        rate_limit=1000,
    )
    openai_server.reply_text("First answer.")
    openai_server.reply_text("Second answer.")
    lookups: list[str] = []

    def count_thread_lookups(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT threads.id"):
            lookups.append(statement)

    async with open_app(settings) as app, embedded_worker(app):
        event.listen(
            app.conversations.engine.sync_engine, "before_cursor_execute", count_thread_lookups
        )
        server = TestServer(http_app(slack_adapter(app)))
        await server.start_server()
        url = str(server.make_url("/slack/events"))
        async with httpx.AsyncClient(timeout=10) as http:

            async def post(body: dict[str, Any]) -> None:
                raw = json.dumps(body)
                ts = str(int(time.time()))
                signature = (
                    SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=raw) or ""
                )
                headers = {
                    "Content-Type": "application/json",
                    "X-Slack-Request-Timestamp": ts,
                    "X-Slack-Signature": signature,
                }
                assert (await http.post(url, content=raw, headers=headers)).status_code == 200

            parent = "1700000004.000100"
            await post(envelope(parent, f"<@{BOT}> first question", kind="app_mention"))
            await until(lambda: len(openai_server.chat_requests()) == 1)
            await app.conversations.drain()
            lookups.clear()  # the worker looked the new thread up once; that is expected

            await post(envelope("1700000004.000200", "and then?", kind="message", thread_ts=parent))
            await until(lambda: len(openai_server.chat_requests()) == 2)
        await server.close()
        await app.state.queue.close()

    sent = [m["content"] for m in openai_server.chat_requests()[1]["messages"][1:]]
    assert sent == ["first question", "First answer.", "and then?"]
    assert lookups == [], "the adapter looked up a thread the worker had just answered in"


@pytest.mark.unit
def test_the_key_travels_in_the_job_payload_unchanged() -> None:
    key = ThreadKey.of("slack", TEAM, "C1", "1700000004.000100")
    message = IncomingMessage(
        platform="slack",
        workspace_id=TEAM,
        channel_id="C1",
        user_id="U1",
        text="and then?",
        thread=key,
        event_id="slack:T0TEST:C1:1700000004.000200",
        reply=ReplyAddress("slack", "C1", "1700000004.000100", TEAM),
    )

    arrived = IncomingMessage.from_json(json.loads(json.dumps(message.to_json())))

    assert arrived == message
    assert arrived.thread == key
    assert key.external_id == "T0TEST:C1:1700000004.000100"  # as stored before: threads match
    assert ThreadKey.of("slack", None, "D1").external_id == "-:D1"  # a DM without threads


@pytest.mark.unit
def test_a_job_queued_by_the_previous_release_still_decodes() -> None:
    payload = {
        "platform": "slack",
        "workspace_id": TEAM,
        "channel_id": "C1",
        "user_id": "U1",
        "text": "and then?",
        "thread_key": "T0TEST:C1:1700000004.000100",
        "event_id": "slack:T0TEST:C1:1700000004.000200",
        "private": False,
        "roles": [],
        "reply": None,
    }

    arrived = IncomingMessage.from_json(payload)

    assert arrived.thread == ThreadKey.of("slack", TEAM, "C1", "1700000004.000100")
    assert arrived.thread.channel_id == "C1"
