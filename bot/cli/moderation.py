"""Moderation commands: ``moderation policy show|set``, ``events``, ``export``, ``purge``,
``replay`` (in :mod:`bot.cli.moderation_replay`).

    deskbot moderation policy show --guild ID [--json]
    deskbot moderation policy set --guild ID [--log-channel ID] [--mode shadow|enforce]
        [--threshold LABEL:ACTION=SCORE]... [--exempt-role ID]... [--exempt-channel ID]...
    deskbot moderation events --guild ID [--since DAYS|DATE] [--limit N] [--json]
    deskbot moderation export [--appeals accepted|rejected] [--guild ID] --out FILE.csv
    deskbot moderation purge [--days N] [--json]
    deskbot moderation replay --guild ID --data FILE --text-col C [--label-col L]
        [--map 0=hate,...] [--drop-unknown] [--model DIR] [--json]

Policy changes are audited with the actor ``cli``. ``replay`` reads the guild's policy and
classifies a file of comments with the configured classifier; it touches neither Discord
nor the stored events. ``purge`` deletes now what the worker's hourly retention chore
would. Errors are one line on stderr; a malformed threshold, label, action or date exits 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import click
from rich.console import Console
from rich.table import Table

from bot.cli.common import echo_json, pass_settings, run
from bot.cli.moderation_replay import replay_command
from bot.errors import ConfigError
from bot.moderation import (
    ACTIONS,
    MODES,
    Action,
    EventRecord,
    ModerationStore,
    Policy,
    PurgeCounts,
    parse_action,
)
from bot.settings import Settings
from tools.classifier import DEFAULT_LABELS

__all__ = ["moderation"]

T = TypeVar("T")

ACTOR = "cli"
Decided = Literal["accepted", "rejected"]
_THRESHOLD = re.compile(r"^\s*([^:=\s]+)\s*:\s*([^:=\s]+)\s*=\s*(\S+)\s*$")
# A threshold names a label the classifier gives other than the clean one.
_LABELS = tuple(label for label in DEFAULT_LABELS if label != "none")


def _run_with_store(
    settings: Settings, work: Callable[[ModerationStore], Coroutine[Any, Any, T]]
) -> T:
    """Run ``work`` with the moderation store on an open database, then close it."""

    async def go() -> T:
        from bot.storage import open_database  # starts nothing until a command needs it

        database = await open_database(settings)
        try:
            return await work(ModerationStore(database.engine, appeal_days=settings.appeal_days))
        finally:
            await database.close()

    return run(go())


@click.group()
def moderation() -> None:
    """Community moderation: a guild's policy, its decisions, appeals and replays."""


@moderation.group()
def policy() -> None:
    """Show or change a guild's moderation policy."""


