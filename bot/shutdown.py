"""Stopping a long-running process (worker, adapters) in two steps.

The first SIGTERM or Ctrl-C sets ``stop``: adapters stop taking events, the worker takes no
new job and gives the running ones ``DESKBOT_SHUTDOWN_GRACE`` seconds, then hands the rest
back to the queue. A second signal sets ``hurry``: the running jobs are handed back now.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field

__all__ = ["Shutdown", "on_signals"]

log = logging.getLogger(__name__)


@dataclass
class Shutdown:
    """``stop`` after the first signal, ``hurry`` after the second."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    hurry: asyncio.Event = field(default_factory=asyncio.Event)

    def signalled(self) -> None:
        """One more SIGTERM or Ctrl-C."""
        if self.stop.is_set():
            log.warning("stopping now: running jobs go back to the queue")
            self.hurry.set()
            return
        log.info("stopping: no new work; running jobs may finish (signal again to stop now)")
        self.stop.set()


def on_signals() -> Shutdown:
    """A :class:`Shutdown` driven by SIGINT and SIGTERM on the running loop."""
    shutdown = Shutdown()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, shutdown.signalled)
    return shutdown
