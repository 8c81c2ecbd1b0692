"""Answering in Discord through REST alone: a placeholder edited with progress, then the answer.

Where the answer goes (a :class:`~bot.messages.ReplyAddress`):

- a mention in a guild channel: a thread started from the question (its id is the
  question's), with a placeholder message in it;
- a thread or a DM: a placeholder in that channel;
- ``/ask``: the interaction's deferred response, edited through its webhook token; after
  the token's 15 minutes the answer is posted in the channel instead.

The placeholder is edited at most once a second (Discord allows about five edits per five
seconds per channel, and a user cannot read faster), then replaced by the first part of
the answer; further parts follow as new messages (follow-ups for an interaction).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from bot.agent.loop import Answer
from bot.discord.format import DiscordMessage, answer_messages, progress_message
from bot.discord.rest import UNKNOWN_WEBHOOK, DiscordREST, RestError
from bot.language import in_language_of
from bot.messages import IncomingMessage, ReplyAddress
from bot.rendering import sources_of
from tools.chat_backend import ChatMessage

__all__ = ["DiscordChannel", "DiscordResponder"]

log = logging.getLogger(__name__)

_HISTORY_LIMIT = 30
_THREAD_NAME_LIMIT = 100
_TOKEN_MARGIN = 30.0
"""Seconds before an interaction token's end at which the channel takes over."""


class DiscordResponder:
    """One answer's messages at one Discord address."""

    def __init__(
        self,
        rest: DiscordREST,
        address: ReplyAddress,
        *,
        question: str,
        min_interval: float = 1.0,
    ) -> None:
        self.rest = rest
        self.address = address
        self.question = question
        self.min_interval = min_interval
        self._status = in_language_of(question, "Thinking…", "생각 중…")
        self._text: list[str] = []
        self._channel = address.channel_id
        self._message_id: str | None = None
        self._shown_at = 0.0

    @property
    def _by_webhook(self) -> bool:
        """True while the interaction's token may still be used."""
        address = self.address
        if address.interaction_token is None or address.application_id is None:
            return False
        return address.token_expires is None or time.time() < address.token_expires - _TOKEN_MARGIN

    async def start(self) -> None:
        if self.address.message_id is not None:  # a mention: answer in a thread of its own
            name = " ".join(self.question.split())[:_THREAD_NAME_LIMIT] or "deskbot"
            self._channel = await self.rest.start_thread(
                self.address.channel_id, self.address.message_id, name
            )
        await self._show(progress_message(self._status))
        self._shown_at = time.monotonic()

    async def status(self, text: str) -> None:
        self._status = text  # shown with the next edit: at most one a second, like the text
        await self._refresh()

    async def stream(self, chunk: str) -> None:
        self._text.append(chunk)
        await self._refresh()

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._shown_at < self.min_interval:
            return
        self._shown_at = now
        try:
            await self._show(progress_message(self._status, "".join(self._text)))
        except RestError as exc:  # progress is best effort; the final message is not
            log.warning("could not update progress: %s", exc)

    async def finish(self, answer: Answer) -> None:
        run_id = str(answer.run_id) if answer.status == "completed" else None
        messages = answer_messages(answer.text, sources_of(answer.citations), run_id=run_id)
        await self._show(messages[0])
        for message in messages[1:]:
            await self._post(message)

    async def fail(self, message: str) -> None:
        await self._show(DiscordMessage(content=message))

    async def _show(self, message: DiscordMessage) -> None:
        """Replace the placeholder (the interaction's response) with ``message``."""
        body = message.to_json()
        if self._by_webhook:
            try:
                await self._edit_original(body)
                return
            except RestError as exc:
                if exc.code != UNKNOWN_WEBHOOK:
                    raise
                log.info("interaction token expired; answering in the channel")
                self._expire_token()
        if self._message_id is None:
            self._message_id = str((await self.rest.send(self._channel, body))["id"])
        else:
            await self.rest.edit(self._channel, self._message_id, body)

    async def _post(self, message: DiscordMessage) -> None:
        """A further part of the answer, after the placeholder."""
        body = message.to_json()
        if self._by_webhook:
            application, token = self._webhook()
            try:
                await self.rest.followup(application, token, body)
                return
            except RestError as exc:
                if exc.code != UNKNOWN_WEBHOOK:
                    raise
                self._expire_token()
        await self.rest.send(self._channel, body)

    async def _edit_original(self, body: dict[str, Any]) -> None:
        await self.rest.edit_original(*self._webhook(), body)

    def _webhook(self) -> tuple[str, str]:
        """The interaction's application id and token (only called while they are set)."""
        return str(self.address.application_id), str(self.address.interaction_token)

    def _expire_token(self) -> None:
        self.address = replace(self.address, token_expires=0.0)


class DiscordChannel:
    """The Discord side of answering, for :class:`bot.answering.AnswerService`."""

    def __init__(self, rest: DiscordREST) -> None:
        self.rest = rest

    def responder(self, address: ReplyAddress, question: str) -> DiscordResponder:
        return DiscordResponder(self.rest, address, question=question)

    async def earlier_messages(self, message: IncomingMessage) -> list[ChatMessage]:
        """The channel's or thread's messages before this one, oldest first.

        Only where a conversation already exists on Discord: a thread the bot is mentioned
        in midway, or a DM. A mention in a channel starts a new thread (nothing before it),
        and a slash command carries its whole question.
        """
        reply = message.reply
        if reply is None or reply.message_id is not None or reply.interaction_token is not None:
            return []
        before = message.event_id.rpartition(":")[2]
        try:
            items = await self.rest.history(reply.channel_id, before=before, limit=_HISTORY_LIMIT)
            bot = await self.rest.me()
        except RestError as exc:
            log.warning("could not read the channel's history: %s", exc)
            return []
        earlier = [_as_chat(item, bot) for item in items]
        return [m for m in earlier if m.content]


def _as_chat(item: dict[str, Any], bot_user_id: str) -> ChatMessage:
    author = item.get("author") or {}
    text = str(item.get("content", "")).strip()
    if str(author.get("id")) == bot_user_id:
        return ChatMessage("assistant", text)
    return ChatMessage("user", f"<@{author.get('id', 'someone')}>: {text}" if text else "")
