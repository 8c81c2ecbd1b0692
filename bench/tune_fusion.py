"""Choose the hybrid fusion by measurement: every weighting on the same candidates.

    .venv/bin/python bench/tune_fusion.py --format korquad ../shared/data/korquad_v1
    .venv/bin/python bench/tune_fusion.py --format trec ../shared/data/vaswani_npl

Indexes the dataset once (embedded PostgreSQL in a temporary folder unless DATABASE_URL is
set), retrieves every query once with both retrievers (``Searcher.candidates``), then ranks
the same candidates (``Searcher.rank``, the steps ``Searcher.search`` is made of) as lexical
only, dense only, weighted fusion at several dense weights, and RRF. A sweep, not the
evaluation: ``deskbot eval retrieval`` measures ``Searcher.search`` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.knowledge import make_knowledge
from bot.settings import Settings
from bot.storage import open_database
from knowledge.evaluation import METRICS, EvalDataset, evaluate, load_dataset
from knowledge.retrieval_eval import indexed
from knowledge.search import Filters, Hit, Searcher
from knowledge.store import CollectionInfo

Candidates = dict[str, dict[str, Hit]]


async def gather_candidates(
    dataset: EvalDataset, collection: CollectionInfo, searcher: Searcher, depth: int
) -> Candidates:
    """Every query's candidate chunks from both retrievers, fetched once."""
    filters = Filters([collection.id])
    items = list(dataset.queries.items())
    vectors: list[Any] = []
    for start in range(0, len(items), 64):
        texts = [query for _, query in items[start : start + 64]]
        vectors.extend(await searcher.embedder.embed_queries(texts))
    return {
        qid: await searcher.candidates(query, filters, mode="hybrid", limit=depth, query_vector=v)
        for (qid, query), v in zip(items, vectors, strict=True)
    }


async def chunk_documents(searcher: Searcher, found: Candidates) -> dict[str, str]:
    """Chunk id -> its document's id in the dataset (the chunk's source)."""
    ids = list({cid for hits in found.values() for cid in hits})
    return {cid: p.source for cid, p in (await searcher.store.passages(ids)).items()}


def rank_documents(
    found: Candidates,
    owner: dict[str, str],
    queries: dict[str, str],
    rank: Callable[[dict[str, Hit], str], list[tuple[str, float]]],
    depth: int,
) -> dict[str, list[str]]:
    """Query id -> document ids, best first, each document at its best chunk's place."""
    return {
        qid: list(dict.fromkeys(owner[cid] for cid, _ in rank(hits, queries[qid])))[:depth]
        for qid, hits in found.items()
    }


async def main(fmt: str, path: Path, weights: list[float]) -> None:
    dataset = load_dataset(fmt, path)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        database = await open_database(settings)
        knowledge = make_knowledge(settings, database)
        began = time.perf_counter()
        async with indexed(dataset, knowledge.store, knowledge.ingestor) as collection:
            indexed_at = time.perf_counter()
            searcher = Searcher(knowledge.store, knowledge.embedder, dense_floor=-1.0)
            found = await gather_candidates(dataset, collection, searcher, depth=1000)
            owner = await chunk_documents(searcher, found)
            queried_at = time.perf_counter()
        await database.close()
    print(
        f"{dataset.name}: {len(dataset.documents)} docs indexed in {indexed_at - began:.0f} s, "
        f"{len(dataset.queries)} queries in {queried_at - indexed_at:.0f} s"
    )
    print(f"{'ranking':<16}" + "".join(f"{m:>11}" for m in METRICS))
    variants: list[tuple[str, Searcher, str]] = [
        ("lexical", searcher, "lexical"),
        ("dense", searcher, "dense"),
        ("rrf", searcher, "rrf"),
    ]
    for w in weights:
        tuned = Searcher(
            knowledge.store,
            knowledge.embedder,
            dense_weight=w,
            dense_weight_latin=w,
            dense_floor=-1.0,
        )
        variants.append((f"weighted {w:.2f}", tuned, "hybrid"))
    for label, s, how in variants:
        if how == "rrf":
            run = rank_documents(
                found,
                owner,
                dataset.queries,
                lambda h, q, s=s: s.rank(h, "hybrid", "rrf", query=q),  # type: ignore[misc]
                1000,
            )
        else:
            run = rank_documents(
                found,
                owner,
                dataset.queries,
                lambda h, q, s=s, how=how: s.rank(h, how, query=q),  # type: ignore[misc]
                1000,
            )
        scores = evaluate(run, dataset.qrels)
        print(f"{label:<16}" + "".join(f"{scores[m]:>11.4f}" for m in METRICS))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", required=True, choices=("trec", "beir", "korquad"))
    parser.add_argument("path", type=Path)
    parser.add_argument("--weights", default="0.1,0.2,0.3,0.35,0.4,0.5,0.6")
    args = parser.parse_args()
    asyncio.run(main(args.format, args.path, [float(w) for w in args.weights.split(",")]))
