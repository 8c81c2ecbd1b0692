"""The job kinds this release knows, and the handlers that process them.

Adapters enqueue jobs by kind; :func:`job_handlers` maps each kind to its handler for the
worker (a ``deskbot worker`` process with Redis, or the adapter's own in-process worker).
A job of an unknown kind is dead-lettered at once. :func:`make_worker` builds that worker,
with its upkeep: runs left ``in_progress`` by a worker that died are marked ``expired``.

    answer        an IncomingMessage to answer with the agent, on its platform
    slack_ingest  files an admin gave the bot in Slack, to download and ingest
"""

from __future__ import annotations

import datetime as dt
import logging

from bot.answering import ANSWER_JOB, AnswerService, Channel
from bot.app import App
from bot.worker import Chore, Handler, Worker

__all__ = ["job_handlers", "make_worker", "stale_run_expiry"]

log = logging.getLogger(__name__)


def job_handlers(app: App) -> dict[str, Handler]:
    """Every handler the configuration supports, keyed by job kind."""
    channels: dict[str, Channel] = {}
    handlers: dict[str, Handler] = {}
    if app.settings.slack_bot_token is not None:
        from bot.slack import SlackChannel, SlackIngest, slack_client
        from bot.slack.admin import INGEST_JOB

        client = slack_client(app.settings)
        channels["slack"] = SlackChannel(client)
        handlers[INGEST_JOB] = SlackIngest(app.settings, app.knowledge, client)
    handlers[ANSWER_JOB] = AnswerService(app, channels)
    return handlers


def make_worker(app: App) -> Worker:
    """The worker for ``app``: every handler, and the upkeep that expires stale runs."""
    return Worker(
        app.state.queue,
        job_handlers(app),
        concurrency=app.settings.worker_concurrency,
        upkeep=[stale_run_expiry(app)],
    )


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
