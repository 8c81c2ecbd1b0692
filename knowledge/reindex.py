"""Vectors after the fact: re-embed a collection with another embedder (after changing
``DESKBOT_EMBEDDER``), or fill in the vectors a deferred ingest left for later."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from knowledge.chunking import embedding_input
from knowledge.embedders import Embedder
from knowledge.store import EmbeddingInput, KnowledgeStore, check_embedder

__all__ = ["fill_vectors", "reindex_collection"]


async def reindex_collection(
    store: KnowledgeStore,
    embedder: Embedder,
    name: str,
    *,
    batch: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed every chunk of ``name`` again and record the new model; returns the count.

    Chunks are updated batch by batch; the collection's model changes in the last
    transaction, so until then searches keep working with the old vectors' model check.
    """
    collection = await store.get_collection(name)
    inputs = await store.embedding_inputs(collection)
    done = await _embed(store, embedder, inputs, batch, on_progress, missing=False)
    await store.set_embedder(collection, embedder)
    return done


async def fill_vectors(
    store: KnowledgeStore,
    embedder: Embedder,
    name: str,
    *,
    batch: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed the chunks of ``name`` stored without a vector (a deferred ingest's, or ones a
    failed fill left); returns how many were filled.

    Each batch is its own transaction, so a fill stopped halfway keeps what it did, and
    the next fill (a deferred ingest that stores something, or ``deskbot reindex
    --missing``) takes the rest. A chunk a search embedded meanwhile keeps that vector.
    """
    collection = await store.get_collection(name)
    check_embedder(collection, embedder)
    inputs = await store.embedding_inputs(collection, missing=True)
    # Batches of similar length: the model pads each batch to its longest text.
    inputs.sort(key=lambda row: len(row.embed_text or row.content))
    if on_progress is not None and inputs:
        on_progress(0, len(inputs))
    return await _embed(store, embedder, inputs, batch, on_progress, missing=True)


async def _embed(
    store: KnowledgeStore,
    embedder: Embedder,
    inputs: Sequence[EmbeddingInput],
    batch: int,
    on_progress: Callable[[int, int], None] | None,
    *,
    missing: bool,
) -> int:
    done = 0
    for start in range(0, len(inputs), batch):
        part = inputs[start : start + batch]
        vectors = await embedder.embed_documents(
            [embedding_input(row.title, row.section, row.embed_text or row.content) for row in part]
        )
        await store.set_vectors(
            [(row.chunk_id, v) for row, v in zip(part, vectors, strict=True)],
            embedder.dim,
            missing=missing,
        )
        done += len(part)
        if on_progress is not None:
            on_progress(done, len(inputs))
    return done
