"""Chat admins set who may read a collection: ``/deskbot access`` and ``/docs access``.

Both run through their front doors (a signed slash command to the Slack endpoint; the real
discord.py client on the fake Discord), and the effect is checked the way users meet it:
``/deskbot docs`` and ``/docs list`` from a DM or a channel, which read through the same
:class:`knowledge.search.Scope` as search.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.settings import Settings
from knowledge.documents import document_from_text
from knowledge.store import CollectionInfo
from tests.conftest import FreshDatabase
from tests.fakes.discord_api import (
    ADMIN_ID,
    CHANNEL_ID,
    GUILD_ID,
    HR_ROLE_ID,
    OTHER_CHANNEL_ID,
    OWNER_ID,
    USER_ID,
    FakeDiscord,
)
from tests.fakes.openai_server import ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_discord import Bot, SettingsFor, add_document, interaction_reply, running
from tests.test_slack import TEAM, Stack, serve_slack, until

pytestmark = pytest.mark.e2e

READER = "U0READER1"
OTHER = "U0OTHER01"
CHANNEL = "C0PRIVATE1"
EPHEMERAL = 64


# --- Slack ----------------------------------------------------------------------------


@pytest.fixture
async def stack(
    make_settings: Callable[..., Settings],
    fresh_database: FreshDatabase,
    slack_api: FakeSlackAPI,
    openai_server: ScriptedOpenAI,
) -> AsyncIterator[Stack]:
    async with serve_slack(
        make_settings, fresh_database, slack_api, openai_server, slack_admins="UADMIN"
    ) as served:
        knowledge = served.app.knowledge
        hr = await knowledge.store.ensure_collection("hr", knowledge.embedder)
        await knowledge.ingestor.store_parsed(
            document_from_text("bands.md", "Salary bands", "Salary band B3 pays 70 million won."),
            hr,
            source="bands.md",
            digest="b1",
            size_bytes=10,
        )
        yield served


async def slash(stack: Stack, text: str, *, user: str, channel: str = "C1") -> str:
    """``/deskbot TEXT`` from ``user`` in ``channel`` (``D…``: a DM); the ephemeral reply."""
    before = len(stack.slack.calls_to("response_url"))
    body = {
        "token": "verification_token",
        "team_id": TEAM,
        "channel_id": channel,
        "user_id": user,
        "command": "/deskbot",
        "text": text,
        "response_url": stack.slack.response_url(),
        "trigger_id": "111.222.abc",
        "api_app_id": "A111",
    }
    assert (await stack.post(body, form=True)).status_code == 200
    calls = await until(lambda: (c := stack.slack.calls_to("response_url")[before:]) and c)
    assert calls[0].args["response_type"] == "ephemeral"
    return str(calls[0].args["text"])


async def hr(stack: Stack) -> CollectionInfo:
    return await stack.app.knowledge.store.get_collection("hr")


async def test_slack_a_non_admin_is_refused_and_nothing_changes(stack: Stack) -> None:
    said = await slash(stack, f"access hr private <@{READER}|reader>", user=READER)

    assert said.startswith("Only deskbot admins may change who may read a collection")
    found = await hr(stack)
    assert (found.visibility, found.allowed_roles, found.allowed_channels) == ("public", [], [])


async def test_slack_an_admin_opens_a_private_collection_to_one_user(stack: Stack) -> None:
    assert "Salary bands" in await slash(stack, "docs", user=OTHER, channel="D0OTHER01")

    said = await slash(stack, f"access hr private <@{READER}|reader>", user="UADMIN")

    assert said == f"`hr` — private: in a DM by <@{READER}>"
    assert "Salary bands" in await slash(stack, "docs", user=READER, channel="D0READER1")
    assert await slash(stack, "docs", user=OTHER, channel="D0OTHER01") == "No documents."
    assert await slash(stack, "docs", user=READER, channel="C1") == "No documents."  # not a DM
    assert await slash(stack, "access hr", user="UADMIN") == said  # shown, unchanged


async def test_slack_channels_are_allowed_and_removed_by_raw_id_or_mention(stack: Stack) -> None:
    opened = await slash(stack, f"access hr private {CHANNEL} W0READER22", user="UADMIN")
    in_channel = await slash(stack, "docs", user=OTHER, channel=CHANNEL)
    elsewhere = await slash(stack, "docs", user=OTHER, channel="C1")
    closed = await slash(stack, f"access hr remove <#{CHANNEL}|secret>", user="UADMIN")
    after = await slash(stack, "docs", user=OTHER, channel=CHANNEL)

    assert opened == f"`hr` — private: in a DM by <@W0READER22>; anyone in <#{CHANNEL}>"
    assert "Salary bands" in in_channel and elsewhere == "No documents."
    assert closed == "`hr` — private: in a DM by <@W0READER22>"
    assert after == "No documents."
    public = await slash(stack, "access hr public", user="UADMIN")
    assert public == "`hr` — public, everywhere"


async def test_slack_a_collection_named_with_an_ampersand_is_found_as_slack_sends_it(
    stack: Stack,
) -> None:
    knowledge = stack.app.knowledge
    rnd = await knowledge.store.ensure_collection("r&d", knowledge.embedder)
    await knowledge.ingestor.store_parsed(
        document_from_text("plan.md", "Lab plan", "The lab opens in March."),
        rnd,
        source="plan.md",
        digest="r1",
        size_bytes=10,
    )

    listed = await slash(stack, "docs r&amp;d", user=OTHER, channel="D0OTHER01")
    private = await slash(stack, f"access r&amp;d private <@{READER}|reader>", user="UADMIN")

    assert "Lab plan" in listed and "Salary bands" not in listed
    assert private == f"`r&d` — private: in a DM by <@{READER}>"


BAD = {
    "access hr private @alice": "`@alice` arrived as a plain name, not a user id",
    "access hr #general": "`#general` arrived as a plain name, not a channel id",
    "access hr private frobnicate": "`frobnicate` is not public, private, remove",
    "access hr public private": "Choose `public` or `private`, not both.",
    "access hr private remove": "`remove` needs a @user or #channel after it.",
    "access hr <!subteam^S0HR|@hr-team>": "A user group cannot be a reader",
    "access": "Usage: `/deskbot access COLLECTION",
    "access nope private": "no collection named 'nope'",
}


async def test_slack_bad_input_is_one_line_and_changes_nothing(stack: Stack) -> None:
    said = {text: await slash(stack, text, user="UADMIN") for text in BAD}

    for text, expected in BAD.items():
        assert said[text].startswith(expected) and "\n" not in said[text], (text, said[text])
    found = await hr(stack)
    assert (found.visibility, found.allowed_roles, found.allowed_channels) == ("public", [], [])


# --- Discord --------------------------------------------------------------------------


@pytest.fixture
async def bot(
    discord_settings: SettingsFor, discord_api: FakeDiscord, openai_server: ScriptedOpenAI
) -> AsyncIterator[Bot]:
    """Admins: Manage Server (ADMIN_ID has it through the Admin role)."""
    async with running(discord_settings(), discord_api, openai_server) as started:
        await add_document(started.app, "hr", "Salary bands", "Salary band B3 pays 70 million.")
        yield started


async def access(bot: Bot, user: str = ADMIN_ID, **options: Any) -> str:
    """``/docs access collection:hr ...`` in #general; the ephemeral answer."""
    asked = bot.fake.slash(
        "docs", {"collection": "hr", **options}, subcommand="access", user_id=user
    )
    reply = await interaction_reply(bot.fake, asked)
    content = str(reply.data["content"])
    assert reply.data["flags"] & EPHEMERAL
    if "<@" in content:  # naming readers pings no one
        assert reply.data["allowed_mentions"] == {"parse": []}
    return content


