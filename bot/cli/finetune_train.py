"""``deskbot finetune train``, ``merge`` and ``eval``: the commands that load a model.

    deskbot finetune train --base DIR --data data.jsonl [--eval-data FILE] [--config YAML]
        [--out DIR] [--resume] [--no-progress] [--json] [--lora-r N ...every config field]
    deskbot finetune merge --adapter DIR --out DIR [--shard-size 2GB] [--base DIR]
    deskbot finetune eval --model DIR [--data eval.jsonl] [--adapter DIR]
        [--compare-rag QUESTIONS.jsonl] [--json]

Each field of :class:`finetune.config.TrainConfig` is a flag (``lora_r`` -> ``--lora-r``)
whose help is the field's; flags override ``--config``. Without ``--eval-data``, the
``data.eval.jsonl`` next to ``--data`` (what ``export`` writes) is used when it exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bot.cli.common import echo_json, pass_settings, run
from bot.errors import ConfigError, DeskbotError
from bot.settings import Settings
from finetune.config import FIELD_TYPES, TrainConfig
from finetune.errors import FinetuneError, FinetuneInputError

__all__ = ["config_options", "eval_", "merge", "train", "user_errors"]


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the finetune package's errors into the CLI's (one line, the right exit code)."""
    try:
        yield
    except FinetuneInputError as exc:
        raise ConfigError(str(exc)) from exc
    except FinetuneError as exc:
        raise DeskbotError(str(exc)) from exc


def config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One flag per config field; unset flags are None, so the YAML file's values stay."""
    for spec in reversed(dataclasses.fields(TrainConfig)):
        default = spec.default
        shown = ",".join(default) if isinstance(default, tuple) else default
        command = click.option(
            f"--{spec.name.replace('_', '-')}",
            spec.name,
            type=FIELD_TYPES[spec.name],
            default=None,
            help=f"{spec.metadata['help']} [default: {shown}]",
        )(command)
    return command


@click.command("train")
@click.option("--base", required=True, type=click.Path(path_type=Path), help="Local model dir.")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Training JSONL.")
@click.option("--eval-data", type=click.Path(path_type=Path), help="Held-out JSONL.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML config.")
@click.option("--out", default="adapter", type=click.Path(path_type=Path), show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@click.option("--progress/--no-progress", default=True, help="Show the progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@config_options
def train(
    base: Path,
    data: Path,
    eval_data: Path | None,
    config_file: Path | None,
    out: Path,
    resume: bool,
    progress: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Train a LoRA adapter on a local base model (assistant-only loss; nothing is downloaded)."""
    from finetune.config import load_config
    from finetune.data import eval_path
    from finetune.train import check_base
    from finetune.train import train as run_training

    with user_errors():
        config = load_config(config_file, flags)
        check_base(base)  # before the heavy imports: a typo fails in a second
        if eval_data is None and eval_path(data).is_file():
            eval_data = eval_path(data)
        result = run_training(
            base, data, config, out=out, eval_data=eval_data, resume=resume, progress=progress
        )
    summary = {k: str(v) if isinstance(v, Path) else v for k, v in vars(result).items()}
    if as_json:
        echo_json(summary)
        return
    _print_summary(summary)


def _figure(value: Any) -> str:
    return "-" if value is None else f"{value:,.4g}" if isinstance(value, float) else str(value)


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title="LoRA training", show_header=False)
    rows = (
        ("steps", summary["steps"]),
        ("examples (train / eval)", f"{summary['examples']} / {summary['eval_examples']}"),
        (
            "train loss (first -> last)",
            f"{_figure(summary['first_loss'])} -> {_figure(summary['last_loss'])}",
        ),
        (
            "eval loss (before -> after)",
            f"{_figure(summary['eval_loss_before'])} -> {_figure(summary['eval_loss_after'])}",
        ),
        ("tokens / s", _figure(summary["tokens_per_second"])),
        ("time (s)", _figure(summary["seconds"])),
        ("examples truncated", summary["truncated"]),
        ("adapter", summary["out"]),
        ("loss curve", summary["plot"] or str(Path(summary["out"]) / "losses.csv")),
    )
    for name, value in rows:
        table.add_row(name, str(value))
    Console().print(table)
    for note in summary["notes"]:
        click.echo(note)


@click.command("merge")
@click.option("--adapter", required=True, type=click.Path(path_type=Path), help="Adapter dir.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory to write.")
@click.option("--shard-size", default="2GB", show_default=True, help="Largest weights file.")
@click.option("--base", type=click.Path(path_type=Path), help="Base dir, if it has moved.")
def merge(adapter: Path, out: Path, shard_size: str, base: Path | None) -> None:
    """Fold a LoRA adapter into its base: a plain model directory with a model card."""
    from finetune.merge import merge as run_merge

    with user_errors():
        result = run_merge(adapter, out, shard_size=shard_size, base=base)
    click.echo(
        f"merged {result.parameters:,} parameters into {result.out} "
        f"({result.shards} safetensors file(s)), base {result.base}"
    )


@click.command("eval")
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path))
@click.option("--data", type=click.Path(path_type=Path), help="Held-out JSONL to score turns on.")
@click.option("--adapter", type=click.Path(path_type=Path), help="A LoRA adapter on --model.")
@click.option("--max-new-tokens", default=128, show_default=True, help="Per generated turn.")
@click.option("--compare-rag", type=click.Path(path_type=Path), help="Questions JSONL.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@pass_settings
def eval_(
    settings: Settings,
    model_dir: Path,
    data: Path | None,
    adapter: Path | None,
    max_new_tokens: int,
    compare_rag: Path | None,
    as_json: bool,
) -> None:
    """Tool calling per assistant turn (parse rate, tool selection, argument match, chrF);
    with --compare-rag, teacher + RAG against LoRA alone and LoRA + RAG."""
    if data is None and compare_rag is None:
        raise click.UsageError("give --data (held-out conversations), --compare-rag, or both")
    figures: dict[str, Any] = {}
    if data is not None:
        from finetune.evaluate import evaluate_model

        with user_errors():
            figures = evaluate_model(
                model_dir, data, adapter=adapter, max_new_tokens=max_new_tokens
            )
    if compare_rag is not None:
        from bot.cli.finetune_rag import compare_rag as compare
        from bot.cli.finetune_rag import read_questions

        questions = read_questions(compare_rag)
        figures["compare_rag"] = run(compare(settings, questions, model_dir, adapter))
    if as_json:
        echo_json(figures)
        return
    _print_eval(figures, f"{model_dir}" + (f" + {adapter}" if adapter else ""))


def _print_eval(figures: dict[str, Any], title: str) -> None:
    console = Console()
    if "turns" in figures:
        table = Table(title=title, show_header=False)
        for name, value in figures.items():
            if name not in ("model", "adapter", "compare_rag"):
                shown = f"{value:.1%}" if isinstance(value, float) and name not in _RAW else value
                table.add_row(name.replace("_", " "), _figure(shown) if shown is not None else "-")
        console.print(table)
    rows = figures.get("compare_rag") or []
    if rows:
        table = Table(title="RAG against fine-tuning")
        for column in ("system", "answered", "used a tool", "cited", "chrF", "s / question"):
            table.add_column(column)
        for row in rows:
            shares = [f"{row[k]:.0%}" for k in ("answered", "used_a_tool", "cited")]
            table.add_row(row["system"], *shares, _figure(row["chrf"]), _figure(row["seconds"]))
        console.print(table)


_RAW = ("chrf", "perplexity")  # shown as numbers, not shares
