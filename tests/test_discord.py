"""The Discord adapter through its front door: the real discord.py client on a fake Discord.

The whole stack runs in-process on real services: the gateway client (``start_client`` and
``connect``, as ``deskbot discord`` runs them), the in-process queue and worker answering
through REST, the agent on the scripted OpenAI server, embedded PostgreSQL, and the fake
Discord from ``tests/fakes/discord_api.py`` (REST, gateway websocket, CDN), which plays the
members and records what reached Discord. Nothing of deskbot or discord.py is patched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from bot.app import App, open_app
from bot.discord.client import DeskbotClient
from bot.discord.server import connect, start_client
from bot.jobs import embedded_worker
from bot.settings import Settings
from knowledge.documents import Block, ParsedDocument
from tests.fakes.discord_api import (
    ADMIN_ID,
    APPLICATION_ID,
    BOT_ID,
    CHANNEL_ID,
    USER_ID,
    Callback,
    FakeDiscord,
)
from tests.fakes.openai_server import ScriptedOpenAI
from tests.test_agent import tool_messages
from tests.test_slack import until

pytestmark = pytest.mark.e2e

THINKING = "Thinking…"
EPHEMERAL = 64
OTHER_BOT = "1300000000000000099"
SECRET = "Salary band B3 pays 70 million won."
CODE = "```python\n" + "\n".join(f"print('line {n}')  # keep me whole" for n in range(25)) + "\n```"


@dataclass
class Bot:
    """The running adapter and the fakes around it."""

    app: App
    client: DeskbotClient
    fake: FakeDiscord
    openai: ScriptedOpenAI

    def mention(self, content: str, **kwargs: Any) -> dict[str, Any]:
        """A member mentions the bot in #general (or ``channel_id``)."""
        return self.fake.send_message(content=content, mention_bot=True, **kwargs)

    async def answer_in(self, channel_id: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait for ``count`` finished answers (they carry the feedback buttons) there."""
        await until(lambda: len(finals(self.fake, channel_id)) >= count)
        return finals(self.fake, channel_id)


SettingsFor = Callable[..., Settings]


@contextlib.asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[tuple[App, DeskbotClient]]:
    """``deskbot discord`` in this process: log in, sync, connect (its worker unless Redis)."""
    async with (
        open_app(settings) as app,
        start_client(app) as client,
        embedded_worker(app, discord=client.rest),
    ):
        task = asyncio.create_task(connect(client))
        try:
            await asyncio.wait_for(client.wait_until_ready(), 10)
            yield app, client
        finally:
            await client.close()
            await asyncio.gather(task, return_exceptions=True)
            await app.state.queue.close()


@contextlib.asynccontextmanager
async def running(
    settings: Settings, fake: FakeDiscord, openai: ScriptedOpenAI
) -> AsyncIterator[Bot]:
    async with gateway(settings) as (app, client):
        yield Bot(app, client, fake, openai)


@pytest.fixture
async def bot(
    discord_settings: SettingsFor, discord_api: FakeDiscord, openai_server: ScriptedOpenAI
) -> AsyncIterator[Bot]:
    async with running(discord_settings(), discord_api, openai_server) as started:
        yield started


def bot_messages(fake: FakeDiscord, channel_id: str) -> list[dict[str, Any]]:
    """The bot's messages in a channel, thread or DM, as members see them now."""
    return [m for m in fake.messages_in(channel_id) if m["author"]["id"] == BOT_ID]


def finals(fake: FakeDiscord, channel_id: str) -> list[dict[str, Any]]:
    """The bot's messages that end an answer: they carry the feedback buttons."""
    return [m for m in bot_messages(fake, channel_id) if custom_ids(m)]


def custom_ids(message: dict[str, Any]) -> list[str]:
    rows = message.get("components") or []
    return [str(c.get("custom_id")) for row in rows for c in row.get("components", [])]


async def interaction_reply(fake: FakeDiscord, interaction: dict[str, Any]) -> Callback:
    """The callback deskbot answered ``interaction`` with (the first, once it arrives)."""
    replies = await until(
        lambda: [c for c in fake.callbacks if c.interaction_id == interaction["id"]]
    )
    return replies[0]  # type: ignore[no-any-return]


async def settle() -> None:
    """Give a duplicate (or anything that should not happen) the time to show."""
    await asyncio.sleep(0.7)


async def add_document(
    app: App, collection: str, title: str, body: str, *, private: bool = False, page: int = 3
) -> None:
    """Store a one-paragraph document (on ``page``) straight in the knowledge store."""
    knowledge = app.knowledge
    visibility = "private" if private else None
    info = await knowledge.store.ensure_collection(
        collection, knowledge.embedder, visibility=visibility
    )
    block = Block("text", body, page=page, section="Leave", char_end=len(body))
    doc = ParsedDocument(f"{title}.md", title, "text/markdown", body, [block])
    await knowledge.ingestor.store_parsed(
        doc, info, source=f"{title}.md", digest=title, size_bytes=len(body)
    )


# --- conversations --------------------------------------------------------------------


async def test_a_mention_is_answered_in_a_thread_with_sources_and_buttons(bot: Bot) -> None:
    await add_document(bot.app, "handbook", "Leave policy", "Annual leave is 15 days a year.")
    bot.openai.reply_tool_calls(("search_documents", {"query": "annual leave"}))
    bot.openai.reply_text("Annual leave is **15 days** a year [1].")

    asked = bot.mention("how many leave days?")

    (final,) = await bot.answer_in(asked["id"])
    (thread,) = bot.fake.threads
    assert thread["id"] == asked["id"] and thread["parent_id"] == CHANNEL_ID
    posted = bot.fake.calls_to("POST", rf"/channels/{asked['id']}/messages")
    assert posted[0].json["content"] == THINKING  # the placeholder, then edited into the answer
    assert len(posted) == 1 and bot.fake.calls_to(
        "PATCH", rf"/channels/{asked['id']}/messages/{final['id']}"
    )
    assert final["content"] == "Annual leave is **15 days** a year [1]."
    (sources,) = final["embeds"]
    assert sources["title"] == "Sources"
    assert "Leave policy" in sources["description"] and "p. 3" in sources["description"]
    up, down = custom_ids(final)
    assert up.startswith("deskbot:feedback:up:") and down.startswith("deskbot:feedback:down:")
    question = bot.openai.chat_requests()[0]["messages"][-1]
    assert question == {"role": "user", "content": "how many leave days?"}


async def test_follow_ups_in_its_thread_need_no_mention_and_the_rest_is_ignored(bot: Bot) -> None:
    bot.openai.reply_text("First answer.")
    bot.openai.reply_text("Second answer.")
    asked = bot.mention("first question")
    thread = (await bot.answer_in(asked["id"]))[0]["channel_id"]

    other = bot.fake.start_thread(CHANNEL_ID, "chatter")
    bot.fake.send_message(other["id"], "not for you")
    bot.fake.send_message(CHANNEL_ID, "top-level chatter")
    bot.fake.send_message(thread, "beep", author_id=OTHER_BOT, bot=True)
    follow_up = bot.fake.send_message(thread, "and then?")
    await bot.answer_in(thread, 2)
    bot.fake.edit_message(thread, follow_up["id"], "and then? (edited)")
    await settle()

    requests = bot.openai.chat_requests()
    assert len(requests) == 2  # its own messages (placeholders, edits) were not questions either
    sent = [m["content"] for m in requests[1]["messages"][1:]]
    assert sent == ["first question", "First answer.", "and then?"]
    assert len(bot.fake.threads) == 1
    assert bot_messages(bot.fake, other["id"]) == bot_messages(bot.fake, CHANNEL_ID) == []


async def test_a_thread_the_bot_joins_midway_is_read_from_history(bot: Bot) -> None:
    thread = bot.fake.start_thread(CHANNEL_ID, "VPN")["id"]
    bot.fake.send_message(thread, "Our VPN client is HanbitConnect 4.2.", author_id=ADMIN_ID)
    bot.openai.reply_text("Version 4.2.")

    bot.mention("which version?", channel_id=thread)

    await bot.answer_in(thread)
    messages = bot.openai.chat_requests()[0]["messages"]
    assert messages[1] == {
        "role": "user",
        "content": f"<@{ADMIN_ID}>: Our VPN client is HanbitConnect 4.2.",
    }
    assert messages[-1] == {"role": "user", "content": "which version?"}
    assert bot.fake.threads == []  # answered in the member's thread, not a new one


async def test_a_dm_reads_private_collections_a_channel_does_not(bot: Bot) -> None:
    await add_document(bot.app, "handbook", "Leave policy", "Annual leave is 15 days a year.")
    await add_document(bot.app, "hr", "Salary bands", SECRET, private=True)
    async with bot.app.database.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE collections SET allowed_roles = '{{{USER_ID}}}' WHERE name = 'hr'")
        )
    for _ in range(2):
        bot.openai.reply_tool_calls(("search_documents", {"query": "salary band B3"}))
        bot.openai.reply_text("Band B3 [1].")

    dm = bot.fake.send_dm(USER_ID, "salary band B3?")
    (in_dm,) = await bot.answer_in(dm["channel_id"])
    asked = bot.mention("salary band B3?")
    (in_channel,) = await bot.answer_in(asked["id"])

    requests = bot.openai.chat_requests()
    assert "70 million" in tool_messages(requests[1])[0]["passages"][0]["content"]
    assert "70 million" not in json.dumps(tool_messages(requests[3]))
    assert "Salary bands" in in_dm["embeds"][0]["description"]
    assert in_channel["embeds"] == []  # the model saw nothing to cite
    in_thread = json.dumps([c.json for c in bot.fake.calls if asked["id"] in c.path])
    assert "Salary" not in in_thread and "70 million" not in in_thread

    listed = [
        await interaction_reply(bot.fake, bot.fake.slash("docs", subcommand="list", dm=private))
        for private in (False, True)
    ]
    assert "Leave policy" in listed[0].data["content"]
    assert "Salary bands" not in listed[0].data["content"]
    assert "Salary bands" in listed[1].data["content"]
    assert all(reply.data["flags"] & EPHEMERAL for reply in listed)


