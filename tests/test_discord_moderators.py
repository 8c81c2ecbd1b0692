"""What moderators and members do with a decision on Discord, through the fake Discord.

Reply drafts sent as they are or edited, appeals rejected with a reason, mod-log posts that
grey out what was done (and refuse a second moderator's stale press), the channel notice
for a member whose DMs are closed, which channels are moderated, edited messages, and
strikes that expire. The harness (tiny Korean/English model, low thresholds) is
``test_discord_moderation``'s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import tests.test_discord_moderation as harness
from tests.fakes.discord_api import (
    ADMIN_ID,
    CHANNEL_ID,
    GUILD_ID,
    OTHER_CHANNEL_ID,
    OWNER_ID,
    USER_ID,
    FakeDiscord,
)
from tests.fakes.openai_server import ScriptedOpenAI
from tests.test_discord import (
    EPHEMERAL,
    Bot,
    SettingsFor,
    bot_messages,
    custom_ids,
    interaction_reply,
    running,
    settle,
)
from tests.test_discord_moderation import (
    CLEAN,
    HATE,
    HATE_KO,
    MOD_LOG,
    acted,
    button,
    field,
    logged,
    use_policy,
)
from tests.test_slack import until

pytestmark = pytest.mark.e2e

model_dir = harness.model_dir
bot = harness.bot
LLM_DRAFT = "Please keep this a respectful place for everyone."
MOD = 1 << 13  # Manage Messages
ACCEPTED = "Your appeal was accepted: the strike is removed and any timeout lifted."
ONLY_ALICE = {"parse": [], "users": [USER_ID], "replied_user": True}


@pytest.fixture
async def bare_bot(
    discord_settings: SettingsFor,
    discord_api: FakeDiscord,
    openai_server: ScriptedOpenAI,
    model_dir: Path,
) -> AsyncIterator[Bot]:
    """The bot with no language model configured: drafts come from the templates."""
    settings = discord_settings(
        classifier_model=model_dir,
        classifier_mode="local",
        openai_base_url=None,
        openai_api_key=None,
    )
    assert not settings.llm_configured
    async with running(settings, discord_api, openai_server) as started:
        yield started


def disabled(post: dict[str, Any]) -> list[str]:
    """The verbs of the post's greyed-out buttons."""
    rows = post.get("components") or []
    found = [c for row in rows for c in row["components"] if c.get("disabled")]
    return [str(c["custom_id"]).split(":")[2] for c in found]


async def audited(bot: Bot, action: str) -> list[dict[str, Any]]:
    return [
        r for r in await bot.client.moderation.store.audit_rows(GUILD_ID) if r["action"] == action
    ]


async def audited_soon(bot: Bot, action: str) -> list[dict[str, Any]]:
    """The audit rows for ``action`` once there is one: it is written after the reply is up."""
    for _ in range(600):  # 30 s
        rows = await audited(bot, action)
        if rows:
            break
        await asyncio.sleep(0.05)
    return rows


