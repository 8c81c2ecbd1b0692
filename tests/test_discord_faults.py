"""Exactly one Discord answer per question, whatever dies: real ``deskbot`` processes, SIGKILL.

Members ask on the fake Discord (a mention in #general, answered in a thread of its own, or a
DM); one ``deskbot discord`` process holds the gateway and queues the questions on the
session's Valkey; two ``deskbot worker`` processes answer through Discord's REST API (see
:mod:`tests.cluster`). A worker is killed where the fakes hold it: the scripted model holding
a question's model call, or the fake Discord holding the create or edit that puts a message
up. Every test ends counting, from the fake Discord's messages as members see them, one
answer per question and no placeholder left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.discord.split import split_markdown
from tests.cluster import PROGRESS, Cluster, Process, QuestionModel, cluster_env, wait_for
from tests.conftest import FreshDatabase
from tests.fakes.discord_api import BOT_ID, CHANNEL_ID, USER_ID, Call, FakeDiscord, Hold
from tests.fakes.openai_server import Reply, ScriptedOpenAI
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_faults import settled_runs

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

VISIBILITY = 6.0  # seconds before a dead worker's job is taken over
QUESTIONS = range(1, 9)
VICTIM = 5
LONG = "\n\n".join(f"Paragraph {n}: " + "HNBT closed higher that day. " * 45 for n in range(3))


class LongAnswerModel(QuestionModel):
    """:class:`QuestionModel`, but question ``long`` is answered in about three messages."""

    def __init__(self, long: int) -> None:
        super().__init__()
        self.long = f"q-{long}"

    def __call__(self, body: dict[str, Any]) -> Reply:
        reply = super().__call__(body)
        if reply.text is not None and reply.text.startswith(f"Answer to {self.long}:"):
            return Reply(text=f"{reply.text}\n\n{LONG}")
        return reply


@dataclass
class Asked:
    """The questions asked so far: each one's message id, and where it is answered."""

    ids: dict[int, str]
    where: dict[int, str]  # its thread (the same id), or the DM channel

    def path(self, n: int) -> str:
        """The REST path that creates a message where question ``n`` is answered."""
        return f"/channels/{self.where.get(n)}/messages"


@pytest.fixture
def model(openai_server: ScriptedOpenAI) -> LongAnswerModel:
    rule = LongAnswerModel(VICTIM)
    openai_server.answer_with(rule)
    return rule


@pytest.fixture
async def cluster(
    tmp_path: Path,
    fresh_database: FreshDatabase,
    redis_url: str,
    openai_server: ScriptedOpenAI,
    slack_api: FakeSlackAPI,
    discord_api: FakeDiscord,
    model: LongAnswerModel,
) -> AsyncIterator[Cluster]:
    env = cluster_env(
        tmp_path,
        fresh_database.url,
        redis_url,
        openai_server,
        slack_api,
        DISCORD_TOKEN=discord_api.token,
        DISCORD_API_URL=discord_api.api_url,
        DESKBOT_DISCORD_GUILD_RATE_LIMIT="100000",
        DESKBOT_QUEUE_VISIBILITY_TIMEOUT=str(VISIBILITY),
    )
    env = {k: v for k, v in env.items() if not k.startswith("SLACK_")}  # Discord alone
    async with Cluster(tmp_path, env) as running:
        gateway = running.spawn("discord", "discord")
        await wait_for(
            lambda: discord_api.readies >= 1 or not gateway.alive(), timeout=90, what="READY"
        )
        assert gateway.alive(), gateway.log.read_text()[-3000:]
        yield running


def ask(discord: FakeDiscord, asked: Asked, n: int, *, dm: bool = False) -> None:
    """Question ``n``: a mention in #general (answered in its thread), or a DM."""
    text = f"q-{n} what did HNBT close at?"
    if dm:
        asked.where[n] = discord.dm_channel_id(USER_ID)
        asked.ids[n] = str(discord.send_dm(USER_ID, text)["id"])
        return
    asked.ids[n] = asked.where[n] = str(
        discord.send_message(CHANNEL_ID, text, mention_bot=True)["id"]
    )


def bot_messages(discord: FakeDiscord, channel_id: str) -> list[dict[str, Any]]:
    """The bot's messages where a question is answered, as members see them now."""
    return [m for m in discord.messages_in(channel_id) if m["author"]["id"] == BOT_ID]


