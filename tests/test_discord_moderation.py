"""Discord moderation through its front door: the real discord.py client on the fake Discord.

A tiny local classifier is trained in the test from three dozen Korean and English lines
(hate about 0.5, clean text under 0.4), so the policy's thresholds here are low; what is
under test is what the bot does with a decision: the REST calls, the mod-log post and its
buttons, the member's DM and appeal. Harness: ``test_discord``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.discord.modlog import draft_template
from bot.moderation import Policy
from tests.fakes.discord_api import (
    ADMIN_ID,
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    HR_ROLE_ID,
    OTHER_CHANNEL_ID,
    OWNER_ID,
    USER_ID,
    FakeDiscord,
)
from tests.fakes.openai_server import ScriptedOpenAI
from tests.test_classifier import comment_rows, write_table
from tests.test_discord import (
    EPHEMERAL,
    OTHER_BOT,
    Bot,
    SettingsFor,
    bot_messages,
    custom_ids,
    interaction_reply,
    running,
    settle,
)
from tests.test_slack import until
from tools.classifier import read_dataset, train_classifier

pytestmark = pytest.mark.e2e

HATE = "Those people are vermin, throw them out"
HATE_KO = "이민자들은 벌레다 다 쫓아내라"
CLEAN = "Who has the meeting notes?"
MOD_LOG = OTHER_CHANNEL_ID
MEMBER = f"/guilds/{GUILD_ID}/members/{USER_ID}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local classifier trained on 36 labelled lines, Korean and English."""
    folder = tmp_path_factory.mktemp("moderation")
    table = write_table(folder / "comments.csv", comment_rows())
    data = read_dataset(table, text_col="comments", label_col="hate")
    model = asyncio.run(train_classifier(data, holdout=0.25))
    model.save(folder / "model")
    return folder / "model"


@pytest.fixture
async def bot(
    discord_settings: SettingsFor,
    discord_api: FakeDiscord,
    openai_server: ScriptedOpenAI,
    model_dir: Path,
) -> AsyncIterator[Bot]:
    settings = discord_settings(classifier_model=model_dir, classifier_mode="local")
    async with running(settings, discord_api, openai_server) as started:
        yield started


async def use_policy(bot: Bot, mode: str = "shadow") -> None:
    """Low thresholds for the tiny model; #random is the mod-log; HR is exempt."""
    policy = Policy(
        guild_id=GUILD_ID,
        mode=mode,  # type: ignore[arg-type]
        thresholds={"hate": {"log": 0.4, "delete": 0.45}, "offensive": {"log": 0.4}},
        exempt_roles=frozenset({HR_ROLE_ID}),
        log_channel_id=MOD_LOG,
    )
    await bot.client.moderation.store.save_policy(policy, actor="test")
    assert bot.client.moderation.moderator is not None
    bot.client.moderation.moderator.forget(GUILD_ID)


async def logged(bot: Bot, count: int = 1) -> list[dict[str, Any]]:
    """The mod-log posts, once ``count`` are there."""
    await until(lambda: len(bot_messages(bot.fake, MOD_LOG)) >= count)
    return bot_messages(bot.fake, MOD_LOG)


def field(post: dict[str, Any], name: str) -> str:
    (embed,) = post["embeds"]
    return str(next(f["value"] for f in embed["fields"] if f["name"] == name))


def button(post: dict[str, Any], verb: str) -> str:
    return next(c for c in custom_ids(post) if c.startswith(f"deskbot:mod:{verb}:"))


def acted(fake: FakeDiscord) -> list[str]:
    """Every moderation REST call: deletes, member edits, kicks and bans."""
    calls = [
        *fake.calls_to("DELETE", r"/channels/\d+/messages/\d+"),
        *fake.calls_to("PATCH", r"/guilds/\d+/members/\d+"),
        *fake.calls_to("DELETE", r"/guilds/\d+/members/\d+"),
        *fake.calls_to("PUT", r"/guilds/\d+/bans/\d+"),
    ]
    return [f"{c.method} {c.path}" for c in calls]


