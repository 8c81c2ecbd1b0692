"""What moderation looks like in Discord: the mod-log embed, its buttons, the member's DM.

Plain JSON bodies of Discord's REST API, as :mod:`bot.discord.format` builds answers, so a
process that speaks only REST can send them. Every button's ``custom_id`` is
``deskbot:mod:<verb>:<id>`` (an event's id, or an appeal's for Accept/Reject): the bot
keeps no view state, so a button still works after a restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.discord.split import defuse_mentions, truncate
from bot.language import in_language_of
from bot.moderation import Decision, EventRecord, severity

__all__ = [
    "APPEAL_REFUSALS",
    "APPEAL_SENT",
    "MEMBER_VERBS",
    "MOD_PREFIX",
    "appeal_notice",
    "appeal_review",
    "channel_notice",
    "disabled_by",
    "draft_template",
    "duration",
    "jump_link",
    "member_notice",
    "modal_value",
    "modlog_message",
    "modlog_rows",
    "parse_custom_id",
    "refused_by_discord",
    "stale",
    "until",
    "with_note",
]

MOD_PREFIX = "deskbot:mod:"
_FIELD_LIMIT = 1024
_EXCERPT_CHARS = 900
_COLOURS = {"hate": 0xC0392B, "offensive": 0xE67E22}
_GREY = 0x95A5A6
# (verb, label, style): 1 primary, 2 secondary, 3 success, 4 danger
_BUTTONS = (
    ("approve", "Approve", 3),
    ("delete", "Delete", 4),
    ("timeout60", "Timeout 1 h", 2),
    ("timeout1440", "Timeout 24 h", 2),
    ("kick", "Kick", 4),
)
MEMBER_VERBS = frozenset({"timeout60", "timeout1440", "kick"})
"""The mod-log buttons that act on the member (a kicked member is out of their reach)."""
_DISABLES = {
    "approve": frozenset({"approve", "delete"}) | MEMBER_VERBS,
    "delete": frozenset({"delete"}),
    "kick": MEMBER_VERBS,
}
_MISSING_PERMISSIONS = 50013  # Discord's code, e.g. for a member whose role is above the bot's
_RULES = {
    "hate": ("hateful speech about who people are", "혐오 표현"),
    "offensive": ("insults or abusive language", "모욕적이거나 공격적인 표현"),
}


def custom_id(verb: str, target: uuid.UUID | str) -> str:
    """A moderation button's or modal's id."""
    return f"{MOD_PREFIX}{verb}:{target}"


def parse_custom_id(value: str) -> tuple[str, uuid.UUID] | None:
    """The verb and id of a moderation ``custom_id``; None if it is not one."""
    if not value.startswith(MOD_PREFIX):
        return None
    verb, _, target = value.removeprefix(MOD_PREFIX).partition(":")
    try:
        return verb, uuid.UUID(target)
    except ValueError:
        return None


def jump_link(guild_id: str, channel_id: str, message_id: str) -> str:
    """The address that opens a message in Discord."""
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def _excerpt(text: str, label: str) -> str:
    shown = truncate(defuse_mentions(" ".join(text.split())).replace("|", "∣"), _EXCERPT_CHARS)
    # hate is hidden behind a spoiler so the mod-log does not repeat it to every reader
    return f"||{shown}||" if label == "hate" else shown or "(no text)"


def _scores(scores: Mapping[str, float]) -> str:
    ordered = sorted(scores.items(), key=lambda item: -item[1])
    return " · ".join(f"{label} {score:.2f}" for label, score in ordered)


def _action(decision: Decision) -> str:
    summary = decision.summary()
    return summary if decision.enforced else f"would have: {summary}"


def modlog_message(decision: Decision) -> dict[str, Any]:
    """The mod-log post for one decision: the embed and the moderators' buttons."""
    link = jump_link(decision.guild_id, decision.channel_id, decision.message_id)
    fields = [
        ("Author", f"<@{decision.author_id}>", True),
        ("Channel", f"<#{decision.channel_id}> · [jump]({link})", True),
        ("Strikes", str(decision.strikes), True),
        ("Excerpt", _excerpt(decision.excerpt, decision.label), False),
        ("Scores", f"{_scores(decision.scores)} ({decision.classifier})", False),
        ("Action", _action(decision), False),
    ]
    embed = {
        "title": f"{decision.label} · {decision.mode}",
        "color": _COLOURS.get(decision.label, _GREY),
        "fields": [
            {"name": n, "value": truncate(v, _FIELD_LIMIT), "inline": i} for n, v, i in fields
        ],
        "footer": {"text": f"event {decision.event_id}"},
    }
    done: set[str] = set()
    if decision.enforced and decision.delete_message:
        done |= _DISABLES["delete"]  # the bot deleted it already
    if decision.enforced and decision.member_action in ("kick", "ban"):
        done |= _DISABLES["kick"]
    return {
        "content": "",
        "embeds": [embed],
        "components": modlog_rows(decision.event_id, done),
        "allowed_mentions": {"parse": []},
    }


