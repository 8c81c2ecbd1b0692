"""Answering in Slack: a placeholder updated with progress, then the final message(s).

The responder posts one placeholder in the thread, edits it with the status and the answer
as it is written (at most once a second: Slack allows about one ``chat.update`` per second
per channel), and finally replaces it with the formatted answer; an answer longer than one
message continues in follow-up messages. Sources and the feedback buttons go last.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.agent.loop import Answer
from bot.language import in_language_of
from bot.messages import IncomingMessage, ReplyAddress
from bot.rendering import sources_of
from bot.slack.format import SlackMessage, answer_messages, progress_message
from tools.chat_backend import ChatMessage

__all__ = ["PLACEHOLDER_EVENT", "SlackChannel", "SlackResponder"]

log = logging.getLogger(__name__)

_HISTORY_LIMIT = 30
PLACEHOLDER_EVENT = "deskbot_answer"
"""The metadata ``event_type`` of a placeholder; its ``event_payload`` holds ``job_id``."""
_LOOKUP_PAGES = 5
"""Pages of 200 messages read back when looking for a placeholder (the newest in a DM)."""


class SlackResponder:
    """One answer's messages in one Slack thread."""

    def __init__(
        self,
        client: AsyncWebClient,
        address: ReplyAddress,
        *,
        thinking: str = "Thinking…",
        min_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.address = address
        self.min_interval = min_interval
        self._status = thinking
        self._text: list[str] = []
        self._ts: str | None = None
        self._job_id: str | None = None
        self._shown_at = 0.0

    @property
    def placeholder(self) -> str | None:
        """The placeholder message's ts, once posted (or taken over)."""
        return self._ts

    def resume(self, placeholder: str) -> None:
        """Write into the placeholder an earlier attempt posted (its ts), not a new one."""
        self._ts = placeholder

    def tag(self, job_id: str) -> None:
        """Post the placeholder as ``job_id``'s (in its metadata), so :meth:`find` finds it."""
        self._job_id = job_id

    async def find(self, job_id: str) -> str | None:
        """The ts of a placeholder posted for ``job_id`` in this thread (or DM), if any."""
        cursor = None
        for _ in range(_LOOKUP_PAGES):
            response = await self._read(cursor)
            for item in response.get("messages", []):
                metadata = item.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == PLACEHOLDER_EVENT and (
                    payload.get("job_id") == job_id
                ):
                    return str(item["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    async def _read(self, cursor: str | None) -> Any:
        channel, thread = self.address.channel_id, self.address.thread_ts
        if thread is None:  # a DM answered at top level: the newest messages first
            return await self.client.conversations_history(
                channel=channel, include_all_metadata=True, limit=200, cursor=cursor
            )
        return await self.client.conversations_replies(
            channel=channel, ts=thread, include_all_metadata=True, limit=200, cursor=cursor
        )

    async def start(self) -> None:
        if self._ts is not None:  # resumed: show that work goes on in the same message
            self._shown_at = 0.0
            await self._refresh(force=True)
            return
        message = progress_message(self._status)
        metadata = None
        if self._job_id is not None:
            payload = {"job_id": self._job_id}
            metadata = {"event_type": PLACEHOLDER_EVENT, "event_payload": payload}
        response = await self.client.chat_postMessage(
            channel=self.address.channel_id,
            thread_ts=self.address.thread_ts,
            text=message.text,
            blocks=message.blocks,
            metadata=metadata,
        )
        self._ts = str(response["ts"])
        self._shown_at = time.monotonic()

    async def status(self, text: str) -> None:
        self._status = text
        await self._refresh(force=True)

    async def stream(self, chunk: str) -> None:
        self._text.append(chunk)
        await self._refresh(force=False)

    async def _refresh(self, *, force: bool) -> None:
        now = time.monotonic()
        if self._ts is None or (not force and now - self._shown_at < self.min_interval):
            return
        self._shown_at = now
        try:
            await self._show(progress_message(self._status, "".join(self._text)))
        except SlackApiError as exc:  # progress is best effort; the final message is not
            log.warning("could not update progress: %s", exc.response.get("error"))

    async def finish(self, answer: Answer) -> None:
        run_id = str(answer.run_id) if answer.status == "completed" else None
        messages = answer_messages(answer.text, sources_of(answer.citations), run_id=run_id)
        await self._show(messages[0])
        for message in messages[1:]:
            await self._post(message)

    async def fail(self, message: str) -> None:
        await self._show(SlackMessage(text=message, blocks=[]))

    async def _show(self, message: SlackMessage) -> None:
        if self._ts is None:
            await self._post(message)
            return
        await self.client.chat_update(
            channel=self.address.channel_id,
            ts=self._ts,
            text=message.text,
            blocks=message.blocks,
        )

    async def _post(self, message: SlackMessage) -> None:
        await self.client.chat_postMessage(
            channel=self.address.channel_id,
            thread_ts=self.address.thread_ts,
            text=message.text,
            blocks=message.blocks,
        )


class SlackChannel:
    """The Slack side of answering, for :class:`bot.answering.AnswerService`."""

    def __init__(self, client: AsyncWebClient, *, bot_user_id: str | None = None) -> None:
        self.client = client
        self.bot_user_id = bot_user_id

    def responder(self, address: ReplyAddress, question: str) -> SlackResponder:
        thinking = in_language_of(question, "Thinking…", "생각 중…")
        return SlackResponder(self.client, address, thinking=thinking)

    async def earlier_messages(self, message: IncomingMessage) -> list[ChatMessage]:
        """The thread's messages before this one (``conversations.replies``), oldest first."""
        reply = message.reply
        if reply is None or reply.thread_ts is None:
            return []
        try:
            response = await self.client.conversations_replies(
                channel=reply.channel_id, ts=reply.thread_ts, limit=_HISTORY_LIMIT + 1
            )
        except SlackApiError as exc:
            log.warning("could not read the thread: %s", exc.response.get("error"))
            return []
        bot = self.bot_user_id or await self._bot_user_id()
        earlier = []
        items: list[dict[str, Any]] = response.get("messages", [])
        asked = message.event_id.rpartition(":")[2]
        for item in items:
            if _at_or_after(str(item.get("ts", "")), asked):  # this question, or later
                break
            earlier.append(_as_chat(item, bot))
        return [m for m in earlier if m.content][-_HISTORY_LIMIT:]

    async def _bot_user_id(self) -> str | None:
        try:
            self.bot_user_id = str((await self.client.auth_test())["user_id"])
        except SlackApiError:
            return None
        return self.bot_user_id


def _at_or_after(ts: str, asked: str) -> bool:
    try:
        return float(ts) >= float(asked)
    except ValueError:
        return ts == asked


def _as_chat(item: dict[str, Any], bot_user_id: str | None) -> ChatMessage:
    text = str(item.get("text", "")).strip()
    if item.get("user") == bot_user_id or (item.get("bot_id") and bot_user_id is None):
        return ChatMessage("assistant", text)
    return ChatMessage("user", f"<@{item.get('user', 'someone')}>: {text}")
