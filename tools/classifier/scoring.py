"""Scores of a classifier's predictions: accuracy, macro-F1, per-label P/R/F1, confusion."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tools.classifier.base import ClassifierInputError
from tools.classifier.data import Dataset
from tools.classifier.local import LocalClassifier

__all__ = ["Evaluation", "evaluate", "score_predictions"]


@dataclass(frozen=True)
class Evaluation:
    """Scores of predictions against the truth, over a fixed label order."""

    labels: tuple[str, ...]
    rows: int
    accuracy: float
    macro_f1: float
    per_label: dict[str, dict[str, float]]
    confusion: list[list[int]]  # rows: true label, columns: predicted label

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {**asdict(self), "labels": list(self.labels)}


def score_predictions(
    labels: Sequence[str], truth: Sequence[str], predicted: Sequence[str]
) -> Evaluation:
    """Accuracy, macro-F1 (the mean F1 over ``labels``), per-label P/R/F1 and confusion."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    hits = np.diag(matrix).astype(float)
    precision = np.divide(hits, matrix.sum(0), out=np.zeros_like(hits), where=matrix.sum(0) > 0)
    recall = np.divide(hits, matrix.sum(1), out=np.zeros_like(hits), where=matrix.sum(1) > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    per_label = {
        label: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(matrix[i].sum()),
        }
        for i, label in enumerate(labels)
    }
    rows = len(truth)
    accuracy = float(hits.sum() / rows) if rows else 0.0
    return Evaluation(
        tuple(labels),
        rows,
        round(accuracy, 4),
        round(float(f1.mean()), 4),
        per_label,
        matrix.tolist(),
    )


async def evaluate(classifier: LocalClassifier, dataset: Dataset) -> Evaluation:
    """Score ``classifier`` on ``dataset`` (whose labels must be in the model's label set)."""
    outside = sorted(set(dataset.labels) - set(classifier.labels))
    if outside:
        raise ClassifierInputError(
            f"the data has labels the model does not know ({', '.join(outside)}); the model's "
            f"labels are {', '.join(classifier.labels)}"
        )
    scores = await asyncio.to_thread(classifier.predict, dataset.texts)
    predicted = [max(s, key=s.__getitem__) for s in scores]
    return score_predictions(classifier.labels, dataset.labels, predicted)
