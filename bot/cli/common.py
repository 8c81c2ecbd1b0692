"""What every command group shares: settings passing, running async work, progress bars.

Settings are read once, in the root group's callback, and reach each command through
:data:`pass_settings`. A command's async work runs in one :func:`run` call; the knowledge
commands open the database and the knowledge services around it with
:func:`run_with_knowledge`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.cli.stopping import run_until_stopped
from bot.knowledge import Knowledge, make_knowledge
from bot.settings import Settings

__all__ = ["echo_json", "pass_settings", "progress_bars", "run", "run_with_knowledge"]

T = TypeVar("T")

pass_settings = click.make_pass_decorator(Settings)
"""Hands a command the :class:`~bot.settings.Settings` the root group read."""


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's async work to completion; SIGTERM and Ctrl-C stop it cleanly."""
    return run_until_stopped(coro)


@asynccontextmanager
async def _knowledge(settings: Settings) -> AsyncIterator[Knowledge]:
    from bot.storage import open_database  # starts nothing until a command needs it

    database = await open_database(settings)
    knowledge = make_knowledge(settings, database)
    try:
        yield knowledge
    finally:
        await knowledge.ingestor.aclose()  # its parser processes
        await database.close()


def run_with_knowledge(
    settings: Settings, work: Callable[[Knowledge], Coroutine[Any, Any, T]]
) -> T:
    """Run ``work`` with the knowledge services on an open database, then close it."""

    async def go() -> T:
        async with _knowledge(settings) as knowledge:
            return await work(knowledge)

    return run(go())


def progress_bars(console: Console) -> Progress:
    """Rich progress bars that vanish when done (on stderr, so stdout stays clean)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout, non-ASCII text kept readable."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
