"""Moderation on Discord: every guild message classified, acted on, logged; buttons; appeals.

The gateway listener only filters and claims a message (a RESUME's replay is moderated
once), then classifies and acts in a task, so answering on the same connection never
waits for it and a failure here never reaches the other listeners. The decision itself is
the platform-neutral :class:`bot.moderation.Moderator`'s; this module turns it into REST
calls (delete, timeout, kick, ban, each with an audit-log reason), the member's DM with an
*Appeal* button, and the mod-log post whose buttons moderators press (each re-checks the
presser's permissions and is audited). Without a classifier model nothing is moderated.
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
from bot.discord.modlog import (
    APPEAL_REFUSALS,
    APPEAL_SENT,
    appeal_notice,
    appeal_review,
    custom_id,
    draft_template,
    duration,
    member_notice,
    modal_value,
    modlog_message,
    parse_custom_id,
    until,
    with_note,
)
from bot.discord.rest import DiscordREST, RestError
from bot.moderation import (
    AppealError,
    Decision,
    EventRecord,
    Incoming,
    ModerationError,
    ModerationStore,
    Moderator,
)
from bot.settings import Settings
from bot.state import SharedState
from tools.chat_backend import ChatBackend, Message

__all__ = ["DiscordModeration", "incoming"]

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]
_MODERATED_TYPES = {discord.MessageType.default, discord.MessageType.reply}
_DM_ACTIONS = {"warn", "delete", "timeout", "kick", "ban"}
_APPEAL_INPUT = "reason"
_REFUSED = "You need the {} permission for this. / {} 권한이 필요합니다."
_NEEDS = {
    "approve": "manage_messages",
    "delete": "manage_messages",
    "draft": "manage_messages",
    "send": "manage_messages",
    "accept": "manage_messages",
    "reject": "manage_messages",
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
    return Incoming(
        guild_id=str(message.guild.id),
        channel_id=str(message.channel.id),
        message_id=str(message.id),
        author_id=str(author.id),
        text="\n".join(p for p in parts if p and p.strip()),
        roles=frozenset(roles),
        can_manage_messages=manages,
        is_bot=author.bot,
    )


class DiscordModeration:
    """The moderation listener, the mod-log buttons and the appeal flow.

    Args:
        settings: The classifier and appeal settings.
        state: The deduper (a replayed message or interaction is handled once).
        rest: How actions reach Discord.
        engine: The database holding policies, events, strikes, appeals and the audit log.
        backend: The language model for combined classification and reply drafts, if any.
    """

    def __init__(
        self,
        settings: Settings,
        state: SharedState,
        rest: DiscordREST,
        engine: AsyncEngine,
        backend: ChatBackend | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self.rest = rest
        self.backend = backend if settings.llm_configured else None
        self.store = ModerationStore(engine, appeal_days=settings.appeal_days)
        self.moderator: Moderator | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Load the classifier; without a model (and no LLM-only mode) moderation stays off."""
        settings = self.settings
        wanted_llm = settings.classifier_mode == "llm" and self.backend is not None
        if not (settings.classifier_path.exists() or wanted_llm):
            log.info("no classifier model at %s: moderation is off", settings.classifier_path)
            return
        classifier = await make_comment_classifier(settings, self.backend)
        self.moderator = Moderator(classifier, self.store, max_chars=settings.classifier_max_chars)

    async def close(self) -> None:
        """Let the moderation tasks still running finish."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- messages --------------------------------------------------------------------

    async def on_message(self, message: discord.Message, bot_user: discord.ClientUser) -> None:
        """Claim a guild message from a member and moderate it in the background."""
        if self.moderator is None or message.guild is None or message.author.bot:
            return
        if message.author.id == bot_user.id or message.type not in _MODERATED_TYPES:
            return
        key = f"discord:moderate:{message.id}"
        if not await self.state.deduper.claim(key, ttl=self.settings.dedup_ttl):
            return  # a replay after a RESUME
        self._spawn(self._moderate(incoming(message)))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("moderation failed")

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            steps.append(lambda: self._tell(author, member_notice(decision, can_appeal=True)))
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
        """DM a member; closed DMs are Discord's answer, not a failure."""
        channel = await self.rest.dm_channel(user_id)
        await self.rest.send(channel, body)

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
            await _say(interaction, str(exc))

    def _handlers(self) -> dict[str, Callable[[Interaction, uuid.UUID], Awaitable[None]]]:
        return {
            "approve": self._approve,
            "delete": self._delete,
            "timeout60": lambda i, t: self._timeout(i, t, 60),
            "timeout1440": lambda i, t: self._timeout(i, t, 1440),
            "kick": self._kick,
            "draft": self._draft,
            "appeal": self._appeal_form,
            "appealform": self._appeal,
            "accept": lambda i, t: self._decide(i, t, accept=True),
            "reject": lambda i, t: self._decide(i, t, accept=False),
        }

    async def _noted(self, interaction: Interaction, note: str) -> None:
        """Answer the press by editing the mod-log post to say who did what."""
        message = interaction.message
        embed = message.embeds[0].to_dict() if message and message.embeds else {}
        stamped = f"<@{interaction.user.id}>: {note}"
        edited = discord.Embed.from_dict(dict(with_note(embed, stamped)))
        await interaction.response.edit_message(embed=edited)

    async def _approve(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        event = await self.store.approve(event_id, actor=str(interaction.user.id))
        if event.action == "timeout" and event.enforced:
            reason = f"deskbot moderation: approved by {interaction.user}"
            await self.rest.timeout_member(event.guild_id, event.author_id, None, reason=reason)
        await self._noted(interaction, "approved (strike removed, timeout lifted)")

    async def _delete(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        event = await self.store.record_action(
            event_id, actor=str(interaction.user.id), action="delete"
        )
        reason = f"deskbot moderation: deleted by {interaction.user}"
        await self.rest.delete_message(event.channel_id, event.message_id, reason=reason)
        await self._noted(interaction, "deleted the message")

    async def _timeout(self, interaction: Interaction, event_id: uuid.UUID, minutes: int) -> None:
        actor = str(interaction.user.id)
        event = await self.store.record_action(
            event_id, actor=actor, action="timeout", minutes=minutes
        )
        reason = f"deskbot moderation: timeout by {interaction.user}"
        end = until(minutes)
        await self.rest.timeout_member(event.guild_id, event.author_id, end, reason=reason)
        await self._noted(interaction, f"timed out for {duration(minutes)}")

    async def _kick(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        event = await self.store.record_action(
            event_id, actor=str(interaction.user.id), action="kick"
        )
        reason = f"deskbot moderation: kicked by {interaction.user}"
        await self.rest.kick(event.guild_id, event.author_id, reason=reason)
        await self._noted(interaction, "kicked the member")

    # --- reply drafts ----------------------------------------------------------------

    async def _draft(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        event = await self.store.event(event_id)
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await self._drafted(event)
        await interaction.followup.send(
            f"Draft reply (visible only to you):\n>>> {text}", ephemeral=True
        )

    async def _drafted(self, event: EventRecord) -> str:
        """The LLM's calm reply in the message's language; the template without one."""
        template = draft_template(event.label, event.excerpt)
        if self.backend is None:
            return template
        prompt = (
            "You help a Discord moderator. Write a short, calm and firm reply (2-3 sentences) "
            f"to a member whose message was flagged as {event.label}, explaining that the "
            "server does not allow it. Write in the same language as the message. Reply "
            "with the text only."
        )
        messages: list[Message] = [
            {"role": "system", "content": prompt},
            {"role": "user", "content": event.excerpt},
        ]
        try:
            completion = await self.backend.complete(messages)
        except Exception:  # a draft is a convenience: the template stands in
            log.warning("draft reply: the language model failed; template used", exc_info=True)
            return template
        text = completion["choices"][0]["message"]["content"] if completion["choices"] else ""
        return (text or "").strip() or template

    # --- appeals ---------------------------------------------------------------------

    async def _appeal_form(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        """The member's Appeal button: a modal asking why."""
        modal = discord.ui.Modal(
            title="Appeal / 이의 제기", custom_id=custom_id("appealform", event_id)
        )
        modal.add_item(
            discord.ui.TextInput(
                label="Why was this a mistake? / 이유",
                custom_id=_APPEAL_INPUT,
                style=discord.TextStyle.paragraph,
                max_length=1000,
            )
        )
        await interaction.response.send_modal(modal)
        modal.stop()  # answered here, by its custom_id: nothing kept in memory

    async def _appeal(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        """The modal's answer: open the appeal and post it on the decision's mod-log post."""
        reason = modal_value(dict(interaction.data or {}), _APPEAL_INPUT)
        try:
            appeal = await self.store.open_appeal(
                event_id, author_id=str(interaction.user.id), reason=reason
            )
        except AppealError as exc:
            await _say(interaction, APPEAL_REFUSALS.get(exc.reason, str(exc)))
            return
        await _say(interaction, APPEAL_SENT)
        event = await self.store.event(event_id)
        policy = await self.store.policy(event.guild_id)
        if policy.log_channel_id and event.log_message_id:
            thread = await self.rest.start_thread(
                policy.log_channel_id, event.log_message_id, f"Appeal {str(event_id)[:8]}"
            )
            await self.rest.send(thread, appeal_review(appeal.id, appeal.author_id, reason))

    async def _decide(
        self, interaction: Interaction, appeal_id: uuid.UUID, *, accept: bool
    ) -> None:
        reviewer = str(interaction.user.id)
        appeal = await self.store.decide_appeal(appeal_id, reviewer_id=reviewer, accept=accept)
        event = await self.store.event(appeal.event_id)
        if accept and event.action == "timeout":
            reason = f"deskbot moderation: appeal accepted by {interaction.user}"
            await self.rest.timeout_member(event.guild_id, event.author_id, None, reason=reason)
        verdict = "accepted" if accept else "rejected"
        await interaction.response.edit_message(
            content=f"{(interaction.message.content if interaction.message else '')}\n"
            f"**{verdict}** by <@{reviewer}>",
            view=None,
        )
        notice = appeal_notice(event, accepted=accept, reason=appeal.review_reason)
        try:
            body = {"content": notice, "allowed_mentions": {"parse": []}}
            await self._tell(event.author_id, body)
        except RestError as exc:
            log.info("appeal %s: the member could not be told: %s", appeal_id, exc)


async def _say(interaction: Interaction, text: str) -> None:
    """An ephemeral answer, whether or not the interaction was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)
