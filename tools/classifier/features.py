"""The local model: TF-IDF n-gram views of a comment and logistic regression over them.

Views: Hangul letters (jamo), Kiwi morphemes, characters, words. Each model kind
(:data:`KINDS`) picks its views and its method (:data:`METHODS`).

Saved models are pickles of :class:`_Views`, which refer to this module's functions by name:
renaming or moving one breaks saved models. Models saved before the classifier became a
package refer to ``tools.classifier.<name>``, which :mod:`tools.classifier` still exports.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

__all__ = ["DEFAULT_C", "DEFAULT_KIND", "KINDS", "METHODS", "Method"]

# Feature views per model kind, and how each kind learns from them (METHODS): "nblr" is one
# model over all views together, each feature scaled by its naive-Bayes log-count ratio, one
# logistic regression per label (Wang & Manning 2012); "lr" is one logistic regression per
# view, probabilities averaged. The default was chosen by 3-fold cross-validated macro-F1 on
# the Korean (BEEP!) training set; see bench/classifier.py. ``jamo-morph-lr`` is the previous
# default (the "lr" method on the same views).
KINDS: dict[str, tuple[str, ...]] = {
    "char": ("char",),
    "char-word": ("char", "word"),
    "jamo": ("jamo",),
    "char-morph": ("char", "morph"),
    "jamo-morph": ("jamo", "morph"),
    "jamo-morph-lr": ("jamo", "morph"),
    "char-jamo-morph": ("char", "jamo", "morph"),
}
Method = Literal["lr", "nblr"]
METHODS: dict[str, Method] = {kind: "nblr" if kind == "jamo-morph" else "lr" for kind in KINDS}
# The regularisation C each method is trained with unless told (chosen by cross-validation).
DEFAULT_C: dict[str, float] = {"lr": 1.0, "nblr": 0.25}
DEFAULT_KIND = "jamo-morph"


# Pickled models refer to these functions by name: renaming one breaks saved models.
_REPEATS = re.compile(r"(.)\1{2,}")


def _normalize(text: str) -> str:
    """Lower case; a character repeated 3+ times counts twice (ㅋㅋㅋㅋ, loooool)."""
    return _REPEATS.sub(r"\1\1", text.lower())


def _jamo(text: str) -> str:
    """Hangul syllables split into letters, so spelling variants share n-grams."""
    return unicodedata.normalize("NFKD", _normalize(text))


_kiwi: Any = None
_kiwi_lock = threading.Lock()


def _morphemes(text: str) -> list[str]:
    """Kiwi morphemes (``form/tag``); Latin words come out whole."""
    global _kiwi
    if _kiwi is None:
        with _kiwi_lock:
            if _kiwi is None:
                from kiwipiepy import Kiwi

                _kiwi = Kiwi(num_workers=1)
    return [f"{t.form}/{t.tag[:2]}" for t in _kiwi.tokenize(text)]


def _vectorizer(view: str, min_df: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    options: dict[str, dict[str, Any]] = {
        "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "preprocessor": _normalize},
        "jamo": {"analyzer": "char_wb", "ngram_range": (2, 6), "preprocessor": _jamo},
        "word": {"ngram_range": (1, 2), "token_pattern": r"(?u)\w+", "preprocessor": _normalize},
        "morph": {"ngram_range": (1, 2), "tokenizer": _morphemes, "token_pattern": None},
    }
    return TfidfVectorizer(sublinear_tf=True, min_df=min_df, dtype=np.float32, **options[view])


class _Views:
    """TF-IDF n-gram views and the classifier over them (see :data:`METHODS`).

    ``lr``: one TF-IDF + logistic regression pipeline per view, probabilities averaged.
    ``nblr``: the views' TF-IDF features side by side, and per label a one-vs-rest logistic
    regression over the features scaled by their log-count ratio (how much likelier a
    feature is present in that label's comments than in the others'); the naive-Bayes
    scaling is folded into the weights, and the labels' probabilities are normalised to 1.
    """

    method: Method = "lr"  # models saved before "nblr" existed are "lr"

    def __init__(
        self,
        labels: Sequence[str],
        views: Sequence[str],
        c: float,
        method: Method = "lr",
    ) -> None:
        self.labels = tuple(labels)
        self.views = tuple(views)
        self.c = c
        self.method = method
        self.pipelines: list[Any] = []
        self.vectorizers: list[Any] = []
        self.weights: np.ndarray = np.zeros((0, len(self.labels)), dtype=np.float32)
        self.intercepts: np.ndarray = np.zeros(len(self.labels))

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> _Views:
        min_df = 2 if len(texts) >= 1000 else 1  # rare n-grams are noise, unless data is scarce
        if self.method == "nblr":
            return self._fit_nblr(list(texts), list(labels), min_df)
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.pipelines = [
            make_pipeline(
                _vectorizer(view, min_df),
                LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000),
            ).fit(list(texts), list(labels))
            for view in self.views
        ]
        return self

    def _fit_nblr(self, texts: list[str], labels: list[str], min_df: int) -> _Views:
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression

        self.vectorizers = [_vectorizer(view, min_df) for view in self.views]
        x = sparse.hstack([v.fit_transform(texts) for v in self.vectorizers]).tocsr()
        present = (x > 0).astype(np.float32)
        truth = np.array(labels)
        weights, intercepts = [], []
        for label in self.labels:
            mine = truth == label
            ratio = _log_count_ratio(present[mine], present[~mine])
            model = LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000)
            model.fit(x @ sparse.diags(ratio), mine.astype(int))
            weights.append(ratio * model.coef_[0])
            intercepts.append(model.intercept_[0])
        self.weights = np.stack(weights, axis=1).astype(np.float32)
        self.intercepts = np.array(intercepts)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.method == "nblr":
            from scipy import sparse

            x = sparse.hstack([v.transform(list(texts)) for v in self.vectorizers]).tocsr()
            logits = np.asarray(x @ self.weights, dtype=np.float64) + self.intercepts
            scores: np.ndarray = 1 / (1 + np.exp(-logits))
            scores /= scores.sum(axis=1, keepdims=True)
            return scores
        total = np.zeros((len(texts), len(self.labels)))
        for pipeline in self.pipelines:
            order = [list(pipeline.classes_).index(label) for label in self.labels]
            total += pipeline.predict_proba(list(texts))[:, order]
        return total / len(self.pipelines)


def _log_count_ratio(mine: Any, others: Any, alpha: float = 1.0) -> np.ndarray:
    """log(p / q): p, q the smoothed shares of each feature's presence in the two groups."""
    p = np.asarray(mine.sum(axis=0), dtype=np.float64).ravel() + alpha
    q = np.asarray(others.sum(axis=0), dtype=np.float64).ravel() + alpha
    ratio: np.ndarray = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
    return ratio
