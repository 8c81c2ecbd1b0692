"""The worker: takes jobs off the queue and runs their handlers, a few at a time.

A handler that returns acks its job; one that raises gets it retried (and, after the
queue's ``max_attempts``, dead-lettered). A job whose kind has no handler is dead-lettered
at once: retrying cannot help it.

Stopping drains: no job is taken after ``stop`` is set; running jobs get ``grace`` seconds
to finish (or until ``hurry`` is set: a second SIGTERM), then are cancelled and handed back
to the queue at once (``retry``), so another worker takes them without waiting for the
visibility timeout. A worker that dies instead leaves its jobs to that timeout. While a
job runs, its worker extends the job's lease every third of the queue's visibility timeout,
so a run longer than the timeout is not taken over (and answered twice) while it is alive.

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
from bot.state import Delivery, Job, JobQueue, unreachable

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
        grace: float = 30.0,
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.concurrency = concurrency
        self.poll_timeout = poll_timeout
        self.backoff = backoff
        self.upkeep = tuple(upkeep)
        self.upkeep_interval = upkeep_interval
        self.cleanup = tuple(cleanup)
        self.grace = grace
        self.processed = 0
        self.failed = 0
        self._queue_down_since: float | None = None

    async def run(self, stop: asyncio.Event, *, hurry: asyncio.Event | None = None) -> None:
        """Process jobs and do the upkeep until ``stop`` is set, then drain (see above)."""
        chores = asyncio.create_task(self._keep_up(stop), name="deskbot-worker-upkeep")
        try:
            await self._take_jobs(stop, hurry or asyncio.Event())
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

    async def _take_jobs(self, stop: asyncio.Event, hurry: asyncio.Event) -> None:
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
            except Exception as exc:  # Redis restarting, a network blip: wait and try again
                slots.release()
                self._queue_lost(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.backoff)
                continue
            self._queue_back()
            if delivery is None:
                slots.release()
                continue
            task = asyncio.create_task(self._process(delivery))
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: slots.release())
        await self._drain(running, hurry)
        log.info("worker stopped", extra={"processed": self.processed, "failed": self.failed})

    def _queue_lost(self, exc: Exception) -> None:
        """Say once that the queue went (with a traceback only if it is not an outage)."""
        if self._queue_down_since is not None:
            return
        self._queue_down_since = time.monotonic()
        text = str(exc).strip()
        reason = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
        log.warning(
            "queue unavailable (%s); retrying every %.0f s until it is back",
            reason,
            self.backoff,
            exc_info=not unreachable(exc),
        )

    def _queue_back(self) -> None:
        if self._queue_down_since is not None:
            seconds = time.monotonic() - self._queue_down_since
            self._queue_down_since = None
            log.info("queue reachable again after %.1f s", seconds)

    async def _drain(self, running: set[asyncio.Task[None]], hurry: asyncio.Event) -> None:
        """Let running jobs finish within the grace period; cancel and hand back the rest."""
        if not running:
            return
        log.info("finishing %d running job(s) within %.0f s", len(running), self.grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        hurried = asyncio.create_task(hurry.wait())
        while running and not hurry.is_set() and loop.time() < deadline:
            await asyncio.wait(
                {*running, hurried},
                timeout=deadline - loop.time(),
                return_when=asyncio.FIRST_COMPLETED,
            )
        hurried.cancel()
        unfinished = list(running)
        if unfinished:
            log.warning("handing %d unfinished job(s) back to the queue", len(unfinished))
        for task in unfinished:
            task.cancel()  # _process hands its job back
        await asyncio.gather(*unfinished, hurried, return_exceptions=True)

    async def _process(self, delivery: Delivery) -> None:
        job = delivery.job
        with bind(job_id=job.id, job_kind=job.kind):
            handler = self.handlers.get(job.kind)
            if handler is None:
                await self._give_up(delivery, f"no handler for job kind {job.kind!r}")
                return
            began = time.perf_counter()
            lease = asyncio.create_task(self._keep_lease(delivery), name="deskbot-job-lease")
            try:
                await handler(job)
            except asyncio.CancelledError:  # stopping: another worker takes it now
                lease.cancel()
                await self._hand_back(delivery)
                raise
            except Exception as exc:  # the worker must outlive any one job
                lease.cancel()
                self.failed += 1
                error = f"{type(exc).__name__}: {exc}"
                again = await self.queue.retry(delivery, error)
                log.warning(
                    "job failed",
                    exc_info=True,
                    extra={"attempt": delivery.attempt, "will_retry": again},
                )
                return
            lease.cancel()
            await self.queue.ack(delivery)
            self.processed += 1
            log.info(
                "job done",
                extra={
                    "attempt": delivery.attempt,
                    "ms": round((time.perf_counter() - began) * 1000, 1),
                },
            )

    async def _keep_lease(self, delivery: Delivery) -> None:
        """Extend the running job's visibility timeout until cancelled (the job ended)."""
        every = self.queue.visibility_timeout / 3
        while True:
            await asyncio.sleep(every)
            try:
                kept = await self.queue.extend(delivery)
            except Exception as exc:  # the queue is away: try again next beat
                log.warning("could not extend the lease of job %s: %s", delivery.job.id, exc)
                continue
            if not kept:
                log.warning("job %s was taken over by another worker", delivery.job.id)
                return

    async def _hand_back(self, delivery: Delivery) -> None:
        try:
            await self.queue.retry(delivery, "handed back: the worker stopped before finishing")
        except Exception:  # the queue is gone too: the visibility timeout brings it back
            log.warning("could not hand job %s back", delivery.job.id, exc_info=True)

    async def _give_up(self, delivery: Delivery, error: str) -> None:
        self.failed += 1
        log.error("job dropped: %s", error)
        await self.queue.bury(delivery, error)