def modlog_rows(event_id: uuid.UUID, disabled: Collection[str] = ()) -> list[dict[str, Any]]:
    """The mod-log post's buttons; those in ``disabled`` (verbs) greyed out."""
    first = [
        _button(custom_id(verb, event_id), label, style, disabled=verb in disabled)
        for verb, label, style in _BUTTONS
    ]
    draft = _button(custom_id("draft", event_id), "Draft reply", 1)
    return [{"type": 1, "components": first}, {"type": 1, "components": [draft]}]


def disabled_by(verb: str) -> frozenset[str]:
    """The buttons that no longer make sense once ``verb`` was pressed."""
    return _DISABLES.get(verb, frozenset())


def _button(target: str, label: str, style: int, *, disabled: bool = False) -> dict[str, Any]:
    button = {"type": 2, "style": style, "label": label, "custom_id": target}
    return {**button, "disabled": True} if disabled else button


def stale(event: EventRecord, verb: str) -> str | None:
    """Why a mod-log button pressed on an out-of-date post must not act again (None: it may).

    Read from the stored event, not the post: a second moderator's client may still show
    buttons that the first one's press disabled.
    """
    if event.overturned_at is not None and verb in _DISABLES["approve"]:
        who = f"<@{event.overturned_by}>"
        return f"Already approved by {who}. / {who} 님이 이미 승인했습니다."
    if verb in MEMBER_VERBS and event.enforced and event.action in ("kick", "ban"):
        return "The member was already removed from the server. / 이미 서버에서 내보냈습니다."
    deleted = event.action == "delete" and event.enforced
    if verb == "delete" and (deleted or _bot_deleted(event)):
        return "The message was already deleted. / 메시지가 이미 삭제되었습니다."
    return None


def _bot_deleted(event: EventRecord) -> bool:
    return event.mode == "enforce" and severity(event.threshold_action) >= severity("delete")


def refused_by_discord(code: int, error: str) -> str:
    """The moderator's answer when Discord refused a button's action (nothing was done)."""
    hint = ""
    if code == _MISSING_PERMISSIONS:
        hint = " The bot's role must be above the member's. / 봇 역할이 회원보다 높아야 합니다."
    return f"Discord refused: {error}. / Discord가 거부했습니다.{hint}"


def with_note(embed: Mapping[str, Any], note: str) -> dict[str, Any]:
    """``embed`` with ``note`` (who did what) added to its "Moderators" field."""
    fields = [dict(f) for f in embed.get("fields", [])]
    notes = [f for f in fields if f.get("name") == "Moderators"]
    if notes:
        notes[0]["value"] = truncate(f"{notes[0]['value']}\n{note}", _FIELD_LIMIT)
    else:
        fields.append({"name": "Moderators", "value": truncate(note, _FIELD_LIMIT)})
    return {**embed, "fields": fields}


def _rule(label: str, text: str) -> str:
    english, korean = _RULES.get(label, ("the server's rules", "서버 규칙 위반"))
    return in_language_of(text, english, korean)


