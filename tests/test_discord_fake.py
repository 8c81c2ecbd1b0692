"""The fake Discord, driven by a plain discord.py client through the production seam.

The client is pointed at the fake the way the adapter points it (Route.BASE for REST and
interaction webhooks, the gateway URL from GET /gateway/bot) and nothing of discord.py is
patched; every test also checks discord.py logged no warning or error while parsing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

discord = pytest.importorskip("discord")
yarl = pytest.importorskip("yarl")
from discord import app_commands  # noqa: E402

from tests.fakes.discord_api import (  # noqa: E402
    ADMIN_ID,
    ADMIN_ROLE_ID,
    APPLICATION_ID,
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    OTHER_CHANNEL_ID,
    USER_ID,
    FakeDiscord,
)

pytestmark = pytest.mark.e2e

GUILD = discord.Object(id=int(GUILD_ID))


def intents(*, content: bool = True, members: bool = True) -> Any:
    """Guilds, guild messages, DMs, and the two privileged intents deskbot asks for."""
    wanted = discord.Intents.default()
    wanted.message_content = content
    wanted.members = members
    return wanted


@dataclass
class Seen:
    """What the client's event handlers received."""

    messages: list[Any] = field(default_factory=list)
    edits: list[Any] = field(default_factory=list)
    threads: list[Any] = field(default_factory=list)
    interactions: list[Any] = field(default_factory=list)
    resumed: int = 0


async def connect(fake: FakeDiscord, client: Any, token: str | None = None) -> asyncio.Task[None]:
    """Log in and connect as production does; returns the task running ``client.connect``."""
    discord.http.Route.BASE = discord.webhook.async_.Route.BASE = fake.api_url
    await client.login(token or fake.token)
    _, url, _ = await client.http.get_bot_gateway()
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
    return asyncio.create_task(client.connect())


def watch(client: Any) -> Seen:
    """Record the events the tests look at."""
    seen = Seen()

    @client.event
    async def on_message(message: Any) -> None:
        seen.messages.append(message)

    @client.event
    async def on_message_edit(before: Any, after: Any) -> None:
        seen.edits.append(after)

    @client.event
    async def on_thread_create(thread: Any) -> None:
        seen.threads.append(thread)

    @client.event
    async def on_interaction(interaction: Any) -> None:
        seen.interactions.append(interaction)

    @client.event
    async def on_resumed() -> None:
        seen.resumed += 1

    return seen


@pytest.fixture
def no_discord_warnings(caplog: pytest.LogCaptureFixture) -> Callable[..., None]:
    """After the test: discord.py logged nothing at WARNING or above (except ``allowed``)."""
    caplog.set_level(logging.WARNING, logger="discord")

    def check(*allowed: str) -> None:
        bad = [
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("discord")
            and r.levelno >= logging.WARNING
            and not any(a in r.getMessage() for a in allowed)
        ]
        assert not bad, bad

    return check


@pytest.fixture
async def client(
    discord_api: FakeDiscord, no_discord_warnings: Callable[..., None]
) -> AsyncIterator[Any]:
    """A plain discord.Client, connected and ready (on_ready fired)."""
    bot = discord.Client(intents=intents(), guild_ready_timeout=0.05)
    bot.seen = watch(bot)
    bot.tree = app_commands.CommandTree(bot)
    bot.expected_warnings = []
    task = await connect(discord_api, bot)
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    yield bot
    await bot.close()
    await asyncio.wait_for(task, 5)
    no_discord_warnings(*bot.expected_warnings)


async def test_login_and_connect_cache_the_guild(client: Any, discord_api: FakeDiscord) -> None:
    guild = client.get_guild(int(GUILD_ID))
    assert client.user.id == int(BOT_ID) and client.application_id == int(APPLICATION_ID)
    assert client.application_flags.gateway_message_content_limited
    assert {c.name for c in guild.text_channels} == {"general", "random"}
    assert guild.get_channel(int(OTHER_CHANNEL_ID)) is not None
    admin = guild.get_member(int(ADMIN_ID))
    assert admin.guild_permissions.manage_guild
    assert [r.id for r in admin.roles][1:] == [int(ADMIN_ROLE_ID)]
    assert not guild.get_member(int(USER_ID)).guild_permissions.manage_guild
    assert guild.chunked and guild.me is not None
    paths = [c.path for c in discord_api.calls]
    assert paths[:3] == ["/users/@me", "/oauth2/applications/@me", "/gateway/bot"]
    assert discord_api.identifies == 1 and discord_api.resumes == 0
    assert discord_api.calls[0].headers["authorization"] == f"Bot {discord_api.token}"


