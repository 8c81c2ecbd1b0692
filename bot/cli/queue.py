"""``deskbot queue status|dead|retry``: the shared job queue as an operator sees it.

Only a Redis queue outlives the process that made it, so every command needs ``REDIS_URL``;
without it each adapter keeps its jobs in its own memory, where no other process can look.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from bot.cli.common import echo_json, pass_settings, run
from bot.errors import ConfigError, DeskbotError
from bot.settings import Settings
from bot.state import DeadLetter, Job, JobQueue, QueueStatus, SharedState

__all__ = ["queue"]

T = TypeVar("T")


@click.group()
def queue() -> None:
    """The shared job queue (needs REDIS_URL)."""


@queue.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def queue_status(settings: Settings, as_json: bool) -> None:
    """Jobs waiting, in flight, the oldest one's age and the dead letters."""
    status, where = _with_queue(settings, _status)
    if as_json:
        echo_json({"queue": settings.queue_name, "redis": where, **_status_json(status)})
        return
    oldest = "-" if status.oldest_age is None else _age(status.oldest_age)
    click.echo(
        f"{settings.queue_name} on {where}: {status.waiting} waiting, {status.in_flight} in "
        f"flight, oldest {oldest}, {status.dead} dead letter(s)"
    )


@queue.command("dead")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_settings
def queue_dead(settings: Settings, limit: int, as_json: bool) -> None:
    """The jobs given up on, oldest first, with their last error."""

    async def dead(q: JobQueue) -> list[DeadLetter]:
        return await q.dead_letters(limit=limit)

    letters, _ = _with_queue(settings, dead)
    if as_json:
        echo_json([_dead_json(d) for d in letters])
        return
    if not letters:
        click.echo("No dead letters.")
        return
    for letter in letters:
        age = _age(time.time() - letter.job.enqueued_at)
        click.echo(
            f"{letter.job.id}  {letter.job.kind:<15} {letter.attempts} attempt(s), "
            f"{age} ago: {letter.error}"
        )


@queue.command("retry")
@click.argument("job_id", required=False)
@click.option("--all", "every", is_flag=True, help="Put every dead letter back.")
@pass_settings
def queue_retry(settings: Settings, job_id: str | None, every: bool) -> None:
    """Put a dead letter (by its id), or --all of them, back on the queue."""
    if every == (job_id is not None):
        raise click.UsageError("give one job id or --all")

    async def requeue(q: JobQueue) -> list[Job]:
        return await q.requeue_dead(job_id)

    jobs, _ = _with_queue(settings, requeue)
    if job_id is not None and not jobs:
        raise DeskbotError(f"no dead letter with id {job_id} (see `deskbot queue dead`)")
    click.echo(f"{len(jobs)} job(s) back on the queue with fresh attempts")


def _with_queue(settings: Settings, work: Callable[[JobQueue], Awaitable[T]]) -> tuple[T, str]:
    """``work`` on the shared queue, and where it lives (the URL without its password)."""
    if settings.redis_url is None:
        raise ConfigError(
            "REDIS_URL: not set, so there is no shared queue to look at (without Redis each "
            "adapter keeps its jobs in its own process)"
        )

    async def go() -> tuple[T, str]:
        from bot.state import open_state

        state: SharedState = await open_state(settings, consumer="deskbot-cli")
        try:
            return await work(state.queue), state.display_url
        finally:
            await state.close()

    return run(go())


async def _status(q: JobQueue) -> QueueStatus:
    return await q.status()


def _status_json(status: QueueStatus) -> dict[str, Any]:
    age = None if status.oldest_age is None else round(status.oldest_age, 3)
    return {
        "waiting": status.waiting,
        "in_flight": status.in_flight,
        "oldest_age_seconds": age,
        "dead": status.dead,
    }


def _dead_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.job.id,
        "kind": letter.job.kind,
        "attempts": letter.attempts,
        "error": letter.error,
        "enqueued_at": letter.job.enqueued_at,
    }


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
