"""Stopping a command cleanly on SIGTERM or Ctrl-C.

Python's default SIGTERM ends the process on the spot: no ``finally``, no ``atexit``, so an
embedded PostgreSQL the command started kept running (a ``deskbot eval retrieval`` ended by
``timeout`` left one running an hour later). Here SIGTERM does what Ctrl-C does in
:class:`asyncio.Runner`: the command's task is cancelled, its ``async with`` blocks close
(transactions roll back, parser processes stop, the embedded server is released), and the
CLI ends with one line and exit 143 (Ctrl-C: 130). A second signal during that clean-up
raises at once; pgserver's ``atexit`` hook still releases the server.

Commands that own their shutdown (``worker``, adapters) install their own handlers on the
loop, which take precedence while they run.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

__all__ = ["Terminated", "install_sigterm", "run_until_stopped"]

T = TypeVar("T")


class Terminated(BaseException):
    """The command was stopped by SIGTERM (a BaseException, as KeyboardInterrupt is)."""


class _Current:
    """The running command's task and loop, for the signal handler to cancel."""

    task: asyncio.Task[Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    signalled = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    task, loop = _Current.task, _Current.loop
    if task is None or loop is None or _Current.signalled or task.done():
        raise Terminated  # outside the loop, or a second signal: stop now
    _Current.signalled = True
    loop.call_soon_threadsafe(task.cancel)


def install_sigterm() -> None:
    """Make SIGTERM stop the process through :class:`Terminated` (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


async def _guarded(coro: Coroutine[Any, Any, T]) -> T:
    _Current.task = asyncio.current_task()
    _Current.loop = asyncio.get_running_loop()
    try:
        return await coro
    except asyncio.CancelledError:
        if _Current.signalled:
            raise Terminated from None
        raise
    finally:
        _Current.task = _Current.loop = None


def run_until_stopped(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion; SIGTERM cancels it and raises :class:`Terminated`.

    Ctrl-C cancels it too and raises :class:`KeyboardInterrupt`, as :func:`asyncio.run` does.
    """
    _Current.signalled = False
    with asyncio.Runner() as runner:
        return runner.run(_guarded(coro))