async def test_ask_is_deferred_then_the_answer_edits_the_original(bot: Bot) -> None:
    bot.openai.reply_text("Annual leave is **15 days** a year.")

    asked = bot.fake.slash("ask", {"question": "how many leave days?"})

    deferred = await interaction_reply(bot.fake, asked)
    answer = await until(
        lambda: (
            custom_ids(bot.fake.original(asked["token"]) or {})
            and bot.fake.original(asked["token"])
        )
    )
    assert deferred.type == 5 and deferred.latency < 3.0
    assert answer["content"] == "Annual leave is **15 days** a year."
    edits = bot.fake.calls_to(
        "PATCH", rf"/webhooks/{APPLICATION_ID}/{asked['token']}/messages/@original"
    )
    assert edits and all(edit.at > deferred.at for edit in edits)
    assert bot.fake.threads == [] and bot.fake.followups(asked["token"]) == []
    assert bot.openai.chat_requests()[0]["messages"][-1]["content"] == "how many leave days?"


async def test_a_long_answer_is_split_with_its_code_block_whole(bot: Bot) -> None:
    def prose(tag: str) -> str:
        return "\n\n".join(f"{tag} paragraph {i}: " + "word " * 60 for i in range(7))

    long_answer = f"{prose('Before')}\n\n{CODE}\n\n{prose('After')}"
    assert len(long_answer) > 4000
    bot.openai.reply_text(long_answer)

    asked = bot.mention("write a lot")

    await bot.answer_in(asked["id"])
    parts = [m["content"] for m in bot_messages(bot.fake, asked["id"])]
    assert len(parts) >= 3 and all(len(part) <= 2000 for part in parts)
    assert sum(CODE in part for part in parts) == 1
    assert parts[0].startswith("Before paragraph 0") and "After paragraph 6" in parts[-1]