@policy.command("show")
@click.option("--guild", required=True, help="Guild (server) id.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def policy_show(settings: Settings, guild: str, as_json: bool) -> None:
    """The guild's policy (the default, in shadow mode, until one is saved)."""

    async def work(store: ModerationStore) -> Policy:
        return await store.policy(guild)

    found = _run_with_store(settings, work)
    if as_json:
        echo_json(found.to_dict())
        return
    for line in found.describe():
        click.echo(line)


@policy.command("set")
@click.option("--guild", required=True, help="Guild (server) id.")
@click.option("--log-channel", help="Channel id for the mod-log; 'none' to unset.")
@click.option("--mode", type=click.Choice(MODES), help="shadow: log only; enforce: act.")
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    help="LABEL:ACTION=SCORE, e.g. hate:delete=0.85 (SCORE 0..1, or 'off' to remove). Repeatable.",
)
@click.option("--exempt-role", "exempt_roles", multiple=True, help="Role id never moderated.")
@click.option(
    "--exempt-channel", "exempt_channels", multiple=True, help="Channel id never moderated."
)
@click.option("--json", "as_json", is_flag=True, help="Print the new policy as JSON.")
@pass_settings
def policy_set(
    settings: Settings,
    guild: str,
    log_channel: str | None,
    mode: str | None,
    thresholds: tuple[str, ...],
    exempt_roles: tuple[str, ...],
    exempt_channels: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change a guild's policy; the change is audited (actor: cli)."""
    changes = [_parse_threshold(t) for t in thresholds]
    if not (changes or exempt_roles or exempt_channels or mode or log_channel):
        raise ConfigError("nothing to change: give at least one option (see --help)")
    updates: dict[str, Any] = {}
    if mode:
        updates["mode"] = mode
    if log_channel:
        updates["log_channel_id"] = None if log_channel.lower() == "none" else log_channel

    async def work(store: ModerationStore) -> Policy:
        current = await store.policy(guild)
        new = _changed(current, updates, changes, exempt_roles, exempt_channels)
        await store.save_policy(new, actor=ACTOR, reason=_reason(current, new))
        return new

    saved = _run_with_store(settings, work)
    if as_json:
        echo_json(saved.to_dict())
        return
    click.echo(f"saved the policy of guild {guild}:")
    for line in saved.describe():
        click.echo(line)


def _parse_threshold(text: str) -> tuple[str, Action, float | None]:
    match = _THRESHOLD.match(text)
    if not match:
        raise ConfigError(
            f"--threshold {text!r}: write it as LABEL:ACTION=SCORE, e.g. hate:delete=0.8"
        )
    label, action_name, score_text = match.groups()
    if label not in _LABELS:
        raise ConfigError(
            f"--threshold {text!r}: unknown label {label!r}; choose {', '.join(_LABELS)}"
        )
    try:
        action = parse_action(action_name)
    except ValueError:
        action = "none"
    if action == "none":
        choices = ", ".join(a for a in ACTIONS if a != "none")
        raise ConfigError(f"--threshold {text!r}: unknown action {action_name!r}; choose {choices}")
    if score_text.lower() == "off":
        return label, action, None
    try:
        score = float(score_text)
    except ValueError:
        score = -1.0
    if not 0.0 <= score <= 1.0:
        raise ConfigError(f"--threshold {text!r}: the score must be a number from 0 to 1, or 'off'")
    return label, action, score


def _changed(
    current: Policy,
    updates: dict[str, Any],
    thresholds: Sequence[tuple[str, Action, float | None]],
    exempt_roles: Sequence[str],
    exempt_channels: Sequence[str],
) -> Policy:
    new = replace(
        current,
        **updates,
        exempt_roles=current.exempt_roles | frozenset(exempt_roles),
        exempt_channels=current.exempt_channels | frozenset(exempt_channels),
    )
    for label, action, score in thresholds:
        new = new.with_threshold(label, action, score)
    return new


def _reason(old: Policy, new: Policy) -> str:
    before, after = old.to_dict(), new.to_dict()
    changed = [key for key in after if before.get(key) != after[key]]
    return "changed " + (", ".join(changed) or "nothing")


@moderation.command()
@click.option("--guild", required=True, help="Guild (server) id.")
@click.option("--since", help="Only decisions from the last DAYS days, or since an ISO date.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_settings
def events(settings: Settings, guild: str, since: str | None, limit: int, as_json: bool) -> None:
    """The guild's moderation decisions, newest first."""
    start = _since(since)

    async def work(store: ModerationStore) -> list[EventRecord]:
        return await store.events(guild, since=start, limit=limit)

    found = _run_with_store(settings, work)
    if as_json:
        echo_json([e.to_dict() for e in found])
        return
    table = Table(title=f"{len(found)} decisions in guild {guild}")
    for column in ("when", "author", "channel", "label", "score", "action", "mode", "excerpt"):
        table.add_column(column)
    for e in found:
        action = e.action if e.enforced else f"({e.action})"
        if e.overturned_at:
            action += " overturned"
        when = e.created_at.strftime("%Y-%m-%d %H:%M")
        score = f"{e.scores.get(e.label, 0.0):.2f}"
        row = (when, e.author_id, e.channel_id, e.label, score, action, e.mode, e.excerpt[:60])
        table.add_row(*row)
    Console().print(table)


def _since(value: str | None) -> dt.datetime | None:
    """``--since``: a number of days back, or an ISO date or time (UTC unless it says)."""
    if value is None:
        return None
    if value.strip().isdigit():
        return dt.datetime.now(dt.UTC) - dt.timedelta(days=int(value))
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f"--since {value!r}: give a number of days or an ISO date such as 2026-12-01"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@moderation.command()
@click.option(
    "--appeals",
    "status",
    type=click.Choice(get_args(Decided)),
    default="accepted",
    show_default=True,
    help="accepted: false positives, labelled none; rejected: the decision's label.",
)
@click.option("--guild", help="Only this guild's appeals.")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False))
@pass_settings
def export(settings: Settings, status: Decided, guild: str | None, out: Path) -> None:
    """Write decided appeals as text,label rows, for `classifier train --extra`."""

    async def work(store: ModerationStore) -> list[tuple[str, str]]:
        return await store.export_appeals(status=status, guild_id=guild)

    rows = _run_with_store(settings, work)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(("text", "label"))
    writer.writerows(rows)
    try:
        out.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(rows)} {status} appeals to {out}")


@moderation.command()
@click.option(
    "--days",
    type=click.IntRange(1),
    help="Keep this many days. [default: DESKBOT_MODERATION_RETENTION_DAYS]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
@pass_settings
def purge(settings: Settings, days: int | None, as_json: bool) -> None:
    """Delete moderation records about members older than the retention, now.

    Events, their strikes and appeals, and the audit rows about members go (every guild);
    policy changes stay. The worker does the same every hour on its own.
    """
    keep = days or settings.moderation_retention_days

    async def work(store: ModerationStore) -> PurgeCounts:
        return await store.purge(keep)

    counts = asdict(_run_with_store(settings, work))
    if as_json:
        echo_json({"retention_days": keep, **counts})
        return
    removed = ", ".join(f"{n} {name}" for name, n in counts.items())
    click.echo(f"removed what was older than {keep} days: {removed}")


moderation.add_command(replay_command)
