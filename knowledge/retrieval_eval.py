"""``deskbot eval retrieval``: index a labelled dataset in a throwaway collection, score it.

Documents go through the same chunk -> analyze -> embed -> write path as real files, and
every query goes through :meth:`Searcher.search`, the method behind ``deskbot search``,
the ``search_documents`` tool and Slack, once per mode: what is measured is the ranking
users get, with the searcher's own settings (dense weights by script, relevance floor).
Each search asks for ``depth`` passages, so each retriever returns ``4 * depth``
candidates (a user's default ``k = 5`` gets 50). A document's rank is that of its best
passage. The collection is deleted afterwards.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

from knowledge.documents import document_from_text
from knowledge.evaluation import EvalDataset, evaluate
from knowledge.ingest import Ingestor
from knowledge.search import Mode, Scope, Searcher, SearchResult
from knowledge.store import CollectionInfo, KnowledgeStore

__all__ = ["indexed", "run_retrieval_eval", "search_all"]

ProgressFn = Callable[[str, int, int], None]

# Queries embedded together ahead of their searches (see ``Searcher.prime``).
_BATCH = 64


def _quiet(stage: str, done: int, total: int) -> None:
    return None


async def run_retrieval_eval(
    dataset: EvalDataset,
    store: KnowledgeStore,
    searcher: Searcher,
    ingestor: Ingestor,
    *,
    modes: Sequence[Mode] = ("hybrid", "dense", "lexical"),
    depth: int = 1000,
    deferred: bool = False,
    on_progress: ProgressFn | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics per mode (``{mode: {metric: value}}``) for ``dataset``.

    ``deferred``: measure search as a deferred ingest leaves it before its fill: no chunk
    has a vector, so hybrid search embeds its best lexical candidates on demand (and keeps
    those vectors, as it does for users).
    """
    report = on_progress or _quiet
    embed = not deferred and any(mode != "lexical" for mode in modes)
    async with indexed(dataset, store, ingestor, embed=embed, on_progress=report) as collection:
        runs = await search_all(
            dataset.queries, searcher, collection.name, modes=modes, depth=depth, on_progress=report
        )
    return {mode: evaluate(run, dataset.qrels) for mode, run in runs.items()}


@asynccontextmanager
async def indexed(
    dataset: EvalDataset,
    store: KnowledgeStore,
    ingestor: Ingestor,
    *,
    embed: bool = True,
    on_progress: ProgressFn = _quiet,
) -> AsyncIterator[CollectionInfo]:
    """A throwaway collection holding the dataset's documents, deleted on exit.

    Each document's ``source`` is its id in the dataset.
    """
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


async def search_all(
    queries: Mapping[str, str],
    searcher: Searcher,
    collection: str,
    *,
    modes: Sequence[Mode],
    depth: int,
    on_progress: ProgressFn = _quiet,
) -> dict[str, dict[str, list[str]]]:
    """``{mode: {query id: document ids best first}}``, each query searched once per mode."""
    items = list(queries.items())
    runs: dict[str, dict[str, list[str]]] = {mode: {} for mode in modes}
    for start in range(0, len(items), _BATCH):
        batch = items[start : start + _BATCH]
        if any(mode != "lexical" for mode in modes):
            await searcher.prime(query for _, query in batch)
        for qid, query in batch:
            for mode in modes:
                results = await searcher.search(
                    query, Scope.everything(), k=depth, mode=mode, collections=[collection]
                )
                runs[mode][qid] = _documents(results)
        on_progress("running queries", start + len(batch), len(items))
    return runs


def _documents(results: list[SearchResult]) -> list[str]:
    """Document ids (the eval collection's sources) in order of their best passage."""
    return list(dict.fromkeys(result.citation.source for result in results))
