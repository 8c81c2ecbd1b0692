"""The Slack adapter through its front door: signed HTTP requests and Socket Mode envelopes.

The whole stack runs in-process on real services: the aiohttp endpoint, bolt, the in-process
queue and worker, the agent on the scripted OpenAI server, embedded PostgreSQL, and the fake
Slack Web API, which records what deskbot sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp.test_utils import TestServer
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text

from bot.app import App, open_app
from bot.settings import Settings
from bot.slack.server import embedded_worker, http_app, slack_adapter
from knowledge.documents import document_from_text
from knowledge.search import Scope
from tests.conftest import FreshDatabase
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.secret_values import OPENAI_KEY, SLACK_SIGNING_SECRET

pytestmark = pytest.mark.e2e

SECRET = SLACK_SIGNING_SECRET
TEAM = "T0TEST"
BOT = "U0DESKBOT"


@dataclass
class Stack:
    app: App
    url: str
    slack: FakeSlackAPI
    openai: ScriptedOpenAI
    http: httpx.AsyncClient

    async def post(
        self,
        body: dict[str, Any] | str,
        *,
        form: bool = False,
        retry: int | None = None,
        secret: str = SECRET,
        timestamp: int | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        """Deliver ``body`` as Slack would: JSON for events, a form for the rest."""
        raw = urlencode(body) if form and isinstance(body, dict) else body
        raw = raw if isinstance(raw, str) else json.dumps(raw)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded" if form else "application/json"
        }
        if signed:
            ts = str(timestamp if timestamp is not None else int(time.time()))
            headers["X-Slack-Request-Timestamp"] = ts
            headers["X-Slack-Signature"] = SignatureVerifier(secret).generate_signature(
                timestamp=ts, body=raw
            )
        if retry is not None:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self.http.post(self.url, content=raw.encode(), headers=headers)

    async def interact(self, payload: dict[str, Any]) -> httpx.Response:
        return await self.post({"payload": json.dumps(payload)}, form=True)


@asynccontextmanager
async def serve_slack(
    make_settings: Callable[..., Settings],
    database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
    **settings: Any,
) -> AsyncIterator[Stack]:
    """The signed Slack HTTP endpoint and its in-process worker on the fakes.

    ``settings`` are added to what every Slack test needs.
    """
    config = make_settings(
        database_url=database.url,
        slack_bot_token=slack_api.token,
        slack_signing_secret=SECRET,
        slack_api_url=slack_api.api_url,
        openai_base_url=openai_server.base_url,
        openai_api_key=OPENAI_KEY,
        **settings,
    )
    async with open_app(config) as app, embedded_worker(app):
        server = TestServer(http_app(slack_adapter(app)))
        await server.start_server()
        async with httpx.AsyncClient(timeout=10) as http:
            yield Stack(app, str(server.make_url("/slack/events")), slack_api, openai_server, http)
        await server.close()
        await app.state.queue.close()


@pytest.fixture
async def stack(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
) -> AsyncIterator[Stack]:
    async with serve_slack(
        make_settings,
        fresh_database,
        slack_api,
        openai_server,
        slack_admins="UADMIN,S0ADMINS",
        rate_limit=1000,
    ) as served:
        yield served


def event(
    ts: str,
    text: str,
    *,
    kind: str = "app_mention",
    channel: str = "C1",
    user: str = "U1",
    thread_ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An Events API envelope in the shape Slack sends (see bolt's scenario tests)."""
    body: dict[str, Any] = {"type": kind, "user": user, "text": text, "ts": ts, "channel": channel}
    if thread_ts:
        body["thread_ts"] = thread_ts
    body.update(extra)
    return {
        "token": "verification_token",
        "team_id": TEAM,
        "api_app_id": "A111",
        "event": body,
        "type": "event_callback",
        "event_id": f"Ev{ts.replace('.', '')}",
        "event_time": 1700000000,
        "authorizations": [{"user_id": BOT, "team_id": TEAM, "is_bot": True}],
    }


