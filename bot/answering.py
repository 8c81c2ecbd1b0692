"""The ``answer`` job: run the agent on an incoming message and reply on its platform.

Platform-neutral: the adapter supplies a :class:`Channel` for its platform, which knows how
to show progress and the answer (:class:`Responder`) and how to read a conversation's
earlier messages on the platform (for a thread the bot joins midway).

Answering a job is idempotent (:mod:`bot.replies`): its placeholder and whether its answer
was shown are recorded by job id, so a job delivered again after its worker died answers
nothing twice: a shown answer ends it at once, a placeholder left half-written is finished
(when the responder can take it over, :class:`Resumable`), and the dead attempt's run is
marked ``expired`` rather than left ``in_progress``. A job is acknowledged only once its
run's outcome, written behind the reply, is stored: a worker killed between the two leaves
the job to be delivered again, which expires that run instead of leaving it running.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from bot.agent.loop import Answer
from bot.app import App
from bot.db_reconnect import is_disconnect
from bot.deadlines import job_deadline
from bot.errors import ConfigError
from bot.language import in_language_of
from bot.messages import IncomingMessage, ReplyAddress
from bot.replies import PostedReply, ReplyRecord
from bot.state import Job
from knowledge.search import Scope
from tools.base import ToolContext
from tools.chat_backend import ChatMessage

__all__ = [
    "ANSWER_JOB",
    "SHOW_MARGIN",
    "AnswerService",
    "Channel",
    "Responder",
    "Resumable",
    "status_for_tool",
]

log = logging.getLogger(__name__)

ANSWER_JOB = "answer"
SHOW_MARGIN = 30.0
"""Seconds an answer job has beyond its run's deadline to show the answer (or why not)."""

_TOOL_STATUS = {
    "search_documents": ("Searching documents…", "문서를 찾는 중…"),
    "run_sql": ("Querying the database…", "데이터베이스를 조회하는 중…"),
    "describe_database": ("Reading the database schema…", "데이터베이스 구조를 읽는 중…"),
    "get_stock_quote": ("Looking up the quote…", "시세를 확인하는 중…"),
    "get_stock_history": ("Looking up prices…", "주가를 확인하는 중…"),
    "classify_comment": ("Classifying the comment…", "댓글을 분류하는 중…"),
}


def status_for_tool(name: str, question: str) -> str:
    """A short progress line for a tool call, in the language of the question."""
    english, korean = _TOOL_STATUS.get(name, (f"Running {name}…", f"{name} 실행 중…"))
    return in_language_of(question, english, korean)


class Responder(Protocol):
    """Shows one answer's progress and result on a platform."""

    async def start(self) -> None:
        """Show that work has begun (a placeholder or typing status)."""
        ...

    async def status(self, text: str) -> None:
        """Show what is happening now ("Searching documents…")."""
        ...

    async def stream(self, chunk: str) -> None:
        """More of the answer's text; the responder decides how often to show it."""
        ...

    async def finish(self, answer: Answer) -> None:
        """Show the final answer with its sources (and feedback controls)."""
        ...

    async def fail(self, message: str) -> None:
        """Say that no answer could be produced, and why."""
        ...


@runtime_checkable
class Resumable(Protocol):
    """A responder whose placeholder can be named, found, and taken over by another process."""

    @property
    def placeholder(self) -> str | None:
        """The platform's reference to the placeholder once :meth:`Responder.start` posted it."""
        ...

    def resume(self, placeholder: str) -> None:
        """Write into this existing placeholder instead of posting one at ``start``."""
        ...

    def tag(self, job_id: str) -> None:
        """Post the placeholder marked as ``job_id``'s, so :meth:`find` can find it."""
        ...

    async def find(self, job_id: str) -> str | None:
        """The reference of a placeholder posted for ``job_id`` at this address, if any."""
        ...


class Channel(Protocol):
    """A platform's side of answering: responders and earlier messages."""

    def responder(self, address: ReplyAddress, question: str) -> Responder:
        """A responder for one answer at ``address``."""
        ...

    async def earlier_messages(self, message: IncomingMessage) -> list[ChatMessage]:
        """Messages before ``message`` in its platform conversation (for a first answer)."""
        ...


