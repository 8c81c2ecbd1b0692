"""The job kinds this release knows, and the handlers that process them.

Adapters enqueue jobs by kind; :func:`job_handlers` maps each kind to its handler for the
worker (a ``deskbot worker`` process with Redis, or the adapter's own in-process worker).
A job of an unknown kind is dead-lettered at once.

    answer        an IncomingMessage to answer with the agent, on its platform
    slack_ingest  files an admin gave the bot in Slack, to download and ingest
"""

from __future__ import annotations

from bot.answering import ANSWER_JOB, AnswerService, Channel
from bot.app import App
from bot.worker import Handler

__all__ = ["job_handlers"]


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
