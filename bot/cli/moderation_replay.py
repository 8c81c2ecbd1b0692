"""``deskbot moderation replay``: a file of comments through a guild's policy, acting on nothing.

    deskbot moderation replay --guild ID --data FILE --text-col C [--label-col L]
        [--map 0=hate,...] [--drop-unknown] [--model DIR] [--json]

The comments are classified with the configured classifier; the guild's policy (read from
the database) gives each the action it would have drawn. Neither Discord nor the stored
decisions are touched.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bot.classifier import make_comment_classifier
from bot.cli.classifier import _label_map
from bot.cli.common import echo_json, pass_settings, run
from bot.moderation import ModerationStore, Policy, ReplayReport, replay
from bot.settings import Settings
from tools.classifier import ClassifierInputError, read_dataset

__all__ = ["replay_command"]


@click.command("replay")
@click.option("--guild", required=True, help="Guild (server) id whose policy is replayed.")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path))
@click.option("--text-col", required=True, help="Column with the comment text.")
@click.option("--label-col", help="Column with the gold label: adds precision and recall.")
@click.option("--map", "label_map", callback=_label_map, help="Rename labels: 0=hate,...")
@click.option("--drop-unknown", is_flag=True, help="Skip rows labelled outside the label set.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Model directory.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def replay_command(
    settings: Settings,
    guild: str,
    data: Path,
    text_col: str,
    label_col: str | None,
    label_map: dict[str, str],
    drop_unknown: bool,
    model_dir: Path | None,
    as_json: bool,
) -> None:
    """Run a CSV or TSV file of comments through a guild's policy, acting on nothing.

    Each comment is classified with the configured classifier (DESKBOT_CLASSIFIER_MODE)
    and the policy's thresholds give the action it would have drawn; Discord and the
    stored decisions are not touched. With --label-col, precision and recall per action:
    a comment counts for an action when the policy would take that action or a worse one
    ("enforced": anything beyond log), and it is a true positive when its gold label is
    one the policy acts on, i.e. any label but "none" (hate, offensive).
    """
    if model_dir:
        settings = settings.model_copy(update={"classifier_model": model_dir})
    texts, labels, skipped = _comments(data, text_col, label_col, label_map, drop_unknown)
    found, report = run(_replay(settings, guild, texts, labels))
    if as_json:
        echo_json({"guild": guild, "policy": found.to_dict(), **report.to_dict(), **skipped})
        return
    _print_replay(guild, found, report)


def _comments(
    path: Path, text_col: str, label_col: str | None, label_map: dict[str, str], drop: bool
) -> tuple[list[str], list[str] | None, dict[str, Any]]:
    """The file's texts, its gold labels (None without a label column) and what was skipped."""
    if label_col is None:
        return _texts(path, text_col), None, {}
    dataset = read_dataset(
        path, text_col=text_col, label_col=label_col, label_map=label_map, drop_unknown=drop
    )
    skipped = {"dropped": dataset.dropped, "empty_rows": dataset.empty_rows}
    return dataset.texts, dataset.labels, skipped


def _texts(path: Path, text_col: str) -> list[str]:
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClassifierInputError(f"cannot read {path}: {exc}") from None
    tsv = path.suffix.lower() in {".tsv", ".tab"}
    reader = csv.DictReader(
        io.StringIO(raw, newline=""),
        delimiter="\t" if tsv else ",",
        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL,
    )
    if text_col not in (reader.fieldnames or []):
        have = ", ".join(c for c in reader.fieldnames or [] if c) or "none"
        raise ClassifierInputError(f"{path.name}: no column {text_col!r}; the columns are: {have}")
    texts = [text.strip() for row in reader if (text := row[text_col] or "").strip()]
    if not texts:
        raise ClassifierInputError(f"{path.name}: no rows with text")
    return texts


async def _replay(
    settings: Settings, guild: str, texts: Sequence[str], labels: Sequence[str] | None
) -> tuple[Policy, ReplayReport]:
    from bot.app import make_backend
    from bot.storage import open_database

    backend = make_backend(settings) if settings.llm_configured else None
    try:
        classifier = await make_comment_classifier(settings, backend)  # fails before the DB
        database = await open_database(settings)
        try:
            found = await ModerationStore(database.engine).policy(guild)
        finally:
            await database.close()
        limit = settings.classifier_max_chars
        return found, await replay(found, classifier, texts, labels=labels, max_chars=limit)
    finally:
        if backend is not None:
            await backend.close()


def _print_replay(guild: str, found: Policy, report: ReplayReport) -> None:
    click.echo(f"{report.total} comments through the policy of guild {guild} ({found.mode}):")
    counts = Table(title="would have")
    for column in ("action", "comments", "share"):
        counts.add_column(column, justify="left" if column == "action" else "right")
    for action, n in report.counts.items():
        counts.add_row(action, str(n), f"{n / max(report.total, 1):.1%}")
    console = Console()
    console.print(counts)
    if not report.scores:
        return
    scores = Table(title="gold: any label but none")
    for column in ("action", "precision", "recall", "acted", "gold", "correct"):
        scores.add_column(column, justify="left" if column == "action" else "right")
    for name, s in report.scores.items():
        precision = f"{s.precision:.4f}" if s.predicted else "-"  # nothing acted on
        row = (precision, f"{s.recall:.4f}", str(s.predicted), str(s.gold))
        scores.add_row(name, *row, str(s.correct))
    console.print(scores)
