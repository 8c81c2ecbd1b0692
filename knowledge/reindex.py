"""Re-embed a collection with another embedder (after changing ``DESKBOT_EMBEDDER``)."""

from __future__ import annotations

from collections.abc import Callable

from knowledge.chunking import embedding_input
from knowledge.embedders import Embedder
from knowledge.store import KnowledgeStore

__all__ = ["reindex_collection"]


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
    done = 0
    for start in range(0, len(inputs), batch):
        part = inputs[start : start + batch]
        vectors = await embedder.embed_documents(
            [embedding_input(row.title, row.section, row.embed_text or row.content) for row in part]
        )
        await store.set_vectors(
            [(row.chunk_id, v) for row, v in zip(part, vectors, strict=True)], embedder.dim
        )
        done += len(part)
        if on_progress is not None:
            on_progress(done, len(inputs))
    await store.set_embedder(collection, embedder)
    return done