async def until(check: Callable[[], Any], *, timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy (the work runs after the ack)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting for the bot")


PROGRESS = ("Thinking…", "생각 중…", "Searching documents…", "문서를 찾는 중…")


def is_progress(args: dict[str, Any]) -> bool:
    blocks = args.get("blocks") or []
    return (
        bool(blocks)
        and blocks[0]["type"] == "context"
        and any(status in json.dumps(blocks[0], ensure_ascii=False) for status in PROGRESS)
    )


def final_updates(slack: FakeSlackAPI) -> list[dict[str, Any]]:
    """``chat.update`` calls that carry a finished answer (not a progress line)."""
    return [c.args for c in slack.calls_to("chat.update") if not is_progress(c.args)]


def texts(args: dict[str, Any]) -> str:
    return json.dumps(args.get("blocks") or args.get("text"), ensure_ascii=False)


async def test_a_mention_is_answered_in_its_thread(stack: Stack) -> None:
    stack.openai.reply_text("연차 휴가는 **15일**입니다.")

    response = await stack.post(event("1700000001.000100", f"<@{BOT}> 연차는 며칠이야?"))

    assert response.status_code == 200
    (final,) = await until(lambda: final_updates(stack.slack))
    placeholder = stack.slack.calls_to("chat.postMessage")[0].args
    assert placeholder["thread_ts"] == "1700000001.000100"
    assert placeholder["channel"] == "C1"
    assert "*15일*" in texts(final)  # Markdown bold became mrkdwn bold
    assert "deskbot_feedback_up" in texts(final)
    question = stack.openai.chat_requests()[0]["messages"][-1]
    assert question == {"role": "user", "content": "연차는 며칠이야?"}  # the mention removed


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"secret": "wrong-secret"}, "forged signature"),
        ({"timestamp": int(time.time()) - 600}, "stale timestamp"),
        ({"signed": False}, "missing headers"),
    ],
)
async def test_unsigned_or_stale_requests_are_refused(
    stack: Stack, change: dict[str, Any], why: str
) -> None:
    response = await stack.post(event("1700000002.000100", f"<@{BOT}> hi"), **change)

    assert response.status_code == 401, why
    await asyncio.sleep(0.3)
    assert stack.slack.calls_to("chat.postMessage") == []
    assert stack.openai.chat_requests() == []


async def test_a_retry_storm_is_answered_once_per_message(stack: Stack) -> None:
    questions = 5
    for _ in range(questions):
        stack.openai.reply_text("Answered.")
    deliveries = [
        stack.post(event(f"1700000003.{n:06d}", f"<@{BOT}> question {n}"), retry=attempt or None)
        for n in range(questions)
        for attempt in range(4)
    ]

    responses = await asyncio.gather(*deliveries)

    assert {r.status_code for r in responses} == {200}
    await until(lambda: len(final_updates(stack.slack)) == questions)
    await asyncio.sleep(0.5)  # any duplicate would have started by now
    assert len(stack.slack.calls_to("chat.postMessage")) == questions
    assert len(stack.openai.chat_requests()) == questions


async def test_follow_ups_in_an_answered_thread_need_no_mention(stack: Stack) -> None:
    stack.openai.reply_text("First answer.")
    stack.openai.reply_text("Second answer.")
    parent = "1700000004.000100"
    await stack.post(event(parent, f"<@{BOT}> first question"))
    await until(lambda: final_updates(stack.slack))

    await stack.post(event("1700000004.000200", "and then?", kind="message", thread_ts=parent))
    await stack.post(
        event("1700000004.000300", "not for you", kind="message", thread_ts="1700000000.9")
    )
    await stack.post(event("1700000004.000400", "top-level chatter", kind="message"))
    await stack.post(
        event(
            "1700000004.000500",
            "edited",
            kind="message",
            thread_ts=parent,
            subtype="message_changed",
        )
    )
    await stack.post(
        event("1700000004.000600", "from a bot", kind="message", thread_ts=parent, bot_id="B9")
    )

    await until(lambda: len(final_updates(stack.slack)) == 2)
    await asyncio.sleep(0.5)
    requests = stack.openai.chat_requests()
    assert len(requests) == 2
    sent = [m["content"] for m in requests[1]["messages"][1:]]
    assert sent == ["first question", "First answer.", "and then?"]


