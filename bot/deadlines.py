"""How long the job being done has left, for clients that would otherwise wait on their own.

A job sets its deadline once (:func:`job_deadline`); code deep below it that is asked to wait
by a server (Slack's ``Retry-After``) reads :func:`time_left` and gives up instead of
sleeping past it. Outside a job there is no deadline.

    with job_deadline(150.0):
        await answer(...)          # a 429 asking for 600 s fails now, with one clear line
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["job_deadline", "time_left"]

_DEADLINE: ContextVar[float | None] = ContextVar("deskbot_job_deadline", default=None)


@contextmanager
def job_deadline(seconds: float) -> Iterator[None]:
    """The code inside (and the tasks it starts) has ``seconds`` from now."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    """Seconds left before the current job's deadline (0 when past it); None outside a job."""
    deadline = _DEADLINE.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())
