"""``deskbot eval retrieval``: index a labelled dataset in a throwaway collection, score it.

Documents go through the same chunk -> analyze -> embed -> write path as real files; each
query is retrieved once per retriever and ranked under every mode from the same
candidates, so the modes are compared on equal footing. A document's rank is that of its
best chunk. The collection is deleted afterwards.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import select

from knowledge.documents import document_from_text
from knowledge.evaluation import EvalDataset, evaluate
from knowledge.ingest import Ingestor
from knowledge.schema import Chunk, Document
from knowledge.search import Filters, Mode, Searcher
from knowledge.store import CollectionInfo, KnowledgeStore

__all__ = ["run_retrieval_eval"]

ProgressFn = Callable[[str, int, int], None]


async def run_retrieval_eval(
    dataset: EvalDataset,
    store: KnowledgeStore,
    searcher: Searcher,
    ingestor: Ingestor,
    *,
    modes: Sequence[Mode] = ("hybrid", "dense", "lexical"),
    depth: int = 100,
    on_progress: ProgressFn | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics per mode (``{mode: {metric: value}}``) for ``dataset``."""
    report = on_progress or (lambda stage, done, total: None)
    name = f"eval-{dataset.name}-{uuid.uuid4().hex[:8]}"
    collection = await store.ensure_collection(name, searcher.embedder)
    try:
        await _index(dataset, collection, ingestor, report)
        owner = await _chunk_owners(store, collection)
        runs = await _retrieve(dataset, collection, searcher, owner, modes, depth, report)
    finally:
        await store.delete_collection(name)
    return {mode: evaluate(runs[mode], dataset.qrels) for mode in modes}


async def _index(
    dataset: EvalDataset, collection: CollectionInfo, ingestor: Ingestor, report: ProgressFn
) -> None:
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
            )
        report("indexing documents", done, total)


async def _chunk_owners(store: KnowledgeStore, collection: CollectionInfo) -> dict[str, str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(Chunk.id, Document.source)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.collection_id == collection.id)
        )
        return {row[0]: row[1] for row in rows}


async def _retrieve(
    dataset: EvalDataset,
    collection: CollectionInfo,
    searcher: Searcher,
    owner: dict[str, str],
    modes: Sequence[Mode],
    depth: int,
    report: ProgressFn,
) -> dict[str, dict[str, list[str]]]:
    filters = Filters([collection.id], None, None, None)
    fetch: Mode = modes[0] if len(modes) == 1 else "hybrid"
    runs: dict[str, dict[str, list[str]]] = {mode: {} for mode in modes}
    total = len(dataset.queries)
    for done, (qid, query) in enumerate(dataset.queries.items(), start=1):
        hits = await searcher.candidates(query, filters, mode=fetch, limit=depth)
        for mode in modes:
            ranked = searcher.rank(hits, mode)
            runs[mode][qid] = list(dict.fromkeys(owner[cid] for cid, _ in ranked))[:depth]
        report("running queries", done, total)
    return runs