async def test_a_thread_the_bot_joins_midway_feeds_the_question(stack: Stack) -> None:
    parent = "1700000005.000100"
    stack.slack.seed_thread(
        "C1",
        parent,
        [
            {"ts": parent, "user": "U2", "text": "Our VPN client is HanbitConnect 4.2."},
            {"ts": "1700000005.000200", "user": "U1", "text": f"<@{BOT}> which version?"},
        ],
    )
    stack.openai.reply_text("Version 4.2.")

    await stack.post(event("1700000005.000200", f"<@{BOT}> which version?", thread_ts=parent))

    await until(lambda: final_updates(stack.slack))
    messages = stack.openai.chat_requests()[0]["messages"]
    assert messages[1] == {"role": "user", "content": "<@U2>: Our VPN client is HanbitConnect 4.2."}
    assert messages[-1]["content"] == "which version?"


async def test_a_dm_reads_private_collections_a_channel_does_not(stack: Stack) -> None:
    knowledge = stack.app.knowledge
    hr = await knowledge.store.ensure_collection("hr", knowledge.embedder, visibility="private")
    await knowledge.ingestor.store_parsed(
        document_from_text("bands.md", "Salary bands", "Salary band B3 pays 70 million won."),
        hr,
        source="bands.md",
        digest="b1",
        size_bytes=10,
    )
    async with stack.app.database.engine.begin() as conn:
        await conn.execute(text("UPDATE collections SET allowed_roles = '{U1}' WHERE name = 'hr'"))
    for _ in range(2):
        stack.openai.reply_tool_calls(("search_documents", {"query": "salary band B3"}))
        stack.openai.reply_text("Done.")

    await stack.post(
        event(
            "1700000006.000100", "salary band B3?", kind="message", channel="D1", channel_type="im"
        )
    )
    await until(lambda: final_updates(stack.slack))
    await stack.post(event("1700000006.000200", f"<@{BOT}> salary band B3?"))
    await until(lambda: len(final_updates(stack.slack)) == 2)

    requests = stack.openai.chat_requests()
    in_dm = json.loads(requests[1]["messages"][-1]["content"])
    in_channel = json.loads(requests[3]["messages"][-1]["content"])
    assert "70 million" in in_dm["passages"][0]["content"]
    assert in_channel["passages"] == []
    assert "thread_ts" not in stack.slack.calls_to("chat.postMessage")[0].args  # DM: top level
    progress = [texts(c.args) for c in stack.slack.calls_to("chat.update")]
    assert any("Searching documents" in p for p in progress)


