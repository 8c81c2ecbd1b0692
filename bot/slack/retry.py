"""Slack's ``Retry-After``, honoured only within the job's deadline.

slack_sdk's rate-limit handler sleeps for whatever ``Retry-After`` Slack sends. Inside a job
(:mod:`bot.deadlines`) a wait that would end past the job's deadline is not taken: the call
fails at once with one warning saying how long Slack asked to wait and how long was left,
and the answer's edge tells the user, instead of a worker sleeping on a job it cannot finish.
"""

from __future__ import annotations

import logging

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.deadlines import time_left

__all__ = ["RateLimitWithinDeadline", "retry_after"]

log = logging.getLogger(__name__)


def retry_after(response: HttpResponse) -> float:
    """The seconds a 429 asks to wait (1 when it does not say, as slack_sdk assumes)."""
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            try:
                return float(values[0])
            except ValueError:
                break
    return 1.0


class RateLimitWithinDeadline(AsyncRateLimitErrorRetryHandler):
    """Retries a 429 after its ``Retry-After`` unless that ends past the job's deadline."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        left = time_left()
        wait = retry_after(response)
        if left is not None and wait + 1 > left:  # slack_sdk adds up to 1 s of jitter
            method = request.url.rstrip("/").rpartition("/")[2]
            log.warning(
                "Slack asked to wait %.0f s before retrying %s, past the job's deadline "
                "(%.0f s left); not waiting",
                wait,
                method,
                left,
            )
            return False
        return True
