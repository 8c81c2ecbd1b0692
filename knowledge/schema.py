"""Tables owned by the knowledge package: collections, documents, chunks.

``chunks.embedding`` is an untyped ``vector`` so that collections embedded by different
models (384-d local, 1536-d OpenAI ...) share one table; the dimension is recorded per row
and per collection, and each dimension gets its own partial HNSW index over
``embedding::vector(d)`` (migration 0001 creates the one for 384-d, the local models').
``chunks.lexical`` is a generated ``tsvector`` over ``lexical_text``, which the ingest
pipeline fills with normalized terms (Korean morphemes, English stems).
``term_statistics`` holds BM25's document frequencies: per collection and lexeme of
``chunks.lexical``, how many chunks contain it (exact after every write and delete), with
bounds on its term frequency and chunk length for pruning.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    cast,
    column,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from knowledge.dbtypes import CreatedAt, JsonDict, UuidPk, new_metadata

__all__ = [
    "LOCAL_EMBEDDING_DIM",
    "Chunk",
    "Collection",
    "Document",
    "KnowledgeBase",
    "TermStatistic",
]

# Both local embedders (MiniLM, multilingual-e5-small) produce 384-d vectors.
LOCAL_EMBEDDING_DIM = 384


class KnowledgeBase(DeclarativeBase):
    """Declarative base whose metadata holds only the knowledge tables."""

    metadata = new_metadata()


class Collection(KnowledgeBase):
    """A named set of documents with one embedding model and a visibility."""

    __tablename__ = "collections"
    __table_args__ = (
        CheckConstraint("visibility IN ('public', 'private')", name="visibility"),
        CheckConstraint("embedding_dim > 0", name="embedding_dim_positive"),
    )

    id: Mapped[UuidPk]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, server_default="")
    visibility: Mapped[str] = mapped_column(String(16), server_default="public")
    allowed_channels: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{}'::text[]")
    )
    allowed_roles: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{}'::text[]")
    )
    embedding_model: Mapped[str] = mapped_column(String(200))
    embedding_dim: Mapped[int] = mapped_column(Integer)
    # Lexical statistics for BM25 (kept in step with the chunks by every write).
    chunk_count: Mapped[int] = mapped_column(BigInteger, server_default="0")
    lexical_terms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class Document(KnowledgeBase):
    """One version of one source file in a collection."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("collection_id", "source", "version"),
        CheckConstraint("status IN ('active', 'superseded', 'deleted')", name="status"),
        Index(
            "ix_documents_active_source",
            "collection_id",
            "source",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[UuidPk]
    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, server_default="")
    mime_type: Mapped[str] = mapped_column(String(200), server_default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    size_bytes: Mapped[int] = mapped_column(Integer, server_default="0")
    uploaded_by: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[JsonDict] = mapped_column("metadata")
    created_at: Mapped[CreatedAt]


class Chunk(KnowledgeBase):
    """A passage (prose, a Markdown table, or table rows with headers) with its vector."""

    __tablename__ = "chunks"
    __table_args__ = (
        CheckConstraint("kind IN ('text', 'table', 'table_rows')", name="kind"),
        Index("ix_chunks_lexical", "lexical", postgresql_using="gin"),
        Index(
            "ix_chunks_embedding_384",
            cast(column("embedding"), Vector(LOCAL_EMBEDDING_DIM)).label("embedding_384"),
            postgresql_using="hnsw",
            postgresql_ops={"embedding_384": "vector_cosine_ops"},
            postgresql_where=text(f"embedding_dim = {LOCAL_EMBEDDING_DIM}"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), server_default="text")
    content: Mapped[str] = mapped_column(Text)
    # What the model read instead of ``content`` (a table's rows, headers once); NULL: the
    # content. Reindexing embeds the same text again.
    embed_text: Mapped[str | None] = mapped_column(Text)
    # Hash of kind + normalized content (+ embed_text where set): a new version reuses the
    # vectors of chunks whose content and model input are unchanged.
    content_hash: Mapped[str] = mapped_column(String(64), server_default="")
    page: Mapped[int | None] = mapped_column(Integer)
    section: Mapped[str | None] = mapped_column(Text)
    char_start: Mapped[int | None] = mapped_column(Integer)
    char_end: Mapped[int | None] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer, server_default="0")
    embedding: Mapped[Any] = mapped_column(Vector(), nullable=True)
    embedding_dim: Mapped[int | None] = mapped_column(Integer)
    lexical_text: Mapped[str] = mapped_column(Text, server_default="")
    lexical_len: Mapped[int] = mapped_column(Integer, server_default="0")
    lexical: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('simple'::regconfig, lexical_text)", persisted=True)
    )
    meta: Mapped[JsonDict] = mapped_column("metadata")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class TermStatistic(KnowledgeBase):
    """How many chunks of a collection contain a lexeme (BM25's document frequency)."""

    __tablename__ = "term_statistics"

    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    term: Mapped[str] = mapped_column(Text, primary_key=True)
    df: Mapped[int] = mapped_column(BigInteger)
    # Upper bounds for BM25's pruning: the most times the term occurs in one chunk, and the
    # shortest chunk holding it. Writes widen them; deletes leave them (still bounds).
    max_tf: Mapped[int] = mapped_column(Integer)
    min_len: Mapped[int] = mapped_column(Integer)
