"""Comment classification (hate / offensive / none, or any label set) in Korean and English.

- :class:`Classification`: a label, a score per label (they sum to 1), which classifier decided.
- :class:`CommentClassifier`: the Protocol every classifier meets; :func:`make_classifier_tools`
  turns any of them into the ``classify_comment`` tool.
- :class:`LocalClassifier`: TF-IDF n-gram views (Hangul letters, Kiwi morphemes, characters,
  words) and logistic regression over them: by default NB-LR (features scaled by naive-Bayes
  log-count ratios, one regression per label), or one regression per view with probabilities
  averaged (see :data:`KINDS`, :data:`METHODS`). CPU only, no network.
  :func:`train_classifier` fits it on a :class:`Dataset` (:func:`read_dataset` reads CSV or
  TSV); it is stored as a directory holding
  ``manifest.json`` (labels, data sha256, versions, held-out metrics, kind and parameters)
  and ``model.joblib``.
- :class:`CombinedClassifier`: the local model first, a second classifier (the language
  model) only when the local top score falls in the uncertain band ``[low, high)``.
- :func:`evaluate` and :func:`score_predictions`: accuracy, macro-F1, per-label
  precision/recall/F1 and a confusion matrix.

Fitting and predicting block, so the async API (:func:`train_classifier`, :func:`evaluate`,
``classify``) runs them in ``asyncio.to_thread``; :meth:`LocalClassifier.load` and ``save``
are plain blocking calls. ``model.joblib`` is a pickle: load only model directories the
operator made or trusts (the manifest's sha256 catches corruption, not tampering).

Exceptions (``exit_code`` is what the CLI exits with after printing the message on one line)::

    ClassifierError            classifying failed (the language model's reply was
    │                          malformed, it was unreachable) or saving did (exit 1)
    ├── ClassifierInputError   bad input: empty comment, unreadable data file, missing
    │                          column, labels outside the label set, a single class (exit 2)
    └── ModelLoadError         the model directory is missing, unreadable or incompatible (exit 2)
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from tools.base import FatalToolError, Tool, ToolError, ToolOutput

__all__ = [
    "DEFAULT_KIND",
    "DEFAULT_LABELS",
    "KINDS",
    "METHODS",
    "Classification",
    "ClassifierError",
    "ClassifierInputError",
    "CombinedClassifier",
    "CommentClassifier",
    "Dataset",
    "Evaluation",
    "LocalClassifier",
    "Manifest",
    "ModelLoadError",
    "check_trainable",
    "evaluate",
    "make_classifier_tools",
    "prepare_comment",
    "read_dataset",
    "score_predictions",
    "train_classifier",
]

DEFAULT_LABELS: tuple[str, ...] = ("hate", "offensive", "none")
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
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.joblib"


class ClassifierError(Exception):
    """Classifying failed, or the model could not be saved."""

    exit_code: int = 1


class ClassifierInputError(ClassifierError):
    """The comment or the data is unusable; the message says what to change."""

    exit_code = 2


class ModelLoadError(ClassifierError):
    """The model directory is missing, unreadable or made by incompatible versions."""

    exit_code = 2


@dataclass(frozen=True)
class Classification:
    """One decision: ``scores`` has every label and sums to 1.

    ``label`` is the decision: the local model's highest score, or the language model's
    choice (whose own scores need not agree). ``classifier`` says which one decided.
    """

    label: str
    scores: dict[str, float]
    classifier: Literal["local", "llm"]
    truncated: bool = False
    rationale: str | None = None
    note: str | None = None

    @property
    def top_score(self) -> float:
        """The highest score (the local model's confidence)."""
        return max(self.scores.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, scores rounded to 4 places; empty optional fields left out."""
        data: dict[str, Any] = {
            "label": self.label,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "classifier": self.classifier,
            "truncated": self.truncated,
        }
        data.update({k: v for k, v in (("rationale", self.rationale), ("note", self.note)) if v})
        return data


@runtime_checkable
class CommentClassifier(Protocol):
    """Anything that classifies one comment (local model, language model, both)."""

    async def classify(self, text: str) -> Classification:
        """Classify ``text``; :class:`ClassifierInputError` if it is empty."""
        ...


def prepare_comment(text: str, max_chars: int) -> tuple[str, bool]:
    """The comment stripped and cut to ``max_chars``, and whether it was cut."""
    text = text.strip()
    if not text:
        raise ClassifierInputError("the comment is empty: pass the text to classify")
    return (text[:max_chars], True) if len(text) > max_chars else (text, False)


# --- Data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """Labelled comments read from one file, and what was left out."""

    texts: list[str]
    labels: list[str]
    label_set: tuple[str, ...]
    sha256: str
    dropped: dict[str, int] = field(default_factory=dict)
    empty_rows: int = 0


def read_dataset(
    path: Path,
    *,
    text_col: str,
    label_col: str,
    labels: Sequence[str] = DEFAULT_LABELS,
    label_map: Mapping[str, str] | None = None,
    drop_unknown: bool = False,
) -> Dataset:
    """Read a CSV (or, for ``.tsv``/``.tab``, an unquoted TSV) file with a header row.

    Labels are stripped and renamed through ``label_map``. Rows whose label is outside
    ``labels`` are an error naming them, unless ``drop_unknown`` (then they are counted in
    :attr:`Dataset.dropped`). Rows with empty text are skipped and counted.
    """
    raw = _read_bytes(path)
    rows = _rows(path, raw, text_col, label_col)
    label_map = label_map or {}
    texts: list[str] = []
    found: list[str] = []
    unknown: Counter[str] = Counter()
    empty = 0
    for text, label in rows:
        label = label_map.get(label.strip(), label.strip())
        if not text.strip():
            empty += 1
        elif label not in labels:
            unknown[label] += 1
        else:
            texts.append(text.strip())
            found.append(label)
    if unknown and not drop_unknown:
        raise ClassifierInputError(_unknown_message(path, unknown, labels))
    if not texts:
        raise ClassifierInputError(f"{path.name}: no rows with text and a known label")
    sha = hashlib.sha256(raw).hexdigest()
    return Dataset(texts, found, tuple(labels), sha, dict(unknown), empty)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ClassifierInputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _rows(path: Path, raw: bytes, text_col: str, label_col: str) -> list[tuple[str, str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClassifierInputError(f"{path.name} is not UTF-8 text ({exc.reason})") from None
    tsv = path.suffix.lower() in {".tsv", ".tab"}
    reader = csv.DictReader(
        io.StringIO(text, newline=""),
        delimiter="\t" if tsv else ",",
        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL,
    )
    columns = [c for c in reader.fieldnames or [] if c]
    missing = [c for c in (text_col, label_col) if c not in columns]
    if missing:
        names = ", ".join(map(repr, missing))
        have = ", ".join(columns) or "none (the file is empty)"
        raise ClassifierInputError(f"{path.name}: no column {names}; the columns are: {have}")
    try:
        return [(row[text_col] or "", row[label_col] or "") for row in reader]
    except csv.Error as exc:
        raise ClassifierInputError(f"{path.name}: line {reader.line_num}: {exc}") from None


def _unknown_message(path: Path, unknown: Counter[str], labels: Sequence[str]) -> str:
    shown = ", ".join(f"{label!r} ({n})" for label, n in unknown.most_common(10))
    more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    return (
        f"{path.name}: {sum(unknown.values())} rows have labels outside the label set "
        f"({', '.join(labels)}): {shown}{more}; rename them with --map, or pass "
        "--drop-unknown to skip those rows"
    )


def check_trainable(dataset: Dataset) -> None:
    """Raise :class:`ClassifierInputError` unless every label has 2+ rows (and 2+ labels)."""
    counts = Counter(dataset.labels)
    if len(counts) < 2:
        ((label, n),) = counts.items()
        raise ClassifierInputError(
            f"the data has one label only ({label!r}, {n} rows): a classifier needs at least two"
        )
    absent = [label for label in dataset.label_set if label not in counts]
    if absent:
        raise ClassifierInputError(
            f"no rows are labelled {', '.join(map(repr, absent))}: add examples, or leave "
            "them out of --labels"
        )
    scarce = [f"{label!r} ({n})" for label, n in counts.items() if n < 2]
    if scarce:
        raise ClassifierInputError(f"each label needs at least 2 rows: {', '.join(scarce)}")


# --- Model -----------------------------------------------------------------------------

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


# --- Evaluation ------------------------------------------------------------------------


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


# --- The local classifier --------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """What a model directory holds, and how it was made."""

    labels: list[str]
    kind: str
    params: dict[str, Any]
    data_sha256: str
    data_rows: int
    metrics: dict[str, Any]
    sklearn_version: str
    deskbot_version: str
    created_at: str
    model_sha256: str = ""
    format: int = FORMAT_VERSION


class LocalClassifier:
    """The trained model with its manifest; CPU only.

    :meth:`load` unpickles ``model.joblib``: load only a directory the operator made or
    trusts, since a pickle can run code. The manifest's sha256 catches a changed or
    corrupted model file, not someone able to rewrite both files.
    """

    def __init__(self, model: _Views, manifest: Manifest, *, max_chars: int = 2000) -> None:
        self._model = model
        self.manifest = manifest
        self.max_chars = max_chars

    @property
    def labels(self) -> tuple[str, ...]:
        """The label set, in the model's order."""
        return tuple(self.manifest.labels)

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Scores per label for each text (blocking: call it in a thread from async code)."""
        if not texts:
            return []
        probabilities = self._model.predict_proba([t[: self.max_chars] for t in texts])
        return [dict(zip(self.labels, map(float, row), strict=True)) for row in probabilities]

    async def classify(self, text: str) -> Classification:
        """Classify one comment, cut to ``max_chars``."""
        return (await self.classify_many([text]))[0]

    async def classify_many(self, texts: Sequence[str]) -> list[Classification]:
        """Classify a batch in one worker thread."""
        prepared = [prepare_comment(text, self.max_chars) for text in texts]
        scores = await asyncio.to_thread(self.predict, [t for t, _ in prepared])
        return [
            Classification(max(s, key=s.__getitem__), s, "local", truncated=cut)
            for s, (_, cut) in zip(scores, prepared, strict=True)
        ]

    def save(self, path: Path) -> None:
        """Write ``model.joblib`` then ``manifest.json`` (with the model's sha256) to ``path``."""
        import joblib

        try:
            path.mkdir(parents=True, exist_ok=True)
            joblib.dump(self._model, path / MODEL_FILE, compress=3)
            self.manifest = replace(self.manifest, model_sha256=_sha256(path / MODEL_FILE))
            text = json.dumps(asdict(self.manifest), ensure_ascii=False, indent=2)
            (path / MANIFEST).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise ClassifierError(f"cannot save the model to {path}: {exc}") from None

    @classmethod
    def load(cls, path: Path, *, max_chars: int = 2000) -> LocalClassifier:
        """Read a model directory, checking the manifest first (blocking; see the class)."""
        import joblib

        manifest = _read_manifest(path)
        model_path = path / MODEL_FILE
        if not model_path.is_file() or _sha256(model_path) != manifest.model_sha256:
            raise ModelLoadError(f"{model_path} is missing or does not match its manifest")
        try:
            model = joblib.load(model_path)
        except Exception as exc:  # unpickling raises anything; the message says what
            raise ModelLoadError(f"cannot load {model_path}: {exc}") from None
        if not isinstance(model, _Views) or model.labels != tuple(manifest.labels):
            raise ModelLoadError(f"{model_path} is not the model its manifest describes")
        model.predict_proba(["warm-up"])  # loads the morpheme analyzer now, not on a user's turn
        return cls(model, manifest, max_chars=max_chars)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(path: Path) -> Manifest:
    where = path / MANIFEST
    if not where.is_file():
        raise ModelLoadError(
            f"no classifier model at {path} ({MANIFEST} is missing): train one with "
            "`deskbot classifier train` or set DESKBOT_CLASSIFIER_MODEL"
        )
    try:
        manifest = Manifest(**json.loads(where.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise ModelLoadError(f"{where} is not a classifier manifest ({exc})") from None
    if manifest.format != FORMAT_VERSION:
        raise ModelLoadError(
            f"{path} has model format {manifest.format}; this deskbot reads {FORMAT_VERSION}"
        )
    current = _version("scikit-learn")
    if manifest.sklearn_version.split(".")[:2] != current.split(".")[:2]:
        raise ModelLoadError(
            f"{path} was trained with scikit-learn {manifest.sklearn_version}, this is "
            f"{current}: train it again with `deskbot classifier train`"
        )
    return manifest


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


# --- Training --------------------------------------------------------------------------


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
        sklearn_version=_version("scikit-learn"),
        deskbot_version=_version("deskbot"),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    final = _fit(dataset.label_set, kind, c, texts, dataset.labels)
    return LocalClassifier(final, manifest, max_chars=max_chars)


def _fit(labels: Sequence[str], kind: str, c: float, x: list[str], y: list[str]) -> _Views:
    try:
        return _Views(labels, KINDS[kind], c, METHODS[kind]).fit(x, y)
    except ValueError as exc:  # e.g. an empty vocabulary: nothing to learn from
        raise ClassifierInputError(f"cannot learn from this data: {exc}") from None


# --- Local model first, the language model when unsure ----------------------------------


class CombinedClassifier:
    """The ``first`` classifier's answer, unless its top score is in ``[low, high)``.

    Then ``second`` (the language model) decides; if it fails, the first answer stands
    with a note. Without a ``second``, this is the first classifier.
    """

    def __init__(
        self,
        first: CommentClassifier,
        second: CommentClassifier | None,
        *,
        band_low: float = 0.45,
        band_high: float = 0.75,
    ) -> None:
        if not 0 <= band_low <= band_high <= 1:
            raise ValueError(f"need 0 <= band_low <= band_high <= 1, got {band_low}, {band_high}")
        self.first = first
        self.second = second
        self.band = (band_low, band_high)

    def uncertain(self, result: Classification) -> bool:
        """Whether the first classifier's top score falls in the band."""
        return self.band[0] <= result.top_score < self.band[1]

    async def classify(self, text: str) -> Classification:
        first = await self.first.classify(text)
        if self.second is None or not self.uncertain(first):
            return first
        try:
            second = await self.second.classify(text)
        except ClassifierInputError:
            raise
        except ClassifierError as exc:
            return replace(first, note=f"the language model failed, local label kept: {exc}")
        return replace(second, truncated=first.truncated or second.truncated)


# --- The tool --------------------------------------------------------------------------


def make_classifier_tools(classifier: CommentClassifier) -> list[Tool]:
    """The ``classify_comment`` tool, deciding with ``classifier``."""

    async def classify_comment(text: str) -> ToolOutput:
        """Classify a comment (Korean or English) as hate speech, offensive, or neither.

        Returns the label, a score per label (summing to 1), which classifier decided
        (local model or language model) and whether the text was cut to fit.

        Args:
            text: The comment, verbatim.
        """
        try:
            result = await classifier.classify(text)
        except ClassifierInputError as exc:
            raise ToolError(str(exc)) from None
        except ClassifierError as exc:
            raise FatalToolError(f"the comment classifier failed: {exc}") from None
        return ToolOutput(result.to_dict(), markdown=_markdown(result))

    return [Tool.from_function(classify_comment, timeout=60.0)]


def _markdown(result: Classification) -> str:
    scores = ", ".join(f"{label} {score:.2f}" for label, score in result.scores.items())
    lines = [f"**{result.label}** ({scores}; decided by the {result.classifier} classifier)"]
    if result.truncated:
        lines.append("The comment was cut to fit the classifier's limit.")
    lines += [line for line in (result.rationale, result.note) if line]
    return "\n\n".join(lines)