async def test_shadow_mode_logs_what_it_would_have_done_and_does_nothing(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    sent = bot.fake.send_message(content=HATE)

    (post,) = await logged(bot)
    await settle()

    assert field(post, "Action").startswith("would have: delete")
    assert field(post, "Excerpt") == f"||{HATE}||"  # hate is spoiler-wrapped
    assert f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{sent['id']}" in field(
        post, "Channel"
    )
    assert f"<@{USER_ID}>" in field(post, "Author") and "hate 0." in field(post, "Scores")
    assert [c.split(":")[2] for c in custom_ids(post)] == [
        "approve",
        "delete",
        "timeout60",
        "timeout1440",
        "kick",
        "draft",
    ]
    assert acted(bot.fake) == []
    assert bot_messages(bot.fake, bot.fake.dm_channel_id(USER_ID)) == []


async def test_enforce_deletes_then_strikes_escalate_to_a_timeout(bot: Bot) -> None:
    await use_policy(bot, "enforce")
    first = bot.fake.send_message(content=HATE)
    await logged(bot)
    second = bot.fake.send_message(content=HATE_KO)

    posts = await logged(bot, 2)
    await until(lambda: len(acted(bot.fake)) >= 3)

    assert acted(bot.fake) == [
        f"DELETE /channels/{CHANNEL_ID}/messages/{first['id']}",
        f"DELETE /channels/{CHANNEL_ID}/messages/{second['id']}",
        f"PATCH {MEMBER}",
    ]
    (timeout,) = bot.fake.calls_to("PATCH", MEMBER)
    assert timeout.json["communication_disabled_until"]
    assert "deskbot moderation" in timeout.headers["x-audit-log-reason"]
    assert [field(p, "Action") for p in posts] == ["delete + warn", "delete + timeout 1 h"]
    assert [field(p, "Strikes") for p in posts] == ["1", "2"]
    dms = await until(lambda: bot_messages(bot.fake, bot.fake.dm_channel_id(USER_ID)))
    assert custom_ids(dms[0]) == [button(posts[0], "approve").replace("approve", "appeal")]
    assert "벌레" not in dms[0]["content"]  # the DM says which rule, not the text again


async def test_exempt_roles_moderators_and_bots_are_never_actioned(bot: Bot) -> None:
    await use_policy(bot, "enforce")
    bot.fake.send_message(content=HATE, author_id=OWNER_ID)  # can manage messages
    bot.fake.send_message(content=HATE, author_id=OTHER_BOT, bot=True)  # another bot
    bot.fake.send_message(content=HATE, author_id=BOT_ID)  # deskbot itself
    bot.fake.send_message(content=CLEAN)  # clean
    with bot.fake.world.lock:
        bot.fake.world.member_roles[USER_ID] = [HR_ROLE_ID]  # an exempt role
    bot.fake.send_message(content=HATE)

    await settle()

    assert bot_messages(bot.fake, MOD_LOG) == [] and acted(bot.fake) == []