async def test_messages_arrive_with_content_mentions_and_member(
    client: Any, discord_api: FakeDiscord
) -> None:
    plain = discord_api.send_message(CHANNEL_ID, "hello all")
    mention = discord_api.send_message(CHANNEL_ID, "where is the VPN guide?", mention_bot=True)
    dm = discord_api.send_dm(USER_ID, "a private question")
    await discord_api.wait_until(lambda: len(client.seen.messages) == 3)

    first, second, third = client.seen.messages
    assert first.id == int(plain["id"]) and first.content == "hello all"
    assert client.user not in first.mentions and client.user in second.mentions
    assert second.content == f"<@{BOT_ID}> where is the VPN guide?"
    assert isinstance(second.author, discord.Member) and second.guild.id == int(GUILD_ID)
    assert second.channel.id == int(CHANNEL_ID) and second.id == int(mention["id"])
    assert third.guild is None and isinstance(third.channel, discord.DMChannel)
    assert third.channel.id == int(dm["channel_id"]) == int(discord_api.dm_channel_id(USER_ID))
    assert [m["content"] for m in discord_api.messages_in(CHANNEL_ID)] == [
        "hello all",
        f"<@{BOT_ID}> where is the VPN guide?",
    ]


async def test_edits_bots_and_system_messages_are_told_apart(
    client: Any, discord_api: FakeDiscord
) -> None:
    sent = discord_api.send_message(CHANNEL_ID, "first draft")
    discord_api.edit_message(CHANNEL_ID, sent["id"], "second draft")
    discord_api.send_message(CHANNEL_ID, "beep", author_id="1300000000000000099", bot=True)
    discord_api.send_message(CHANNEL_ID, "", kind=7)  # a member joined
    await discord_api.wait_until(lambda: len(client.seen.messages) == 3 and client.seen.edits)

    assert client.seen.edits[0].content == "second draft"
    assert client.seen.messages[1].author.bot
    assert client.seen.messages[2].type is discord.MessageType.new_member
    assert discord_api.messages_in(CHANNEL_ID)[0]["content"] == "second draft"


async def test_without_the_content_intent_only_mentions_carry_content(
    discord_api: FakeDiscord, no_discord_warnings: Callable[..., None]
) -> None:
    bot = discord.Client(intents=intents(content=False), guild_ready_timeout=0.05)
    seen = watch(bot)
    task = await connect(discord_api, bot)
    await discord_api.wait_ready()
    discord_api.send_message(CHANNEL_ID, "not for you")
    discord_api.send_message(CHANNEL_ID, "for you", mention_bot=True)
    await discord_api.wait_until(lambda: len(seen.messages) == 2)
    await bot.close()
    await asyncio.wait_for(task, 5)

    assert [m.content for m in seen.messages] == ["", f"<@{BOT_ID}> for you"]
    no_discord_warnings()


async def test_bot_messages_edits_and_history(client: Any, discord_api: FakeDiscord) -> None:
    channel = client.get_channel(int(CHANNEL_ID))
    sent = [await channel.send(f"part {n}") for n in range(5)]
    await sent[0].edit(content="part 0, edited", embed=discord.Embed(title="Sources"))
    await discord_api.wait_until(lambda: len(client.seen.messages) == 5 and client.seen.edits)

    newest = [m.content async for m in channel.history(limit=2)]
    oldest = [m.content async for m in channel.history(limit=2, oldest_first=True)]
    before = [m.id async for m in channel.history(limit=10, before=sent[2])]
    after = [m.id async for m in channel.history(limit=10, after=sent[2])]
    assert newest == ["part 4", "part 3"] and oldest == ["part 0, edited", "part 1"]
    assert before == [sent[1].id, sent[0].id] and after == [sent[3].id, sent[4].id]
    assert all(m.author == client.user for m in client.seen.messages)
    stored = discord_api.messages_in(CHANNEL_ID)[0]
    assert [(e["type"], e["title"]) for e in stored["embeds"]] == [("rich", "Sources")]
    assert client.seen.edits[0].embeds[0].title == "Sources"
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035


async def test_a_thread_from_a_message_has_its_id(client: Any, discord_api: FakeDiscord) -> None:
    asked = discord_api.send_message(CHANNEL_ID, "help?", mention_bot=True)
    await discord_api.wait_until(lambda: client.seen.messages)
    message = client.seen.messages[0]

    thread = await message.create_thread(name="help?")
    await thread.send("an answer")
    await discord_api.wait_until(lambda: client.seen.threads and len(client.seen.messages) == 2)

    assert thread.id == message.id == int(asked["id"]) and thread.parent_id == int(CHANNEL_ID)
    assert client.seen.threads[0].id == thread.id and thread.type is discord.ChannelType.public_thread
    assert client.get_channel(thread.id) is not None
    assert [t["id"] for t in discord_api.threads] == [asked["id"]]
    assert [m["content"] for m in discord_api.messages_in(str(thread.id))] == ["an answer"]
    with pytest.raises(discord.HTTPException) as again:
        await message.create_thread(name="again")
    assert again.value.code == 160004


async def test_a_member_writes_in_a_thread(client: Any, discord_api: FakeDiscord) -> None:
    thread = discord_api.start_thread(CHANNEL_ID, "printer")
    discord_api.send_message(thread["id"], "it jams", mention_bot=True)
    await discord_api.wait_until(lambda: client.seen.messages)

    message = client.seen.messages[0]
    assert isinstance(message.channel, discord.Thread)
    assert message.channel.parent_id == int(CHANNEL_ID) and message.guild.id == int(GUILD_ID)
    history = [m.content async for m in message.channel.history(limit=10)]
    assert history == [f"<@{BOT_ID}> it jams"]
