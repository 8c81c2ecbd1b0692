"""Running and checking deskbot: ``doctor``, ``db``, ``worker``, ``slack`` and ``discord``."""

from __future__ import annotations

import json
import sys

import click

from bot.cli.common import pass_settings, run
from bot.cli.exits import ExitCode
from bot.errors import ConfigError
from bot.settings import Settings, SlackMode

__all__ = ["db", "discord", "doctor", "slack", "worker"]

_MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def doctor(settings: Settings, as_json: bool) -> None:
    """Check configuration, start or reach the database, run migrations, report."""
    from bot.doctor import run_doctor

    report = run(run_doctor(settings))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        versions = report.versions
        click.echo(
            f"deskbot {versions['deskbot']} (Python {versions['python']}, "
            f"PostgreSQL {versions.get('postgresql', '?')}, "
            f"pgvector {versions.get('pgvector', '?')})"
        )
        for check in report.checks:
            click.echo(f"  {_MARKS[check.status]}  {check.name:<9} {check.detail}")
        click.echo("deskbot can run." if report.ok else "deskbot cannot run: see FAIL above.")
    sys.exit(ExitCode.OK if report.ok else ExitCode.USAGE)


@click.group()
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

    click.echo(f"schema at revision {run(go())}")


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

    current, head = run(go())
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

    run(go())


@click.command()
@pass_settings
def worker(settings: Settings) -> None:
    """Process queued jobs (needs REDIS_URL; without it adapters work in-process)."""
    if settings.redis_url is None:
        raise ConfigError(
            "REDIS_URL: required by `deskbot worker`; without Redis each adapter "
            "processes its own jobs in-process"
        )
    run(_work(settings))


async def _work(settings: Settings) -> None:
    from bot.app import open_app
    from bot.health import serve_health
    from bot.jobs import make_worker
    from bot.shutdown import on_signals

    shutdown = on_signals()
    async with open_app(settings) as app, serve_health(app, settings.health_port):
        await make_worker(app).run(shutdown.stop, hurry=shutdown.hurry)


@click.command()
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

    run(run_slack(settings, mode, port or settings.slack_port))


@click.command()
@click.option("--sync-only", is_flag=True, help="Sync the slash commands, then exit.")
@pass_settings
def discord(settings: Settings, sync_only: bool) -> None:
    """Run the Discord adapter (the gateway; with REDIS_URL, workers answer)."""
    settings.require_adapter("discord")
    from bot.discord.server import run_discord

    run(run_discord(settings, sync_only=sync_only))
    if sync_only:
        where = ", ".join(f"guild {g}" for g in settings.discord_guild_ids) or "globally"
        click.echo(f"slash commands synced {where}")
