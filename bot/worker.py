"""The worker: takes jobs off the queue and runs their handlers, a few at a time.

A handler that returns acks its job; one that raises gets it retried (and, after the
queue's ``max_attempts``, dead-lettered). A job whose kind has no handler is dead-lettered
at once: retrying cannot help it. Stopping lets running jobs finish; unfinished ones are
redelivered by the queue after its visibility timeout.

Beside the jobs, the worker does its upkeep: chores run when it starts and then every
``upkeep_interval`` seconds until it stops (such as expiring the runs a dead worker left
``in_progress``). A chore that fails is logged and tried again next time. The ``cleanup``
chores run once, after the last job, to close what the handlers opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bot.logs import bind
from bot.state import Delivery, Job, JobQueue

__all__ = ["Chore", "Handler", "Worker"]

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[None]]
Chore = Callable[[], Awaitable[object]]


class Worker:
    """Runs handlers for jobs from ``queue``, ``concurrency`` jobs at once, and its chores."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 4,
        poll_timeout: float = 1.0,
        backoff: float = 2.0,
        upkeep: Sequence[Chore] = (),
        upkeep_interval: float = 60.0,
        cleanup: Sequence[Chore] = (),
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.concurrency = concurrency
        self.poll_timeout = poll_timeout
        self.backoff = backoff
        self.upkeep = tuple(upkeep)
        self.upkeep_interval = upkeep_interval
        self.cleanup = tuple(cleanup)
        self.processed = 0
        self.failed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Process jobs and do the upkeep until ``stop`` is set, then wait for running jobs."""
        chores = asyncio.create_task(self._keep_up(stop), name="deskbot-worker-upkeep")
        try:
            await self._take_jobs(stop)
        finally:
            chores.cancel()  # idle on the stop event by now, unless taking jobs failed
            await asyncio.gather(chores, return_exceptions=True)
            for close in self.cleanup:  # what the handlers opened (HTTP sessions)
                await close()

    async def _keep_up(self, stop: asyncio.Event) -> None:
        while self.upkeep and not stop.is_set():
            for chore in self.upkeep:
                try:
                    await chore()
                except Exception:  # the worker must outlive a failed chore too
                    log.warning(
                        "upkeep chore failed; next try in %.0f s",
                        self.upkeep_interval,
                        exc_info=True,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.upkeep_interval)

    async def _take_jobs(self, stop: asyncio.Event) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        log.info("worker started", extra={"kinds": sorted(self.handlers)})
        while not stop.is_set():
            await slots.acquire()
            if stop.is_set():
                slots.release()
                break
            try:
                delivery = await self.queue.get(timeout=self.poll_timeout)
            except Exception:  # Redis restarting, a network blip: wait and try again
                slots.release()
                log.warning("queue unavailable; retrying in %.0f s", self.backoff, exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.backoff)
                continue
            if delivery is None:
                slots.release()
                continue
            task = asyncio.create_task(self._process(delivery))
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: slots.release())
        if running:
            await asyncio.wait(running)
        log.info("worker stopped", extra={"processed": self.processed, "failed": self.failed})

    async def _process(self, delivery: Delivery) -> None:
        job = delivery.job
        with bind(job_id=job.id, job_kind=job.kind):
            handler = self.handlers.get(job.kind)
            if handler is None:
                await self._give_up(delivery, f"no handler for job kind {job.kind!r}")
                return
            began = time.perf_counter()
            try:
                await handler(job)
            except Exception as exc:  # the worker must outlive any one job
                self.failed += 1
                error = f"{type(exc).__name__}: {exc}"
                again = await self.queue.retry(delivery, error)
                log.warning(
                    "job failed",
                    exc_info=True,
                    extra={"attempt": delivery.attempt, "will_retry": again},
                )
                return
            await self.queue.ack(delivery)
            self.processed += 1
            log.info(
                "job done",
                extra={
                    "attempt": delivery.attempt,
                    "ms": round((time.perf_counter() - began) * 1000, 1),
                },
            )

    async def _give_up(self, delivery: Delivery, error: str) -> None:
        self.failed += 1
        log.error("job dropped: %s", error)
        await self.queue.bury(delivery, error)