async def listed(bot: Bot, user: str, *, channel: str = CHANNEL_ID, dm: bool = False) -> str:
    """``/docs list`` from ``user`` in ``channel`` or their DM with the bot."""
    asked = bot.fake.slash("docs", {}, subcommand="list", user_id=user, channel_id=channel, dm=dm)
    return str((await interaction_reply(bot.fake, asked)).data["content"])


async def test_discord_a_non_admin_is_refused_and_nothing_changes(bot: Bot) -> None:
    said = await access(bot, USER_ID, private=True, member=USER_ID)

    assert "Manage Server or an admin role" in said and "change who may read" in said
    found = await bot.app.knowledge.store.get_collection("hr")
    assert (found.visibility, found.allowed_roles) == ("public", [])


async def test_discord_an_admin_opens_a_private_collection_to_a_member(bot: Bot) -> None:
    said = await access(bot, private=True, member=USER_ID, role=HR_ROLE_ID)

    assert said == f"`hr` — private: in a DM by <@&{HR_ROLE_ID}>, <@{USER_ID}>"
    assert "Salary bands" in await listed(bot, USER_ID, dm=True)
    assert await listed(bot, OWNER_ID, dm=True) == "No documents."
    assert await listed(bot, USER_ID) == "No documents."  # in a guild channel: not a DM
    shown = await access(bot)
    assert shown == said


async def test_discord_a_role_reads_in_its_members_dms(
    discord_settings: SettingsFor, discord_api: FakeDiscord, openai_server: ScriptedOpenAI
) -> None:
    with discord_api.world.lock:
        discord_api.world.member_roles[OWNER_ID] = [HR_ROLE_ID]  # before the member cache fills
    async with running(discord_settings(), discord_api, openai_server) as bot:
        await add_document(bot.app, "hr", "Salary bands", "Salary band B3 pays 70 million.")
        said = await access(bot, private=True, role=HR_ROLE_ID)
        holder = await listed(bot, OWNER_ID, dm=True)
        other = await listed(bot, USER_ID, dm=True)

    assert said == f"`hr` — private: in a DM by <@&{HR_ROLE_ID}>"
    assert "Salary bands" in holder and other == "No documents."


async def test_discord_a_channel_is_allowed_then_removed(bot: Bot) -> None:
    opened = await access(bot, channel=OTHER_CHANNEL_ID)
    there = await listed(bot, OWNER_ID, channel=OTHER_CHANNEL_ID)
    here = await listed(bot, OWNER_ID)
    closed = await access(bot, channel=OTHER_CHANNEL_ID, remove=True)

    assert opened == f"`hr` — public, in channels <#{OTHER_CHANNEL_ID}>"
    assert "Salary bands" in there and here == "No documents."
    assert closed == "`hr` — public, everywhere"
    assert "Salary bands" in await listed(bot, OWNER_ID)


async def test_discord_bad_input_is_one_line_and_changes_nothing(bot: Bot) -> None:
    missing = bot.fake.slash(
        "docs", {"collection": "nope", "private": True}, subcommand="access", user_id=ADMIN_ID
    )
    said = [
        str((await interaction_reply(bot.fake, missing)).data["content"]),
        await access(bot, remove=True),
        await access(bot, private=True, role=GUILD_ID),  # @everyone
    ]

    assert said[0] == "no collection named 'nope'"
    assert said[1].startswith("`remove:` takes off the role, member or channel")
    assert said[2].startswith("@everyone is every member")
    assert all("\n" not in s for s in said)
    found = await bot.app.knowledge.store.get_collection("hr")
    assert (found.visibility, found.allowed_roles, found.allowed_channels) == ("public", [], [])
