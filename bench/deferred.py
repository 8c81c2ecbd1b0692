"""What a deferred ingest costs the first searches: hybrid latency before the fill, and after.

    .venv/bin/python bench/deferred.py --format trec ../shared/data/vaswani_npl [--queries 93]
    .venv/bin/python bench/deferred.py --format korquad ../shared/data/korquad_v1 --queries 200

A deferred ingest (the app's default, ``DESKBOT_DEFER_VECTORS``) stores every file before
the model reads any chunk; until its fill reaches a chunk, a hybrid search that finds it by
its words embeds it on the spot (``DESKBOT_SEARCH_VECTORS_ON_DEMAND`` of the best lexical
candidates) and keeps the vector. For the dataset's first ``--queries`` questions, through
the app's own ``Searcher`` (the configured embedder, k = 5), this times each hybrid search:
- before the fill (every chunk without a vector: the window's worst case, and the vectors
  each search made kept for the next ones, as users would);
- after the fill (every chunk embedded: what the window ends in, and today's search);
and how long the index took to be searchable (lexical analysis and writes) against the fill
itself. Reported: medians and 95th percentiles, and chunks embedded per search.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.knowledge import make_knowledge
from bot.settings import Settings
from bot.storage import open_database
from knowledge.evaluation import load_dataset
from knowledge.retrieval_eval import indexed
from knowledge.search import Scope, Searcher


async def main(fmt: str, path: Path, queries: int) -> None:
    dataset = load_dataset(fmt, path)  # type: ignore[arg-type]
    asked = list(dataset.queries.values())[:queries]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        database = await open_database(settings)
        knowledge = make_knowledge(settings, database)
        searcher, embedder = knowledge.searcher, knowledge.embedder
        await embedder.embed_documents(["warm-up"])  # load (and export) outside the timing
        began = time.perf_counter()
        async with indexed(dataset, knowledge.store, knowledge.ingestor, embed=False) as coll:
            searchable = time.perf_counter() - began

            async def waiting() -> int:  # chunks still without a vector (not timed)
                return len(await knowledge.store.embedding_inputs(coll, missing=True))

            before = await _timed(searcher, asked, coll.name, waiting)
            began = time.perf_counter()
            filled = await knowledge.ingestor.fill_vectors(coll)
            fill = time.perf_counter() - began
            after = await _timed(searcher, asked, coll.name, waiting)
        await database.close()
    print(
        f"{dataset.name}: {len(dataset.documents)} documents, {len(asked)} questions, "
        f"embedder {settings.embedder}, {settings.search_vectors_on_demand} on demand"
    )
    print(f"searchable after {searchable:.1f} s; the fill then embedded {filled} in {fill:.1f} s")
    print(
        f"  ({len(dataset.documents) / searchable:.0f} documents/s stored, "
        f"{filled / fill:.1f} chunks/s embedded)"
    )
    for label, (times, embedded) in (("before the fill", before), ("after the fill", after)):
        print(
            f"hybrid k=5 {label:15s} p50 {_ms(statistics.median(times))}  "
            f"p95 {_ms(_p95(times))}  chunks embedded per search: median "
            f"{statistics.median(embedded) if embedded else 0:.0f}, max {max(embedded, default=0)}"
        )


async def _timed(
    searcher: Searcher, asked: list[str], collection: str, waiting: Callable[[], Awaitable[int]]
) -> tuple[list[float], list[int]]:
    times, embedded = [], []
    left = await waiting()
    for question in asked:
        began = time.perf_counter()
        await searcher.search(question, Scope.everything(), collections=[collection])
        times.append(time.perf_counter() - began)
        now = await waiting()
        embedded.append(left - now)
        left = now
    return times, embedded


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("trec", "beir", "korquad"), required=True)
    parser.add_argument("path", type=Path)
    parser.add_argument("--queries", type=int, default=93)
    args = parser.parse_args()
    asyncio.run(main(args.format, args.path, args.queries))
