"""Collections, documents and chunks in PostgreSQL: atomic versioned writes and reads.

A new version of a document is written in one transaction: the new document row and all
its chunks go in, the previous version is marked superseded and its chunks deleted, and
the collection's BM25 statistics (chunk and term counts, and each term's document
frequency in ``term_statistics``) are updated. Readers see the old version or the new one,
never a mix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from knowledge.chunking import ChunkDraft
from knowledge.embedders import Embedder
from knowledge.errors import EmbeddingMismatchError, KnowledgeError, NotFoundError
from knowledge.schema import Chunk, Collection, Document, TermStatistic

__all__ = [
    "ChunkRecord",
    "CollectionInfo",
    "DocumentInfo",
    "KnowledgeStore",
    "NewChunk",
    "check_embedder",
    "chunk_id",
    "content_hash",
    "ensure_vector_index",
    "normalize_text",
]


def normalize_text(value: str) -> str:
    """NFC, whitespace collapsed: what hashes compare."""
    return " ".join(unicodedata.normalize("NFC", value).split())


def content_hash(kind: str, content: str) -> str:
    """Identity of a chunk's content, independent of its document."""
    return hashlib.sha256(f"{kind}\x00{normalize_text(content)}".encode()).hexdigest()


def chunk_id(document_id: uuid.UUID, content_digest: str, ordinal: int) -> str:
    """Hash of the document version and the normalized content (and position, for repeats)."""
    raw = f"{document_id}\x00{content_digest}\x00{ordinal}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as readers see it."""

    id: uuid.UUID
    name: str
    description: str
    visibility: str
    allowed_channels: list[str]
    allowed_roles: list[str]
    embedding_model: str
    embedding_dim: int
    chunk_count: int
    lexical_terms: int
    created_at: dt.datetime


