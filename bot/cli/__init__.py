"""The ``deskbot`` command line.

Settings are read once, in the group callback, and handed to each command. Errors a user
can fix (:class:`~bot.errors.DeskbotError`) end with one line on stderr and the error's exit
code (2 for configuration and connection problems); usage errors exit 2 as click does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import click

from bot.cli.agent import register as register_agent
from bot.cli.classifier import register as register_classifier
from bot.cli.knowledge import register as register_knowledge
from bot.errors import ConfigError, DeskbotError
from bot.logs import configure_logging
from bot.settings import Settings, SlackMode, load_settings
from knowledge.errors import KnowledgeError
from tools.classifier import ClassifierError

__all__ = ["cli", "main"]

T = TypeVar("T")

pass_settings = click.make_pass_decorator(Settings)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deskbot", prog_name="deskbot")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """deskbot: the team chatbot for Slack and Discord."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def doctor(settings: Settings, as_json: bool) -> None:
    """Check configuration, start or reach the database, run migrations, report."""
    from bot.doctor import run_doctor

    report = _run(run_doctor(settings))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        versions = report.versions
        click.echo(
            f"deskbot {versions['deskbot']} (Python {versions['python']}, "
            f"PostgreSQL {versions.get('postgresql', '?')}, "
            f"pgvector {versions.get('pgvector', '?')})"
        )
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for check in report.checks:
            click.echo(f"  {marks[check.status]}  {check.name:<9} {check.detail}")
        click.echo("deskbot can run." if report.ok else "deskbot cannot run: see FAIL above.")
    sys.exit(0 if report.ok else 2)


@cli.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@pass_settings
def db_upgrade(settings: Settings) -> None:
    """Apply pending migrations (embedded mode also does this at start-up)."""

    async def go() -> str:
        from bot.storage import open_database

        database = await open_database(settings, migrate=True)
        try:
            return (await database.info()).revision or "none"
        finally:
            await database.close()

    click.echo(f"schema at revision {_run(go())}")


@db.command("current")
@pass_settings
def db_current(settings: Settings) -> None:
    """Print the schema revision of the database and the newest one available."""

    async def go() -> tuple[str | None, str | None]:
        from bot.storage import open_database

        database = await open_database(settings, migrate=False)
        try:
            info = await database.info()
            return info.revision, info.head
        finally:
            await database.close()

    current, head = _run(go())
    click.echo(f"current {current or 'none (empty database)'}; head {head}")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the revision changes.")
@pass_settings
def db_revision(settings: Settings, message: str) -> None:
    """Autogenerate a migration from the models (for developers)."""

    async def go() -> None:
        from bot.migrate import make_revision
        from bot.storage import open_database

        database = await open_database(settings, migrate=False)
        try:
            await database.upgrade()
            async with database.engine.begin() as conn:
                await conn.run_sync(make_revision, message)
        finally:
            await database.close()

    _run(go())


@cli.command()
@pass_settings
def worker(settings: Settings) -> None:
    """Process queued jobs (needs REDIS_URL; without it adapters work in-process)."""
    if settings.redis_url is None:
        raise ConfigError(
            "REDIS_URL: required by `deskbot worker`; without Redis each adapter "
            "processes its own jobs in-process"
        )
    _run(_work(settings))


async def _work(settings: Settings) -> None:
    from bot.app import open_app
    from bot.jobs import job_handlers
    from bot.worker import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with open_app(settings) as app:
        handlers = job_handlers(app)
        await Worker(app.state.queue, handlers, concurrency=settings.worker_concurrency).run(stop)


@cli.command()
@click.option("--socket", "mode", flag_value="socket", default=True, help="Socket Mode (default).")
@click.option("--http", "mode", flag_value="http", help="Events API over HTTP.")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="HTTP port (default: DESKBOT_SLACK_PORT, 3000)."
)
@pass_settings
def slack(settings: Settings, mode: SlackMode, port: int | None) -> None:
    """Run the Slack adapter."""
    settings.require_adapter("slack", mode)
    from bot.slack.server import run_slack

    _run(run_slack(settings, mode, port or settings.slack_port))


@cli.command()
@pass_settings
def discord(settings: Settings) -> None:
    """Run the Discord adapter."""
    settings.require_adapter("discord")
    raise DeskbotError("the Discord adapter is not part of this release yet")


register_knowledge(cli, pass_settings)
register_agent(cli, pass_settings)
register_classifier(cli, pass_settings)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning user errors into one line."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except DeskbotError as exc:
        click.echo(f"deskbot: {exc}", err=True)
        code = exc.exit_code
    except KnowledgeError as exc:  # a missing document, a refused query ...
        click.echo(f"deskbot: {exc}", err=True)
        code = 1
    except ClassifierError as exc:  # bad training data, an unreadable model ...
        click.echo(f"deskbot: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    sys.exit(code if isinstance(code, int) else 0)
