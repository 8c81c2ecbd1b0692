"""One attempt of a job's answer, as a worker runs it, for the takeover tests of each platform."""

from __future__ import annotations

import uuid
from typing import TypeVar

from bot.agent.answer import Answer
from bot.discord.channel import DiscordResponder
from bot.replies import ReplyRecord
from bot.slack.channel import SlackResponder

R = TypeVar("R", SlackResponder, DiscordResponder)


async def attempt_with(responder: R, replies: ReplyRecord, job: str, text: str) -> R:
    """Answer ``text`` from the reply record, as :class:`bot.answering.AnswerService` does,
    and never mark it shown (its worker dies before the ack)."""
    responder.tag(job)
    earlier = await replies.get(job)
    if earlier is not None and earlier.message is not None:
        responder.resume(earlier.message)
    await responder.start()
    if responder.placeholder is not None:  # as AnswerService records the first message
        await replies.placed(job, responder.placeholder)
    await responder.finish(Answer(uuid.uuid4(), uuid.uuid4(), "completed", text))
    return responder
