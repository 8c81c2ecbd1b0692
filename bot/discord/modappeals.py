"""A member's appeal on Discord: the Appeal button, its modal, the thread, Accept and Reject.

*Appeal* (in the member's DM, or on the channel notice when their DMs are closed) opens a
modal asking why; the appeal is posted in a thread on the decision's mod-log post, where a
moderator presses *Accept* (strike removed, timeout lifted, member told) or *Reject*, which
asks the moderator's reason in a modal and tells the member with it. Every step is stored
and audited by :class:`~bot.moderation.ModerationStore`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bot.discord.modlog import (
    APPEAL_REFUSALS,
    APPEAL_SENT,
    appeal_notice,
    appeal_review,
    custom_id,
    modal_value,
)
from bot.discord.modui import Interaction, say, text_modal
from bot.discord.rest import DiscordREST, RestError
from bot.discord.split import defuse_mentions, truncate
from bot.moderation import AppealError, AppealRecord, EventRecord, ModerationStore

__all__ = ["Appeals"]

log = logging.getLogger(__name__)

Tell = Callable[[str, dict[str, Any]], Awaitable[None]]
_DMS_CLOSED = 50007  # Discord: "Cannot send messages to this user"
_REASON = "reason"
_CLOSED = "This appeal was already {status} by <@{who}>. / <@{who}> 님이 이미 처리했습니다."


class Appeals:
    """The appeal buttons and modals.

    Args:
        store: Appeals and events.
        rest: The thread on the mod-log post.
        tell: How a member is sent a DM (user id, message body).
        notice: How a member whose DMs are closed is told in a channel (channel id, body).
    """

    def __init__(self, store: ModerationStore, rest: DiscordREST, tell: Tell, notice: Tell) -> None:
        self.store = store
        self.rest = rest
        self.tell = tell
        self.notice = notice

    async def form(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        """The member's Appeal button: a modal asking why (only for the member concerned)."""
        event = await self.store.event(event_id)
        if str(interaction.user.id) != event.author_id:
            await say(interaction, APPEAL_REFUSALS["not_author"])
            return
        modal = text_modal(
            "Appeal / 이의 제기",
            custom_id("appealform", event_id),
            field=_REASON,
            label="Why was this a mistake? / 이유",
        )
        await interaction.response.send_modal(modal)

    async def submitted(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        """The modal's answer: open the appeal and post it on the decision's mod-log post."""
        reason = modal_value(dict(interaction.data or {}), _REASON)
        try:
            appeal = await self.store.open_appeal(
                event_id, author_id=str(interaction.user.id), reason=reason
            )
        except AppealError as exc:
            await say(interaction, APPEAL_REFUSALS.get(exc.reason, str(exc)))
            return
        await say(interaction, APPEAL_SENT)
        event = await self.store.event(event_id)
        policy = await self.store.policy(event.guild_id)
        if policy.log_channel_id and event.log_message_id:
            thread = await self.rest.start_thread(
                policy.log_channel_id, event.log_message_id, f"Appeal {str(event_id)[:8]}"
            )
            await self.rest.send(thread, appeal_review(appeal.id, appeal.author_id, reason))

    async def accept(self, interaction: Interaction, appeal_id: uuid.UUID) -> None:
        """*Accept*: one press."""
        await self._decide(interaction, appeal_id, accept=True, reason="")

    async def reject_form(self, interaction: Interaction, appeal_id: uuid.UUID) -> None:
        """*Reject*: a modal asking the reason the member will be told."""
        appeal = await self.store.appeal(appeal_id)
        if appeal.status != "open":
            await say(interaction, _closed(appeal))
            return
        modal = text_modal(
            "Reject the appeal / 이의 제기 거절",
            custom_id("rejectform", appeal_id),
            field=_REASON,
            label="Reason the member sees / 회원에게 보일 이유",
            limit=500,
        )
        await interaction.response.send_modal(modal)

    async def rejected(self, interaction: Interaction, appeal_id: uuid.UUID) -> None:
        """The reject modal's answer: decide with the moderator's reason."""
        reason = modal_value(dict(interaction.data or {}), _REASON).strip()
        await self._decide(interaction, appeal_id, accept=False, reason=reason)

    async def _decide(
        self, interaction: Interaction, appeal_id: uuid.UUID, *, accept: bool, reason: str
    ) -> None:
        reviewer = str(interaction.user.id)
        try:
            appeal = await self.store.decide_appeal(
                appeal_id, reviewer_id=reviewer, accept=accept, reason=reason
            )
        except AppealError as exc:
            if exc.reason != "closed":
                raise
            await say(interaction, _closed(await self.store.appeal(appeal_id)))
            return
        event = await self.store.event(appeal.event_id)
        if accept and event.action == "timeout" and event.enforced:
            why = f"deskbot moderation: appeal accepted by {interaction.user}"
            await self.rest.timeout_member(event.guild_id, event.author_id, None, reason=why)
        await self._show_verdict(interaction, appeal)
        notice = appeal_notice(event, accepted=accept, reason=defuse_mentions(reason))
        try:
            await self._tell_member(event, notice)
        except RestError as exc:
            log.info("appeal %s: the member could not be told: %s", appeal_id, exc)

    async def _tell_member(self, event: EventRecord, text: str) -> None:
        """By DM; where the decision was, pinging only them, when their DMs are closed."""
        try:
            await self.tell(event.author_id, {"content": text, "allowed_mentions": {"parse": []}})
        except RestError as exc:
            if exc.code != _DMS_CLOSED:
                raise
            only = {"parse": [], "users": [event.author_id]}
            body = {"content": f"<@{event.author_id}> {text}", "allowed_mentions": only}
            await self.notice(event.channel_id, body)

    async def _show_verdict(self, interaction: Interaction, appeal: AppealRecord) -> None:
        """The appeal's post in the thread says who decided, and loses its buttons."""
        message = interaction.message
        why = f": {truncate(defuse_mentions(appeal.review_reason), 300)}"
        line = f"**{appeal.status}** by <@{appeal.reviewer_id}>" + (
            why if appeal.review_reason else ""
        )
        if message is None:  # a modal not opened from the post: nothing to edit
            await say(interaction, line)
            return
        await interaction.response.edit_message(content=f"{message.content}\n{line}", view=None)


def _closed(appeal: AppealRecord) -> str:
    return _CLOSED.format(status=appeal.status, who=appeal.reviewer_id)
