"""The harness's fakes speak their protocols to the real client libraries."""

from __future__ import annotations

import httpx
import pytest
from openai import AsyncOpenAI, RateLimitError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.netguard_hook import take_violations
from tests.secret_values import OPENAI_KEY

pytestmark = pytest.mark.integration

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_documents",
            "description": "Search the company documents.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    }
]


def client(server: ScriptedOpenAI, **kwargs: object) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key=OPENAI_KEY, **kwargs)  # type: ignore[arg-type]


async def test_openai_text_reply_and_recorded_request(openai_server: ScriptedOpenAI) -> None:
    openai_server.reply_text("연차는 15일입니다.", prompt_tokens=42, completion_tokens=7)
    async with client(openai_server) as llm:
        reply = await llm.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "연차 며칠?"}],
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice="auto",
        )
    assert reply.choices[0].message.content == "연차는 15일입니다."
    assert reply.usage is not None and reply.usage.prompt_tokens == 42
    [request] = openai_server.chat_requests()
    assert request["messages"] == [{"role": "user", "content": "연차 며칠?"}]
    assert request["tools"][0]["function"]["name"] == "search_documents"
    assert request["tool_choice"] == "auto"


async def test_openai_streamed_text(openai_server: ScriptedOpenAI) -> None:
    openai_server.reply_text("Vacation is fifteen days per year")
    pieces: list[str] = []
    async with client(openai_server) as llm:
        stream = await llm.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        usage = None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            usage = chunk.usage or usage
    assert len(pieces) == 6
    assert "".join(pieces) == "Vacation is fifteen days per year"
    assert usage is not None and usage.total_tokens == 15


async def test_openai_parallel_tool_calls(openai_server: ScriptedOpenAI) -> None:
    openai_server.reply_tool_calls(
        ("search_documents", {"query": "vacation"}), ("get_stock_quote", {"ticker": "AAPL"})
    )
    async with client(openai_server) as llm:
        reply = await llm.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "?"}],
            tools=TOOLS,  # type: ignore[arg-type]
        )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        ("search_documents", '{"query": "vacation"}'),
        ("get_stock_quote", '{"ticker": "AAPL"}'),
    ]


async def test_openai_streamed_tool_call_arguments_reassemble(
    openai_server: ScriptedOpenAI,
) -> None:
    openai_server.reply_tool_calls(("search_documents", {"query": "출장비 규정"}))
    arguments = ""
    async with client(openai_server) as llm:
        stream = await llm.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "?"}],
            stream=True,
        )
        async for chunk in stream:
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                arguments += (call.function and call.function.arguments) or ""
    assert arguments == '{"query": "\\ucd9c\\uc7a5\\ube44 \\uaddc\\uc815"}'


async def test_openai_429_is_retried_by_the_sdk(openai_server: ScriptedOpenAI) -> None:
    openai_server.reply_error(429, "Rate limit reached", retry_after=0)
    openai_server.reply_text("ok")
    async with client(openai_server, max_retries=2) as llm:
        reply = await llm.chat.completions.create(model="gpt-test", messages=[])
    assert reply.choices[0].message.content == "ok"
    assert len(openai_server.chat_requests()) == 2


async def test_openai_errors_surface_when_retries_run_out(openai_server: ScriptedOpenAI) -> None:
    openai_server.reply_error(429, "Rate limit reached", retry_after=0)
    async with client(openai_server, max_retries=0) as llm:
        with pytest.raises(RateLimitError):
            await llm.chat.completions.create(model="gpt-test", messages=[])


async def test_unscripted_request_is_reported(openai_server: ScriptedOpenAI) -> None:
    async with client(openai_server, max_retries=0) as llm:
        with pytest.raises(Exception, match="nothing scripted"):
            await llm.chat.completions.create(model="gpt-test", messages=[])
    assert openai_server.errors == ["chat completion requested with nothing scripted"]
    openai_server.errors.clear()  # expected here; elsewhere it fails the test


