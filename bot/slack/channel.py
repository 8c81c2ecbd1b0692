"""Answering in Slack: a placeholder updated with progress, then the final message(s).

The responder posts one placeholder in the thread, edits it with the status and the answer
as it is written (at most once a second: Slack allows about one ``chat.update`` per second
per channel), and finally replaces it with the formatted answer; an answer longer than one
message continues in follow-up messages. Sources and the feedback buttons go last. A job's
messages carry its id and their part number in their metadata, so a worker taking over a
dead one's job edits them in place, and posts only those missing.
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
from bot.replies import ReplyRecord
from bot.slack.format import SlackMessage, answer_messages, progress_message
from tools.chat_backend import ChatMessage

__all__ = ["PLACEHOLDER_EVENT", "SlackChannel", "SlackResponder"]

log = logging.getLogger(__name__)

_HISTORY_LIMIT = 30
PLACEHOLDER_EVENT = "deskbot_answer"
"""The metadata ``event_type`` of an answer's messages; ``event_payload``: ``job_id``, ``part``."""
_GONE = "message_not_found"
"""Slack's error for a message that is not there (deleted)."""
_LOOKUP_PAGES = 5
"""Pages of 200 messages read back when looking for an answer's parts (the newest in a DM)."""


class SlackResponder:
    """One answer's messages in one Slack thread.

    Resumable (:class:`bot.answering.Resumable`): its reference names every message of the
    answer so far, their ts joined by commas (the placeholder's first), so a worker taking
    the job over edits them instead of posting again. Tagged with a job, each message is
    posted with metadata naming the job and its part, and each further part is recorded in
    ``replies`` as soon as it is up; one posted but not recorded (its worker killed in
    between) is read back by that metadata when the job is taken over. A takeover whose
    answer is shorter deletes the parts it no longer needs.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        address: ReplyAddress,
        *,
        thinking: str = "Thinking…",
        min_interval: float = 1.0,
        replies: ReplyRecord | None = None,
    ) -> None:
        self.client = client
        self.address = address
        self.min_interval = min_interval
        self.replies = replies
        self._status = thinking
        self._text: list[str] = []
        self._parts: list[str] = []
        self._job_id: str | None = None
        self._strays: list[str] = []
        self._resumed = False
        self._shown_at = 0.0

    @property
    def placeholder(self) -> str | None:
        """The answer's messages so far (their ts, comma-joined), once the first is up."""
        return ",".join(self._parts) if self._parts else None

    def resume(self, placeholder: str) -> None:
        """Write into the messages an earlier attempt posted (its reference), not new ones."""
        self._parts = [ts for ts in placeholder.split(",") if ts]
        self._resumed = bool(self._parts)

    def tag(self, job_id: str) -> None:
        """Post the answer's messages as ``job_id``'s (in their metadata), for :meth:`find`."""
        self._job_id = job_id

    async def find(self, job_id: str) -> str | None:
        """The ts of the placeholder posted for ``job_id`` in this thread (or DM), if any."""
        first = [ts for part, ts in await self._posted_for(job_id) if part == 0]
        return first[0] if first else None

    async def _posted_for(self, job_id: str) -> list[tuple[int, str]]:
        """Each message posted here as a part of ``job_id``'s answer: by part, oldest first."""
        found: list[tuple[int, str]] = []
        cursor = None
        for _ in range(_LOOKUP_PAGES):
            response = await self._read(cursor)
            for item in response.get("messages", []):
                part = _part_of(item, job_id)
                if part is not None:
                    found.append((part, str(item["ts"])))
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return sorted(found, key=lambda pair: (pair[0], _ts_order(pair[1])))

    async def _read(self, cursor: str | None) -> Any:
        channel, thread = self.address.channel_id, self.address.thread_ts
        if thread is None:  # a DM answered at top level: the newest messages first
            return await self.client.conversations_history(
                channel=channel, include_all_metadata=True, limit=200, cursor=cursor
            )
        return await self.client.conversations_replies(
            channel=channel, ts=thread, include_all_metadata=True, limit=200, cursor=cursor
        )

    async def _take_over(self) -> None:
        """Add the parts a dead attempt posted but never recorded (found by their metadata).

        A part found beyond a gap, or a second copy of one (a post retried after its
        response was lost), is a stray: deleted with the parts the answer no longer needs.
        """
        if not self._resumed or self._job_id is None:
            return
        self._resumed = False
        try:
            found = await self._posted_for(self._job_id)
        except SlackApiError as exc:  # then a missing part is posted again, not lost
            log.warning("could not look for an answer's parts: %s", exc.response.get("error"))
            return
        for part, ts in found:
            if ts in self._parts:
                continue
            if part == len(self._parts):
                self._parts.append(ts)
            else:
                self._strays.append(ts)

    async def start(self) -> None:
        if self._parts:  # resumed: show that work goes on in the same message
            await self._take_over()
            self._shown_at = 0.0
            await self._refresh(force=True)
            return
        message = progress_message(self._status)
        response = await self.client.chat_postMessage(
            channel=self.address.channel_id,
            thread_ts=self.address.thread_ts,
            text=message.text,
            blocks=message.blocks,
            metadata=self._metadata(0),
        )
        self._parts = [str(response["ts"])]
        self._shown_at = time.monotonic()

    async def status(self, text: str) -> None:
        self._status = text
        await self._refresh(force=True)

    async def stream(self, chunk: str) -> None:
        self._text.append(chunk)
        await self._refresh(force=False)

    async def _refresh(self, *, force: bool) -> None:
        now = time.monotonic()
        if not self._parts or (not force and now - self._shown_at < self.min_interval):
            return
        self._shown_at = now
        try:
            await self._put(0, progress_message(self._status, "".join(self._text)))
        except SlackApiError as exc:  # progress is best effort; the final message is not
            log.warning("could not update progress: %s", exc.response.get("error"))

    async def finish(self, answer: Answer) -> None:
        await self._take_over()
        run_id = str(answer.run_id) if answer.status == "completed" else None
        messages = answer_messages(answer.text, sources_of(answer.citations), run_id=run_id)
        for index, message in enumerate(messages):
            await self._put(index, message)
        await self._drop_after(len(messages))

    async def fail(self, message: str) -> None:
        await self._take_over()
        await self._put(0, SlackMessage(text=message, blocks=[]))
        await self._drop_after(1)

    async def _put(self, index: int, message: SlackMessage) -> None:
        """Show ``message`` as the answer's part ``index``: edited if it is up, else posted."""
        if index < len(self._parts) and await self._edit(self._parts[index], message):
            return
        response = await self.client.chat_postMessage(
            channel=self.address.channel_id,
            thread_ts=self.address.thread_ts,
            text=message.text,
            blocks=message.blocks,
            metadata=self._metadata(index),
        )
        ts = str(response["ts"])  # new, or in place of one that is gone
        if index < len(self._parts):
            self._parts[index] = ts
        else:
            self._parts.append(ts)
        await self._record()

    async def _edit(self, ts: str, message: SlackMessage) -> bool:
        """Edit one part; False if it is gone (deleted in the meantime)."""
        try:
            await self.client.chat_update(
                channel=self.address.channel_id, ts=ts, text=message.text, blocks=message.blocks
            )
        except SlackApiError as exc:
            if exc.response.get("error") == _GONE:
                return False
            raise
        return True

    async def _drop_after(self, count: int) -> None:
        """Delete parts beyond ``count`` (a dead attempt's longer answer) and strays, record."""
        extra, self._parts = self._parts[count:], self._parts[:count]
        self._strays, extra = [], [*extra, *self._strays]
        for ts in extra:
            try:
                await self.client.chat_delete(channel=self.address.channel_id, ts=ts)
            except SlackApiError as exc:
                if exc.response.get("error") != _GONE:
                    log.warning("could not delete a leftover part: %s", exc.response.get("error"))
        if extra:
            await self._record()

    async def _record(self) -> None:
        if self.replies is not None and self._job_id is not None and self._parts:
            await self.replies.placed(self._job_id, ",".join(self._parts))

    def _metadata(self, index: int) -> dict[str, Any] | None:
        if self._job_id is None:
            return None
        payload = {"job_id": self._job_id, "part": index}
        return {"event_type": PLACEHOLDER_EVENT, "event_payload": payload}


class SlackChannel:
    """The Slack side of answering, for :class:`bot.answering.AnswerService`."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        bot_user_id: str | None = None,
        replies: ReplyRecord | None = None,
    ) -> None:
        self.client = client
        self.bot_user_id = bot_user_id
        self.replies = replies

    def responder(self, address: ReplyAddress, question: str) -> SlackResponder:
        thinking = in_language_of(question, "Thinking…", "생각 중…")
        return SlackResponder(self.client, address, thinking=thinking, replies=self.replies)

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


def _part_of(item: dict[str, Any], job_id: str) -> int | None:
    """The part number of ``job_id``'s answer that this message is, if it is one."""
    metadata = item.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    if metadata.get("event_type") != PLACEHOLDER_EVENT or payload.get("job_id") != job_id:
        return None
    part = payload.get("part", 0)  # placeholders posted before parts were numbered
    return part if isinstance(part, int) and part >= 0 else None


def _ts_order(ts: str) -> float:
    try:
        return float(ts)
    except ValueError:
        return 0.0


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
