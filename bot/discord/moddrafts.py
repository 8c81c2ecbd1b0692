"""*Draft reply* on a mod-log post: a calm answer to the member, shown only to the moderator.

The language model drafts it in the message's language (a template per label and language
without one); the moderator sees it ephemerally with *Send* and *Edit*. The draft lives in
that ephemeral message itself: *Send* reads it back from the message the button is on and
*Edit*'s modal is prefilled from it, so whichever process receives the press can answer it
without having seen the draft. Sending posts it as a reply to the flagged message (or, when
that was deleted, in its channel mentioning the member), pinging nobody else; audited.
"""

from __future__ import annotations

import logging
import uuid

from bot.discord.modlog import custom_id, draft_template, modal_value
from bot.discord.modui import Interaction, say, text_modal, view_of
from bot.discord.rest import DiscordREST, RestError
from bot.discord.split import truncate
from bot.moderation import EventRecord, ModerationStore
from tools.chat_backend import ChatBackend, Message

__all__ = ["DRAFT_HEADER", "DraftReplies", "draft_text"]

log = logging.getLogger(__name__)

DRAFT_HEADER = "Draft reply, visible only to you / 답장 초안 (나에게만 보임):"
_QUOTE = "\n>>> "
_SENT = "Sent to the member / 보냈습니다:"
_LOST = "The draft is gone; press Draft reply again. / 초안이 없습니다. 다시 눌러 주세요."
_FIELD = "draft"
_MAX_CHARS = 1800  # a Discord message holds 2000; the mention and quote need the rest
_INVALID_FORM = 50035  # a reply to a deleted message: Discord refuses its message_reference
_PROMPT = (
    "You help a Discord moderator. Write a short, calm and firm reply (2-3 sentences) to a "
    "member whose message was flagged as {label}, explaining that the server does not allow "
    "it. Write in the same language as the message. Reply with the text only."
)


def draft_text(content: str) -> str:
    """The draft in an ephemeral draft message's content ("" if it holds none)."""
    header, quote, text = content.partition(_QUOTE)
    return text.strip() if quote and header == DRAFT_HEADER else ""


class DraftReplies:
    """The *Draft reply*, *Send* and *Edit* buttons and the edit modal.

    Args:
        store: Events to read and the audit log.
        rest: How the reply reaches the channel.
        backend: The language model, if any (else the template).
    """

    def __init__(
        self, store: ModerationStore, rest: DiscordREST, backend: ChatBackend | None
    ) -> None:
        self.store = store
        self.rest = rest
        self.backend = backend

    async def draft(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        """Draft the reply and show it to the moderator alone, with Send and Edit."""
        event = await self.store.event(event_id)
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = truncate(await self.drafted(event), _MAX_CHARS)
        send = {"type": 2, "style": 3, "label": "Send / 보내기"}
        edit = {"type": 2, "style": 2, "label": "Edit / 고치기"}
        row = [{**send, "custom_id": custom_id("send", event_id)}]
        row.append({**edit, "custom_id": custom_id("edit", event_id)})
        view = view_of([{"type": 1, "components": row}])
        # Audited before the moderator sees it: what shows has always been recorded.
        await self._audit(interaction, event, "moderation.draft")
        await interaction.followup.send(f"{DRAFT_HEADER}{_QUOTE}{text}", ephemeral=True, view=view)

    async def drafted(self, event: EventRecord) -> str:
        """The LLM's calm reply in the message's language; the template without one."""
        template = draft_template(event.label, event.excerpt)
        if self.backend is None:
            return template
        messages: list[Message] = [
            {"role": "system", "content": _PROMPT.format(label=event.label)},
            {"role": "user", "content": event.excerpt},
        ]
        try:
            completion = await self.backend.complete(messages)
        except Exception:  # a draft is a convenience: the template stands in
            log.warning("draft reply: the language model failed; template used", exc_info=True)
            return template
        text = completion["choices"][0]["message"]["content"] if completion["choices"] else ""
        return (text or "").strip() or template

    async def send(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        """*Send*: post the draft the button's message shows."""
        text = draft_text(interaction.message.content if interaction.message else "")
        if not text:
            await say(interaction, _LOST)
            return
        await self._post(interaction, event_id, text, edited=False)

    async def edit_form(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        """*Edit*: a modal prefilled with the draft."""
        text = draft_text(interaction.message.content if interaction.message else "")
        modal = text_modal(
            "Edit the reply / 답장 고치기",
            custom_id("editform", event_id),
            field=_FIELD,
            label="Reply / 답장",
            default=text,
            limit=_MAX_CHARS,
        )
        await interaction.response.send_modal(modal)

    async def edited(self, interaction: Interaction, event_id: uuid.UUID) -> None:
        """The edit modal's answer: send the text as the moderator left it."""
        text = modal_value(dict(interaction.data or {}), _FIELD).strip()
        if not text:
            await say(interaction, _LOST)
            return
        await self._post(interaction, event_id, truncate(text, _MAX_CHARS), edited=True)

    async def _post(
        self, interaction: Interaction, event_id: uuid.UUID, text: str, *, edited: bool
    ) -> None:
        event = await self.store.event(event_id)
        posted = await self._reply(event, text)
        # Audited as soon as the reply is up, before the moderator is told it was sent.
        details = {"message_id": posted, "edited": edited}
        await self._audit(interaction, event, "moderation.reply", text, details)
        shown = f"{_SENT}{_QUOTE}{text}"
        if interaction.message is not None:  # the draft: its buttons go, it cannot go twice
            await interaction.response.edit_message(content=shown, view=None)
        else:
            await say(interaction, shown)

    async def _reply(self, event: EventRecord, text: str) -> str:
        """Reply to the flagged message; to the channel, mentioning the member, if it is gone."""
        only = {"parse": [], "users": [event.author_id], "replied_user": True}
        reference = {"message_id": event.message_id, "fail_if_not_exists": True}
        body = {"content": text, "allowed_mentions": only, "message_reference": reference}
        try:
            posted = await self.rest.send(event.channel_id, body)
        except RestError as exc:
            if exc.code != _INVALID_FORM:
                raise
            body = {"content": f"<@{event.author_id}> {text}", "allowed_mentions": only}
            posted = await self.rest.send(event.channel_id, body)
        return str(posted["id"])

    async def _audit(
        self,
        interaction: Interaction,
        event: EventRecord,
        action: str,
        reason: str = "",
        details: dict[str, object] | None = None,
    ) -> None:
        await self.store.audit(
            actor=str(interaction.user.id),
            action=action,
            target=f"user:{event.author_id}",
            reason=reason,
            guild_id=event.guild_id,
            details={"event_id": str(event.id), **(details or {})},
        )
