"""Re-embed a collection with another embedder (after changing ``DESKBOT_EMBEDDER``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from sqlalchemy import Table, bindparam, select, update

from knowledge.chunking import embedding_input
from knowledge.embedders import Embedder
from knowledge.schema import Chunk, Collection, Document
from knowledge.store import KnowledgeStore, ensure_vector_index

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
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(Chunk.id, Document.title, Chunk.section, Chunk.content)
                .join(Document, Document.id == Chunk.document_id)
                .where(Chunk.collection_id == collection.id, Chunk.kind != "table")
            )
        ).all()
    done = 0
    chunks = cast(Table, Chunk.__table__)
    statement = (
        chunks.update()
        .where(chunks.c.id == bindparam("chunk_id"))
        .values(embedding=bindparam("vector"), embedding_dim=embedder.dim)
    )
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        vectors = await embedder.embed_documents(
            [embedding_input(row.title, row.section, row.content) for row in part]
        )
        async with store.engine.begin() as conn:
            await conn.execute(
                statement,
                [{"chunk_id": row.id, "vector": v} for row, v in zip(part, vectors, strict=True)],
            )
        done += len(part)
        if on_progress is not None:
            on_progress(done, len(rows))
    async with store.engine.begin() as conn:
        await ensure_vector_index(conn, embedder.dim)
        await conn.execute(
            update(Collection)
            .where(Collection.id == collection.id)
            .values(embedding_model=embedder.name, embedding_dim=embedder.dim)
        )
    return done
