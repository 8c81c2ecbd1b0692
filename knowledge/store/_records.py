"""What the store reads and writes: collections, documents, chunks and passages as values."""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from knowledge.chunking import ChunkDraft
from knowledge.embedders import Embedder, same_space
from knowledge.errors import EmbeddingMismatchError


def normalize_text(value: str) -> str:
    """NFC, whitespace collapsed: what hashes compare."""
    return " ".join(unicodedata.normalize("NFC", value).split())


def content_hash(kind: str, content: str, embed_text: str | None = None) -> str:
    """Identity of a chunk's content (and of what its vector was made from, where that is
    not the content), independent of its document."""
    raw = f"{kind}\x00{normalize_text(content)}"
    if embed_text is not None:
        raw += f"\x00{normalize_text(embed_text)}"
    return hashlib.sha256(raw.encode()).hexdigest()


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
    embed_text: str | None = None


@dataclass(frozen=True)
class Passage:
    """A stored chunk with what a citation needs of its document and collection."""

    chunk_id: str
    kind: str
    content: str
    page: int | None
    section: str | None
    meta: dict[str, Any]
    document_id: uuid.UUID
    title: str
    source: str
    collection: str


@dataclass(frozen=True)
class EmbeddingInput:
    """What a chunk's vector is computed from (see ``chunking.embedding_input``)."""

    chunk_id: str
    title: str
    section: str | None
    content: str
    embed_text: str | None = None


def check_embedder(collection: CollectionInfo, embedder: Embedder) -> None:
    """Raise :class:`EmbeddingMismatchError` unless ``embedder``'s vectors are the collection's
    (made by it, or by a model whose vectors share its space, :func:`same_space`)."""
    same = same_space(collection.embedding_model, embedder.name)
    if not same or collection.embedding_dim != embedder.dim:
        raise EmbeddingMismatchError(
            f"collection {collection.name!r} was embedded with {collection.embedding_model} "
            f"({collection.embedding_dim}-d) but the configured embedder is {embedder.name} "
            f"({embedder.dim}-d): run `deskbot reindex {collection.name}`"
        )


def collection_info(row: Any) -> CollectionInfo:
    """A ``collections`` row as a value."""
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


def document_info(row: Any) -> DocumentInfo:
    """A ``documents`` row joined with its collection's name and chunk counts."""
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