async def test_a_button_pressed_without_permission_is_refused(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    bot.fake.send_message(content=HATE)
    (post,) = await logged(bot)

    pressed = bot.fake.click(button(post, "delete"), message=post, user_id=USER_ID)
    refused = await interaction_reply(bot.fake, pressed)

    assert refused.type == 4 and refused.data["flags"] & EPHEMERAL
    assert "Manage Messages" in refused.data["content"]
    await settle()
    assert acted(bot.fake) == []


async def test_approve_lifts_the_timeout_and_says_who(bot: Bot) -> None:
    await use_policy(bot, "enforce")
    bot.fake.send_message(content=HATE)
    await logged(bot)
    bot.fake.send_message(content=HATE)
    post = (await logged(bot, 2))[1]

    bot.fake.click(button(post, "approve"), message=post, user_id=OWNER_ID)

    lifted = await until(lambda: bot.fake.calls_to("PATCH", MEMBER)[1:])
    assert lifted[0].json == {"communication_disabled_until": None}
    edited = await until(lambda: "Moderators" in str(bot.fake.messages_in(MOD_LOG)[1]))
    assert edited
    note = field(bot.fake.messages_in(MOD_LOG)[1], "Moderators")
    assert note.startswith(f"<@{OWNER_ID}>: approved")
    history = await bot.client.moderation.store.history(GUILD_ID, USER_ID)
    assert history.active_strikes == 1


async def test_an_appeal_goes_from_the_dm_to_a_thread_and_back(bot: Bot) -> None:
    await use_policy(bot, "enforce")
    bot.fake.send_message(content=HATE_KO)
    (post,) = await logged(bot)
    dm = bot.fake.dm_channel_id(USER_ID)
    (notice,) = await until(lambda: bot_messages(bot.fake, dm))
    assert "혐오" in notice["content"]  # Korean text, Korean DM

    opened = bot.fake.click(custom_ids(notice)[0], message=notice, user_id=USER_ID)
    form = await interaction_reply(bot.fake, opened)
    assert form.type == 9
    modal_id = str(form.data["custom_id"])
    bot.fake.submit_modal(modal_id, {"reason": "I was quoting a news article"}, user_id=USER_ID)

    (review,) = await until(lambda: bot_messages(bot.fake, post["id"]))  # thread id = message id
    assert "quoting a news article" in review["content"]
    bot.fake.click(button(review, "accept"), message=review, user_id=OWNER_ID)

    told = await until(lambda: bot_messages(bot.fake, dm)[1:])
    assert "받아들여졌습니다" in told[0]["content"]
    history = await bot.client.moderation.store.history(GUILD_ID, USER_ID)
    assert history.active_strikes == 0
    assert [a.status for a in history.appeals] == ["accepted"]


async def test_a_draft_reply_comes_from_the_language_model_ephemerally(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    bot.fake.send_message(content=HATE)
    (post,) = await logged(bot)
    bot.openai.reply_text("Please keep this a respectful place for everyone.")

    pressed = bot.fake.click(button(post, "draft"), message=post, user_id=OWNER_ID)

    shown = await until(lambda: (o := bot.fake.original(pressed["token"])) and o["content"])
    assert "respectful place for everyone" in shown
    assert bot.fake.original(pressed["token"])["flags"] & EPHEMERAL  # type: ignore[index]
    (request,) = bot.openai.chat_requests()
    assert HATE in str(request)


def test_without_a_language_model_the_draft_is_a_template_in_the_message_language() -> None:
    assert "서로 존중하는" in draft_template("hate", HATE_KO)
    assert "respectful" in draft_template("offensive", "You idiot")


async def test_only_manage_server_changes_the_policy(bot: Bot) -> None:
    refused = bot.fake.slash("moderation", {"mode": "enforce"}, subcommand="mode")
    changed = bot.fake.slash("moderation", {"mode": "enforce"}, subcommand="mode", user_id=ADMIN_ID)
    no = await interaction_reply(bot.fake, refused)
    yes = await interaction_reply(bot.fake, changed)
    shown = bot.fake.slash("moderation", subcommand="config", user_id=ADMIN_ID)
    config = await interaction_reply(bot.fake, shown)

    assert "Manage Server" in no.data["content"] and no.data["flags"] & EPHEMERAL
    assert yes.data["content"] == "Moderation: mode enforce."
    assert "mode: enforce" in config.data["content"]
    policy = await bot.client.moderation.store.policy(GUILD_ID)
    assert policy.mode == "enforce"


async def test_a_burst_from_one_member_is_each_decided_once(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    for n in range(8):
        bot.fake.send_message(content=f"{HATE} {n}")
    bot.fake.send_message(content=CLEAN, mention_bot=False)

    posts = await logged(bot, 8)
    await settle()

    assert len(bot_messages(bot.fake, MOD_LOG)) == 8
    events = await bot.client.moderation.store.events(GUILD_ID)
    assert len(events) == 8 and {e.mode for e in events} == {"shadow"}
    assert all(field(p, "Action").startswith("would have:") for p in posts)