async def test_long_answers_are_split_and_the_model_failing_is_said(stack: Stack) -> None:
    long_answer = "\n\n".join(f"Paragraph {i}: " + "word " * 120 for i in range(12))
    stack.openai.reply_text(long_answer)
    stack.openai.reply_error(401, "invalid api key")

    await stack.post(event("1700000007.000100", f"<@{BOT}> write a lot"))
    await until(lambda: final_updates(stack.slack))
    await stack.post(event("1700000007.000200", f"<@{BOT}> again"))

    await until(lambda: len(final_updates(stack.slack)) == 2)
    long_final, failed = final_updates(stack.slack)
    sections = [b for b in long_final["blocks"] if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert "Paragraph 0" in texts(long_final)
    assert "invalid api key" in texts(failed)
    continued = [c.args for c in stack.slack.calls_to("chat.postMessage")[1:]]
    assert any("Paragraph 11" in texts(c) for c in continued) or "Paragraph 11" in texts(long_final)


async def test_feedback_click_is_stored(stack: Stack) -> None:
    stack.openai.reply_text("Answer.")
    await stack.post(event("1700000008.000100", f"<@{BOT}> rate me"))
    (final,) = await until(lambda: final_updates(stack.slack))
    actions = next(b for b in final["blocks"] if b["type"] == "actions")
    up = next(e for e in actions["elements"] if e["action_id"] == "deskbot_feedback_up")

    response = await stack.interact(
        {
            "type": "block_actions",
            "user": {"id": "U1"},
            "team": {"id": TEAM},
            "api_app_id": "A111",
            "token": "verification_token",
            "trigger_id": "111.222.333",
            "channel": {"id": "C1"},
            "container": {"type": "message", "channel_id": "C1"},
            "actions": [
                {
                    "action_id": "deskbot_feedback_up",
                    "block_id": "deskbot_feedback",
                    "value": up["value"],
                    "type": "button",
                    "action_ts": "1",
                }
            ],
        }
    )

    assert response.status_code == 200
    await until(lambda: stack.slack.calls_to("chat.postEphemeral"))
    async with stack.app.database.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT run_id, user_id, value FROM feedback"))).all()
    assert [(str(r.run_id), r.user_id, r.value) for r in rows] == [(up["value"], "U1", 1)]


def command(text: str, *, user: str, slack: FakeSlackAPI) -> dict[str, str]:
    return {
        "token": "verification_token",
        "team_id": TEAM,
        "channel_id": "C1",
        "user_id": user,
        "command": "/deskbot",
        "text": text,
        "response_url": slack.response_url(),
        "trigger_id": "111.222.abc",
        "api_app_id": "A111",
    }


async def test_non_admins_cannot_upload_and_admins_make_documents_searchable(
    stack: Stack,
) -> None:
    refused = await stack.post(command("upload", user="U1", slack=stack.slack), form=True)
    assert refused.status_code == 200
    (reply,) = await until(lambda: stack.slack.calls_to("response_url"))
    assert "Only deskbot admins may upload documents" in reply.args["text"]
    assert stack.slack.calls_to("views.open") == []

    opened = await stack.post(command("upload", user="UADMIN", slack=stack.slack), form=True)
    assert opened.status_code == 200
    (view_call,) = await until(lambda: stack.slack.calls_to("views.open"))
    assert view_call.args["view"]["callback_id"] == "deskbot_upload"

    stack.slack.add_file(
        "F1", "vpn.md", b"# VPN\n\nThe VPN client is HanbitConnect 4.2.\n", mimetype="text/markdown"
    )
    stack.slack.add_file("F2", "huge.pdf", b"x", size=10**9)
    submission = {
        "type": "view_submission",
        "team": {"id": TEAM},
        "user": {"id": "UADMIN"},
        "api_app_id": "A111",
        "token": "verification_token",
        "trigger_id": "111.222.def",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "deskbot_upload",
            "private_metadata": "[]",
            "state": {
                "values": {
                    "files": {
                        "files": {"type": "file_input", "files": [{"id": "F1"}, {"id": "F2"}]}
                    },
                    "collection": {"collection": {"type": "plain_text_input", "value": "it"}},
                }
            },
        },
    }

    def reports() -> list[str]:
        posted = stack.slack.calls_to("chat.postMessage")
        return [str(c.args["text"]) for c in posted if "Documents added" in str(c.args["text"])]

    assert (await stack.interact(submission)).status_code == 200
    (report,) = await until(reports)
    assert "vpn.md: 1 chunks" in report
    assert "huge.pdf: over 50 MB" in report
    assert "1 stored, 0 unchanged, 1 refused (1 too large)" in report
    results = await stack.app.knowledge.searcher.search("HanbitConnect", Scope.everything())
    assert results[0].citation.collection == "it"

    # The same file again: known by its name, not by the folder it was downloaded to.
    assert (await stack.interact(submission)).status_code == 200
    again = (await until(lambda: reports()[1:]))[0]
    assert "vpn.md: unchanged" in again
    assert len(await stack.app.knowledge.store.list_documents("it")) == 1


