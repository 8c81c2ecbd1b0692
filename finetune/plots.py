"""The loss curve of a training run: ``losses.csv`` always, ``loss.png`` with matplotlib."""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finetune.libs import lib

__all__ = ["write_losses"]


def write_losses(out: Path, history: Sequence[dict[str, Any]]) -> tuple[Path | None, list[str]]:
    """Write the train and eval loss per step; returns the PNG (if drawn) and notes."""
    rows = [
        (int(r["step"]), r.get("loss"), r.get("eval_loss"))
        for r in history
        if "loss" in r or "eval_loss" in r
    ]
    with (out / "losses.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("step", "train_loss", "eval_loss"))
        writer.writerows(rows)
    if importlib.util.find_spec("matplotlib") is None:
        return None, ["matplotlib is not installed: no loss.png (the curve is in losses.csv)"]
    return _plot(out / "loss.png", rows), []


def _plot(path: Path, rows: Sequence[tuple[int, Any, Any]]) -> Path:
    lib("matplotlib").use("Agg")  # no display: write the file only
    pyplot = lib("matplotlib.pyplot")

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for column, label in ((1, "train"), (2, "eval")):
        points = [(row[0], row[column]) for row in rows if row[column] is not None]
        if points:
            axes.plot(
                *zip(*points, strict=True), marker="." if label == "eval" else "", label=label
            )
    axes.set(xlabel="step", ylabel="loss", title="LoRA fine-tuning loss")
    axes.legend()
    figure.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)
    return path