async def test_slack_web_api_methods(slack_api: FakeSlackAPI) -> None:
    slack = AsyncWebClient(token=slack_api.token, base_url=slack_api.api_url)
    auth = await slack.auth_test()
    assert auth["user_id"] == slack_api.bot_user_id
    posted = await slack.chat_postMessage(channel="C1", thread_ts="1.0", text="Searching...")
    await slack.chat_update(
        channel="C1",
        ts=posted["ts"],
        text="Done",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*Done*"}}],
    )
    await slack.chat_postEphemeral(channel="C1", user="U1", text="only admins may upload")
    slack_api.seed_thread("C1", "1.0", [{"user": "U1", "text": "parent", "ts": "1.0"}])
    replies = await slack.conversations_replies(channel="C1", ts="1.0")
    # the parent first, then the bot's reply as its last edit left it
    assert [m["text"] for m in replies["messages"]] == ["parent", "Done"]
    info = slack_api.add_file("F1", "policy.md", b"# Policy", mimetype="text/markdown")
    assert (await slack.files_info(file="F1"))["file"]["name"] == "policy.md"
    view = await slack.views_open(
        trigger_id="t1", view={"type": "modal", "title": {"type": "plain_text", "text": "Upload"}}
    )
    assert view["view"]["type"] == "modal"
    async with httpx.AsyncClient() as http:
        download = await http.get(
            info["url_private"], headers={"Authorization": f"Bearer {slack_api.token}"}
        )
    assert download.content == b"# Policy"
    update = slack_api.calls_to("chat.update")[0]
    assert update.args["ts"] == posted["ts"]
    assert update.args["blocks"][0]["text"]["text"] == "*Done*"
    assert [c.method for c in slack_api.calls] == [
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "conversations.replies",
        "files.info",
        "views.open",
    ]


async def test_slack_metadata_is_read_back_only_when_asked_for_a_page_at_a_time(
    slack_api: FakeSlackAPI,
) -> None:
    slack = AsyncWebClient(token=slack_api.token, base_url=slack_api.api_url)
    tagged = {"event_type": "deskbot_answer", "event_payload": {"job_id": "j1"}}
    posts = [
        await slack.chat_postMessage(
            channel="C1", thread_ts="1.0", text=f"m{n}", metadata=tagged if n == 2 else None
        )
        for n in range(3)
    ]
    assert [float(p["ts"]) for p in posts] == sorted({float(p["ts"]) for p in posts})
    plain = await slack.conversations_replies(channel="C1", ts="1.0")
    assert all("metadata" not in m for m in plain["messages"])
    first = await slack.conversations_replies(
        channel="C1", ts="1.0", include_all_metadata=True, limit=2
    )
    assert [m["text"] for m in first["messages"]] == ["m0", "m1"] and first["has_more"]
    rest = await slack.conversations_replies(
        channel="C1",
        ts="1.0",
        include_all_metadata=True,
        limit=2,
        cursor=first["response_metadata"]["next_cursor"],
    )
    assert [m.get("metadata") for m in rest["messages"]] == [tagged]
    assert rest["response_metadata"]["next_cursor"] == ""
    await slack.chat_postMessage(channel="D1", text="top", metadata=tagged)
    history = await slack.conversations_history(channel="D1", include_all_metadata=True)
    assert [(m["text"], m["metadata"]) for m in history["messages"]] == [("top", tagged)]


async def test_slack_errors_look_like_slacks(slack_api: FakeSlackAPI) -> None:
    slack = AsyncWebClient(token=slack_api.token, base_url=slack_api.api_url)
    with pytest.raises(SlackApiError) as missing:
        await slack.files_info(file="F404")
    assert missing.value.response["error"] == "file_not_found"
    slack_api.fail_next("chat.postMessage", "ratelimited", retry_after=3)
    with pytest.raises(SlackApiError) as limited:
        await slack.chat_postMessage(channel="C1", text="hi")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "3"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack_api.api_url)
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await wrong.auth_test()


async def test_reaching_a_real_provider_is_refused_and_recorded() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError, match="real host"):
            await http.get("https://api.openai.com/v1/models")
    assert take_violations() == [
        "test tried to reach a real host: 'api.openai.com' (socket.getaddrinfo)"
    ]


def test_the_real_slack_default_url_is_refused_too() -> None:
    from urllib.error import URLError

    from slack_sdk import WebClient

    with pytest.raises(URLError, match="real host"):
        WebClient(token="xoxb-x", timeout=2).auth_test()
    assert any("slack.com" in v for v in take_violations())
