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

import hashlib
import logging
import time
from dataclasses import replace
from typing import Any

from bot.agent.loop import Answer
from bot.discord.format import DiscordMessage, answer_messages, progress_message
from bot.discord.rest import (
    UNKNOWN_CHANNEL,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordREST,
    RestError,
)
from bot.language import in_language_of
from bot.messages import IncomingMessage, ReplyAddress
from bot.rendering import sources_of
from bot.replies import ReplyRecord
from tools.chat_backend import ChatMessage

__all__ = ["DiscordChannel", "DiscordResponder"]

log = logging.getLogger(__name__)

_HISTORY_LIMIT = 30
_THREAD_NAME_LIMIT = 100
_TOKEN_MARGIN = 30.0
"""Seconds before an interaction token's end at which the channel takes over."""
_NONCE_CHARS = 20
"""Of a job's nonce: Discord takes 25 characters, and "-N" names the part."""
_LOOKUP_LIMIT = 20
"""Messages read from the start of a mention's thread when looking for its placeholder."""
_DROPPED = "a leftover part of an answer written again"


class DiscordResponder:
    """One answer's messages at one Discord address.

    Resumable (:class:`bot.answering.Resumable`): its reference names every message the
    answer has so far, ``CHANNEL/PART,PART...`` with each part ``c:ID`` (a channel
    message) or ``h:ID`` (an interaction's, ``h:@original`` its first response), so a
    worker taking the job over edits them instead of posting again. Tagged with a job, each
    channel message is created with a nonce of that job and part and ``enforce_nonce``:
    Discord answers a create it saw within a few minutes with the message it already made.
    Each further part is recorded in ``replies`` as soon as it is up.
    """

    def __init__(
        self,
        rest: DiscordREST,
        address: ReplyAddress,
        *,
        question: str,
        min_interval: float = 1.0,
        replies: ReplyRecord | None = None,
    ) -> None:
        self.rest = rest
        self.address = address
        self.question = question
        self.min_interval = min_interval
        self.replies = replies
        self._status = in_language_of(question, "Thinking…", "생각 중…")
        self._text: list[str] = []
        self._channel = address.channel_id
        self._parts: list[str] = []
        self._job_id: str | None = None
        self._nonce: str | None = None
        self._shown_at = 0.0

    @property
    def placeholder(self) -> str | None:
        """The answer's messages so far (``CHANNEL/c:ID,c:ID``), once the first is up."""
        return f"{self._channel}/{','.join(self._parts)}" if self._parts else None

    def resume(self, placeholder: str) -> None:
        """Write into the messages an earlier attempt posted (its reference), not new ones."""
        channel, _, parts = placeholder.partition("/")
        self._channel = channel
        self._parts = [part for part in parts.split(",") if part]

    def tag(self, job_id: str) -> None:
        """Create channel messages with ``job_id``'s nonces (Discord's idempotent create)."""
        self._job_id = job_id
        self._nonce = hashlib.sha256(job_id.encode()).hexdigest()[:_NONCE_CHARS]

    async def find(self, job_id: str) -> str | None:
        """The placeholder an earlier attempt posted in a mention's thread, if any.

        The thread is the question's own, so the bot's first message in it is that
        placeholder. Elsewhere there is nothing to read it by (Discord returns no nonce on
        a fetched message): the placeholder's create is sent again with the same nonce,
        which Discord answers with the message already made within its few minutes.
        """
        thread = self.address.message_id
        if thread is None:
            return None
        try:
            items = await self.rest.history(thread, after=thread, limit=_LOOKUP_LIMIT)
            bot = await self.rest.me()
        except RestError as exc:
            if exc.code == UNKNOWN_CHANNEL:  # it died before starting the thread
                return None
            raise
        for item in items:
            if str((item.get("author") or {}).get("id")) == bot:
                return f"{thread}/c:{item['id']}"
        return None

    async def _find_followups(self) -> None:
        """Take the interaction's follow-ups as Discord has them, one never recorded too.

        A follow-up is a webhook message, which takes no nonce; but each carries its
        interaction in ``interaction_metadata``, so they are read back from the channel.
        """
        try:
            original = await self.rest.webhook_message(*self._webhook(), "@original")
            after = str(original["id"])
            items = await self.rest.history(self._channel, after=after, limit=_LOOKUP_LIMIT)
        except RestError as exc:
            log.warning("could not read the interaction's follow-ups: %s", exc)
            return
        interaction = (original.get("interaction_metadata") or {}).get("id")
        found = [
            f"h:{item['id']}"
            for item in items
            if interaction is not None
            and (item.get("interaction_metadata") or {}).get("id") == interaction
        ]
        if len(found) >= len(self._parts) - 1:
            self._parts = ["h:@original", *found]

    @property
    def _by_webhook(self) -> bool:
        """True while the interaction's token may still be used."""
        address = self.address
        if address.interaction_token is None or address.application_id is None:
            return False
        return address.token_expires is None or time.time() < address.token_expires - _TOKEN_MARGIN

    async def start(self) -> None:
        if self._parts:  # resumed: show that work goes on in the same message
            if self._by_webhook and all(part.startswith("h:") for part in self._parts):
                await self._find_followups()
            await self._put(0, progress_message(self._status))
            self._shown_at = time.monotonic()
            return
        if self.address.message_id is not None:  # a mention: answer in a thread of its own
            name = " ".join(self.question.split())[:_THREAD_NAME_LIMIT] or "deskbot"
            self._channel = await self.rest.start_thread(
                self.address.channel_id, self.address.message_id, name
            )
        await self._put(0, progress_message(self._status), record=False)  # the caller does
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
            await self._put(0, progress_message(self._status, "".join(self._text)))
        except RestError as exc:  # progress is best effort; the final message is not
            log.warning("could not update progress: %s", exc)

    async def finish(self, answer: Answer) -> None:
        run_id = str(answer.run_id) if answer.status == "completed" else None
        messages = answer_messages(answer.text, sources_of(answer.citations), run_id=run_id)
        for index, message in enumerate(messages):
            await self._put(index, message)
        await self._drop_after(len(messages))

    async def fail(self, message: str) -> None:
        await self._put(0, DiscordMessage(content=message))
        await self._drop_after(1)

    async def _put(self, index: int, message: DiscordMessage, *, record: bool = True) -> None:
        """Show ``message`` as the answer's part ``index``: edited if it is up, else created."""
        body = message.to_json()
        if index < len(self._parts) and await self._edit(self._parts[index], body):
            return
        part = await self._create(index, body)  # new, or in place of one that is gone
        if index < len(self._parts):
            self._parts[index] = part
        else:
            self._parts.append(part)
        if record:
            await self._record()

    async def _edit(self, part: str, body: dict[str, Any]) -> bool:
        """Edit one part; False if it is gone (deleted, or its interaction token ended)."""
        kind, _, message_id = part.partition(":")
        if kind == "h" and not self._by_webhook:
            return False
        try:
            if kind == "h":
                await self.rest.edit_followup(*self._webhook(), message_id, body)
            else:
                await self.rest.edit(self._channel, message_id, body)
        except RestError as exc:
            if exc.code == UNKNOWN_WEBHOOK:
                self._expire_token()
                return False
            if exc.code == UNKNOWN_MESSAGE:
                return False
            raise
        return True

    async def _create(self, index: int, body: dict[str, Any]) -> str:
        """Post part ``index`` (the interaction's response or a follow-up while it may)."""
        if self._by_webhook:
            try:
                if index == 0:
                    await self.rest.edit_original(*self._webhook(), body)
                    return "h:@original"
                return "h:" + await self.rest.followup(*self._webhook(), body)
            except RestError as exc:
                if exc.code != UNKNOWN_WEBHOOK:
                    raise
                log.info("interaction token expired; answering in the channel")
                self._expire_token()
        if self._nonce is None:
            return "c:" + str((await self.rest.send(self._channel, body))["id"])
        nonced = {**body, "nonce": f"{self._nonce}-{index}", "enforce_nonce": True}
        sent = await self.rest.send(self._channel, nonced)
        if _shown(sent) != _shown(body):  # the dead attempt's, made before: update
            await self.rest.edit(self._channel, str(sent["id"]), body)
        return f"c:{sent['id']}"

    async def _drop_after(self, count: int) -> None:
        """Delete parts beyond ``count`` (a dead attempt's longer answer), then record."""
        extra, self._parts = self._parts[count:], self._parts[:count]
        for part in extra:
            kind, _, message_id = part.partition(":")
            try:
                if kind == "h" and self._by_webhook:
                    await self.rest.delete_followup(*self._webhook(), message_id)
                elif kind == "c":
                    await self.rest.delete_message(self._channel, message_id, reason=_DROPPED)
            except RestError as exc:
                log.warning("could not delete a leftover part of an answer: %s", exc)
        if extra:
            await self._record()

    async def _record(self) -> None:
        if self.replies is not None and self._job_id is not None and self.placeholder:
            await self.replies.placed(self._job_id, self.placeholder)

    def _webhook(self) -> tuple[str, str]:
        """The interaction's application id and token (only called while they are set)."""
        return str(self.address.application_id), str(self.address.interaction_token)

    def _expire_token(self) -> None:
        self.address = replace(self.address, token_expires=0.0)


class DiscordChannel:
    """The Discord side of answering, for :class:`bot.answering.AnswerService`."""

    def __init__(self, rest: DiscordREST, *, replies: ReplyRecord | None = None) -> None:
        self.rest = rest
        self.replies = replies

    def responder(self, address: ReplyAddress, question: str) -> DiscordResponder:
        return DiscordResponder(self.rest, address, question=question, replies=self.replies)

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


def _shown(message: dict[str, Any]) -> tuple[object, ...]:
    """What a reader sees of a message and what its buttons carry (a run's id), in the
    fields Discord returns as they were sent (it adds to embeds and components)."""
    embeds = [(e.get("title"), e.get("description")) for e in message.get("embeds") or []]
    return message.get("content"), embeds, sorted(_custom_ids(message.get("components")))


def _custom_ids(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["custom_id"])] if "custom_id" in node else []
        return found + [i for value in node.values() for i in _custom_ids(value)]
    if isinstance(node, list):
        return [i for item in node for i in _custom_ids(item)]
    return []
