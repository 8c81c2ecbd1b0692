"""The steps of a versioned write, each inside the writer's transaction.

A new version goes in whole or not at all: the document row and its chunks are inserted,
the previous version is marked superseded and its chunks deleted, and the collection's
BM25 statistics move by the difference.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from knowledge.errors import KnowledgeError
from knowledge.schema import Chunk, Collection, Document, TermStatistic
from knowledge.store._records import CollectionInfo, NewChunk, chunk_id


async def ensure_vector_index(conn: AsyncConnection, dim: int) -> None:
    """One partial HNSW index per embedding dimension (cosine)."""
    if not 0 < dim <= 2000:
        raise KnowledgeError(f"embedding dimension {dim} is outside pgvector's HNSW range 1-2000")
    await conn.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS ix_chunks_embedding_{dim} ON chunks USING hnsw "
            f"((embedding::vector({dim})) vector_cosine_ops) WHERE embedding_dim = {dim}"
        )
    )


async def supersede_active(conn: AsyncConnection, collection_id: uuid.UUID, source: str) -> Any:
    """Lock ``source`` for this transaction and mark its active version superseded.

    Returns the previous version's ``(id, version)`` row, or None for a new source.
    """
    # One writer per (collection, source) at a time; readers are never blocked.
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"{collection_id}:{source}"},
    )
    previous = (
        await conn.execute(
            select(Document.id, Document.version).where(
                Document.collection_id == collection_id,
                Document.source == source,
                Document.status == "active",
            )
        )
    ).first()
    if previous is not None:
        await conn.execute(
            update(Document).where(Document.id == previous.id).values(status="superseded")
        )
    return previous


async def delete_chunks(conn: AsyncConnection, documents: Any) -> list[int]:
    """Delete the chunks of ``documents`` (ids or a subquery); their lexical lengths."""
    deleted = await conn.execute(
        delete(Chunk).where(Chunk.document_id.in_(documents)).returning(Chunk.lexical_len)
    )
    return list(deleted.scalars())


async def insert_document(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Insert one ``documents`` row."""
    await conn.execute(insert(Document).values(**values))


async def insert_chunks(
    conn: AsyncConnection,
    collection: CollectionInfo,
    document_id: uuid.UUID,
    chunks: list[NewChunk],
) -> None:
    """Insert a version's chunks in batches of 500 rows."""
    rows = [
        {
            "id": chunk_id(document_id, chunk.content_hash, ordinal),
            "document_id": document_id,
            "collection_id": collection.id,
            "ordinal": ordinal,
            "kind": chunk.draft.kind,
            "content": chunk.draft.content,
            "embed_text": chunk.draft.embed_text,
            "content_hash": chunk.content_hash,
            "page": chunk.draft.page,
            "section": chunk.draft.section,
            "char_start": chunk.draft.char_start,
            "char_end": chunk.draft.char_end,
            "token_count": chunk.draft.token_count,
            "embedding": chunk.embedding,
            "embedding_dim": None if chunk.embedding is None else collection.embedding_dim,
            "lexical_text": " ".join(chunk.lexical_terms),
            "lexical_len": len(chunk.lexical_terms),
            "metadata": chunk.draft.meta,
        }
        for ordinal, chunk in enumerate(chunks)
    ]
    for start in range(0, len(rows), 500):
        await conn.execute(insert(Chunk), rows[start : start + 500])


async def adjust_statistics(
    conn: AsyncConnection, collection_id: uuid.UUID, chunks: int, terms: int
) -> None:
    """Move the collection's BM25 counters by a delta (atomic under concurrent writers)."""
    await conn.execute(
        update(Collection)
        .where(Collection.id == collection_id)
        .values(
            chunk_count=Collection.chunk_count + chunks,
            lexical_terms=Collection.lexical_terms + terms,
            updated_at=func.now(),
        )
    )


# Document frequencies move by the lexemes of the chunks added minus those removed, each
# counted once per chunk (what ``lexical @@ term`` would count); the added chunks can only
# raise a term's largest frequency and lower its shortest chunk length (removals leave
# both: they stay bounds). The rows are upserted in term order, so writers touching
# overlapping terms lock them in the same order and cannot deadlock; a term whose count
# reaches zero is deleted.
_TERM_DELTA = """
    WITH occurrences AS (
        SELECT u.lexeme AS term, cardinality(u.positions) AS tf, c.lexical_len AS len,
               c.document_id = ANY(:added) AS added
        FROM chunks c CROSS JOIN LATERAL unnest(c.lexical) AS u
        WHERE c.document_id = ANY(:added) OR c.document_id = ANY(:removed)
    ), delta AS (
        SELECT term, sum(CASE WHEN added THEN 1 ELSE -1 END) AS df,
               coalesce(max(tf) FILTER (WHERE added), 0) AS max_tf,
               coalesce(min(len) FILTER (WHERE added), 2147483647) AS min_len
        FROM occurrences GROUP BY term
    )
    INSERT INTO term_statistics AS s (collection_id, term, df, max_tf, min_len)
    SELECT :collection, term, df, max_tf, min_len FROM delta ORDER BY term
    ON CONFLICT (collection_id, term) DO UPDATE
    SET df = s.df + excluded.df,
        max_tf = greatest(s.max_tf, excluded.max_tf),
        min_len = least(s.min_len, excluded.min_len)
    RETURNING s.term, s.df
"""


async def adjust_term_statistics(
    conn: AsyncConnection,
    collection_id: uuid.UUID,
    added: list[uuid.UUID],
    removed: list[uuid.UUID],
) -> None:
    """Move document frequencies by ``added`` documents' chunks minus ``removed`` ones'.

    Runs while both sets of chunks are still in the table, in the writer's transaction.
    """
    if not added and not removed:
        return
    rows = await conn.execute(
        text(_TERM_DELTA).bindparams(
            bindparam("added", type_=ARRAY(UUID(as_uuid=True))),
            bindparam("removed", type_=ARRAY(UUID(as_uuid=True))),
        ),
        {"collection": collection_id, "added": added, "removed": removed},
    )
    gone = sorted(row.term for row in rows if row.df <= 0)
    if gone:
        await conn.execute(
            delete(TermStatistic).where(
                TermStatistic.collection_id == collection_id, TermStatistic.term.in_(gone)
            )
        )
