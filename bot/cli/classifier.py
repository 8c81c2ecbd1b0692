"""Classifier commands: ``classifier train``, ``classifier eval`` and ``classify``.

    deskbot classifier train --data FILE --text-col C --label-col L [--labels a,b,c]
        [--map 0=hate,1=offensive,2=none] [--drop-unknown] [--extra FILE]... [--kind K]
        [--out DIR] [--json]
    deskbot classifier eval [--model DIR] --data FILE --text-col C --label-col L [--json]
    deskbot classify "TEXT" [--mode local|llm|combined] [--model DIR] [--examples FILE] [--json]

``--json`` prints one JSON object on stdout. Errors are one line on stderr. Exit codes: 0
success; 2 for usage, data and configuration problems (an empty comment, an unreadable data
file, a missing column, labels outside the label set unless ``--drop-unknown``, a single
class, a missing or incompatible model directory, ``llm`` mode without a language model);
1 when a classification failed (the language model was unreachable or its reply was
malformed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bot.classifier import make_comment_classifier
from bot.cli.common import pass_settings, run
from bot.settings import Settings
from tools.classifier import (
    DEFAULT_EXAMPLES,
    DEFAULT_KIND,
    DEFAULT_LABELS,
    KINDS,
    Classification,
    Dataset,
    Evaluation,
    FewShotExample,
    LocalClassifier,
    check_trainable,
    evaluate,
    load_examples,
    read_dataset,
    train_classifier,
)
from tools.classifier.data import append_rows

__all__ = ["classifier", "classify"]

MODES = ("local", "llm", "combined")


def _labels(_: click.Context, __: click.Parameter, value: str) -> tuple[str, ...]:
    labels = tuple(dict.fromkeys(x.strip() for x in value.split(",") if x.strip()))
    if len(labels) < 2:
        raise click.BadParameter("give at least two labels, separated by commas")
    return labels


def _label_map(_: click.Context, __: click.Parameter, value: str | None) -> dict[str, str]:
    pairs = [p.split("=", 1) for p in (value or "").split(",") if p.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise click.BadParameter("write it as FROM=TO pairs separated by commas: 0=hate,1=none")
    return {a.strip(): b.strip() for a, b in pairs}


def _data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--data", "data", required=True, type=click.Path(path_type=Path)),
        click.option("--text-col", required=True, help="Column with the comment text."),
        click.option("--label-col", required=True, help="Column with the label."),
        click.option("--map", "label_map", callback=_label_map, help="Rename labels: 0=hate,..."),
        click.option(
            "--drop-unknown", is_flag=True, help="Skip rows labelled outside the label set."
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _skipped(data: Dataset) -> str:
    parts = [f"{n} labelled {label!r}" for label, n in data.dropped.items()]
    if data.empty_rows:
        parts.append(f"{data.empty_rows} with empty text")
    return f"skipped rows: {', '.join(parts)}" if parts else ""


@click.group()
def classifier() -> None:
    """Train and evaluate the local comment classifier."""


@classifier.command("train")
@_data_options
@click.option("--labels", default=",".join(DEFAULT_LABELS), show_default=True, callback=_labels)
@click.option("--kind", type=click.Choice(list(KINDS)), default=DEFAULT_KIND, show_default=True)
@click.option("--holdout", type=click.FloatRange(0.01, 0.5), default=0.1, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Default: the settings' path.")
@click.option(
    "--extra",
    "extras",
    multiple=True,
    type=click.Path(path_type=Path),
    help="More labelled rows (columns text,label), e.g. from `moderation export`. Repeatable.",
)
@pass_settings
def train(
    settings: Settings,
    data: Path,
    text_col: str,
    label_col: str,
    label_map: dict[str, str],
    drop_unknown: bool,
    as_json: bool,
    labels: tuple[str, ...],
    kind: str,
    holdout: float,
    out: Path | None,
    extras: tuple[Path, ...],
) -> None:
    """Train the local classifier on a CSV or TSV file and save it (model + manifest).

    Each ``--extra`` file's rows (columns ``text`` and ``label``, labels from the label
    set) are appended to the training data: accepted appeals teach the model its false
    positives.
    """
    target = out or settings.classifier_path
    dataset = read_dataset(
        data,
        text_col=text_col,
        label_col=label_col,
        labels=labels,
        label_map=label_map,
        drop_unknown=drop_unknown,
    )
    for path in extras:
        rows = read_dataset(path, text_col="text", label_col="label", labels=labels)
        dataset = append_rows(dataset, rows)
    check_trainable(dataset)
    click.echo(f"training {kind} on {len(dataset.texts)} rows ...", err=True)
    max_chars = settings.classifier_max_chars
    model = run(train_classifier(dataset, kind=kind, holdout=holdout, max_chars=max_chars))
    model.save(target)
    if as_json:
        extra = {"path": str(target), "dropped": dataset.dropped, "empty_rows": dataset.empty_rows}
        click.echo(
            json.dumps({**extra, "manifest": asdict(model.manifest)}, ensure_ascii=False, indent=2)
        )
        return
    _print_training(dataset, model.manifest.metrics, target)


@classifier.command("eval")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Model directory.")
@_data_options
@pass_settings
def eval_classifier(
    settings: Settings,
    model_dir: Path | None,
    data: Path,
    text_col: str,
    label_col: str,
    label_map: dict[str, str],
    drop_unknown: bool,
    as_json: bool,
) -> None:
    """Score a trained classifier on a labelled CSV or TSV file."""
    path = model_dir or settings.classifier_path
    model = LocalClassifier.load(path, max_chars=settings.classifier_max_chars)
    dataset = read_dataset(
        data,
        text_col=text_col,
        label_col=label_col,
        labels=model.labels,
        label_map=label_map,
        drop_unknown=drop_unknown,
    )
    result = run(evaluate(model, dataset))
    if as_json:
        report = {**result.to_dict(), "model": str(path), "dropped": dataset.dropped}
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    if _skipped(dataset):
        click.echo(_skipped(dataset))
    _print_evaluation(result)


@click.command()
@click.argument("text")
@click.option("--mode", type=click.Choice(MODES), help="Default: DESKBOT_CLASSIFIER_MODE.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Model directory.")
@click.option(
    "--examples",
    type=click.Path(path_type=Path),
    help="Few-shot examples for the language model: a JSON list of {text, label, rationale}.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def classify(
    settings: Settings,
    text: str,
    mode: str | None,
    model_dir: Path | None,
    examples: Path | None,
    as_json: bool,
) -> None:
    """Classify one comment (hate / offensive / none) with the configured classifier."""
    overrides: dict[str, Any] = {}
    if mode:
        overrides["classifier_mode"] = mode
    if model_dir:
        overrides["classifier_model"] = model_dir
    shots = load_examples(examples) if examples else DEFAULT_EXAMPLES
    result = run(_classify(settings.model_copy(update=overrides), text, shots))
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    _print_classification(result, settings.classifier_max_chars)


async def _classify(
    settings: Settings, text: str, examples: Sequence[FewShotExample]
) -> Classification:
    from bot.app import make_backend

    backend = make_backend(settings) if settings.llm_configured else None
    try:
        comments = await make_comment_classifier(settings, backend, examples=examples)
        return await comments.classify(text)
    finally:
        if backend is not None:
            await backend.close()


def _print_training(dataset: Dataset, metrics: dict[str, Any], target: Path) -> None:
    if _skipped(dataset):
        click.echo(_skipped(dataset))
    click.echo(
        f"held-out ({metrics['rows']} rows): macro-F1 {metrics['macro_f1']:.4f}, "
        f"accuracy {metrics['accuracy']:.4f}"
    )
    click.echo(f"saved to {target}")


def _print_classification(result: Classification, limit: int) -> None:
    scores = "  ".join(f"{label} {score:.2f}" for label, score in result.scores.items())
    click.echo(f"{result.label}  ({scores}; {result.classifier})")
    if result.truncated:
        click.echo(f"(only the first {limit} characters were classified)")
    for line in (result.rationale, result.note):
        if line:
            click.echo(line)


def _print_evaluation(result: Evaluation) -> None:
    table = Table(title=f"{result.rows} comments")
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, m in result.per_label.items():
        table.add_row(
            label,
            f"{m['precision']:.4f}",
            f"{m['recall']:.4f}",
            f"{m['f1']:.4f}",
            str(int(m["support"])),
        )
    confusion = Table(title="confusion (rows: true, columns: predicted)")
    confusion.add_column("")
    for label in result.labels:
        confusion.add_column(label, justify="right")
    for label, row in zip(result.labels, result.confusion, strict=True):
        confusion.add_row(label, *map(str, row))
    console = Console()
    console.print(table)
    console.print(confusion)
    click.echo(f"accuracy {result.accuracy:.4f}  macro-F1 {result.macro_f1:.4f}")
