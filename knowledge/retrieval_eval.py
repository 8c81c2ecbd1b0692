"""``deskbot eval retrieval``: index a labelled dataset in a throwaway collection, score it.

Documents go through the same chunk -> analyze -> embed -> write path as real files; each
query is retrieved once per retriever and ranked under every mode from the same
candidates, so the modes are compared on equal footing. A document's rank is that of its
best chunk. The collection is deleted afterwards.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from knowledge.documents import document_from_text
from knowledge.evaluation import EvalDataset, evaluate
from knowledge.ingest import Ingestor
from knowledge.schema import Chunk, Document
from knowledge.search import Filters, Hit, Mode, Searcher
from knowledge.store import CollectionInfo, KnowledgeStore

__all__ = ["Candidates", "gather_candidates", "indexed", "rank_documents", "run_retrieval_eval"]

ProgressFn = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class Candidates:
    """Every query's candidate chunks with their scores, and each chunk's document."""

    hits: dict[str, dict[str, Hit]]
    owner: dict[str, str]
    queries: dict[str, str]


async def run_retrieval_eval(
    dataset: EvalDataset,
    store: KnowledgeStore,
    searcher: Searcher,
    ingestor: Ingestor,
    *,
    modes: Sequence[Mode] = ("hybrid", "dense", "lexical"),
    depth: int = 1000,
    on_progress: ProgressFn | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics per mode (``{mode: {metric: value}}``) for ``dataset``."""
    report = on_progress or _quiet
    embed = any(mode != "lexical" for mode in modes)
    async with indexed(dataset, store, ingestor, embed=embed, on_progress=report) as collection:
        fetch: Mode = modes[0] if len(modes) == 1 else "hybrid"
        found = await gather_candidates(
            dataset, collection, searcher, fetch=fetch, depth=depth, on_progress=report
        )
    return {
        mode: evaluate(
            rank_documents(
                found,
                lambda hits, query, m=mode: searcher.rank(hits, m, query=query),  # type: ignore[misc]
                depth,
            ),
            dataset.qrels,
        )
        for mode in modes
    }


@asynccontextmanager
async def indexed(
    dataset: EvalDataset,
    store: KnowledgeStore,
    ingestor: Ingestor,
    *,
    embed: bool = True,
    on_progress: ProgressFn = _quiet,
) -> AsyncIterator[CollectionInfo]:
    """A throwaway collection holding the dataset's documents, deleted on exit."""
    name = f"eval-{dataset.name}-{uuid.uuid4().hex[:8]}"
    collection = await store.ensure_collection(name, ingestor.embedder)
    try:
        total = len(dataset.documents)
        for done, doc in enumerate(dataset.documents, start=1):
            parsed = document_from_text(doc.id, doc.title, doc.text)
            if parsed.blocks:
                await ingestor.store_parsed(
                    parsed,
                    collection,
                    source=doc.id,
                    digest=hashlib.sha256(doc.text.encode()).hexdigest(),
                    size_bytes=len(doc.text.encode()),
                    embed=embed,
                )
            on_progress("indexing documents", done, total)
        yield collection
    finally:
        await store.delete_collection(name)


async def gather_candidates(
    dataset: EvalDataset,
    collection: CollectionInfo,
    searcher: Searcher,
    *,
    fetch: Mode = "hybrid",
    depth: int = 100,
    on_progress: ProgressFn = _quiet,
) -> Candidates:
    """Run every query once through the retrievers ``fetch`` needs."""
    filters = Filters([collection.id], None, None, None)
    items = list(dataset.queries.items())
    vectors: list[Any] = [None] * len(items)
    if fetch != "lexical":
        for start in range(0, len(items), 64):
            texts = [query for _, query in items[start : start + 64]]
            vectors[start : start + len(texts)] = list(await searcher.embedder.embed_queries(texts))
            on_progress("embedding queries", start + len(texts), len(items))
    hits: dict[str, dict[str, Hit]] = {}
    for done, ((qid, query), vector) in enumerate(zip(items, vectors, strict=True), start=1):
        hits[qid] = await searcher.candidates(
            query, filters, mode=fetch, limit=depth, query_vector=vector
        )
        on_progress("running queries", done, len(items))
    return Candidates(hits, await _chunk_owners(searcher.store, collection), dict(items))


def rank_documents(
    found: Candidates,
    rank: Callable[[dict[str, Hit], str], list[tuple[str, float]]],
    depth: int = 100,
) -> dict[str, list[str]]:
    """Query id -> document ids, best first, each document at its best chunk's place.

    ``rank`` gets a query's candidates and its text.
    """
    return {
        qid: list(dict.fromkeys(found.owner[cid] for cid, _ in rank(hits, found.queries[qid])))[
            :depth
        ]
        for qid, hits in found.hits.items()
    }


async def _chunk_owners(store: KnowledgeStore, collection: CollectionInfo) -> dict[str, str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(Chunk.id, Document.source)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.collection_id == collection.id)
        )
        return {row[0]: row[1] for row in rows}
