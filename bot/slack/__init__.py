"""The Slack adapter (slack-bolt, async): events and commands in, answers out.

Slack types stay in this package; the core sees :class:`~bot.messages.IncomingMessage`.
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.slack.admin import SlackAdmin, SlackIngest
from bot.slack.app import SlackAdapter
from bot.slack.channel import SlackChannel, SlackResponder
from bot.slack.retry import RateLimitWithinDeadline

__all__ = [
    "SlackAdapter",
    "SlackAdmin",
    "SlackChannel",
    "SlackIngest",
    "SlackResponder",
    "slack_client",
]


def slack_client(settings: Settings) -> AsyncWebClient:
    """The Web API client with the bot token, at ``SLACK_API_URL``.

    It retries a dropped connection, a 429 after the ``Retry-After`` Slack sends (three
    times, and only when that wait fits in the job's deadline: :mod:`bot.slack.retry`), and
    a 500 or 503 (twice, with backoff); past that the call fails and the answer's edge
    tells the user once.
    """
    token = settings.slack_bot_token
    return AsyncWebClient(
        token=token.get_secret_value() if token else None,
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            RateLimitWithinDeadline(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