async def test_a_feedback_click_is_stored_and_thanked(bot: Bot) -> None:
    bot.openai.reply_text("Answer.")
    asked = bot.mention("rate me")
    (final,) = await bot.answer_in(asked["id"])
    up = custom_ids(final)[0]

    thanks = await interaction_reply(bot.fake, bot.fake.click(up, message=final))

    assert thanks.type == 4 and thanks.data["flags"] & EPHEMERAL
    assert "Thanks for the feedback" in thanks.data["content"]
    async with bot.app.database.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT run_id, user_id, value FROM feedback"))).all()
    assert [(str(r.run_id), r.user_id, r.value) for r in rows] == [
        (up.rpartition(":")[2], USER_ID, 1)
    ]


async def test_a_resume_replaying_everything_answers_nothing_twice(bot: Bot) -> None:
    bot.openai.reply_text("Mention answer.")
    bot.openai.reply_text("Slash answer.")
    asked = bot.mention("a question before the storm")
    slash = bot.fake.slash("ask", {"question": "a slash question before the storm"})
    await bot.answer_in(asked["id"])
    await until(lambda: custom_ids(bot.fake.original(slash["token"]) or {}))

    bot.fake.reconnect(replay_all=True)

    await bot.fake.wait_until(lambda: bot.fake.resumes == 1)
    await settle()
    assert len(bot.fake.threads) == 1 and len(bot_messages(bot.fake, asked["id"])) == 1
    callbacks = bot.fake.calls_to("POST", rf"/interactions/{slash['id']}/[^/]+/callback")
    assert len(callbacks) == 1
    assert len(bot.openai.chat_requests()) == 2
    assert bot.fake.identifies == 1