@dataclass(frozen=True)
class DocumentInfo:
    """One version of a document with its collection's name and chunk counts."""

    id: uuid.UUID
    collection: str
    source: str
    title: str
    mime_type: str
    version: int
    status: str
    size_bytes: int
    content_hash: str
    uploaded_by: str | None
    created_at: dt.datetime
    chunks: int = 0
    tables: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewChunk:
    """A chunk ready to store: its draft, hashes, lexical terms and vector."""

    draft: ChunkDraft
    content_hash: str
    lexical_terms: list[str]
    embedding: np.ndarray[Any, Any] | None


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk, for ``docs show --chunks``."""

    id: str
    ordinal: int
    kind: str
    content: str
    page: int | None
    section: str | None
    char_start: int | None
    char_end: int | None
    token_count: int


def _collection_info(row: Any) -> CollectionInfo:
    return CollectionInfo(
        id=row.id,
        name=row.name,
        description=row.description,
        visibility=row.visibility,
        allowed_channels=list(row.allowed_channels),
        allowed_roles=list(row.allowed_roles),
        embedding_model=row.embedding_model,
        embedding_dim=row.embedding_dim,
        chunk_count=row.chunk_count,
        lexical_terms=row.lexical_terms,
        created_at=row.created_at,
    )


_COLLECTION_COLUMNS = list(Collection.__table__.c)


class KnowledgeStore:
    """Reads and writes the knowledge tables through an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # --- collections -------------------------------------------------------------------

    async def get_collection(self, name: str) -> CollectionInfo:
        """The collection called ``name``; :class:`NotFoundError` if there is none."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(*_COLLECTION_COLUMNS).where(Collection.name == name))
            ).first()
        if row is None:
            raise NotFoundError(f"no collection named {name!r}")
        return _collection_info(row)

    async def list_collections(self) -> list[CollectionInfo]:
        """Every collection, by name."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*_COLLECTION_COLUMNS).order_by(Collection.name))
            return [_collection_info(row) for row in rows]

    async def ensure_collection(
        self,
        name: str,
        embedder: Embedder,
        *,
        visibility: str | None = None,
        created_by: str | None = None,
    ) -> CollectionInfo:
        """Get or create ``name``; refuse one embedded by another model.

        Raises:
            EmbeddingMismatchError: The collection's model or dimension is not ``embedder``'s.
        """
        try:
            found = await self.get_collection(name)
        except NotFoundError:
            found = await self._create_collection(name, embedder, visibility, created_by)
        check_embedder(found, embedder)
        if visibility is not None and visibility != found.visibility:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(Collection)
                    .where(Collection.id == found.id)
                    .values(visibility=visibility)
                )
            found = await self.get_collection(name)
        return found

    async def _create_collection(
        self, name: str, embedder: Embedder, visibility: str | None, created_by: str | None
    ) -> CollectionInfo:
        if not name.strip() or len(name) > 200:
            raise KnowledgeError("a collection name must be 1 to 200 characters")
        async with self.engine.begin() as conn:
            await conn.execute(
                pg_insert(Collection)
                .values(
                    name=name,
                    visibility=visibility or "public",
                    embedding_model=embedder.name,
                    embedding_dim=embedder.dim,
                    created_by=created_by,
                )
                .on_conflict_do_nothing(index_elements=["name"])
            )
            await ensure_vector_index(conn, embedder.dim)
        return await self.get_collection(name)

    async def delete_collection(self, name: str) -> None:
        """Delete a collection with all its documents and chunks."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(Collection).where(Collection.name == name))
        if result.rowcount == 0:
            raise NotFoundError(f"no collection named {name!r}")

    # --- documents ---------------------------------------------------------------------

    async def active_document(self, collection: CollectionInfo, source: str) -> DocumentInfo | None:
        """The current version of ``source`` in ``collection``, if any."""
        docs = await self._documents(
            Document.collection_id == collection.id,
            Document.source == source,
            Document.status == "active",
        )
        return docs[0] if docs else None

    async def list_documents(self, collection: str | None = None) -> list[DocumentInfo]:
        """Active documents, newest first, optionally of one collection."""
        conditions: list[Any] = [Document.status == "active"]
        if collection is not None:
            conditions.append(Collection.name == collection)
        return await self._documents(*conditions)

    async def get_document(self, document_id: uuid.UUID) -> DocumentInfo:
        """One document version by id; :class:`NotFoundError` if absent."""
        docs = await self._documents(Document.id == document_id)
        if not docs:
            raise NotFoundError(f"no document with id {document_id}")
        return docs[0]

    async def _documents(self, *conditions: Any) -> list[DocumentInfo]:
        counts = (
            select(
                Chunk.document_id,
                func.count().label("chunks"),
                # A long table is stored in parts; count it once.
                func.count()
                .filter(Chunk.kind == "table", Chunk.meta["part"].as_integer() == 1)
                .label("tables"),
            )
            .group_by(Chunk.document_id)
            .subquery()
        )
        query = (
            select(
                *Document.__table__.c,
                Collection.name.label("collection"),
                counts.c.chunks,
                counts.c.tables,
            )
            .join(Collection, Collection.id == Document.collection_id)
            .outerjoin(counts, counts.c.document_id == Document.id)
            .where(*conditions)
            .order_by(Document.created_at.desc())
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_document_info(row) for row in rows]

    async def document_chunks(self, document_id: uuid.UUID) -> list[ChunkRecord]:
        """The chunks of one document version in reading order."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(
                    Chunk.id,
                    Chunk.ordinal,
                    Chunk.kind,
                    Chunk.content,
                    Chunk.page,
                    Chunk.section,
                    Chunk.char_start,
                    Chunk.char_end,
                    Chunk.token_count,
                )
                .where(Chunk.document_id == document_id)
                .order_by(Chunk.ordinal)
            )
            return [ChunkRecord(*row) for row in rows]

    async def vectors_by_content(self, document_id: uuid.UUID) -> dict[str, np.ndarray[Any, Any]]:
        """Stored vectors of a version's chunks by content hash (to reuse in the next)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(Chunk.content_hash, Chunk.embedding).where(
                    Chunk.document_id == document_id, Chunk.embedding.is_not(None)
                )
            )
            return {row[0]: np.asarray(row[1], dtype=np.float32) for row in rows}

    async def write_version(
        self,
        collection: CollectionInfo,
        *,
        source: str,
        title: str,
        mime_type: str,
        digest: str,
        size_bytes: int,
        chunks: list[NewChunk],
        uploaded_by: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> DocumentInfo:
        """Store a new version of ``source`` with its chunks, replacing the current one."""
        document_id = uuid.uuid4()
        async with self.engine.begin() as conn:
            # One writer per (collection, source) at a time; readers are never blocked.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"{collection.id}:{source}"},
            )
            previous = (
                await conn.execute(
                    select(Document.id, Document.version).where(
                        Document.collection_id == collection.id,
                        Document.source == source,
                        Document.status == "active",
                    )
                )
            ).first()
            if previous is not None:
                await conn.execute(
                    update(Document).where(Document.id == previous.id).values(status="superseded")
                )
            await conn.execute(
                insert(Document).values(
                    id=document_id,
                    collection_id=collection.id,
                    source=source,
                    title=title,
                    mime_type=mime_type,
                    content_hash=digest,
                    version=(previous.version + 1) if previous else 1,
                    size_bytes=size_bytes,
                    uploaded_by=uploaded_by,
                    meta=meta or {},
                )
            )
            await _insert_chunks(conn, collection, document_id, chunks)
            replaced = [previous.id] if previous is not None else []
            await _adjust_term_statistics(conn, collection.id, [document_id], replaced)
            removed: list[int] = []
            if previous is not None:
                removed = list(
                    (
                        await conn.execute(
                            delete(Chunk)
                            .where(Chunk.document_id == previous.id)
                            .returning(Chunk.lexical_len)
                        )
                    ).scalars()
                )
            added = [len(chunk.lexical_terms) for chunk in chunks]
            await _adjust_statistics(
                conn, collection.id, len(added) - len(removed), sum(added) - sum(removed)
            )
        return await self.get_document(document_id)

    async def delete_document(self, document_id: uuid.UUID) -> DocumentInfo:
        """Delete a document (every version of its source) and its chunks."""
        doc = await self.get_document(document_id)
        async with self.engine.begin() as conn:
            collection_id = (
                await conn.execute(select(Document.collection_id).where(Document.id == doc.id))
            ).scalar_one()
            versions = select(Document.id).where(
                Document.collection_id == collection_id, Document.source == doc.source
            )
            await _adjust_term_statistics(
                conn, collection_id, [], list((await conn.execute(versions)).scalars())
            )
            removed = list(
                (
                    await conn.execute(
                        delete(Chunk)
                        .where(Chunk.document_id.in_(versions))
                        .returning(Chunk.lexical_len)
                    )
                ).scalars()
            )
            await conn.execute(delete(Document).where(Document.id.in_(versions)))
            await _adjust_statistics(conn, collection_id, -len(removed), -sum(removed))
        return doc


def check_embedder(collection: CollectionInfo, embedder: Embedder) -> None:
    """Raise :class:`EmbeddingMismatchError` unless ``embedder`` made the collection's vectors."""
    if (collection.embedding_model, collection.embedding_dim) != (embedder.name, embedder.dim):
        raise EmbeddingMismatchError(
            f"collection {collection.name!r} was embedded with {collection.embedding_model} "
            f"({collection.embedding_dim}-d) but the configured embedder is {embedder.name} "
            f"({embedder.dim}-d): run `deskbot reindex {collection.name}`"
        )


def _document_info(row: Any) -> DocumentInfo:
    m = row._mapping
    return DocumentInfo(
        id=m["id"],
        collection=m["collection"],
        source=m["source"],
        title=m["title"],
        mime_type=m["mime_type"],
        version=m["version"],
        status=m["status"],
        size_bytes=m["size_bytes"],
        content_hash=m["content_hash"],
        uploaded_by=m["uploaded_by"],
        created_at=m["created_at"],
        chunks=m["chunks"] or 0,
        tables=m["tables"] or 0,
        meta=dict(m["metadata"]),
    )


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


async def _insert_chunks(
    conn: AsyncConnection,
    collection: CollectionInfo,
    document_id: uuid.UUID,
    chunks: list[NewChunk],
) -> None:
    rows = [
        {
            "id": chunk_id(document_id, chunk.content_hash, ordinal),
            "document_id": document_id,
            "collection_id": collection.id,
            "ordinal": ordinal,
            "kind": chunk.draft.kind,
            "content": chunk.draft.content,
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


async def _adjust_statistics(
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


async def _adjust_term_statistics(
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
