"""Training the local classifier: fit, score a held-out share, refit on everything."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from tools.classifier.base import ClassifierInputError
from tools.classifier.data import Dataset, check_trainable
from tools.classifier.features import DEFAULT_C, DEFAULT_KIND, KINDS, METHODS, _Views
from tools.classifier.local import LocalClassifier, Manifest, version_of
from tools.classifier.scoring import score_predictions

__all__ = ["train_classifier"]


async def train_classifier(
    dataset: Dataset,
    *,
    kind: str = DEFAULT_KIND,
    c: float | None = None,
    holdout: float = 0.1,
    seed: int = 0,
    max_chars: int = 2000,
) -> LocalClassifier:
    """Fit on all but a stratified ``holdout`` share, score that share, then refit on all.

    ``c`` is the regularisation (smaller: stronger); ``None`` is the kind's method's
    default (:data:`DEFAULT_C`). The manifest's metrics are those of the first fit on the
    held-out rows.
    """
    if kind not in KINDS:
        raise ClassifierInputError(f"unknown model kind {kind!r}; choose {', '.join(KINDS)}")
    if not 0 < holdout < 1:
        raise ClassifierInputError(f"holdout must be between 0 and 1, got {holdout}")
    check_trainable(dataset)
    c = DEFAULT_C[METHODS[kind]] if c is None else c
    return await asyncio.to_thread(_train, dataset, kind, c, holdout, seed, max_chars)


def _train(
    dataset: Dataset, kind: str, c: float, holdout: float, seed: int, max_chars: int
) -> LocalClassifier:
    from sklearn import model_selection

    texts = [t[:max_chars] for t in dataset.texts]
    size = max(len(dataset.label_set), round(holdout * len(texts)))
    fit_x, test_x, fit_y, test_y = model_selection.train_test_split(
        texts, dataset.labels, test_size=size, stratify=dataset.labels, random_state=seed
    )
    first = _fit(dataset.label_set, kind, c, fit_x, fit_y)
    scores = first.predict_proba(test_x)
    predicted = [dataset.label_set[i] for i in scores.argmax(1)]
    metrics = score_predictions(dataset.label_set, test_y, predicted).to_dict()
    metrics["fitted_rows"] = len(fit_x)
    manifest = Manifest(
        labels=list(dataset.label_set),
        kind=kind,
        params={
            "views": list(KINDS[kind]),
            "method": METHODS[kind],
            "C": c,
            "holdout": holdout,
            "seed": seed,
        },
        data_sha256=dataset.sha256,
        data_rows=len(texts),
        metrics=metrics,
        sklearn_version=version_of("scikit-learn"),
        deskbot_version=version_of("deskbot"),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    final = _fit(dataset.label_set, kind, c, texts, dataset.labels)
    return LocalClassifier(final, manifest, max_chars=max_chars)


def _fit(labels: Sequence[str], kind: str, c: float, x: list[str], y: list[str]) -> _Views:
    try:
        return _Views(labels, KINDS[kind], c, METHODS[kind]).fit(x, y)
    except ValueError as exc:  # e.g. an empty vocabulary: nothing to learn from
        raise ClassifierInputError(f"cannot learn from this data: {exc}") from None
