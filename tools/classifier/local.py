"""The trained local classifier, and its model directory (``manifest.json`` + ``model.joblib``).

The manifest holds the labels, the data's sha256, the versions, the held-out metrics and
the kind and parameters. ``model.joblib`` is a pickle: load only model directories the
operator made or trusts (the manifest's sha256 catches corruption, not tampering).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from tools.classifier.base import (
    Classification,
    ClassifierError,
    ModelLoadError,
    prepare_comment,
)
from tools.classifier.features import _Views

__all__ = ["FORMAT_VERSION", "MANIFEST", "MODEL_FILE", "LocalClassifier", "Manifest"]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.joblib"


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
    current = version_of("scikit-learn")
    if manifest.sklearn_version.split(".")[:2] != current.split(".")[:2]:
        raise ModelLoadError(
            f"{path} was trained with scikit-learn {manifest.sklearn_version}, this is "
            f"{current}: train it again with `deskbot classifier train`"
        )
    return manifest


def version_of(dist: str) -> str:
    """The installed version of distribution ``dist``, or ``"unknown"``."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"
