"""Fine-tuning commands: ``deskbot finetune ...``.

    deskbot finetune init-tiny --out DIR [--seed N]
    deskbot finetune export --out data.jsonl [--since DATE] [--feedback positive|any]
        [--min-tools N] [--eval-share 0.1] [--tools FILE] [--json]
    deskbot finetune import FILE --out data.jsonl [--format alpaca|sharegpt] [--eval-share 0]
    deskbot finetune train / merge / eval ...     (see :mod:`bot.cli.finetune_train`)

``export`` and ``import`` write the training examples to ``--out`` and the held-out ones
next to it (``data.eval.jsonl``). Everything heavy (torch, transformers, peft, trl) is
imported inside the commands, so ``deskbot --help`` stays fast. Errors are one line on
stderr: exit 2 for input the user must fix (a missing directory, bad data or config), 1 when
a step failed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from bot.cli.common import echo_json, pass_settings, run
from bot.cli.finetune_train import eval_, merge, train, user_errors
from bot.settings import Settings
from finetune.errors import FinetuneInputError

__all__ = ["finetune"]


@click.group()
def finetune() -> None:
    """Distil the bot's conversations into a LoRA model (export, train, merge, eval)."""


@finetune.command("init-tiny")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory to write.")
@click.option("--seed", default=0, show_default=True, help="Seed for the random weights.")
def init_tiny(out: Path, seed: int) -> None:
    """Write a tiny random Qwen2 model with the tool-calling chat template (offline, CPU)."""
    from finetune.tiny import init_tiny as build

    with user_errors():
        path = build(out, seed=seed)
    click.echo(f"tiny model written to {path}")


finetune.add_command(train)
finetune.add_command(merge)
finetune.add_command(eval_)

# --- export and import -----------------------------------------------------------------

_OUT = click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Training JSONL to write."
)


@finetune.command("export")
@_OUT
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]))
@click.option(
    "--feedback", type=click.Choice(["positive", "any"]), default="any", show_default=True
)
@click.option("--min-tools", default=0, show_default=True, help="Runs with at least N tool calls.")
@click.option("--eval-share", default=0.1, show_default=True, help="Share of threads held out.")
@click.option("--tools", "tools_file", type=click.Path(path_type=Path), help="Tool schemas JSON.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@pass_settings
def export(
    settings: Settings,
    out: Path,
    since: dt.datetime | None,
    feedback: str,
    min_tools: int,
    eval_share: float,
    tools_file: Path | None,
    as_json: bool,
) -> None:
    """Write completed runs as tool-calling training examples, scrubbed and split by thread.

    Each example offers the tools its run offered the model. Runs stored before runs
    recorded their tools offer those in --tools (a JSON list as `deskbot tools list --json`
    prints) or else those the current settings enable; a run calling any other tool is left
    out. Runs with more thumbs down than up are always left out.
    """
    from finetune.data import Selection, build_dataset

    with user_errors():
        selection = Selection(feedback=feedback, min_tools=min_tools, eval_share=eval_share)  # type: ignore[arg-type]
        runs, tools = run(_runs_and_tools(settings, since, tools_file))
        train, held, report = build_dataset(runs, tools, selection)
    _write_split(out, train, held, report.as_dict(), as_json)


async def _runs_and_tools(
    settings: Settings, since: dt.datetime | None, tools_file: Path | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The runs, and the tools offered by a run that did not record its own (from
    ``tools_file``, else the registry the settings build, only when some run needs it)."""
    from bot.cli.finetune_export import read_runs
    from bot.storage import open_database

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    fallback = _read_tools(tools_file) if tools_file is not None else None
    database = await open_database(settings)
    try:
        runs = await read_runs(database.engine, since=since)
    finally:
        await database.close()
    if fallback is not None or all(run["tools"] is not None for run in runs):
        return runs, fallback or []
    from bot.app import open_app

    async with open_app(settings) as app:
        return runs, app.tools.schemas()


def _read_tools(path: Path) -> list[dict[str, Any]]:
    try:
        tools = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FinetuneInputError(f"cannot read tool schemas from {path}: {exc}") from exc
    if not isinstance(tools, list) or not all("function" in t for t in tools):
        raise FinetuneInputError(f"{path}: expected a list of function schemas")
    return tools


@finetune.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@_OUT
@click.option(
    "--format", "kind", type=click.Choice(["alpaca", "sharegpt"]), help="Default: detect."
)
@click.option("--eval-share", default=0.0, show_default=True, help="Share of records held out.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def import_(source: Path, out: Path, kind: str | None, eval_share: float, as_json: bool) -> None:
    """Bring an Alpaca/KoAlpaca or ShareGPT file into the training form (scrubbed, deduplicated)."""
    from finetune.convert import convert_records, read_records
    from finetune.data import ExportReport, Selection, scrub_and_dedupe, split_by_thread

    with user_errors():
        Selection(eval_share=eval_share)  # validates the share
        records = read_records(source)
        examples, skipped = convert_records(records, kind)  # type: ignore[arg-type]
        report = ExportReport(runs=len(records), dropped=skipped)
        kept = scrub_and_dedupe([(str(n), e) for n, e in enumerate(examples)], report)
        train, held = split_by_thread(kept, eval_share)
        report.train, report.eval = len(train), len(held)
    _write_split(out, train, held, report.as_dict(), as_json)


def _write_split(
    out: Path, train: Sequence[Any], held: Sequence[Any], report: dict[str, Any], as_json: bool
) -> None:
    from finetune.data import eval_path, write_jsonl

    write_jsonl(out, train)
    if held:
        write_jsonl(eval_path(out), held)
    if as_json:
        echo_json({**report, "out": str(out), "eval_out": str(eval_path(out)) if held else None})
        return
    scrubbed = ", ".join(f"{n} {kind}" for kind, n in report["scrubbed"].items())
    dropped = ", ".join(f"{n} {why}" for why, n in report["dropped"].items()) or "none"
    click.echo(f"read {report['runs']}; left out: {dropped}; duplicates: {report['duplicates']}")
    click.echo(f"scrubbed: {scrubbed}")
    click.echo(f"{report['train']} training examples -> {out}")
    if held:
        click.echo(f"{report['eval']} held-out examples -> {eval_path(out)}")
