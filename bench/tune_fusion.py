"""Choose the hybrid fusion by measurement: every weighting on the same candidates.

    .venv/bin/python bench/tune_fusion.py --format korquad ../shared/data/korquad_v1
    .venv/bin/python bench/tune_fusion.py --format trec ../shared/data/vaswani_npl

Indexes the dataset once (embedded PostgreSQL in a temporary folder unless DATABASE_URL is
set), retrieves every query once with both retrievers, then ranks the same candidates as
lexical only, dense only, weighted fusion at several dense weights, and RRF.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bot.knowledge import make_knowledge
from bot.settings import Settings
from bot.storage import open_database
from knowledge.evaluation import METRICS, evaluate, load_dataset
from knowledge.retrieval_eval import gather_candidates, indexed, rank_documents
from knowledge.search import Searcher


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
            run = rank_documents(found, lambda h, q, s=s: s.rank(h, "hybrid", "rrf"), 1000)
        else:
            run = rank_documents(found, lambda h, q, s=s, how=how: s.rank(h, how), 1000)  # type: ignore[arg-type]
        scores = evaluate(run, dataset.qrels)
        print(f"{label:<16}" + "".join(f"{scores[m]:>11.4f}" for m in METRICS))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", required=True, choices=("trec", "beir", "korquad"))
    parser.add_argument("path", type=Path)
    parser.add_argument("--weights", default="0.1,0.2,0.3,0.35,0.4,0.5,0.6")
    args = parser.parse_args()
    asyncio.run(main(args.format, args.path, [float(w) for w in args.weights.split(",")]))
