"""The fake Discord, driven by a plain discord.py client through the production seam.

The client is pointed at the fake the way the adapter points it (Route.BASE for REST and
interaction webhooks, the gateway URL from GET /gateway/bot) and nothing of discord.py is
patched; every test also checks discord.py logged no warning or error while parsing.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
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
    OWNER_ID,
    USER_ID,
    FakeDiscord,
)

pytestmark = pytest.mark.e2e

GUILD = discord.Object(id=int(GUILD_ID))
NO_VOICE = ("PyNaCl is not installed", "davey is not installed")  # voice is not used


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
        phases = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
        records = list({id(r): r for r in phases}.values())
        bad = [
            r.getMessage()
            for r in records
            if r.name.startswith("discord")
            and r.levelno >= logging.WARNING
            and not any(a in r.getMessage() for a in (*allowed, *NO_VOICE))
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
    assert (
        client.seen.threads[0].id == thread.id and thread.type is discord.ChannelType.public_thread
    )
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


def add_commands(tree: Any, seen: list[Any]) -> None:
    """/ask question, /docs upload file [file2] collection: deferred, then followed up."""

    @tree.command(name="ask", description="Ask the docs")
    async def ask(interaction: Any, question: str) -> None:
        await interaction.response.defer(thinking=True)
        seen.append(question)
        # After a public defer the first follow-up fills the loading message: ephemeral is moot.
        first = await interaction.followup.send(f"answer to {question}", wait=True, ephemeral=True)
        await interaction.edit_original_response(content=f"edited answer to {question}")
        await interaction.followup.send("part 2")
        seen.append(first.id)

    docs = app_commands.Group(name="docs", description="Documents")

    @docs.command(name="upload", description="Upload")
    async def upload(
        interaction: Any,
        file: discord.Attachment,
        collection: str,
        file2: discord.Attachment | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True)
        seen.append((file.filename, file.size, await file.read(), collection, file2))
        await interaction.followup.send("stored", ephemeral=True)

    tree.add_command(docs)


async def test_a_slash_command_reaches_the_tree_and_its_defer_the_fake(
    client: Any, discord_api: FakeDiscord
) -> None:
    seen: list[Any] = []
    add_commands(client.tree, seen)
    client.tree.copy_global_to(guild=GUILD)
    synced = await client.tree.sync(guild=GUILD)
    assert {c.name for c in synced} == {"ask", "docs"}
    assert discord_api.command_syncs[0].guild_id == GUILD_ID
    ids = {c["name"]: c["id"] for c in discord_api.commands(GUILD_ID)}

    asked = discord_api.slash("ask", {"question": "vpn?"})
    await discord_api.wait_until(lambda: len(seen) == 2)

    assert asked["data"]["id"] == ids["ask"] and asked["data"]["guild_id"] == GUILD_ID
    callback = discord_api.callbacks[0]
    assert (callback.type, callback.interaction_id) == (5, asked["id"])
    assert 0 < callback.latency < 1 and discord_api.dispatched_at[asked["id"]] < callback.at
    original = discord_api.original(asked["token"])
    # As on Discord, the first follow-up after a defer replaces the "thinking" message.
    assert seen[1] == int(original["id"]) and not original["flags"] & 128
    assert original["content"] == "edited answer to vpn?"
    assert [m["content"] for m in discord_api.followups(asked["token"])] == ["part 2"]
    assert [m["content"] for m in discord_api.messages_in(CHANNEL_ID)] == [
        "edited answer to vpn?",
        "part 2",
    ]
    assert client.seen.interactions[0].command.name == "ask"


async def test_an_attachment_option_is_resolved_and_downloaded(
    client: Any, discord_api: FakeDiscord
) -> None:
    seen: list[Any] = []
    add_commands(client.tree, seen)
    await client.tree.sync()  # global: the interaction carries no data.guild_id
    report = discord_api.add_attachment("vpn.md", b"# VPN\n", content_type="text/markdown")
    big = discord_api.add_attachment("big.pdf", b"%PDF", size=50 * 1024 * 1024)

    done = discord_api.slash(
        "docs", {"file": report, "collection": "it", "file2": big}, subcommand="upload"
    )
    await discord_api.wait_until(lambda: (discord_api.original(done["token"]) or {}).get("content"))

    name, size, data, collection, second = seen[0]
    assert (name, size, data, collection) == ("vpn.md", 6, b"# VPN\n", "it")
    assert (second.filename, second.size) == ("big.pdf", 50 * 1024 * 1024)
    assert [d.filename for d in discord_api.downloads] == ["vpn.md"]
    assert done["data"]["options"][0]["options"][0] == {
        "name": "file",
        "type": 11,
        "value": report["id"],
    }
    assert discord_api.original(done["token"])["flags"] & 64  # ephemeral defer
    assert discord_api.followups(done["token"]) == []  # the follow-up replaced the loading one
    assert discord_api.original(done["token"])["content"] == "stored"
    assert discord_api.messages_in(CHANNEL_ID) == []


async def test_a_button_click_and_the_callback_rules(client: Any, discord_api: FakeDiscord) -> None:
    channel = client.get_channel(int(CHANNEL_ID))
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="👍", custom_id="deskbot:feedback:up:7"))
    await channel.send("an answer", view=view)
    await discord_api.wait_until(lambda: client.seen.messages)
    posted = discord_api.messages_in(CHANNEL_ID)[0]
    assert posted["components"][0]["components"][0]["custom_id"] == "deskbot:feedback:up:7"

    clicked = discord_api.click("deskbot:feedback:up:7", message=posted, user_id=ADMIN_ID)
    await discord_api.wait_until(lambda: client.seen.interactions)
    interaction = client.seen.interactions[0]
    assert interaction.data["custom_id"] == "deskbot:feedback:up:7"
    assert interaction.message.id == int(posted["id"]) and interaction.user.id == int(ADMIN_ID)
    assert interaction.permissions.manage_guild

    await interaction.response.send_message("Thanks!", ephemeral=True)
    url = f"{discord_api.api_url}/interactions/{clicked['id']}/{clicked['token']}/callback"
    async with aiohttp.ClientSession() as session, session.post(url, json={"type": 6}) as again:
        assert (again.status, (await again.json())["code"]) == (400, 40060)
    discord_api.expire_token(clicked["token"])
    late = discord.Webhook.partial(int(APPLICATION_ID), clicked["token"], client=client)
    with pytest.raises(discord.NotFound) as expired:
        await late.send("too late")
    assert expired.value.code == 10015
    thanked = discord_api.original(clicked["token"])
    assert thanked["content"] == "Thanks!" and thanked["flags"] & 64
    assert discord_api.callbacks[0].type == 4 and len(discord_api.messages_in(CHANNEL_ID)) == 1


async def test_a_reconnect_resumes_and_loses_nothing(client: Any, discord_api: FakeDiscord) -> None:
    discord_api.send_message(CHANNEL_ID, "before")
    await discord_api.wait_until(lambda: len(client.seen.messages) == 1)

    discord_api.reconnect()
    discord_api.send_message(CHANNEL_ID, "while away")  # waits in the session for the RESUME
    await discord_api.wait_until(
        lambda: client.seen.resumed == 1 and len(client.seen.messages) == 2
    )

    assert (discord_api.identifies, discord_api.resumes) == (1, 1)
    assert discord_api.close_codes == [4000]
    assert [m.content for m in client.seen.messages] == ["before", "while away"]

    discord_api.reconnect(op7=True)
    discord_api.send_message(CHANNEL_ID, "after op 7")
    await discord_api.wait_until(
        lambda: client.seen.resumed == 2 and len(client.seen.messages) == 3
    )
    assert (discord_api.identifies, discord_api.resumes) == (1, 2)


async def test_a_resume_storm_replays_every_event(client: Any, discord_api: FakeDiscord) -> None:
    first = discord_api.send_message(CHANNEL_ID, "one")
    asked = discord_api.slash("ask", {"question": "q"})
    await discord_api.wait_until(lambda: client.seen.messages and client.seen.interactions)

    discord_api.reconnect(replay_all=True)
    await discord_api.wait_until(lambda: client.seen.resumed == 1)
    await discord_api.wait_until(lambda: len(client.seen.interactions) == 2)

    assert [m.id for m in client.seen.messages] == [int(first["id"])] * 2
    assert [i.id for i in client.seen.interactions] == [int(asked["id"])] * 2
    assert discord_api.identifies == 1
    # No command named ask here: the tree logs it (twice), which is not the fake's business.
    client.expected_warnings.append("Ignoring exception in command tree")


async def test_a_bad_token_fails_login_and_identify(
    discord_api: FakeDiscord, no_discord_warnings: Callable[..., None]
) -> None:
    bot = discord.Client(intents=intents())
    with pytest.raises(discord.LoginFailure):
        await connect(discord_api, bot, token="not-the-token")
    assert discord_api.calls[0].status == 401
    await bot.close()

    revoked = discord.Client(intents=intents())
    task = await connect(discord_api, revoked)
    revoked.http.token = "revoked-since-login"  # the token IDENTIFY sends
    with pytest.raises(discord.ConnectionClosed) as closed:
        await asyncio.wait_for(task, 5)
    assert closed.value.code == 4004 and discord_api.close_codes == [4004]
    assert revoked.is_closed() and discord_api.readies == 0
    no_discord_warnings()


async def test_refused_privileged_intents_close_4014(
    no_discord_warnings: Callable[..., None],
) -> None:
    bases = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    bot = discord.Client(intents=intents())
    try:
        with FakeDiscord(intents=("members",)) as fake:
            task = await connect(fake, bot)
            assert not bot.application_flags.gateway_message_content_limited
            assert bot.application_flags.gateway_guild_members_limited
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(task, 5)
            assert fake.close_codes == [4014] and fake.readies == 0
            assert not bot.is_closed()  # discord.py leaves closing to the caller here
            await bot.close()
            assert not fake.errors
    finally:
        await bot.close()
        discord.http.Route.BASE = discord.webhook.async_.Route.BASE = bases[0]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = bases[1]
    no_discord_warnings()


async def test_a_429_is_retried_and_nothing_is_lost(client: Any, discord_api: FakeDiscord) -> None:
    client.expected_warnings.append("rate limited")
    channel = client.get_channel(int(CHANNEL_ID))
    discord_api.rate_limit_next("POST", r"/channels/\d+/messages", retry_after=0.2)
    await channel.send("hello")

    posts = discord_api.calls_to("POST", rf"/channels/{CHANNEL_ID}/messages")
    assert [c.status for c in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.2
    assert [m["content"] for m in discord_api.messages_in(CHANNEL_ID)] == ["hello"]

    seen: list[Any] = []
    add_commands(client.tree, seen)
    await client.tree.sync()
    discord_api.rate_limit_next("PATCH", r"/webhooks/\d+/[^/]+/messages/@original", 0.1)
    asked = discord_api.slash("ask", {"question": "q"})
    await discord_api.wait_until(lambda: len(seen) == 2)
    edits = discord_api.calls_to("PATCH", r"/webhooks/.*")
    assert [c.status for c in edits] == [429, 200]
    assert discord_api.original(asked["token"])["content"] == "edited answer to q"


async def test_a_late_callback_is_refused_as_discord_does(
    client: Any, discord_api: FakeDiscord
) -> None:
    discord_api.ack_deadline = 0.05
    asked = discord_api.slash("ask", {"question": "slow"})
    await discord_api.wait_until(lambda: client.seen.interactions)
    await asyncio.sleep(0.1)
    with pytest.raises(discord.NotFound) as late:
        await client.seen.interactions[0].response.defer()
    assert late.value.code == 10062
    assert discord_api.callbacks == [] and not discord_api.interaction(asked["token"]).acknowledged
    client.expected_warnings.append("Ignoring exception in command tree")


async def test_files_replies_and_dms_from_the_bot(client: Any, discord_api: FakeDiscord) -> None:
    asked = discord_api.send_message(CHANNEL_ID, "send me the table")
    await discord_api.wait_until(lambda: client.seen.messages)
    question = client.seen.messages[0]

    reply = await question.reply("here", file=discord.File(io.BytesIO(b"a,b\n1,2\n"), "t.csv"))
    assert reply.type is discord.MessageType.reply and reply.reference.message_id == question.id
    assert await reply.attachments[0].read() == b"a,b\n1,2\n"
    assert [d.filename for d in discord_api.downloads] == ["t.csv"]
    posted = discord_api.calls_to("POST", rf"/channels/{CHANNEL_ID}/messages")[0]
    assert [p.name for p in posted.parts] == ["payload_json", "files[0]"]
    assert str(posted.json["message_reference"]["message_id"]) == asked["id"]
    assert discord_api.messages_in(CHANNEL_ID)[1]["message_reference"]["message_id"] == asked["id"]

    user = client.get_user(int(USER_ID))
    await user.send("a private answer")
    dm = discord_api.messages_in(discord_api.dm_channel_id(USER_ID))
    assert [(m["author"]["id"], m["content"]) for m in dm] == [(BOT_ID, "a private answer")]


async def test_sync_code_on_another_thread_drives_the_fake(
    client: Any, discord_api: FakeDiscord
) -> None:
    def from_a_thread() -> dict[str, Any]:
        discord_api.wait_ready_sync()
        sent = discord_api.send_message(CHANNEL_ID, "from a thread")
        discord_api.wait_until_sync(lambda: discord_api.messages_in(CHANNEL_ID))
        return sent

    sent = await asyncio.to_thread(from_a_thread)
    await discord_api.wait_until(lambda: client.seen.messages)
    assert client.seen.messages[0].id == int(sent["id"])


async def test_heartbeats_are_acknowledged(
    no_discord_warnings: Callable[..., None],
) -> None:
    bases = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    bot = discord.Client(intents=intents(), guild_ready_timeout=0.05)
    try:
        with FakeDiscord(heartbeat_interval_ms=50) as fake:
            task = await connect(fake, bot)
            await asyncio.wait_for(bot.wait_until_ready(), 5)
            await asyncio.sleep(0.3)  # a few intervals
            assert bot.latency < 1.0
            await bot.close()
            await asyncio.wait_for(task, 5)
            assert not fake.errors
    finally:
        await bot.close()
        discord.http.Route.BASE = discord.webhook.async_.Route.BASE = bases[0]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = bases[1]
    no_discord_warnings()


async def test_an_invalidated_session_identifies_again(
    client: Any, discord_api: FakeDiscord
) -> None:
    discord_api.reconnect(invalidate=True)
    await discord_api.wait_ready(timeout=10, count=2)  # discord.py waits 5 s to IDENTIFY again
    discord_api.send_message(CHANNEL_ID, "after")
    await discord_api.wait_until(lambda: client.seen.messages)
    assert (discord_api.identifies, discord_api.resumes) == (2, 1)
    assert client.seen.messages[0].content == "after"


async def test_a_slash_command_in_a_dm(client: Any, discord_api: FakeDiscord) -> None:
    seen: list[Any] = []
    add_commands(client.tree, seen)
    await client.tree.sync()
    asked = discord_api.slash("ask", {"question": "my leave?"}, user_id=ADMIN_ID, dm=True)
    await discord_api.wait_until(lambda: len(seen) == 2)

    interaction = client.seen.interactions[0]
    assert interaction.guild is None and isinstance(interaction.channel, discord.DMChannel)
    assert interaction.user.id == int(ADMIN_ID) and "guild_id" not in asked
    dm = discord_api.dm_channel_id(ADMIN_ID)
    assert asked["channel_id"] == dm and asked["data"]["id"] == discord_api.commands()[0]["id"]
    assert [m["content"] for m in discord_api.messages_in(dm)] == [
        "edited answer to my leave?",
        "part 2",
    ]


def watch_moderation(client: Any) -> list[tuple[str, Any]]:
    """Record deletions, member updates and removals, bans (name, what arrived)."""
    seen: list[tuple[str, Any]] = []

    @client.event
    async def on_raw_message_delete(event: Any) -> None:
        seen.append(("delete", event.message_id))

    @client.event
    async def on_member_update(before: Any, after: Any) -> None:
        seen.append(("update", after.timed_out_until))

    @client.event
    async def on_member_remove(member: Any) -> None:
        seen.append(("remove", member.id))

    @client.event
    async def on_member_ban(guild: Any, user: Any) -> None:
        seen.append(("ban", user.id))

    return seen


async def test_the_bot_deletes_a_members_message_with_a_reason(
    client: Any, discord_api: FakeDiscord
) -> None:
    seen = watch_moderation(client)
    hateful = discord_api.send_message(CHANNEL_ID, "something hateful")
    kept = discord_api.send_message(CHANNEL_ID, "something kind")

    await client.http.delete_message(CHANNEL_ID, hateful["id"], reason="hate: 0.93 ≥ 0.8")
    await discord_api.wait_until(lambda: seen)

    assert seen == [("delete", int(hateful["id"]))]
    assert [m["id"] for m in discord_api.messages_in(CHANNEL_ID)] == [kept["id"]]
    entry = discord_api.audit_log[0]
    assert (entry.action, entry.target_id, entry.reason) == (
        "message_delete",
        hateful["id"],
        "hate: 0.93 ≥ 0.8",
    )
    with pytest.raises(discord.NotFound) as gone:
        await client.http.delete_message(CHANNEL_ID, hateful["id"])
    assert gone.value.code == 10008


async def test_a_timeout_is_set_and_lifted(client: Any, discord_api: FakeDiscord) -> None:
    seen = watch_moderation(client)
    member = client.get_guild(int(GUILD_ID)).get_member(int(USER_ID))

    await member.timeout(timedelta(minutes=60), reason="second strike")
    await discord_api.wait_until(lambda: seen)
    until = discord_api.timeouts[USER_ID]
    assert until is not None and timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(
        minutes=60
    )
    assert seen == [("update", until)] and member.is_timed_out()
    await member.timeout(None, reason="appeal accepted")
    await discord_api.wait_until(lambda: len(seen) == 2)

    assert discord_api.timeouts == {USER_ID: None} and seen[1] == ("update", None)
    assert not member.is_timed_out()
    assert [(e.action, e.reason) for e in discord_api.audit_log] == [
        ("member_update", "second strike"),
        ("member_update", "appeal accepted"),
    ]
    with pytest.raises(discord.HTTPException) as too_long:
        await member.timeout(timedelta(days=29))
    assert too_long.value.code == 50035


async def test_a_kick_and_a_ban_remove_the_member(client: Any, discord_api: FakeDiscord) -> None:
    seen = watch_moderation(client)
    guild = client.get_guild(int(GUILD_ID))
    posted = discord_api.send_message(CHANNEL_ID, "spam", author_id=USER_ID)

    await guild.kick(guild.get_member(int(USER_ID)), reason="ladder: kick")
    await discord_api.wait_until(lambda: seen)
    assert discord_api.kicked == {USER_ID: "ladder: kick"} and seen == [("remove", int(USER_ID))]
    assert guild.get_member(int(USER_ID)) is None
    assert [m["id"] for m in discord_api.messages_in(CHANNEL_ID)] == [posted["id"]]

    # A ban works on a former member too and deletes their last day of messages.
    await guild.ban(discord.Object(id=int(USER_ID)), reason="raid")
    await discord_api.wait_until(lambda: ("ban", int(USER_ID)) in seen)
    assert discord_api.banned == {USER_ID: "raid"} and discord_api.messages_in(CHANNEL_ID) == []
    assert [e.action for e in discord_api.audit_log] == ["member_kick", "member_ban_add"]
    ban = discord_api.calls_to("PUT", rf"/guilds/{GUILD_ID}/bans/{USER_ID}")[0]
    assert ban.query == {"delete_message_seconds": "86400"}


async def test_the_owner_and_higher_roles_are_out_of_reach(
    client: Any, discord_api: FakeDiscord
) -> None:
    guild = client.get_guild(int(GUILD_ID))
    for user_id in (OWNER_ID, ADMIN_ID):
        member = guild.get_member(int(user_id))
        for act in (member.kick(), member.ban(), member.timeout(timedelta(minutes=5))):
            with pytest.raises(discord.Forbidden) as refused:
                await act
            assert (refused.value.code, refused.value.text) == (50013, "Missing Permissions")
    assert discord_api.kicked == discord_api.banned == discord_api.timeouts == {}
    assert discord_api.audit_log == []
    assert guild.me.top_role.position == 2 and guild.me.guild_permissions.moderate_members


async def test_a_modal_round_trip(client: Any, discord_api: FakeDiscord) -> None:
    got: list[str] = []

    class Appeal(discord.ui.Modal, title="Appeal"):
        why = discord.ui.TextInput(label="Why was this wrong?", custom_id="why")

        async def on_submit(self, interaction: Any) -> None:
            got.append(self.why.value)
            await interaction.response.send_message("Appeal received", ephemeral=True)

    @client.tree.command(name="appeal", description="Appeal a decision")
    async def appeal(interaction: Any) -> None:
        await interaction.response.send_modal(Appeal(custom_id="appeal:42"))

    await client.tree.sync()
    discord_api.slash("appeal", user_id=USER_ID)
    await discord_api.wait_until(lambda: discord_api.modals)
    assert (discord_api.modals[0]["custom_id"], discord_api.modals[0]["title"]) == (
        "appeal:42",
        "Appeal",
    )
    with pytest.raises(KeyError):
        discord_api.submit_modal("appeal:42", {"nope": "x"})

    submitted = discord_api.submit_modal("appeal:42", {"why": "it was a quote"})
    await discord_api.wait_until(lambda: discord_api.original(submitted["token"]))

    assert got == ["it was a quote"] and submitted["channel_id"] == CHANNEL_ID
    answer = discord_api.original(submitted["token"])
    assert answer["content"] == "Appeal received" and answer["flags"] & 64
    assert [c.type for c in discord_api.callbacks] == [9, 4]


async def test_buttons_in_a_dm_and_the_mod_log_and_an_appeal_thread(
    client: Any, discord_api: FakeDiscord
) -> None:
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="Appeal", custom_id="appeal:7"))
    await client.get_user(int(USER_ID)).send("You were warned.", view=view)
    logged = await client.get_channel(int(OTHER_CHANNEL_ID)).send("warned alice", view=view)
    dm = discord_api.messages_in(discord_api.dm_channel_id(USER_ID))[0]
    in_log = discord_api.messages_in(OTHER_CHANNEL_ID)[0]

    discord_api.click("appeal:7", message=dm, user_id=USER_ID)
    discord_api.click("appeal:7", message=in_log, user_id=ADMIN_ID)
    discord_api.click("appeal:7", message=in_log, user_id=USER_ID, permissions=0)
    await discord_api.wait_until(lambda: len(client.seen.interactions) == 3)
    from_dm, by_admin, by_member = client.seen.interactions
    assert from_dm.guild is None and from_dm.message.id == int(dm["id"])
    assert by_admin.permissions.manage_guild and by_admin.channel.id == int(OTHER_CHANNEL_ID)
    assert not by_member.permissions.manage_guild and by_member.message.id == logged.id

    thread = await logged.create_thread(name="appeal 7")
    assert thread.id == logged.id and thread.parent_id == int(OTHER_CHANNEL_ID)
    assert [t["id"] for t in discord_api.threads] == [in_log["id"]]
