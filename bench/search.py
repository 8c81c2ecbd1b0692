"""Hybrid search latency and recall at scale, on synthetic embedding-like data.

    .venv/bin/python bench/search.py --chunks 100000 [--chunks 1000000] [--queries 200]

For each size, in a fresh embedded PostgreSQL (or DATABASE_URL):
- vectors: 384-d, drawn around a few thousand cluster centres and normalized, as real
  sentence embeddings cluster by topic (uniform noise would make HNSW look worse and
  exact search meaningless); queries are perturbed copies of stored vectors;
- text: words from a Zipf-distributed vocabulary, each cluster with its own topical
  words, so BM25 sees realistic document frequencies;
- bulk-loaded with COPY, the HNSW index built afterwards (maintenance_work_mem = 1 GB);
- then through the real ``Searcher``: hybrid, dense and lexical latency p50/p95 (medians
  of timed queries after warm-up) and dense recall@10 against exact search (numpy).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

from bot.knowledge import make_knowledge
from bot.settings import Settings
from bot.storage import open_database
from knowledge.search import Filters, Searcher

DIM = 384
VOCAB = 50_000


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Vectors, lexical texts and each row's cluster."""
    clusters = max(100, n // 300)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    # Topics, sub-topics within them, then a little noise: distances fall off gradually,
    # as between real sentence embeddings, instead of every point in a cluster tying.
    subtopics = 0.6 * rng.standard_normal((clusters, 30, DIM)).astype(np.float32)
    sub = rng.integers(0, 30, n)
    vectors = centres[labels] + subtopics[labels, sub]
    vectors += 0.25 * rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ranks = np.arange(1, VOCAB + 1)
    zipf = (1 / ranks) / np.sum(1 / ranks)
    topical = rng.integers(1000, VOCAB, (clusters, 20))
    common = rng.choice(VOCAB, (n, 40), p=zipf)
    topic = topical[labels[:, None], rng.integers(0, 20, (n, 8))]
    words = np.concatenate([common, topic], axis=1)
    texts = [" ".join(f"w{w}" for w in row) for row in words]
    return vectors, texts, labels


def load(url: str, collection: uuid.UUID, vectors: np.ndarray, texts: list[str]) -> float:
    began = time.perf_counter()
    document = uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO documents (id, collection_id, source, content_hash) "
            "VALUES (%s, %s, 'synthetic', 'x')",
            (document, collection),
        )
        conn.execute("DROP INDEX IF EXISTS ix_chunks_embedding_384")
        with conn.cursor().copy(
            "COPY chunks (id, document_id, collection_id, ordinal, content, lexical_text, "
            "lexical_len, embedding, embedding_dim) FROM STDIN"
        ) as copy:
            for i, (vector, text) in enumerate(zip(vectors, texts, strict=True)):
                literal = "[" + ",".join(f"{x:.6f}" for x in vector) + "]"
                copy.write_row((f"c{i}", document, collection, i, text, text, 48, literal, DIM))
        conn.execute(
            "UPDATE collections SET chunk_count = %s, lexical_terms = %s WHERE id = %s",
            (len(texts), 48 * len(texts), collection),
        )
        loaded = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        conn.execute(
            "CREATE INDEX ix_chunks_embedding_384 ON chunks USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WHERE embedding_dim = 384"
        )
        conn.execute("VACUUM ANALYZE chunks")
        print(f"  COPY {loaded - began:.0f} s, HNSW build {time.perf_counter() - loaded:.0f} s")
    return time.perf_counter() - began


async def run(n: int, queries: int, seed: int, ef_search: int) -> None:
    rng = np.random.default_rng(seed)
    vectors, texts, _ = synthetic(n, rng)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        database = await open_database(settings)
        knowledge = make_knowledge(settings, database)
        collection = await knowledge.store.ensure_collection("bench", knowledge.embedder)
        url = database.engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
        print(f"{n:,} chunks")
        await asyncio.to_thread(load, url, collection.id, vectors, texts)
        searcher = Searcher(
            knowledge.store, knowledge.embedder, dense_floor=-1.0, ef_search=ef_search
        )
        filters = Filters([collection.id], None, None, None)
        picks = rng.choice(n, queries, replace=False)
        latencies: dict[str, list[float]] = {"hybrid": [], "dense": [], "lexical": []}
        recalls = []
        for i, row in enumerate(picks):
            qv = vectors[row] + 0.1 * rng.standard_normal(DIM).astype(np.float32)
            qv /= np.linalg.norm(qv)
            words = texts[row].split()
            # Two topical words and one common one, as people ask.
            query = " ".join([*rng.choice(words[-8:], 2), str(rng.choice(words[:40]))])
            for mode in ("hybrid", "dense", "lexical"):
                began = time.perf_counter()
                hits = await searcher.candidates(
                    query,
                    filters,
                    mode=mode,
                    limit=10,
                    query_vector=qv,  # type: ignore[arg-type]
                )
                searcher.rank(hits, mode)  # type: ignore[arg-type]
                if i >= 10:  # warm-up
                    latencies[mode].append(time.perf_counter() - began)
                if mode == "dense":
                    exact = {f"c{j}" for j in np.argsort(-(vectors @ qv))[:10]}
                    recalls.append(len(exact & set(hits)) / 10)
        for mode, values in latencies.items():
            p50 = statistics.median(values) * 1000
            p95 = float(np.percentile(values, 95)) * 1000
            print(f"  {mode:<8} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
        print(f"  dense recall@10 vs exact: {statistics.mean(recalls):.3f}")
        await database.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, action="append", default=None)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ef-search", type=int, default=100)
    args = parser.parse_args()
    for size in args.chunks or [100_000]:
        asyncio.run(run(size, args.queries, args.seed, args.ef_search))
