"""Moderation on Discord: every guild message classified, acted on, logged; the buttons.

The gateway listener only filters and claims a message (a RESUME's replay is moderated
once; an edit is moderated again, once per edit), then classifies and acts in a task, so
answering on the same connection never waits for it and a failure here never reaches the
other listeners. The decision itself is the platform-neutral
:class:`bot.moderation.Moderator`'s; this module turns it into REST calls (delete, timeout,
kick, ban, each with an audit-log reason), the member's DM with an *Appeal* button (a
short channel notice when their DMs are closed), and the mod-log post whose buttons
moderators press: each re-checks the presser's permissions, is refused when the stored
event says it was done already, is audited, and greys out what no longer applies. Reply
drafts and appeals live in :mod:`~bot.discord.moddrafts` and :mod:`~bot.discord.modappeals`.
Without a classifier model nothing is moderated.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.classifier import make_comment_classifier
from bot.discord.adapter import first_delivery
from bot.discord.modappeals import Appeals
from bot.discord.moddrafts import DraftReplies
from bot.discord.modlog import (
    channel_notice,
    disabled_by,
    duration,
    member_notice,
    modlog_message,
    modlog_rows,
    parse_custom_id,
    refused_by_discord,
    stale,
    until,
    with_note,
)
from bot.discord.modui import Interaction, greyed_verbs, say, view_of
from bot.discord.rest import DiscordREST, RestError
from bot.metrics import count_decision
from bot.moderation import (
    Decision,
    EventRecord,
    Incoming,
    ModerationError,
    ModerationStore,
    Moderator,
)
from bot.settings import Settings
from bot.state import SharedState
from tools.chat_backend import ChatBackend

__all__ = ["DiscordModeration", "incoming"]

log = logging.getLogger(__name__)

_MODERATED_TYPES = {discord.MessageType.default, discord.MessageType.reply}
_DM_ACTIONS = {"warn", "delete", "timeout", "kick", "ban"}
_NOTICE_ACTIONS = {"warn", "delete", "timeout"}  # a kicked or banned member cannot read it
_DMS_CLOSED = 50007  # Discord: "Cannot send messages to this user"
_POST_VERBS = ("approve", "delete", "timeout60", "timeout1440", "kick")
# Two moderators pressing the same button at once: the first press holds it this long,
# after which the stored event says whether it was done.
_PRESS_SECONDS = 15.0
_BUSY = "Another moderator is doing this right now. / 다른 관리자가 처리하고 있습니다."
_REFUSED = "You need the {} permission for this. / {} 권한이 필요합니다."
_NEEDS = {
    "approve": "manage_messages",
    "delete": "manage_messages",
    "draft": "manage_messages",
    "send": "manage_messages",
    "edit": "manage_messages",
    "editform": "manage_messages",
    "accept": "manage_messages",
    "reject": "manage_messages",
    "rejectform": "manage_messages",
    "timeout60": "moderate_members",
    "timeout1440": "moderate_members",
    "kick": "kick_members",
}
_PERMISSION_NAMES = {
    "manage_messages": "Manage Messages",
    "moderate_members": "Moderate Members",
    "kick_members": "Kick Members",
}


def incoming(message: discord.Message) -> Incoming:
    """What the core classifies: the text a member sees, and who wrote it."""
    parts = [message.content, *(a.filename for a in message.attachments)]
    for embed in message.embeds:
        parts += [embed.title or "", embed.description or ""]
        parts += [f"{f.name} {f.value}" for f in embed.fields]
    author = message.author
    roles: set[str] = set()
    manages = False
    if isinstance(author, discord.Member):
        roles = {str(r.id) for r in author.roles if not r.is_default()}
        roles |= {r.name for r in author.roles if not r.is_default()}
        manages = message.channel.permissions_for(author).manage_messages
    assert message.guild is not None
    parent = getattr(message.channel, "parent_id", None)  # a thread's channel
    return Incoming(
        guild_id=str(message.guild.id),
        channel_id=str(message.channel.id),
        message_id=str(message.id),
        author_id=str(author.id),
        text="\n".join(p for p in parts if p and p.strip()),
        roles=frozenset(roles),
        can_manage_messages=manages,
        is_bot=author.bot,
        parent_channel_id=None if parent is None else str(parent),
    )


class DiscordModeration:
    """The moderation listener, the mod-log buttons and the appeal flow.

    Args:
        settings: The classifier and appeal settings.
        state: The deduper (a replayed message or interaction is handled once).
        rest: How actions reach Discord.
        engine: The database holding policies, events, strikes, appeals and the audit log.
        backend: The language model for combined classification and reply drafts, if any.
        notice_seconds: How long a closed-DM member's channel notice stays up.
    """

    def __init__(
        self,
        settings: Settings,
        state: SharedState,
        rest: DiscordREST,
        engine: AsyncEngine,
        backend: ChatBackend | None = None,
        *,
        notice_seconds: float = 60.0,
    ) -> None:
        self.settings = settings
        self.state = state
        self.rest = rest
        self.backend = backend if settings.llm_configured else None
        self.store = ModerationStore(engine, appeal_days=settings.appeal_days)
        self.moderator: Moderator | None = None
        self.notice_seconds = notice_seconds
        self.drafts = DraftReplies(self.store, rest, self.backend)
        self.appeals = Appeals(self.store, rest, self._tell, self._notice)
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()
        self._notices: dict[str, str] = {}  # channel notice id -> its channel

    async def open(self) -> None:
        """Load the classifier; without a model (and no LLM-only mode) moderation stays off."""
        settings = self.settings
        wanted_llm = settings.classifier_mode == "llm" and self.backend is not None
        if not (settings.classifier_path.exists() or wanted_llm):
            log.info("no classifier model at %s: moderation is off", settings.classifier_path)
            return
        classifier = await make_comment_classifier(settings, self.backend)
        self.moderator = Moderator(
            classifier,
            self.store,
            max_chars=settings.classifier_max_chars,
            observers=[count_decision],
        )

    async def close(self) -> None:
        """Let the moderation tasks still running finish; take channel notices down now."""
        if self.moderator is not None:
            await self.moderator.aclose()  # decides what is queued, so the tasks can end
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for timer in self._timers:
            timer.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        await asyncio.gather(*map(self._unpost, list(self._notices)), return_exceptions=True)

    # --- messages --------------------------------------------------------------------

    async def on_message(self, message: discord.Message, bot_user: discord.ClientUser) -> None:
        """Claim a guild message from a member and moderate it in the background."""
        await self._claim(message, bot_user, str(message.id))

    async def on_edit(
        self,
        message: discord.Message,
        bot_user: discord.ClientUser,
        before: discord.Message | None = None,
    ) -> None:
        """An edited message is moderated again: clean text edited into abuse is caught.

        Only an edit of the text counts (Discord stamps ``edited_at``; a link preview
        arriving does not); each edit is claimed by its time, so a replay is decided once.
        """
        if message.edited_at is None or (before is not None and before.content == message.content):
            return
        await self._claim(message, bot_user, f"{message.id}:{message.edited_at.isoformat()}")

    async def _claim(
        self, message: discord.Message, bot_user: discord.ClientUser, key: str
    ) -> None:
        if self.moderator is None or message.guild is None or message.author.bot:
            return
        if message.author.id == bot_user.id or message.type not in _MODERATED_TYPES:
            return
        claimed = f"discord:moderate:{key}"
        if not await self.state.deduper.claim(claimed, ttl=self.settings.dedup_ttl):
            return  # a replay after a RESUME
        self._spawn(self._moderate(incoming(message)))

    def _spawn(self, work: Awaitable[None], tasks: set[asyncio.Task[None]] | None = None) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("moderation failed")

        held = self._tasks if tasks is None else tasks
        task = asyncio.create_task(guarded())
        held.add(task)
        task.add_done_callback(held.discard)

    async def _moderate(self, message: Incoming) -> None:
        assert self.moderator is not None
        decision = await self.moderator.moderate(message)
        if decision is None:
            return
        if decision.enforced:
            await self._enforce(decision)
        policy = await self.moderator.policy(decision.guild_id)
        if policy.log_channel_id:
            posted = await self.rest.send(policy.log_channel_id, modlog_message(decision))
            await self.store.set_log_message(decision.event_id, str(posted["id"]))

    async def _enforce(self, decision: Decision) -> None:
        """Tell the member (before a kick ends the shared server), then act; each step alone."""
        reason = f"deskbot moderation: {decision.label} ({decision.summary()})"
        guild, author = decision.guild_id, decision.author_id
        steps: list[Callable[[], Awaitable[None]]] = []
        if decision.action in _DM_ACTIONS:
            steps.append(lambda: self._tell_member(decision))
        if decision.delete_message:
            steps.append(
                lambda: self.rest.delete_message(
                    decision.channel_id, decision.message_id, reason=reason
                )
            )
        if decision.action == "timeout":
            end = until(decision.timeout_minutes or 60)
            steps.append(lambda: self.rest.timeout_member(guild, author, end, reason=reason))
        if decision.action == "kick":
            steps.append(lambda: self.rest.kick(guild, author, reason=reason))
        if decision.action == "ban":
            steps.append(lambda: self.rest.ban(guild, author, reason=reason))
        for step in steps:
            try:
                await step()
            except RestError as exc:  # e.g. missing permissions: the others still run
                log.warning("moderation step failed for event %s: %s", decision.event_id, exc)

    async def _tell(self, user_id: str, body: dict[str, Any]) -> None:
        """DM a member."""
        channel = await self.rest.dm_channel(user_id)
        await self.rest.send(channel, body)

    async def _tell_member(self, decision: Decision) -> None:
        """The DM with an Appeal button; a short channel notice if their DMs are closed."""
        try:
            await self._tell(decision.author_id, member_notice(decision, can_appeal=True))
        except RestError as exc:
            if exc.code != _DMS_CLOSED or decision.action not in _NOTICE_ACTIONS:
                raise
            await self._notice(decision.channel_id, channel_notice(decision))

    async def _notice(self, channel_id: str, body: dict[str, Any]) -> None:
        """Tell a member whose DMs are closed in the channel, for ``notice_seconds``.

        Discord has no ephemeral channel messages (only interaction answers are): the notice
        is public, so it pings only the member, says little, and is taken down again.
        """
        posted = await self.rest.send(channel_id, body)
        self._notices[str(posted["id"])] = channel_id
        self._spawn(self._expire(str(posted["id"])), self._timers)

    async def _expire(self, notice_id: str) -> None:
        await asyncio.sleep(self.notice_seconds)
        await self._unpost(notice_id)

    async def _unpost(self, notice_id: str) -> None:
        channel_id = self._notices.pop(notice_id, None)
        if channel_id is not None:
            reason = "deskbot moderation: notice expired"
            await self.rest.delete_message(channel_id, notice_id, reason=reason)

    # --- interactions ----------------------------------------------------------------

    async def on_interaction(self, interaction: Interaction) -> None:
        """A moderation button or modal (``deskbot:mod:...``); anything else is ignored."""
        data: dict[str, Any] = dict(interaction.data or {})
        parsed = parse_custom_id(str(data.get("custom_id", "")))
        if parsed is None or not await first_delivery(self.state, self.settings, interaction):
            return
        verb, target = parsed
        needed = _NEEDS.get(verb)
        if needed and not getattr(interaction.permissions, needed, False):
            name = _PERMISSION_NAMES[needed]
            await interaction.response.send_message(_REFUSED.format(name, name), ephemeral=True)
            return
        handler = self._handlers().get(verb)
        if handler is None:
            return
        try:
            await handler(interaction, target)
        except ModerationError as exc:
            await say(interaction, str(exc))

    def _handlers(self) -> dict[str, Callable[[Interaction, uuid.UUID], Awaitable[None]]]:
        posts = {verb: self._pressed(verb) for verb in _POST_VERBS}
        return {
            **posts,
            "draft": self.drafts.draft,
            "send": self.drafts.send,
            "edit": self.drafts.edit_form,
            "editform": self.drafts.edited,
            "appeal": self.appeals.form,
            "appealform": self.appeals.submitted,
            "accept": self.appeals.accept,
            "reject": self.appeals.reject_form,
            "rejectform": self.appeals.rejected,
        }

    def _pressed(self, verb: str) -> Callable[[Interaction, uuid.UUID], Awaitable[None]]:
        """A mod-log button: refused if the stored event says it was done already."""

        async def press(interaction: Interaction, event_id: uuid.UUID) -> None:
            event = await self.store.event(event_id)
            refusal = stale(event, verb)
            key = f"discord:mod:press:{event_id}:{verb}"
            if refusal is None and not await self.state.deduper.claim(key, ttl=_PRESS_SECONDS):
                refusal = _BUSY
            if refusal is not None:
                await say(interaction, refusal)
                return
            try:
                note = await self._act(interaction, verb, event)
            except RestError as exc:  # nothing was done, so nothing is recorded
                await say(interaction, refused_by_discord(exc.code, str(exc)))
                return
            await self._noted(interaction, verb, event_id, note)

        return press

    async def _act(self, interaction: Interaction, verb: str, event: EventRecord) -> str:
        """Do what the button says, then record it (audited). Returns what the post says."""
        actor, by = str(interaction.user.id), f"deskbot moderation: {verb} by {interaction.user}"
        guild, member = event.guild_id, event.author_id
        if verb == "approve":  # the store's fact first: a timeout that will not lift is noted
            await self.store.approve(event.id, actor=actor)
            if not (event.action == "timeout" and event.enforced):
                return "approved (strike removed)"
            try:
                await self.rest.timeout_member(guild, member, None, reason=by)
            except RestError as exc:
                return f"approved (strike removed; the timeout could not be lifted: {exc})"
            return "approved (strike removed, timeout lifted)"
        if verb == "delete":
            await self.rest.delete_message(event.channel_id, event.message_id, reason=by)
            await self.store.record_action(event.id, actor=actor, action="delete")
            return "deleted the message"
        if verb == "kick":
            await self.rest.kick(guild, member, reason=by)
            await self.store.record_action(event.id, actor=actor, action="kick")
            return "kicked the member"
        minutes = int(verb.removeprefix("timeout"))
        await self.rest.timeout_member(guild, member, until(minutes), reason=by)
        await self.store.record_action(event.id, actor=actor, action="timeout", minutes=minutes)
        return f"timed out for {duration(minutes)}"

    async def _noted(
        self, interaction: Interaction, verb: str, event_id: uuid.UUID, note: str
    ) -> None:
        """Edit the mod-log post: who did what, and the buttons that no longer apply greyed."""
        message = interaction.message
        embed = message.embeds[0].to_dict() if message and message.embeds else {}
        stamped = f"<@{interaction.user.id}>: {note}"
        edited = discord.Embed.from_dict(dict(with_note(embed, stamped)))
        greyed = set(disabled_by(verb)) | greyed_verbs(message)
        rows = view_of(modlog_rows(event_id, greyed))
        await interaction.response.edit_message(embed=edited, view=rows)