async def draft_for(bot: Bot, post: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A moderator presses Draft reply: the press and the ephemeral draft, once shown."""
    pressed = bot.fake.click(button(post, "draft"), message=post, user_id=OWNER_ID)
    token = pressed["token"]
    draft = await until(lambda: (o := bot.fake.original(token)) and "Draft" in o["content"] and o)
    assert draft["flags"] & EPHEMERAL
    return pressed, draft


# --- reply drafts ------------------------------------------------------------------------


async def test_a_drafted_reply_is_sent_as_a_reply_to_the_flagged_message(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    flagged = bot.fake.send_message(content=HATE)
    (post,) = await logged(bot)
    bot.openai.reply_text(LLM_DRAFT)
    pressed, draft = await draft_for(bot, post)
    assert LLM_DRAFT in draft["content"]

    bot.fake.click(button(draft, "send"), message=draft, user_id=OWNER_ID)

    (reply,) = await until(lambda: bot_messages(bot.fake, CHANNEL_ID))
    assert reply["content"] == LLM_DRAFT
    assert reply["message_reference"]["message_id"] == flagged["id"]
    (call,) = bot.fake.calls_to("POST", rf"/channels/{CHANNEL_ID}/messages")
    assert call.json["allowed_mentions"] == ONLY_ALICE
    shown = await until(
        lambda: (o := bot.fake.original(pressed["token"])) and "Sent" in o["content"] and o
    )
    assert shown["content"].startswith("Sent") and shown["flags"] & EPHEMERAL
    assert custom_ids(shown) == []  # sent once: its buttons are gone
    (row,) = await audited(bot, "moderation.reply")  # recorded before "Sent" showed
    assert row["actor"] == OWNER_ID and row["details"]["message_id"] == reply["id"]
    assert await audited(bot, "moderation.draft")


async def test_without_a_model_an_edited_template_reaches_a_member_whose_message_is_gone(
    bare_bot: Bot,
) -> None:
    bot = bare_bot
    await use_policy(bot, "enforce")
    bot.fake.send_message(content=HATE_KO)
    (post,) = await logged(bot)
    assert disabled(post) == ["delete"]  # the bot deleted it already
    _, draft = await draft_for(bot, post)
    assert "서로 존중하는" in draft["content"]  # the Korean template

    opened = bot.fake.click(button(draft, "edit"), message=draft, user_id=OWNER_ID)
    form = await interaction_reply(bot.fake, opened)
    assert form.type == 9 and "서로 존중하는" in str(form.data["components"])
    edited = "다른 분들을 존중해 주세요."
    bot.fake.submit_modal(
        str(form.data["custom_id"]), {"draft": edited}, user_id=OWNER_ID, message=draft
    )

    (said,) = await until(lambda: bot_messages(bot.fake, CHANNEL_ID))
    assert said["content"] == f"<@{USER_ID}> {edited}" and "message_reference" not in said
    calls = bot.fake.calls_to("POST", rf"/channels/{CHANNEL_ID}/messages")
    assert [c.status for c in calls] == [400, 200]  # the reply was refused: no message
    assert calls[1].json["allowed_mentions"]["users"] == [USER_ID]
    (row,) = await audited_soon(bot, "moderation.reply")
    assert row["details"]["edited"] is True and row["reason"] == edited
    assert bot.openai.chat_requests() == []


# --- appeals -----------------------------------------------------------------------------


async def appeal(bot: Bot) -> dict[str, Any]:
    """The member appeals the decision on their message; the review post in the thread."""
    dm = bot.fake.dm_channel_id(USER_ID)
    (notice,) = await until(lambda: bot_messages(bot.fake, dm))
    opened = bot.fake.click(custom_ids(notice)[0], message=notice, user_id=USER_ID)
    form = await interaction_reply(bot.fake, opened)
    bot.fake.submit_modal(str(form.data["custom_id"]), {"reason": "a quote"}, user_id=USER_ID)
    post = bot_messages(bot.fake, MOD_LOG)[0]
    reviews: list[dict[str, Any]] = await until(lambda: bot_messages(bot.fake, post["id"]))
    return reviews[0]


async def test_reject_asks_the_moderators_reason_and_the_member_is_told_it(bot: Bot) -> None:
    await use_policy(bot, "enforce")
    bot.fake.send_message(content=HATE)
    await logged(bot)
    review = await appeal(bot)

    pressed = bot.fake.click(button(review, "reject"), message=review, user_id=OWNER_ID)
    form = await interaction_reply(bot.fake, pressed)
    assert form.type == 9
    why = "Quoting it still repeats it here"
    modal = str(form.data["custom_id"])
    bot.fake.submit_modal(modal, {"reason": why}, user_id=OWNER_ID, message=review)

    dm = bot.fake.dm_channel_id(USER_ID)
    told = await until(lambda: bot_messages(bot.fake, dm)[1:])
    assert told[0]["content"] == f"Your appeal was rejected ({why})."
    decided = bot.fake.messages_in(review["channel_id"])[0]
    assert f"**rejected** by <@{OWNER_ID}>: {why}" in decided["content"]
    assert custom_ids(decided) == []
    history = await bot.client.moderation.store.history(GUILD_ID, USER_ID)
    assert [(a.status, a.review_reason) for a in history.appeals] == [("rejected", why)]
    assert history.active_strikes == 1

    late = bot.fake.click(button(review, "accept"), message=review, user_id=OWNER_ID)
    answer = await interaction_reply(bot.fake, late)
    assert f"already rejected by <@{OWNER_ID}>" in answer.data["content"]


# --- the mod-log post after a press ----------------------------------------------------------


async def test_approve_greys_the_post_and_a_stale_press_is_refused(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    bot.fake.send_message(content=HATE)
    (post,) = await logged(bot)
    assert disabled(post) == []

    bot.fake.click(button(post, "approve"), message=post, user_id=OWNER_ID)
    now = await until(lambda: (p := bot_messages(bot.fake, MOD_LOG)[0]) and disabled(p) and p)
    stale = bot.fake.click(button(post, "delete"), message=post, user_id=OWNER_ID)
    refused = await interaction_reply(bot.fake, stale)

    assert disabled(now) == ["approve", "delete", "timeout60", "timeout1440", "kick"]
    assert field(now, "Moderators").startswith(f"<@{OWNER_ID}>: approved")
    assert refused.data["flags"] & EPHEMERAL
    assert refused.data["content"].startswith(f"Already approved by <@{OWNER_ID}>")
    await settle()
    assert acted(bot.fake) == []
    assert len(await audited(bot, "moderation.approve")) == 1


async def test_two_moderators_pressing_approve_at_once_approve_once(bot: Bot) -> None:
    await use_policy(bot, "enforce")
    for count in (1, 2):  # the second decision times the member out
        bot.fake.send_message(content=HATE)
        await logged(bot, count)
    post = bot_messages(bot.fake, MOD_LOG)[1]

    presses = [
        bot.fake.click(button(post, "approve"), message=post, user_id=OWNER_ID),
        bot.fake.click(button(post, "approve"), message=post, user_id=ADMIN_ID, permissions=MOD),
    ]
    replies = [await interaction_reply(bot.fake, p) for p in presses]

    assert sorted(r.type for r in replies) == [4, 7]  # one refused ephemerally, one acted
    (refused,) = [r for r in replies if r.type == 4]
    assert refused.data["flags"] & EPHEMERAL
    await settle()
    assert len(await audited(bot, "moderation.approve")) == 1
    lifted = bot.fake.calls_to("PATCH", rf"/guilds/{GUILD_ID}/members/{USER_ID}")[1:]
    assert [c.json for c in lifted] == [{"communication_disabled_until": None}]


async def test_kick_removes_the_member_and_greys_every_member_action(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    bot.fake.send_message(content=HATE)
    (post,) = await logged(bot)

    bot.fake.click(button(post, "kick"), message=post, user_id=OWNER_ID)
    now = await until(lambda: (p := bot_messages(bot.fake, MOD_LOG)[0]) and disabled(p) and p)
    late = bot.fake.click(button(post, "timeout60"), message=now, user_id=OWNER_ID)
    refused = await interaction_reply(bot.fake, late)

    assert USER_ID in bot.fake.kicked and "kick by" in str(bot.fake.kicked[USER_ID])
    assert disabled(now) == ["timeout60", "timeout1440", "kick"]
    assert "already removed" in refused.data["content"]
    assert [r["actor"] for r in await audited(bot, "moderation.kick")] == [OWNER_ID]
    assert bot.fake.calls_to("PATCH", rf"/guilds/{GUILD_ID}/members/{USER_ID}") == []


async def test_a_kick_discord_refuses_is_told_and_not_recorded(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    bot.fake.send_message(content=HATE, author_id=ADMIN_ID)  # Admin's role is above the bot's
    (post,) = await logged(bot)

    pressed = bot.fake.click(button(post, "kick"), message=post, user_id=OWNER_ID)
    refused = await interaction_reply(bot.fake, pressed)

    assert refused.data["flags"] & EPHEMERAL
    assert "role must be above" in refused.data["content"]
    assert bot.fake.kicked == {} and await audited(bot, "moderation.kick") == []
    assert disabled(bot_messages(bot.fake, MOD_LOG)[0]) == []  # still to be done
    history = await bot.client.moderation.store.history(GUILD_ID, ADMIN_ID)
    assert history.active_strikes == 0


# --- closed DMs --------------------------------------------------------------------------------


async def test_a_member_with_closed_dms_is_told_in_the_channel_briefly(bot: Bot) -> None:
    await use_policy(bot, "enforce")
    bot.client.moderation.notice_seconds = 1.5
    bot.fake.close_dms(USER_ID)
    bot.fake.send_message(content=HATE)

    (notice,) = await until(lambda: bot_messages(bot.fake, CHANNEL_ID))
    dm = bot.fake.dm_channel_id(USER_ID)
    assert [c.status for c in bot.fake.calls_to("POST", rf"/channels/{dm}/messages")] == [403]
    assert notice["content"].startswith(f"<@{USER_ID}> ") and "hateful speech" in notice["content"]
    (posted,) = bot.fake.calls_to("POST", rf"/channels/{CHANNEL_ID}/messages")
    assert posted.json["allowed_mentions"] == {"parse": [], "users": [USER_ID]}
    other = bot.fake.click(custom_ids(notice)[0], message=notice, user_id=ADMIN_ID)
    mine = bot.fake.click(custom_ids(notice)[0], message=notice, user_id=USER_ID)
    assert "Only the member" in (await interaction_reply(bot.fake, other)).data["content"]
    form = await interaction_reply(bot.fake, mine)
    assert form.type == 9  # the appeal form
    await until(lambda: not bot_messages(bot.fake, CHANNEL_ID))
    assert notice["id"] in [e.target_id for e in bot.fake.audit_log]

    bot.fake.submit_modal(str(form.data["custom_id"]), {"reason": "a quote"}, user_id=USER_ID)
    post = bot_messages(bot.fake, MOD_LOG)[0]
    (review,) = await until(lambda: bot_messages(bot.fake, post["id"]))
    bot.fake.click(button(review, "accept"), message=review, user_id=OWNER_ID)
    (verdict,) = await until(lambda: bot_messages(bot.fake, CHANNEL_ID))
    assert verdict["content"] == f"<@{USER_ID}> {ACCEPTED}"
    await until(lambda: not bot_messages(bot.fake, CHANNEL_ID))  # taken down too


# --- which channels, which messages -----------------------------------------------------------


async def moderation(bot: Bot, subcommand: str, **options: Any) -> str:
    """An admin runs ``/moderation <subcommand>``; the ephemeral answer."""
    ran = bot.fake.slash("moderation", options, subcommand=subcommand, user_id=ADMIN_ID)
    return str((await interaction_reply(bot.fake, ran)).data["content"])


async def test_channels_and_exemptions_can_be_set_and_taken_back(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    store = bot.client.moderation.store

    assert await moderation(bot, "channels", add=CHANNEL_ID) == (
        f"Moderation: moderated channels: <#{CHANNEL_ID}>."
    )
    assert (await store.policy(GUILD_ID)).channels == {CHANNEL_ID}
    assert "never moderated" in await moderation(bot, "channels", add=OTHER_CHANNEL_ID)
    assert "every text channel" in await moderation(bot, "channels", remove=CHANNEL_ID)
    assert (await store.policy(GUILD_ID)).channels is None
    assert "exempt channel:" in await moderation(bot, "channels", remove=CHANNEL_ID)

    await moderation(bot, "exempt", channel=CHANNEL_ID)
    bot.fake.send_message(content=HATE)
    await settle()
    assert bot_messages(bot.fake, MOD_LOG) == []
    said = await moderation(bot, "exempt", channel=CHANNEL_ID, remove=True)
    bot.fake.send_message(content=HATE)
    await logged(bot)
    assert CHANNEL_ID not in said and (await store.policy(GUILD_ID)).exempt_channels == frozenset()


async def test_a_thread_follows_its_channel_and_the_mod_log_threads_are_never_moderated(
    bot: Bot,
) -> None:
    await use_policy(bot, "shadow")
    in_log = bot.fake.start_thread(MOD_LOG, "a member's thread")["id"]
    in_general = bot.fake.start_thread(CHANNEL_ID, "talk")["id"]

    bot.fake.send_message(in_log, HATE)
    bot.fake.send_message(in_general, HATE)
    (post,) = await logged(bot)
    await moderation(bot, "exempt", channel=CHANNEL_ID)
    bot.fake.send_message(in_general, HATE_KO)
    await settle()

    assert f"<#{in_general}>" in field(post, "Channel")
    assert len(bot_messages(bot.fake, MOD_LOG)) == 1


async def test_a_clean_message_edited_into_abuse_is_moderated_once(bot: Bot) -> None:
    await use_policy(bot, "shadow")
    sent = bot.fake.send_message(content=CLEAN)
    await settle()
    assert bot_messages(bot.fake, MOD_LOG) == []

    bot.fake.edit_message(CHANNEL_ID, sent["id"], HATE)
    (post,) = await logged(bot)
    bot.fake.reconnect(replay_all=True)
    await bot.fake.wait_until(lambda: bot.fake.resumes == 1)
    await settle()

    assert field(post, "Excerpt") == f"||{HATE}||"
    assert len(bot_messages(bot.fake, MOD_LOG)) == 1
    assert len(await bot.client.moderation.store.events(GUILD_ID)) == 1


async def test_strikes_escalate_within_the_window_and_expire_after_it(bot: Bot) -> None:
    await use_policy(bot, "enforce")
    for count in (1, 2):
        bot.fake.send_message(content=HATE)
        await logged(bot, count)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)  # the window is 30 days
    bot.client.moderation.store.clock = lambda: later

    bot.fake.send_message(content=HATE)
    posts = await logged(bot, 3)

    actions = [field(p, "Action") for p in posts]
    assert actions == ["delete + warn", "delete + timeout 1 h", "delete + warn"]
    assert [field(p, "Strikes") for p in posts] == ["1", "2", "1"]