def member_notice(decision: Decision, *, can_appeal: bool) -> dict[str, Any]:
    """The DM telling a member what was done and why, with an Appeal button."""
    rule = _rule(decision.label, decision.excerpt)
    english = f"A moderator bot acted on your message ({decision.summary()}): {rule}."
    korean = f"메시지에 조치가 있었습니다 ({decision.summary()}): {rule}."
    body: dict[str, Any] = {
        "content": in_language_of(decision.excerpt, english, korean),
        "allowed_mentions": {"parse": []},
    }
    if can_appeal:
        appeal = _button(custom_id("appeal", decision.event_id), "Appeal / 이의 제기", 2)
        body["components"] = [{"type": 1, "components": [appeal]}]
    return body


def channel_notice(decision: Decision) -> dict[str, Any]:
    """What a member with closed DMs is told in the channel instead: only they are pinged."""
    rule = _rule(decision.label, decision.excerpt)
    english = f"a moderator bot acted on your message ({decision.summary()}): {rule}."
    korean = f"메시지에 조치가 있었습니다 ({decision.summary()}): {rule}."
    text = in_language_of(decision.excerpt, english, korean)
    appeal = _button(custom_id("appeal", decision.event_id), "Appeal / 이의 제기", 2)
    return {
        "content": f"<@{decision.author_id}> {text}",
        "components": [{"type": 1, "components": [appeal]}],
        "allowed_mentions": {"parse": [], "users": [decision.author_id]},
    }


def appeal_review(appeal_id: uuid.UUID, author_id: str, reason: str) -> dict[str, Any]:
    """The appeal in the mod-log thread, with Accept and Reject for moderators."""
    accept = _button(custom_id("accept", appeal_id), "Accept", 3)
    reject = _button(custom_id("reject", appeal_id), "Reject", 4)
    text = truncate(defuse_mentions(reason), 1800)
    return {
        "content": f"Appeal from <@{author_id}>:\n> {text}",
        "components": [{"type": 1, "components": [accept, reject]}],
        "allowed_mentions": {"parse": []},
    }


def appeal_notice(event: EventRecord, *, accepted: bool, reason: str) -> str:
    """The member's DM once a moderator decided their appeal."""
    if accepted:
        return in_language_of(
            event.excerpt,
            "Your appeal was accepted: the strike is removed and any timeout lifted.",
            "이의 제기가 받아들여졌습니다. 경고가 취소되고 타임아웃이 해제되었습니다.",
        )
    why = f" ({reason})" if reason else ""
    return in_language_of(
        event.excerpt,
        f"Your appeal was rejected{why}.",
        f"이의 제기가 거절되었습니다{why}.",
    )


def draft_template(label: str, text: str) -> str:
    """A calm reply explaining the rule, in the message's language, without an LLM."""
    english, korean = _RULES.get(label, ("the server's rules", "서버 규칙 위반"))
    return in_language_of(
        text,
        f"Please keep it respectful: this message was flagged for {english}, which this "
        "server does not allow. Let's keep the discussion about ideas, not people.",
        f"서로 존중하는 대화 부탁드립니다. 이 메시지는 {korean}(으)로 판단되었으며, "
        "이 서버에서는 허용되지 않습니다. 사람이 아니라 의견에 대해 이야기해 주세요.",
    )


APPEAL_SENT = "Your appeal was sent to the moderators. / 이의 제기가 접수되었습니다."
APPEAL_REFUSALS = {
    "duplicate": "You already appealed this decision. / 이미 이의를 제기했습니다.",
    "expired": "The time to appeal this decision has passed. / 이의 제기 기간이 지났습니다.",
    "not_author": "Only the member the decision was about may appeal it. / 본인만 가능합니다.",
    "not_actioned": "Nothing was done to you for this message. / 조치된 내용이 없습니다.",
}


def modal_value(data: dict[str, Any], input_id: str) -> str:
    """A text input's value in a modal submit's rows (action rows or labels)."""
    stack: list[Any] = list(data.get("components", []))
    while stack:
        item = stack.pop()
        if item.get("custom_id") == input_id and "value" in item:
            return str(item["value"])
        stack += item.get("components", [])
        if "component" in item:
            stack.append(item["component"])
    return ""


def until(minutes: int) -> datetime:
    """Now plus ``minutes``, in UTC (a timeout's end)."""
    return datetime.now(UTC) + timedelta(minutes=minutes)


def duration(minutes: int) -> str:
    """``1 h`` or ``90 min``."""
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
