"""The Discord adapter's other front doors: ``/docs upload``, ``deskbot discord``, Redis workers.

Uploads run the whole way through the fake Discord (the attachment options, its CDN); the
CLI tests run the installed ``deskbot`` script against it; with Redis, the gateway only
acknowledges and a separate worker answers through REST alone. Harness: ``test_discord``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text

from bot.app import open_app
from bot.jobs import make_worker
from bot.settings import Settings
from knowledge.search import Scope
from tests.conftest import CliResult, FreshDatabase
from tests.fakes.discord_api import ADMIN_ID, GUILD_ID, HR_ROLE_ID, USER_ID, FakeDiscord
from tests.fakes.openai_server import ScriptedOpenAI
from tests.test_agent import tool_messages
from tests.test_discord import (
    EPHEMERAL,
    Bot,
    SettingsFor,
    bot_messages,
    custom_ids,
    finals,
    gateway,
    interaction_reply,
    running,
    settle,
)
from tests.test_slack import until

pytestmark = pytest.mark.e2e

VPN = b"# VPN\n\nThe VPN client is HanbitConnect 4.2.\n"
MB = 1024 * 1024


@pytest.fixture
async def bot(
    discord_settings: SettingsFor, discord_api: FakeDiscord, openai_server: ScriptedOpenAI
) -> AsyncIterator[Bot]:
    """Admins: Manage Server, or the HR role (by id); files up to 1 MB."""
    settings = discord_settings(discord_admin_roles=HR_ROLE_ID, max_file_mb=1)
    async with running(settings, discord_api, openai_server) as started:
        yield started


def upload(
    fake: FakeDiscord, *files: dict[str, Any], private: bool | None = None, **kwargs: Any
) -> dict[str, Any]:
    """``/docs upload`` of ``files`` to the collection "it" (``private``: as a private one)."""
    names = ["file", *(f"file{n}" for n in range(2, 6))]
    options: dict[str, Any] = {"collection": "it", **dict(zip(names, files, strict=False))}
    if private is not None:
        options["private"] = private
    return fake.slash("docs", options, subcommand="upload", **kwargs)


async def report(fake: FakeDiscord, interaction: dict[str, Any]) -> str:
    """The admin's ephemeral report: the deferred response, edited by the ingest job."""
    found = await until(
        lambda: (
            (o := fake.original(interaction["token"])) and "Documents added" in o["content"] and o
        )
    )
    return str(found["content"])


# --- /docs upload ---------------------------------------------------------------------


async def test_a_non_admin_upload_is_refused_and_nothing_downloaded(bot: Bot) -> None:
    file = bot.fake.add_attachment("vpn.md", VPN, content_type="text/markdown")

    refused = await interaction_reply(bot.fake, upload(bot.fake, file))

    assert refused.type == 4 and refused.data["flags"] & EPHEMERAL  # answered, not deferred
    assert "Manage Server or an admin role" in refused.data["content"]
    await settle()
    assert bot.fake.downloads == []
    assert await bot.app.knowledge.store.list_collections() == []


async def test_an_admin_upload_becomes_searchable(bot: Bot) -> None:
    file = bot.fake.add_attachment("vpn.md", VPN, content_type="text/markdown")

    asked = upload(bot.fake, file, roles=[HR_ROLE_ID])  # a role DESKBOT_DISCORD_ADMIN_ROLES names
    deferred = await interaction_reply(bot.fake, asked)
    stored = await report(bot.fake, asked)

    assert deferred.type == 5 and deferred.data["flags"] & EPHEMERAL
    assert "✅ vpn.md: 1 chunks" in stored and "1 stored, 0 unchanged, 0 refused" in stored
    assert bot.fake.original(asked["token"])["flags"] & EPHEMERAL  # type: ignore[index]
    results = await bot.app.knowledge.searcher.search("HanbitConnect", Scope.everything())
    assert results[0].citation.collection == "it"
    assert [d.filename for d in bot.fake.downloads] == ["vpn.md"]


