"""Discord's limits as users meet them: how often an answer is edited, and a busy server.

The responder talks to the fake Discord through the same REST client a worker uses; the
guild limit goes through the whole adapter (see ``tests/test_discord.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from bot.agent.answer import Answer
from bot.discord.channel import DiscordResponder
from bot.discord.rest import DiscordREST, use_api_url
from bot.messages import ReplyAddress
from tests.fakes.discord_api import CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, FakeDiscord
from tests.fakes.openai_server import ScriptedOpenAI
from tests.test_discord import SettingsFor, bot_messages, running
from tests.test_slack import until

pytestmark = pytest.mark.e2e


async def test_a_streamed_answer_edits_its_message_at_most_once_a_second(
    discord_api: FakeDiscord,
) -> None:
    use_api_url(discord_api.api_url)
    rest = DiscordREST(discord_api.token, discord_api.api_url)
    address = ReplyAddress("discord", CHANNEL_ID, workspace_id=GUILD_ID)
    responder = DiscordResponder(rest, address, question="How many leave days?")
    try:
        await responder.start()
        await responder.status("Searching documents…")  # shown with the next edit
        for word in ("Annual ", "leave ", "is ", "15 ", "days ", "a ", "year.") * 4:
            await responder.stream(word)
            await asyncio.sleep(0.1)  # 28 chunks over about 2.8 s
        text = "Annual leave is 15 days a year."
        await responder.finish(Answer(uuid.uuid4(), uuid.uuid4(), "completed", text))
    finally:
        await rest.close()

    (placeholder,) = discord_api.calls_to("POST", rf"/channels/{CHANNEL_ID}/messages")
    *streamed, final = discord_api.calls_to("PATCH", rf"/channels/{CHANNEL_ID}/messages/\d+")
    assert placeholder.json["content"] == "Thinking…"
    assert 2 <= len(streamed) <= 3  # 2.8 s of text: an edit a second, no more
    shown = [placeholder, *streamed]
    gaps = [b.at - a.at for a, b in itertools.pairwise(shown)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert streamed[0].json["content"].startswith("Searching documents…")  # the progress line
    assert final.json["content"] == text and final.json["components"]


async def test_a_busy_server_is_told_to_wait_even_when_each_member_is_not(
    discord_settings: SettingsFor, discord_api: FakeDiscord, openai_server: ScriptedOpenAI
) -> None:
    settings = discord_settings(rate_limit=100, discord_guild_rate_limit=1, rate_limit_window=3600)
    async with running(settings, discord_api, openai_server) as bot:
        openai_server.reply_text("First.")
        first = bot.mention("q1")
        await bot.answer_in(first["id"])
        bot.mention("q2", channel_id=OTHER_CHANNEL_ID, author_id="1300000000000000031")
        (reply,) = await until(lambda: bot_messages(discord_api, OTHER_CHANNEL_ID))

    assert "this server is asking faster" in reply["content"]
    assert len(openai_server.chat_requests()) == 1


async def test_a_server_outside_the_configured_ones_is_not_served(
    discord_settings: SettingsFor, discord_api: FakeDiscord, openai_server: ScriptedOpenAI
) -> None:
    settings = discord_settings(discord_guilds="1300000000000000999")  # not the seeded one
    async with running(settings, discord_api, openai_server) as bot:
        bot.mention("read me the handbook")
        refused = discord_api.slash("ask", {"question": "anything?"})
        (reply,) = await until(
            lambda: [c for c in discord_api.callbacks if c.interaction_id == refused["id"]]
        )
        await asyncio.sleep(0.7)  # time for an answer that must not come

    assert reply.type == 4 and "does not serve this server" in reply.data["content"]
    assert discord_api.threads == [] and openai_server.chat_requests() == []
