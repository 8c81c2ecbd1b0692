"""Retrying a model call through a storm, within the caller's deadline.

A model that answers 429 with ``Retry-After``, 5xx or not at all is asked again with
exponential backoff (0.5 s doubling up to 8 s, jittered) or after exactly the wait the
server asked for, until the retries are spent or the next try could not finish before the
caller's deadline; then the last :class:`~tools.chat_backend.BackendError` goes up with one
line saying how many tries were made. A ``Retry-After`` longer than the time left fails at
once rather than sleeping into the deadline. A call that already streamed text is not
repeated (the user has seen part of it). Standard library only, like the seam it wraps.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence

from tools.chat_backend import (
    BackendError,
    ChatBackend,
    Completion,
    Message,
    TextCallback,
    ToolSpec,
)

__all__ = ["BASE_DELAY", "MAX_DELAY", "complete_with_retries"]

log = logging.getLogger(__name__)

BASE_DELAY = 0.5
"""Seconds before the first retry when the server did not say (doubled each time)."""
MAX_DELAY = 8.0
"""The longest backoff between two tries when the server did not say."""


async def complete_with_retries(
    backend: ChatBackend,
    messages: Sequence[Message],
    *,
    tools: Sequence[ToolSpec] = (),
    on_text: TextCallback | None = None,
    retries: int = 3,
    deadline: float | None = None,
) -> Completion:
    """``backend.complete``, retried on transient failures.

    Args:
        retries: Tries after the first.
        deadline: ``time.monotonic()`` by which the call must be over; None for no bound.

    Raises:
        BackendError: Not transient, retries spent, or no time left to wait.
    """
    streamed = False

    async def tracked(text: str) -> None:
        nonlocal streamed
        streamed = True
        assert on_text is not None
        await on_text(text)

    for attempt in range(retries + 1):
        try:
            return await backend.complete(
                messages, tools=tools, on_text=tracked if on_text is not None else None
            )
        except BackendError as exc:
            if not exc.transient or streamed:
                raise
            wait = _wait(exc, attempt)
            left = None if deadline is None else deadline - time.monotonic()
            if attempt == retries:
                raise _gave_up(exc, attempt + 1) from None
            if left is not None and wait >= left:
                why = f"asked to wait {wait:g} s, {left:.0f} s left"
                raise _gave_up(exc, attempt + 1, why) from None
            log.info("model call failed (%s); try %d in %.1f s", exc, attempt + 2, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _wait(exc: BackendError, attempt: int) -> float:
    if exc.retry_after is not None:
        return max(0.0, exc.retry_after)
    backoff: float = min(MAX_DELAY, BASE_DELAY * 2**attempt)
    return backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not secrecy


def _gave_up(exc: BackendError, tries: int, why: str = "") -> BackendError:
    detail = ("1 try" if tries == 1 else f"{tries} tries") + (f"; {why}" if why else "")
    return BackendError(f"{exc} ({detail})", transient=True, retry_after=exc.retry_after)