@dataclass
class Count:
    """Per question: the bot's messages there, those starting its answer, and placeholders."""

    messages: dict[int, int]
    answers: dict[int, int]
    placeholders: dict[int, int]

    @classmethod
    def of(cls, discord: FakeDiscord, asked: Asked) -> Count:
        """Count from the fake Discord's messages (after every edit and deletion)."""
        shown = {n: bot_messages(discord, where) for n, where in asked.where.items()}
        return cls(
            {n: len(found) for n, found in shown.items()},
            {
                n: sum(m["content"].startswith(f"Answer to q-{n}:") for m in f)
                for n, f in shown.items()
            },
            {n: sum(m["content"].startswith(PROGRESS) for m in f) for n, f in shown.items()},
        )


def holder(cluster: Cluster, event_id: str) -> Process:
    """The running worker whose log shows it took the job of ``event_id``."""
    for process in cluster.workers:
        if any(event_id in r["msg"] for r in process.logged("answering ")):
            return process
    raise AssertionError(f"no running worker logged taking {event_id}")


def creates_part(asked: Asked, n: int, part: int) -> Callable[[Call], bool]:
    """The create of question ``n``'s message number ``part`` (0: its placeholder, the first)."""

    def matches(call: Call) -> bool:
        nonce = str((call.json or {}).get("nonce", ""))
        return call.path == asked.path(n) and (part == 0 or nonce.endswith(f"-{part}"))

    return matches


def shows_answer(asked: Asked, n: int) -> Callable[[Call], bool]:
    """The edit that replaces question ``n``'s placeholder with its answer."""

    def matches(call: Call) -> bool:
        content = str((call.json or {}).get("content", ""))
        return call.path.startswith(asked.path(n)) and content.startswith(f"Answer to q-{n}:")

    return matches


@pytest.mark.parametrize(
    "point",
    [
        "model call in flight",
        "placeholder posted, not recorded",
        "placeholder posted in a DM, not recorded",
        "answer shown, job not acked",
        "third part of a long answer posted, not recorded",
    ],
)
async def test_a_worker_killed_mid_answer_leaves_one_answer_and_no_placeholder(
    cluster: Cluster,
    model: LongAnswerModel,
    discord_api: FakeDiscord,
    fresh_database: FreshDatabase,
    point: str,
) -> None:
    await cluster.start_workers(2)
    asked = Asked({}, {})
    hold: Hold | None = None
    if point == "model call in flight":
        held = model.hold(f"q-{VICTIM}")
        reached = held.reached.is_set
    else:
        if point.startswith("placeholder"):
            at, method = creates_part(asked, VICTIM, 0), "POST"
        elif point.startswith("third part"):
            at, method = creates_part(asked, VICTIM, 2), "POST"
        else:
            at, method = shows_answer(asked, VICTIM), "PATCH"
        hold = discord_api.hold(method, r"/channels/\d+/messages(/\d+)?", at)
        reached = hold.reached.is_set

    for n in QUESTIONS:
        ask(discord_api, asked, n, dm=n == VICTIM and "DM" in point)
    await wait_for(reached, what=f"q-{VICTIM} to reach the kill point")
    victim_event = f"discord:message:{asked.ids[VICTIM]}"
    dying = holder(cluster, victim_event)
    cluster.kill(dying)  # SIGKILL: no clean-up, no ack, no retry
    if hold is None:
        held.release()
    else:
        hold.release()

    (survivor,) = cluster.workers
    await wait_for(
        lambda: any(victim_event in r["msg"] for r in survivor.logged("answering ")),
        timeout=VISIBILITY * 5,
        what="the survivor to take the job over",
    )
    await wait_for(
        lambda: all(Count.of(discord_api, asked).answers.values()), timeout=60, what="answers"
    )
    await asyncio.sleep(1.0)  # a duplicate would show up now
    count = Count.of(discord_api, asked)

    long_parts = split_markdown(f"Answer to q-{VICTIM}: HNBT closed at 101.5.\n\n{LONG}")
    assert len(long_parts) == 3
    parts = {n: len(long_parts) if n == VICTIM else 1 for n in QUESTIONS}
    assert count.answers == dict.fromkeys(QUESTIONS, 1)  # never a second answer
    assert count.placeholders == dict.fromkeys(QUESTIONS, 0)  # none left "Thinking…"
    assert count.messages == parts  # the long answer in its three parts, each once
    shown = [m["content"] for m in bot_messages(discord_api, asked.where[VICTIM])]
    assert shown == long_parts  # in order, each once
    assert bot_messages(discord_api, CHANNEL_ID) == []  # nothing stray in #general
    assert discord_api.errors == []
    statuses = await settled_runs(fresh_database.url)
    assert statuses["completed"] + statuses.get("expired", 0) >= len(QUESTIONS)