class AnswerService:
    """Handles ``answer`` jobs with the app's agent and the platforms' channels."""

    def __init__(self, app: App, channels: Mapping[str, Channel]) -> None:
        self.app = app
        self.channels = channels
        self.replies = ReplyRecord(app.state.cache)

    async def __call__(self, job: Job) -> None:
        """Answer the message in ``job`` once, however often it is delivered."""
        message = IncomingMessage.from_json(job.payload["message"])
        with job_deadline(self.app.settings.run_deadline + SHOW_MARGIN):
            answer = await self.answer(message, job_id=job.id)
            if answer is not None:
                # Acked only once the run's outcome is stored: a worker killed before that
                # leaves the job to come back and expire the run, not leave it running.
                await self.app.conversations.settled(answer.thread_id)

    async def answer(self, message: IncomingMessage, *, job_id: str | None = None) -> Answer | None:
        """Run the agent and reply; the user always hears back, even on failure.

        With ``job_id``, what earlier attempts of the job showed is honoured (see the
        module docstring); None when the answer had already been shown.
        """
        channel = self.channels.get(message.platform)
        if channel is None:  # dead-lettered by the worker, with this reason
            raise ConfigError(
                f"cannot answer a {message.platform} message: that adapter is not configured "
                "in this worker (its token is missing)"
            )
        earlier = await self.replies.get(job_id) if job_id is not None else None
        if earlier is not None and earlier.shown:
            # Its worker died before the ack, perhaps before storing the run's outcome.
            expired = await self.app.conversations.expire_runs_of(message.event_id)
            log.warning(
                "%s was answered by an earlier attempt; not again (%d run(s) expired)",
                message.event_id,
                expired,
            )
            return None
        address = message.reply or ReplyAddress(message.platform, message.channel_id)
        responder = channel.responder(address, message.text)
        log.info("answering %s", message.event_id)
        try:
            await self._start(responder, message, job_id, earlier)
            answer = await self._ask(channel, message, responder)
            await responder.finish(answer)
        except Exception as exc:  # the edge: tell the user, keep the worker alive
            if job_id is not None and is_disconnect(exc):  # the database restarted mid-run:
                log.warning("answering %s cut off by the database", message.event_id)
                raise  # the job is tried again (its placeholder finished then), not failed
            log.exception("answering %s failed", message.event_id)
            await _say_failure(responder, message.text, exc)
            answer = None
        if job_id is not None:
            await self.replies.shown(job_id, _placeholder(responder))
        return answer

    async def _start(
        self,
        responder: Responder,
        message: IncomingMessage,
        job_id: str | None,
        earlier: PostedReply | None,
    ) -> None:
        if job_id is not None and isinstance(responder, Resumable):
            responder.tag(job_id)
            placeholder = await _earlier_placeholder(responder, job_id, earlier)
            if placeholder is not None:
                responder.resume(placeholder)  # the dead attempt's placeholder, finished here
            else:
                await self.replies.posting(job_id)  # findable if we die before recording it
        await responder.start()
        if earlier is not None:  # an earlier attempt died mid-run: its run ends here
            expired = await self.app.conversations.expire_runs_of(message.event_id)
            log.warning("%s taken over; %d earlier run(s) expired", message.event_id, expired)
        placeholder = _placeholder(responder)
        if job_id is not None and placeholder is not None:
            await self.replies.placed(job_id, placeholder)

    async def give_up(self, job: Job) -> None:
        """Tell the asker, in the answer's place, that their question's job was given up on.

        Called once per dead-lettered job (:func:`bot.jobs.dead_letter_notices`); does
        nothing if an attempt had shown the answer, or the platform is not configured here.
        """
        message = IncomingMessage.from_json(job.payload["message"])
        earlier = await self.replies.get(job.id)
        channel = self.channels.get(message.platform)
        if (earlier is not None and earlier.shown) or channel is None:
            return
        address = message.reply or ReplyAddress(message.platform, message.channel_id)
        responder = channel.responder(address, message.text)
        if isinstance(responder, Resumable):
            responder.tag(job.id)  # parts the dead attempts left are found and replaced too
            placeholder = await _earlier_placeholder(responder, job.id, earlier)
            if placeholder is not None:
                responder.resume(placeholder)
        await self.app.conversations.expire_runs_of(message.event_id)
        await responder.fail(
            in_language_of(
                message.text,
                "I could not answer this: every attempt failed. Please ask again later.",
                "여러 번 시도했지만 답하지 못했습니다. 잠시 후 다시 질문해 주세요.",
            )
        )
        await self.replies.shown(job.id, _placeholder(responder))
        log.warning("told the asker of %s that it was given up on", message.event_id)

    async def _ask(
        self, channel: Channel, message: IncomingMessage, responder: Responder
    ) -> Answer:
        key = message.thread
        # The platform's earlier messages matter only the first time the bot takes part;
        # after that the stored thread has the conversation (begin_run reads it).
        known = await self.app.conversations.has_thread(key)
        earlier = [] if known else await channel.earlier_messages(message)
        context = ToolContext(
            scope=Scope(
                channel_id=message.channel_id,
                user_id=message.user_id,
                roles=frozenset(message.roles),
                private_conversation=message.private,
            ),
            user_id=message.user_id,
            channel_id=message.channel_id,
        )

        async def on_tool_call(name: str, arguments: dict[str, Any]) -> None:
            await responder.status(status_for_tool(name, message.text))

        return await self.app.agent.ask(
            key,
            message.text,
            context,
            on_text=responder.stream,
            on_tool_call=on_tool_call,
            instructions=self.app.prompts.for_channel(message.channel_id),
            external_id=message.event_id,
            earlier=earlier,
        )


async def _earlier_placeholder(
    responder: Resumable, job_id: str, earlier: PostedReply | None
) -> str | None:
    """The placeholder an earlier attempt posted: recorded, or found where it was posted."""
    if earlier is None or earlier.shown:
        return None
    if earlier.message is not None:
        return earlier.message
    try:  # it meant to post one and died before recording it: it may be up
        return await responder.find(job_id)
    except Exception:  # not found is a second placeholder, not a lost answer
        log.warning("could not look for the placeholder of job %s", job_id, exc_info=True)
        return None


def _placeholder(responder: Responder) -> str | None:
    return responder.placeholder if isinstance(responder, Resumable) else None


async def _say_failure(responder: Responder, question: str, exc: Exception) -> None:
    text = in_language_of(
        question,
        "Something went wrong while answering. Please try again in a moment.",
        "답을 만드는 중에 문제가 생겼습니다. 잠시 후 다시 시도해 주세요.",
    )
    try:
        await responder.fail(text)
    except Exception:
        log.exception("could not tell the user about the failure (%s)", exc)