async def test_too_many_questions_get_a_reply_and_a_429_loses_nothing(
    discord_settings: SettingsFor, discord_api: FakeDiscord, openai_server: ScriptedOpenAI
) -> None:
    settings = discord_settings(rate_limit=1, rate_limit_window=3600)
    async with running(settings, discord_api, openai_server) as bot:
        bot.openai.reply_text("First.")
        discord_api.rate_limit_next("POST", r"/channels/\d+/messages", retry_after=0.3)
        first = bot.mention("q1")
        await bot.answer_in(first["id"])
        second = bot.mention("q2")
        (reply,) = await until(lambda: bot_messages(discord_api, CHANNEL_ID))

    assert "Too many questions" in reply["content"]
    assert reply["message_reference"]["message_id"] == second["id"]
    statuses = [
        c.status for c in discord_api.calls_to("POST", rf"/channels/{first['id']}/messages")
    ]
    assert statuses[0] == 429 and statuses[1] < 300
    assert len(openai_server.chat_requests()) == 1


async def test_an_ask_past_its_token_is_answered_in_the_channel(bot: Bot) -> None:
    bot.openai.reply_text("A late answer.", delay=1.0)
    asked = bot.fake.slash("ask", {"question": "a slow question"})
    await interaction_reply(bot.fake, asked)

    bot.fake.expire_token(asked["token"])  # as after Discord's 15 minutes

    (final,) = await until(lambda: finals(bot.fake, CHANNEL_ID))
    assert final["content"] == "A late answer." and not final.get("webhook_id")


async def test_an_unavailable_model_gets_a_short_reply_not_silence(bot: Bot) -> None:
    bot.openai.reply_error(401, "invalid api key")

    asked = bot.mention("anyone there?")

    (said,) = await until(
        lambda: [m for m in bot_messages(bot.fake, asked["id"]) if m["content"] != THINKING]
    )
    assert "invalid api key" in said["content"] and len(said["content"]) < 500
