"""Labelled comments from CSV or TSV files, and the checks before training on them."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.classifier.base import DEFAULT_LABELS, ClassifierInputError

__all__ = ["Dataset", "append_rows", "check_trainable", "read_dataset"]


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


def append_rows(dataset: Dataset, extra: Dataset) -> Dataset:
    """``dataset`` with ``extra``'s rows after its own, e.g. texts from accepted appeals.

    The hash covers both files, so a model's manifest tells the two trainings apart.
    """
    sha = hashlib.sha256(f"{dataset.sha256}+{extra.sha256}".encode()).hexdigest()
    return Dataset(
        texts=dataset.texts + extra.texts,
        labels=dataset.labels + extra.labels,
        label_set=dataset.label_set,
        sha256=sha,
        dropped=dict(Counter(dataset.dropped) + Counter(extra.dropped)),
        empty_rows=dataset.empty_rows + extra.empty_rows,
    )


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