async def test_a_private_upload_is_read_by_its_uploader_in_a_dm(bot: Bot) -> None:
    file = bot.fake.add_attachment("vpn.md", VPN, content_type="text/markdown")
    await report(bot.fake, upload(bot.fake, file, user_id=ADMIN_ID, private=True))
    for _ in range(2):
        bot.openai.reply_tool_calls(("search_documents", {"query": "VPN client"}))
        bot.openai.reply_text("HanbitConnect [1].")

    listed = [
        await interaction_reply(bot.fake, bot.fake.slash("docs", **where))
        for where in (
            {"subcommand": "list", "user_id": ADMIN_ID, "dm": True},
            {"subcommand": "list", "user_id": USER_ID, "dm": True},
            {"subcommand": "list", "user_id": ADMIN_ID},  # in #general: not a DM
        )
    ]
    for user in (ADMIN_ID, USER_ID):
        dm = bot.fake.send_dm(user, "Which VPN client?")
        await until(lambda dm=dm: finals(bot.fake, dm["channel_id"]))

    assert "**VPN** (it, v1, 1 chunks)" in listed[0].data["content"]
    assert listed[1].data["content"] == listed[2].data["content"] == "No documents."
    found = [json.dumps(tool_messages(r)) for r in bot.openai.chat_requests()[1::2]]
    assert "HanbitConnect 4.2" in found[0] and "HanbitConnect" not in found[1]
    it = await bot.app.knowledge.store.get_collection("it")
    assert (it.visibility, it.allowed_roles) == ("private", [ADMIN_ID])


async def test_a_collection_that_refuses_the_files_is_reported_not_silent(bot: Bot) -> None:
    knowledge = bot.app.knowledge
    await knowledge.store.ensure_collection("it", knowledge.embedder)
    async with bot.app.database.engine.begin() as conn:  # filled by another embedder
        await conn.execute(text("UPDATE collections SET embedding_model = 'other-model'"))
    file = bot.fake.add_attachment("vpn.md", VPN, content_type="text/markdown")
    asked = upload(bot.fake, file, user_id=ADMIN_ID)

    said = await until(lambda: (o := bot.fake.original(asked["token"])) and o["content"])

    assert said.startswith("Nothing was added to `it`:") and "other-model" in said


async def test_the_same_file_uploaded_again_is_unchanged(bot: Bot) -> None:
    file = bot.fake.add_attachment("vpn.md", VPN, content_type="text/markdown")
    await report(bot.fake, upload(bot.fake, file, user_id=ADMIN_ID))  # Manage Server

    unchanged = await report(bot.fake, upload(bot.fake, file, user_id=ADMIN_ID))

    documents = await bot.app.knowledge.store.list_documents("it")
    assert len(documents) == 1, [d.source for d in documents]
    assert "⚪ vpn.md: unchanged" in unchanged and "0 stored, 1 unchanged" in unchanged


async def test_an_oversized_attachment_is_refused_before_download(bot: Bot) -> None:
    small = bot.fake.add_attachment("vpn.md", VPN, content_type="text/markdown")
    huge = bot.fake.add_attachment("huge.pdf", b"%PDF-1.4 tiny", size=5 * MB)

    asked = upload(bot.fake, small, huge, user_id=ADMIN_ID)
    both = await report(bot.fake, asked)
    alone = await interaction_reply(bot.fake, upload(bot.fake, huge, user_id=ADMIN_ID))

    assert "❌ huge.pdf: 5.0 MB, over the 1 MB limit" in both
    assert "1 stored, 0 unchanged, 1 refused (1 too large)" in both
    assert alone.type == 4 and "over the 1 MB limit" in alone.data["content"]
    assert [d.filename for d in bot.fake.downloads] == ["vpn.md"]


# --- with Redis: the gateway enqueues, a worker answers through REST --------------------


@contextlib.asynccontextmanager
async def worker(settings: Settings) -> AsyncIterator[None]:
    """``deskbot worker``: its own app and REST client, no gateway connection."""
    async with open_app(settings) as app:
        stop = asyncio.Event()
        task = asyncio.create_task(make_worker(app).run(stop))
        try:
            yield
        finally:
            stop.set()
            await task


