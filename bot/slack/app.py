"""The Slack adapter: bolt handlers that acknowledge at once and queue the work.

Events (mentions, DMs, follow-ups in threads the bot answered in) become ``answer`` jobs;
``/deskbot`` handles document administration; the feedback buttons and the upload modal
are interactivity. Every handler acknowledges before doing anything slow. An event is
acknowledged once it is queued (claimed for dedup, rate-limited, put on the queue: a few
milliseconds), so one that cannot be queued (Redis down past its ride-out, PostgreSQL
down) is answered 503 with its claim released, and Slack delivers it again later instead
of it being lost behind a 200. Commands and interactivity are acknowledged first.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.agent.store import ConversationStore
from bot.answering import ANSWER_JOB
from bot.messages import IncomingMessage, ReplyAddress, ThreadKey
from bot.metrics import EVENTS_DEDUPLICATED, EVENTS_RATE_LIMITED, EVENTS_RECEIVED
from bot.settings import Settings
from bot.slack.admin import SlackAdmin
from bot.state import SharedState

__all__ = ["SlackAdapter", "message_key"]

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_IGNORED_SUBTYPES = {
    "message_changed",
    "message_deleted",
    "message_replied",
    "bot_message",
    "channel_join",
    "channel_leave",
    "thread_broadcast",
}


def message_key(team: str | None, channel: str, ts: str) -> str:
    """The id one Slack message has everywhere (retries and mention+message share it)."""
    return f"slack:{team or '-'}:{channel}:{ts}"


class SlackAdapter:
    """Builds the bolt app and turns Slack events into jobs."""

    def __init__(
        self,
        settings: Settings,
        state: SharedState,
        conversations: ConversationStore,
        admin: SlackAdmin,
        client: AsyncWebClient,
    ) -> None:
        self.settings = settings
        self.state = state
        self.conversations = conversations
        self.admin = admin
        self.client = client
        secret = settings.slack_signing_secret
        self.bolt = AsyncApp(
            client=client,
            signing_secret=secret.get_secret_value() if secret else "",
            request_verification_enabled=secret is not None,
            ignoring_self_events_enabled=True,
            process_before_response=False,
        )
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._register()

    def _register(self) -> None:
        bolt = self.bolt
        # The work is done in listener middleware, before bolt acknowledges (see above).
        bolt.event("app_mention", middleware=[self._queue_mention])(_acknowledge)
        bolt.event("message", middleware=[self._queue_message])(_acknowledge)
        bolt.command("/deskbot")(self.admin.on_command)
        bolt.action(re.compile(r"^deskbot_feedback_(up|down)$"))(self._on_feedback)
        bolt.action("deskbot_offer_ingest")(self.admin.on_offer_clicked)
        bolt.view("deskbot_upload")(self.admin.on_upload_submitted)

    # --- conversations ---------------------------------------------------------------

    async def settle(self, *, timeout: float = 10.0) -> None:
        """Wait until the events already acknowledged are queued (stopping loses none)."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)

    def _track(self) -> None:
        task = asyncio.current_task()  # bolt runs each listener after the ack, in a task
        if task is not None:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _queue_mention(
        self, body: dict[str, Any], event: dict[str, Any], next_: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        return await _queued_then(self._on_mention(body, event), next_)

    async def _queue_message(
        self, body: dict[str, Any], event: dict[str, Any], next_: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        return await _queued_then(self._on_message(body, event), next_)

    async def _on_mention(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        self._track()
        if event.get("bot_id") or event.get("subtype") in _IGNORED_SUBTYPES:
            return
        thread_ts = event.get("thread_ts") or event["ts"]
        await self._enqueue(body, event, thread_ts=thread_ts, private=False)

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        self._track()
        subtype = event.get("subtype")
        if event.get("bot_id") or (subtype and subtype != "file_share"):
            return
        bot_user = body.get("authorizations", [{}])[0].get("user_id")
        text = str(event.get("text", ""))
        if event.get("channel_type") == "im":
            if subtype == "file_share":
                await self.admin.offer_shared_files(event)
                if not text.strip():
                    return
            await self._enqueue(body, event, thread_ts=event.get("thread_ts"), private=True)
            return
        thread_ts = event.get("thread_ts")
        if thread_ts is None or (bot_user and f"<@{bot_user}>" in text):
            return  # top-level chatter, or a mention (the app_mention handler answers it)
        # a follow-up in a thread it answered (the same key the worker answered it under)
        if await self.conversations.has_thread(_thread(body, event, thread_ts)):
            await self._enqueue(body, event, thread_ts=thread_ts, private=False)

    async def _enqueue(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        *,
        thread_ts: str | None,
        private: bool,
    ) -> None:
        team = body.get("team_id")
        channel = str(event["channel"])
        key = message_key(team, channel, str(event["ts"]))
        EVENTS_RECEIVED.labels("slack").inc()
        if not await self.state.deduper.claim(key, ttl=self.settings.dedup_ttl):
            EVENTS_DEDUPLICATED.labels("slack").inc()
            return  # a retry, or the message event twin of an app_mention
        user = str(event.get("user", ""))
        text = _MENTION.sub("", str(event.get("text", ""))).strip()
        reply = ReplyAddress("slack", channel, thread_ts, team)
        if not text:
            await self._say(
                reply, "Ask me a question after the mention. / 질문을 함께 적어 주세요."
            )
            return
        decision = await self.state.limiter.hit(f"slack:{team}:{user}")
        if not decision.allowed:
            EVENTS_RATE_LIMITED.labels("slack").inc()
            wait = max(1, round(decision.retry_after))
            await self._say(
                reply,
                f"You are asking faster than I can answer; try again in {wait} s. "
                f"/ 요청이 너무 잦습니다. {wait}초 뒤에 다시 시도해 주세요.",
            )
            return
        message = IncomingMessage(
            platform="slack",
            workspace_id=team,
            channel_id=channel,
            user_id=user,
            text=text,
            thread=_thread(body, event, thread_ts),
            event_id=key,
            private=private,
            roles=(user,),
            reply=reply,
        )
        try:
            await self.state.queue.put(ANSWER_JOB, {"message": message.to_json()})
        except Exception:
            await self._release(key)  # else Slack's next delivery is dropped as a duplicate
            raise

    async def _release(self, key: str) -> None:
        try:
            await self.state.deduper.release(key)
        except Exception as exc:  # Redis is gone too: the claim's TTL is the fallback
            log.warning("could not release the claim on %s (%s)", key, _first_line(exc))

    async def _say(self, reply: ReplyAddress, text: str) -> None:
        try:
            await self.client.chat_postMessage(
                channel=reply.channel_id, thread_ts=reply.thread_ts, text=text
            )
        except SlackApiError as exc:  # a courtesy message; the event itself is handled
            log.warning("could not post to %s: %s", reply.channel_id, exc.response.get("error"))

    # --- feedback --------------------------------------------------------------------

    async def _on_feedback(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        value = 1 if action["action_id"].endswith("_up") else -1
        user = body["user"]["id"]
        try:
            run_id = uuid.UUID(str(action.get("value")))
        except ValueError:
            return
        await self.conversations.record_feedback(run_id, user, value)
        channel = (body.get("channel") or body.get("container") or {}).get("id") or body.get(
            "container", {}
        ).get("channel_id")
        if channel:
            await self.client.chat_postEphemeral(
                channel=channel,
                user=user,
                text="Thanks for the feedback. / 의견 고맙습니다.",
            )


async def _acknowledge() -> None:
    """The events' listener: bolt acknowledges once the middleware queued the event."""


async def _queued_then(
    work: Awaitable[None], next_: Callable[[], Awaitable[None]]
) -> BoltResponse | None:
    """Do an event's work, then let bolt acknowledge it; a 503 asks Slack to retry."""
    try:
        await work
    except Exception as exc:  # the edge: Slack delivers the event again later
        log.warning("event not queued (%s); Slack will deliver it again", _first_line(exc))
        return BoltResponse(status=503, body="not queued; try again")
    await next_()
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _thread(body: dict[str, Any], event: dict[str, Any], thread_ts: str | None) -> ThreadKey:
    """One deskbot thread per Slack thread; a DM without threads is one conversation."""
    return ThreadKey.of("slack", body.get("team_id"), str(event["channel"]), thread_ts)
