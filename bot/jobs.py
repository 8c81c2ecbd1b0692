"""The job kinds this release knows, and the handlers that process them.

Adapters enqueue jobs by kind; :func:`job_handlers` maps each kind to its handler for the
worker (a ``deskbot worker`` process with Redis, or the adapter's own in-process worker).
A job of an unknown kind is dead-lettered at once. :func:`make_worker` builds that worker,
with its upkeep: runs left ``in_progress`` by a worker that died are marked ``expired``, the
asker of a dead-lettered question is told so in its thread (once), and
moderation records about members older than ``DESKBOT_MODERATION_RETENTION_DAYS`` are
deleted (at most once an hour per process).

    answer          an IncomingMessage to answer with the agent, on its platform
    slack_ingest    files an admin gave the bot in Slack, to download and ingest
    discord_ingest  attachments an admin gave ``/docs upload``, to download and ingest

Discord jobs are answered through Discord's REST API alone: a worker holds no gateway
connection (the adapter's process holds the only one).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from bot.answering import ANSWER_JOB, AnswerService, Channel
from bot.app import App
from bot.moderation import ModerationStore
from bot.replies import REPLY_TTL, ReplyRecord
from bot.worker import Chore, Handler, Worker

if TYPE_CHECKING:
    from bot.discord.rest import DiscordREST

__all__ = [
    "NOTICE_WITHIN",
    "PURGE_EVERY",
    "dead_letter_notices",
    "embedded_worker",
    "job_handlers",
    "make_worker",
    "moderation_retention",
    "stale_run_expiry",
]

log = logging.getLogger(__name__)

NOTICE_WITHIN = 24 * 3600.0
"""A dead-lettered question younger than this (seconds) gets a reply saying so."""

PURGE_EVERY = dt.timedelta(hours=1)
"""How often a process purges expired moderation records (its chores run every minute)."""


def job_handlers(app: App, *, discord: DiscordREST | None = None) -> dict[str, Handler]:
    """Every handler the configuration supports, keyed by job kind.

    ``discord`` is the REST client Discord jobs answer through (required when
    ``DISCORD_TOKEN`` is set; :func:`make_worker` makes one).
    """
    channels: dict[str, Channel] = {}
    handlers: dict[str, Handler] = {}
    if app.settings.slack_bot_token is not None:
        from bot.slack import SlackChannel, SlackIngest, slack_client
        from bot.slack.admin import INGEST_JOB

        client = slack_client(app.settings)
        channels["slack"] = SlackChannel(client, replies=ReplyRecord(app.state.cache))
        handlers[INGEST_JOB] = SlackIngest(app.settings, app.knowledge, client)
    if discord is not None:
        from bot.discord.admin import INGEST_JOB as DISCORD_INGEST_JOB
        from bot.discord.admin import DiscordIngest
        from bot.discord.channel import DiscordChannel

        channels["discord"] = DiscordChannel(discord, replies=ReplyRecord(app.state.cache))
        handlers[DISCORD_INGEST_JOB] = DiscordIngest(app.settings, app.knowledge, discord)
    handlers[ANSWER_JOB] = AnswerService(app, channels)
    return handlers


def make_worker(app: App, *, discord: DiscordREST | None = None) -> Worker:
    """The worker for ``app``: every handler, and the upkeep (stale runs, moderation retention).

    With ``DISCORD_TOKEN`` set and no ``discord`` client handed in (a ``deskbot worker``
    process), the worker opens its own REST client and closes it when it stops.
    """
    cleanup: list[Chore] = []
    moderation = ModerationStore(app.database.engine, appeal_days=app.settings.appeal_days)
    retention = moderation_retention(moderation, app.settings.moderation_retention_days)
    if discord is None and app.settings.discord_token is not None:
        from bot.discord.rest import DiscordREST

        token = app.settings.discord_token.get_secret_value()
        discord = DiscordREST(token, app.settings.discord_api_url)
        cleanup.append(discord.close)
    handlers = job_handlers(app, discord=discord)
    answers = handlers[ANSWER_JOB]
    assert isinstance(answers, AnswerService)
    notices = dead_letter_notices(app, answers)
    return Worker(
        app.state.queue,
        handlers,
        concurrency=app.settings.worker_concurrency,
        upkeep=[stale_run_expiry(app), retention, notices],
        upkeep_interval=app.settings.upkeep_interval,
        cleanup=cleanup,
        grace=app.settings.shutdown_grace,
    )


@contextlib.asynccontextmanager
async def embedded_worker(
    app: App, *, discord: DiscordREST | None = None, hurry: asyncio.Event | None = None
) -> AsyncIterator[None]:
    """Run the worker in this process unless Redis shares the queue with other workers.

    Leaving the block drains it (see :class:`~bot.worker.Worker`); ``hurry`` cuts that short.
    """
    if app.settings.redis_url is not None:
        yield
        return
    stop = asyncio.Event()
    worker = make_worker(app, discord=discord)
    task = asyncio.create_task(worker.run(stop, hurry=hurry), name="deskbot-embedded-worker")
    try:
        yield
    finally:
        stop.set()
        await task


def stale_run_expiry(app: App) -> Chore:
    """A chore that marks runs still ``in_progress`` long after their deadline ``expired``.

    A live run ends by its deadline; one twice as old (and a minute more for its last
    write) belongs to a process that died, and would otherwise show ``in_progress`` forever.
    """
    older_than = dt.timedelta(seconds=2 * app.agent.limits.deadline + 60)

    async def expire_stale_runs() -> None:
        expired = await app.conversations.expire_stale_runs(older_than=older_than)
        if expired:
            log.warning("expired %d run(s) left in progress by a stopped process", expired)

    return expire_stale_runs


def dead_letter_notices(app: App, answers: AnswerService) -> Chore:
    """A chore that tells each asker, once, that their question's job was dead-lettered.

    Dead letters come from the worker's own retries and from the queue, when a job's
    workers kept dying; each is claimed in the deduper, so one process tells the user.
    Jobs older than :data:`NOTICE_WITHIN` are left alone (the asker has moved on).
    """

    async def tell_dead_letters() -> None:
        for dead in await app.state.queue.dead_letters():
            job = dead.job
            if job.kind != ANSWER_JOB or time.time() - job.enqueued_at > NOTICE_WITHIN:
                continue
            if await app.state.deduper.claim(f"dead-told:{job.id}", ttl=REPLY_TTL):
                await answers.give_up(job)

    return tell_dead_letters


def moderation_retention(
    store: ModerationStore, retention_days: int, *, every: dt.timedelta = PURGE_EVERY
) -> Chore:
    """A chore that deletes moderation records about members older than ``retention_days``.

    Events, their strikes and appeals, and the audit rows about members go; the guild's
    policy changes stay. The purge runs at most once per ``every`` by the store's clock; a
    failed one is tried again at the next round of chores.
    """
    last: list[dt.datetime] = []

    async def purge_moderation() -> None:
        now = store.clock()
        if last and now - last[-1] < every:
            return
        counts = await store.purge(retention_days)
        last[:] = [now]
        log.info(
            "moderation retention (%d days): removed %d event(s), %d strike(s), %d appeal(s), "
            "%d audit row(s)",
            retention_days, counts.events, counts.strikes, counts.appeals, counts.audit,
        )  # fmt: skip

    return purge_moderation