async def test_with_redis_a_worker_without_a_gateway_answers(
    discord_settings: SettingsFor,
    discord_api: FakeDiscord,
    openai_server: ScriptedOpenAI,
    redis_url: str,
) -> None:
    settings = discord_settings(redis_url=redis_url)
    for _ in range(2):  # the worker takes both at once: either order
        openai_server.reply_text("Answered by the worker.")
    async with gateway(settings):
        asked = discord_api.send_message(content="who answers?", mention_bot=True)
        slash = discord_api.slash("ask", {"question": "and this?"})
        deferred = await interaction_reply(discord_api, slash)
        await settle()
        assert openai_server.chat_requests() == []  # queued in Redis, nobody answering here

        async with worker(settings):
            (final,) = await until(lambda: finals(discord_api, asked["id"]))
            await until(lambda: custom_ids(discord_api.original(slash["token"]) or {}))

    assert deferred.type == 5
    assert final["content"] == "Answered by the worker."
    assert discord_api.identifies == 1 and discord_api.readies == 1  # the worker: REST only
    assert len(openai_server.chat_requests()) == 2


async def test_an_ingest_report_past_its_token_goes_to_the_admin_by_dm(
    discord_settings: SettingsFor, discord_api: FakeDiscord, redis_url: str
) -> None:
    settings = discord_settings(redis_url=redis_url)
    async with gateway(settings):
        file = discord_api.add_attachment("vpn.md", VPN, content_type="text/markdown")
        asked = upload(discord_api, file, user_id=ADMIN_ID)
        await interaction_reply(discord_api, asked)
        discord_api.expire_token(asked["token"])  # the job runs after the 15 minutes

        async with worker(settings):
            dm = discord_api.dm_channel_id(ADMIN_ID)
            (told,) = await until(lambda: bot_messages(discord_api, dm))

    assert "Documents added to `it`" in told["content"] and "1 stored" in told["content"]
    assert "Documents added" not in str(discord_api.original(asked["token"]))


# --- deskbot discord and deskbot doctor, as run --------------------------------------


def env_for(fake: FakeDiscord, database: FreshDatabase, token: str | None = None) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": token or fake.token,
        "DISCORD_API_URL": fake.api_url,
        "DESKBOT_DISCORD_GUILDS": GUILD_ID,
        "DATABASE_URL": database.url,
    }


def one_line(result: CliResult) -> str:
    """The single line a refused start ends with (exit 2, no traceback)."""
    assert result.code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


RunCli = Callable[..., CliResult]


def test_a_bad_token_is_one_line(
    run_cli: RunCli, discord_api: FakeDiscord, fresh_database: FreshDatabase
) -> None:
    result = run_cli("discord", env=env_for(discord_api, fresh_database, token="not-the-token"))

    assert "DISCORD_TOKEN: Discord refused the token" in one_line(result)
    assert discord_api.calls[0].status == 401 and discord_api.identifies == 0


def test_a_token_refused_at_identify_is_one_line(
    run_cli: RunCli, discord_api: FakeDiscord, fresh_database: FreshDatabase
) -> None:
    discord_api.revoke_token()  # REST still takes it, IDENTIFY not

    result = run_cli("discord", env=env_for(discord_api, fresh_database))

    assert "DISCORD_TOKEN: Discord refused the token" in one_line(result)
    assert discord_api.close_codes == [4004]


def test_refused_intents_are_named_by_discord_and_doctor(
    run_cli: RunCli, fresh_database: FreshDatabase
) -> None:
    with FakeDiscord(intents=("members",)) as fake:
        started = run_cli("discord", env=env_for(fake, fresh_database))
        doctor = run_cli("doctor", env=env_for(fake, fresh_database))
        assert fake.close_codes == [4014] and not fake.errors

    assert "enable Message Content Intent in the Developer Portal" in one_line(started)
    assert "Server Members" not in started.stderr
    assert doctor.code == 2 and "Message Content Intent" in doctor.stdout


def test_sync_only_puts_the_commands_in_the_guild(
    run_cli: RunCli, discord_api: FakeDiscord, fresh_database: FreshDatabase
) -> None:
    result = run_cli("discord", "--sync-only", env=env_for(discord_api, fresh_database))

    assert result.code == 0, result.stderr
    assert f"slash commands synced guild {GUILD_ID}" in result.stdout
    (sync,) = discord_api.command_syncs
    assert sync.guild_id == GUILD_ID and set(sync.names) == {"ask", "docs", "moderation"}
    assert discord_api.calls_to("PUT", rf"/applications/\d+/guilds/{GUILD_ID}/commands")
    assert discord_api.identifies == 0
