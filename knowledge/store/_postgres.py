"""The PostgreSQL implementation of the knowledge store."""

from __future__ import annotations

import uuid
from collections.abc import Sequence, Set
from typing import Any, cast

import numpy as np
from sqlalchemy import String, Table, any_, bindparam, delete, func, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from knowledge.embedders import Embedder
from knowledge.errors import KnowledgeError, NotFoundError
from knowledge.schema import Chunk, Collection, Document
from knowledge.store import _writes
from knowledge.store._bm25 import Bm25, Lexical, bm25
from knowledge.store._records import (
    ChunkRecord,
    CollectionInfo,
    DocumentInfo,
    EmbeddingInput,
    NewChunk,
    Passage,
    check_embedder,
    collection_info,
    document_info,
)
from knowledge.store._retrieval import Filters, nearest, passages

_COLLECTION_COLUMNS = list(Collection.__table__.c)


class KnowledgeStore:
    """Reads and writes the knowledge tables through an async engine.

    Every SQL statement on ``collections``, ``documents``, ``chunks`` and
    ``term_statistics`` goes through here (or the private modules beside it).
    """

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
        return collection_info(row)

    async def list_collections(self) -> list[CollectionInfo]:
        """Every collection, by name."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*_COLLECTION_COLUMNS).order_by(Collection.name))
            return [collection_info(row) for row in rows]

    async def waiting_for_vectors(self) -> dict[uuid.UUID, int]:
        """Collection id -> its chunks still without a vector (none listed: none waiting)."""
        query = (
            select(Chunk.collection_id, func.count())
            .where(Chunk.embedding.is_(None), Chunk.kind != "table")
            .group_by(Chunk.collection_id)
        )
        async with self.engine.connect() as conn:
            return {row[0]: int(row[1]) for row in await conn.execute(query)}

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
            await _writes.ensure_vector_index(conn, embedder.dim)
        return await self.get_collection(name)

    async def set_access(
        self,
        name: str,
        *,
        visibility: str | None = None,
        add_roles: Sequence[str] = (),
        remove_roles: Sequence[str] = (),
        add_channels: Sequence[str] = (),
        remove_channels: Sequence[str] = (),
    ) -> CollectionInfo:
        """Change who may read ``name``, in one transaction; the collection as it now is.

        Roles are user or role ids (a Slack user id; a Discord user or role id), channels
        are channel ids. Adding what is there or removing what is not changes nothing.
        """
        if visibility not in (None, "public", "private"):
            raise KnowledgeError(f"visibility must be public or private, not {visibility!r}")
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(Collection.allowed_roles, Collection.allowed_channels)
                    .where(Collection.name == name)
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no collection named {name!r}")
            values: dict[str, Any] = {
                "allowed_roles": _edited(row.allowed_roles, add_roles, remove_roles),
                "allowed_channels": _edited(row.allowed_channels, add_channels, remove_channels),
            }
            if visibility is not None:
                values["visibility"] = visibility
            await conn.execute(update(Collection).where(Collection.name == name).values(**values))
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
        return [document_info(row) for row in rows]

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
                    Chunk.embed_text,
                )
                .where(Chunk.document_id == document_id)
                .order_by(Chunk.ordinal)
            )
            return [ChunkRecord(**row._mapping) for row in rows]

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
        """Store a new version of ``source`` with its chunks, replacing the current one.

        One transaction: readers see the old version or the new one, never a mix.
        """
        document_id = uuid.uuid4()
        async with self.engine.begin() as conn:
            previous = await _writes.supersede_active(conn, collection.id, source)
            await _writes.insert_document(
                conn,
                {
                    "id": document_id,
                    "collection_id": collection.id,
                    "source": source,
                    "title": title,
                    "mime_type": mime_type,
                    "content_hash": digest,
                    "version": (previous.version + 1) if previous else 1,
                    "size_bytes": size_bytes,
                    "uploaded_by": uploaded_by,
                    "meta": meta or {},
                },
            )
            await _writes.insert_chunks(conn, collection, document_id, chunks)
            replaced = [previous.id] if previous is not None else []
            await _writes.adjust_term_statistics(conn, collection.id, [document_id], replaced)
            removed = await _writes.delete_chunks(conn, replaced) if replaced else []
            added = [len(chunk.lexical_terms) for chunk in chunks]
            await _writes.adjust_statistics(
                conn, collection.id, len(added) - len(removed), sum(added) - sum(removed)
            )
        return await self.get_document(document_id)

    async def delete_document(self, document_id: uuid.UUID) -> DocumentInfo:
        """Delete a document (every version of its source), its chunks, and the documents
        stored from its attachments."""
        doc = await self.get_document(document_id)
        async with self.engine.begin() as conn:
            collection_id = (
                await conn.execute(select(Document.collection_id).where(Document.id == doc.id))
            ).scalar_one()
            attached = select(Document.source).where(
                Document.collection_id == collection_id,
                Document.meta["attachment_of"].as_string() == doc.source,
            )
            sources = {doc.source, *(await conn.execute(attached)).scalars()}
            await _delete_sources(conn, collection_id, sources)
        return doc

    async def delete_attachments(
        self, collection: CollectionInfo, parent: str, *, keep: Set[str]
    ) -> int:
        """Delete the documents stored from ``parent``'s attachments whose source is not in
        ``keep`` (attachments its new version no longer has); how many sources went."""
        async with self.engine.begin() as conn:
            attached = select(Document.source).where(
                Document.collection_id == collection.id,
                Document.meta["attachment_of"].as_string() == parent,
            )
            gone = set((await conn.execute(attached)).scalars()) - keep
            if gone:
                await _delete_sources(conn, collection.id, gone)
        return len(gone)

    # --- search ------------------------------------------------------------------------

    async def lexical(
        self, terms: Sequence[str], filters: Filters, *, limit: int, bm: Bm25
    ) -> Lexical:
        """The ``limit`` best chunks by BM25 over ``terms`` (analyzed query terms)."""
        async with self.engine.connect() as conn:
            return await bm25(conn, terms, filters, limit, bm)

    async def dense(
        self, vector: np.ndarray[Any, Any], filters: Filters, *, limit: int, ef_search: int
    ) -> list[tuple[str, float]]:
        """The ``limit`` chunks nearest ``vector`` (cosine similarity), best first."""
        async with self.engine.begin() as conn:
            return await nearest(conn, vector, filters, limit, ef_search)

    async def passages(self, ids: Sequence[str]) -> dict[str, Passage]:
        """The chunks ``ids`` still stored (a new version may have replaced some), by id."""
        async with self.engine.connect() as conn:
            return await passages(conn, ids)

    # --- re-embedding ------------------------------------------------------------------

    async def embedding_inputs(
        self, collection: CollectionInfo, *, missing: bool = False
    ) -> list[EmbeddingInput]:
        """What each embedded chunk of ``collection`` was embedded from (tables are not).

        ``missing``: only the chunks stored without a vector yet (a deferred ingest's).
        """
        query = _EMBEDDING_INPUTS.where(Chunk.collection_id == collection.id)
        if missing:
            query = query.where(Chunk.embedding.is_(None))
        async with self.engine.connect() as conn:
            return [EmbeddingInput(*row) for row in await conn.execute(query.order_by(Chunk.id))]

    async def unembedded(self, ids: Sequence[str], collections: Sequence[uuid.UUID]) -> set[str]:
        """Of the chunks ``ids`` in ``collections``, those that should have a vector and have
        none yet (a table's display chunk never gets one)."""
        if not ids or not collections:
            return set()
        # ``= ANY(array)``: one statement whatever the number of ids (4,000 in an eval).
        query = select(Chunk.id).where(
            Chunk.id == any_(cast_(list(ids), ARRAY(String))),
            Chunk.collection_id == any_(cast_(list(collections), ARRAY(PG_UUID))),
            Chunk.embedding.is_(None),
            Chunk.kind != "table",
        )
        async with self.engine.connect() as conn:
            return set((await conn.execute(query)).scalars())

    async def embedding_inputs_of(self, ids: Sequence[str]) -> list[EmbeddingInput]:
        """What the chunks ``ids`` (those still stored) are embedded from."""
        query = _EMBEDDING_INPUTS.where(Chunk.id == any_(cast_(list(ids), ARRAY(String))))
        async with self.engine.connect() as conn:
            return [EmbeddingInput(*row) for row in await conn.execute(query)]

    async def set_vectors(
        self,
        vectors: Sequence[tuple[str, np.ndarray[Any, Any]]],
        dim: int,
        *,
        missing: bool = False,
    ) -> None:
        """Replace the vectors of chunks (``(chunk id, vector)``), in one transaction.

        ``missing``: only fill chunks that have none (a search or a fill racing another one
        leaves the first vector, and a chunk since replaced or re-embedded is not touched).
        """
        if not vectors:
            return
        chunks = cast(Table, Chunk.__table__)
        where = chunks.c.id == bindparam("chunk_id")
        if missing:
            where = where & chunks.c.embedding.is_(None)
        statement = (
            chunks.update().where(where).values(embedding=bindparam("vector"), embedding_dim=dim)
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement, [{"chunk_id": c, "vector": v} for c, v in vectors])

    async def set_embedder(self, collection: CollectionInfo, embedder: Embedder) -> None:
        """Record ``embedder`` as the one that made ``collection``'s vectors."""
        async with self.engine.begin() as conn:
            await _writes.ensure_vector_index(conn, embedder.dim)
            await conn.execute(
                update(Collection)
                .where(Collection.id == collection.id)
                .values(embedding_model=embedder.name, embedding_dim=embedder.dim)
            )


# What a chunk's vector is computed from; table chunks (display only) get none.
_EMBEDDING_INPUTS = (
    select(Chunk.id, Document.title, Chunk.section, Chunk.content, Chunk.embed_text)
    .join(Document, Document.id == Chunk.document_id)
    .where(Chunk.kind != "table")
)


async def _delete_sources(
    conn: AsyncConnection, collection_id: uuid.UUID, sources: Set[str]
) -> None:
    """Delete every version of ``sources`` and their chunks, keeping the statistics exact."""
    versions = select(Document.id).where(
        Document.collection_id == collection_id, Document.source.in_(sorted(sources))
    )
    await _writes.adjust_term_statistics(
        conn, collection_id, [], list((await conn.execute(versions)).scalars())
    )
    removed = await _writes.delete_chunks(conn, versions)
    await conn.execute(delete(Document).where(Document.id.in_(versions)))
    await _writes.adjust_statistics(conn, collection_id, -len(removed), -sum(removed))


def _edited(current: Sequence[str], add: Sequence[str], remove: Sequence[str]) -> list[str]:
    """``current`` with ``add`` appended (once each) and ``remove`` taken out, order kept."""
    gone = set(remove)
    kept = [item for item in current if item not in gone]
    for item in add:
        if item not in kept and item not in gone:
            kept.append(item)
    return kept