async def test_admin_by_user_group_can_delete_and_docs_lists(stack: Stack) -> None:
    stack.slack.usergroups["S0ADMINS"] = ["UGROUPED"]
    knowledge = stack.app.knowledge
    info = await knowledge.store.ensure_collection("it", knowledge.embedder)

    stored = await knowledge.ingestor.store_parsed(
        document_from_text("a.md", "Alpha", "Alpha text."),
        info,
        source="a.md",
        digest="d",
        size_bytes=5,
    )

    hr = await knowledge.store.ensure_collection("hr", knowledge.embedder, visibility="private")
    await knowledge.ingestor.store_parsed(
        document_from_text("s.md", "Secret plan", "Secret."),
        hr,
        source="s.md",
        digest="s",
        size_bytes=7,
    )

    await stack.post(command("docs", user="U1", slack=stack.slack), form=True)
    listed = (await until(lambda: stack.slack.calls_to("response_url")))[0].args["text"]
    await stack.post(
        command(f"docs delete {stored.document_id}", user="U1", slack=stack.slack), form=True
    )
    await stack.post(
        command(f"docs delete {stored.document_id}", user="UGROUPED", slack=stack.slack),
        form=True,
    )

    replies = await until(lambda: (c := stack.slack.calls_to("response_url")) and len(c) == 3 and c)
    assert "*Alpha*" in listed
    assert "Secret plan" not in listed  # a private collection, asked in a public channel
    assert "Only deskbot admins may delete documents" in replies[1].args["text"]
    assert "Deleted *Alpha*" in replies[2].args["text"]
    assert await knowledge.store.list_documents("it") == []


async def test_socket_mode_envelopes_are_acked_and_deduplicated(stack: Stack) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_sdk.socket_mode.request import SocketModeRequest

    adapter = slack_adapter(stack.app)
    handler = AsyncSocketModeHandler(adapter.bolt, "xapp-test")
    acks: list[str] = []

    class Client:  # the WebSocket side: records acknowledgements
        logger = logging.getLogger("tests.socket_mode")

        async def send_socket_mode_response(self, response: Any) -> None:
            acks.append(response.envelope_id)

    stack.openai.reply_text("Socket answer.")
    body = event("1700000010.000100", f"<@{BOT}> over the socket")
    for attempt, envelope in enumerate(["E1", "E2"]):
        request = SocketModeRequest(
            type="events_api", envelope_id=envelope, payload=body, retry_attempt=attempt
        )
        await handler.handle(Client(), request)  # type: ignore[arg-type]

    await handler.client.close()  # never connected: this only releases its HTTP session
    assert acks == ["E1", "E2"]
    await until(lambda: final_updates(stack.slack))
    await asyncio.sleep(0.5)
    assert len(stack.openai.chat_requests()) == 1


async def test_rate_limited_users_are_told(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
) -> None:
    settings = make_settings(
        database_url=fresh_database.url,
        slack_bot_token=slack_api.token,
        slack_api_url=slack_api.api_url,
        openai_base_url=openai_server.base_url,
        openai_api_key=OPENAI_KEY,
        rate_limit=1,
        rate_limit_window=3600,
    )
    openai_server.reply_text("First.")
    async with open_app(settings) as app, embedded_worker(app):
        adapter = slack_adapter(app)
        for n in (1, 2):
            await adapter._enqueue(  # the listener, as bolt calls it after the ack
                event(f"1700000011.00000{n}", f"<@{BOT}> q{n}"),
                event(f"1700000011.00000{n}", f"<@{BOT}> q{n}")["event"],
                thread_ts=f"1700000011.00000{n}",
                private=False,
            )
        await until(lambda: final_updates(slack_api))
        await app.state.queue.close()
    said = [c.args["text"] for c in slack_api.calls_to("chat.postMessage")]
    assert any("faster than I can answer" in t for t in said)
    assert len(openai_server.chat_requests()) == 1
