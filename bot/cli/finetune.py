"""Fine-tuning commands: ``deskbot finetune ...``.

    deskbot finetune init-tiny --out DIR [--seed N]

Everything heavy (torch, transformers, peft, trl) is imported inside the commands, so
``deskbot --help`` stays fast. Errors are one line on stderr: exit 2 for input the user must
fix (a missing directory, bad data or config), 1 when a step failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from bot.errors import ConfigError, DeskbotError
from finetune.errors import FinetuneError, FinetuneInputError

__all__ = ["finetune"]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the finetune package's errors into the CLI's (one line, the right exit code)."""
    try:
        yield
    except FinetuneInputError as exc:
        raise ConfigError(str(exc)) from exc
    except FinetuneError as exc:
        raise DeskbotError(str(exc)) from exc


@click.group()
def finetune() -> None:
    """Distil the bot's conversations into a LoRA model (export, train, merge, eval)."""


@finetune.command("init-tiny")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory to write.")
@click.option("--seed", default=0, show_default=True, help="Seed for the random weights.")
def init_tiny(out: Path, seed: int) -> None:
    """Write a tiny random Qwen2 model with the tool-calling chat template (offline, CPU)."""
    from finetune.tiny import init_tiny as build

    with _user_errors():
        path = build(out, seed=seed)
    click.echo(f"tiny model written to {path}")
