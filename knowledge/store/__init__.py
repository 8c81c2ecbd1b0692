"""Collections, documents and chunks in PostgreSQL: atomic versioned writes and reads.

Every SQL statement on the knowledge tables lives in this package. Search reaches it
through :class:`ChunkStore`, the little it needs (collections, lexical and dense
candidates, passages, and the vectors it makes on demand for chunks stored without one);
:class:`KnowledgeStore` is the PostgreSQL implementation of that
and of the writes.

A new version of a document is written in one transaction: the new document row and all
its chunks go in, the previous version is marked superseded and its chunks deleted, and
the collection's BM25 statistics (chunk and term counts, and each term's document
frequency in ``term_statistics``) are updated. Readers see the old version or the new one,
never a mix.

Modules: ``_records`` (values), ``_writes`` (steps of a write), ``_bm25`` (lexical
retrieval), ``_retrieval`` (filters, dense retrieval, passages), ``_postgres`` (the store).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from knowledge.store._bm25 import Bm25, Lexical
from knowledge.store._postgres import KnowledgeStore
from knowledge.store._records import (
    ChunkRecord,
    CollectionInfo,
    DocumentInfo,
    EmbeddingInput,
    NewChunk,
    Passage,
    check_embedder,
    chunk_id,
    content_hash,
    normalize_text,
)
from knowledge.store._retrieval import Filters
from knowledge.store._writes import ensure_vector_index

__all__ = [
    "Bm25",
    "ChunkRecord",
    "ChunkStore",
    "CollectionInfo",
    "DocumentInfo",
    "EmbeddingInput",
    "Filters",
    "KnowledgeStore",
    "Lexical",
    "NewChunk",
    "Passage",
    "check_embedder",
    "chunk_id",
    "content_hash",
    "ensure_vector_index",
    "normalize_text",
]


class ChunkStore(Protocol):
    """What search needs of a store: collections, candidates by each retriever, passages,
    and a place for the vectors it makes for chunks stored without one."""

    async def list_collections(self) -> list[CollectionInfo]:
        """Every collection, by name."""
        ...

    async def lexical(
        self, terms: Sequence[str], filters: Filters, *, limit: int, bm: Bm25
    ) -> Lexical:
        """The ``limit`` best chunks by BM25 over analyzed query ``terms``."""
        ...

    async def dense(
        self, vector: np.ndarray[Any, Any], filters: Filters, *, limit: int, ef_search: int
    ) -> list[tuple[str, float]]:
        """The ``limit`` chunks nearest ``vector`` by cosine similarity, best first."""
        ...

    async def passages(self, ids: Sequence[str]) -> dict[str, Passage]:
        """The chunks ``ids`` that are still stored, by id."""
        ...

    async def unembedded(self, ids: Sequence[str], collections: Sequence[uuid.UUID]) -> set[str]:
        """Of the chunks ``ids`` in ``collections``, those that should have a vector and have
        none yet (a table's display chunk never gets one)."""
        ...

    async def embedding_inputs_of(self, ids: Sequence[str]) -> list[EmbeddingInput]:
        """What the chunks ``ids`` (those still stored) are embedded from."""
        ...

    async def set_vectors(
        self,
        vectors: Sequence[tuple[str, np.ndarray[Any, Any]]],
        dim: int,
        *,
        missing: bool = False,
    ) -> None:
        """Store the vectors of chunks (``missing``: only where a chunk has none)."""
        ...
