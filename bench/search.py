"""Hybrid search latency and recall at scale, on synthetic embedding-like data.

    .venv/bin/python bench/search.py --chunks 100000 [--chunks 1000000] [--queries 200]
        [--keep DIR]

For each size, in a fresh embedded PostgreSQL (or one kept in ``--keep DIR/<size>``, loaded
once and reused by later runs with the same size and seed):
- vectors: 384-d, drawn around a few thousand cluster centres and normalized, as real
  sentence embeddings cluster by topic (uniform noise would make HNSW look worse and
  exact search meaningless); a query vector is a stored vector plus noise of norm
  ``--noise`` (0.2: the source stays its nearest neighbour, the rest of the top 10 are
  its true neighbours rather than near-ties around random noise);
- text: words from a Zipf-distributed vocabulary, each cluster with its own topical
  words, so BM25 sees realistic document frequencies;
- bulk-loaded with COPY, then the GIN index, the term statistics and the HNSW index built
  (maintenance_work_mem ``--maintenance-mem``, 6 GB: the 1M-vector graph fits in memory);
- then through the real ``Searcher`` at its defaults (``ef_search``, the candidate depth
  ``search`` asks for at k = 5): hybrid, dense and lexical latency p50/p95 after warm-up,
  for two query classes: "mixed" (two topical words and one common one, as people ask)
  and "common" (two or three words each in more than 1% of the chunks, the worst case
  for BM25's candidate selection);
- dense recall@10 against exact search (numpy) at ``ef_search`` 100 and the Searcher's;
- lexical: how often BM25's MaxScore pruning proved its list exact, chunks scored, and
  recall@10 (ties counted) and identical top-50 scores against exhaustive BM25 (every
  chunk with any query term scored) on
  ``--oracle`` queries per class.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from bot.knowledge import make_knowledge
from bot.settings import Settings
from bot.storage import open_database
from knowledge.search import Filters, Searcher

DIM = 384
VOCAB = 50_000
K = 5
# Words at Zipf rank below this are in more than ~1% of the chunks.
COMMON_RANK = 300

# Exhaustive BM25, the pre-MaxScore way: every chunk with any query term, whole tsvectors.
EXHAUSTIVE = """
    WITH df AS (
        SELECT t.term, s.df FROM unnest(%(terms)s::text[]) AS t(term)
        JOIN term_statistics s ON s.term = t.term AND s.collection_id = %(c)s
    )
    SELECT c.id, sum(
        ln(1 + (%(n)s - df.df + 0.5) / (df.df + 0.5)) * cardinality(u.positions) * (%(k1)s + 1)
        / (cardinality(u.positions) + %(k1)s * (1 - %(b)s + %(b)s * c.lexical_len / %(avgdl)s))
    ) AS score
    FROM chunks c
    CROSS JOIN LATERAL unnest(c.lexical) AS u(lexeme, positions, weights)
    JOIN df ON df.term = u.lexeme
    WHERE c.collection_id = %(c)s AND c.lexical @@ %(match)s::tsquery
    GROUP BY c.id ORDER BY score DESC LIMIT %(limit)s
"""


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


def load(url: str, collection: uuid.UUID, vectors: np.ndarray, texts: list[str], mem: str) -> None:
    began = time.perf_counter()
    document = uuid.uuid4()
    line = ",".join(["%.6f"] * DIM)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO documents (id, collection_id, source, content_hash) "
            "VALUES (%s, %s, 'synthetic', 'x')",
            (document, collection),
        )
        # Indexes are built once after the load: far cheaper than maintained row by row.
        conn.execute("DROP INDEX IF EXISTS ix_chunks_embedding_384")
        conn.execute("DROP INDEX IF EXISTS ix_chunks_lexical")
        with conn.cursor().copy(
            "COPY chunks (id, document_id, collection_id, ordinal, content, lexical_text, "
            "lexical_len, embedding, embedding_dim) FROM STDIN"
        ) as copy:
            for i, (vector, text) in enumerate(zip(vectors, texts, strict=True)):
                literal = "[" + line % tuple(vector.tolist()) + "]"
                copy.write_row((f"c{i}", document, collection, i, text, text, 48, literal, DIM))
        conn.execute(
            "UPDATE collections SET chunk_count = %s, lexical_terms = %s WHERE id = %s",
            (len(texts), 48 * len(texts), collection),
        )
        copied = time.perf_counter()
        conn.execute(f"SET maintenance_work_mem = '{mem}'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        conn.execute("CREATE INDEX ix_chunks_lexical ON chunks USING gin (lexical)")
        conn.execute(
            "INSERT INTO term_statistics (collection_id, term, df, max_tf, min_len) "
            "SELECT c.collection_id, u.lexeme, count(*), max(cardinality(u.positions)), "
            "min(c.lexical_len) FROM chunks c CROSS JOIN LATERAL unnest(c.lexical) AS u "
            "GROUP BY c.collection_id, u.lexeme"
        )
        lexical = time.perf_counter()
        conn.execute(
            "CREATE INDEX ix_chunks_embedding_384 ON chunks USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WHERE embedding_dim = 384"
        )
        hnsw = time.perf_counter()
        conn.execute("VACUUM ANALYZE chunks")
        conn.execute("VACUUM ANALYZE term_statistics")
        print(
            f"  load: COPY {copied - began:.0f} s, GIN + term statistics {lexical - copied:.0f} s, "
            f"HNSW build {hnsw - lexical:.0f} s (maintenance_work_mem {mem}), "
            f"VACUUM ANALYZE {time.perf_counter() - hnsw:.0f} s"
        )


def make_queries(
    texts: list[str], picks: np.ndarray, rng: np.random.Generator
) -> dict[str, list[tuple[int, str]]]:
    """Per class, (source row, query text)."""
    mixed, common = [], []
    for row in picks:
        words = texts[row].split()
        mixed.append((row, " ".join([*rng.choice(words[-8:], 2), str(rng.choice(words[:40]))])))
        frequent = sorted({w for w in words[:40] if int(w[1:]) < COMMON_RANK})
        if len(frequent) >= 2:
            size = min(len(frequent), int(rng.integers(2, 4)))
            common.append((row, " ".join(rng.choice(frequent, size, replace=False))))
    return {"mixed": mixed, "common": common}


def percentiles(values: list[float]) -> str:
    p50 = statistics.median(values) * 1000
    p95 = float(np.percentile(values, 95)) * 1000
    return f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms"


async def timed_modes(
    searcher: Searcher,
    filters: Filters,
    queries: list[tuple[int, str]],
    qvs: dict[int, np.ndarray],
    modes: tuple[str, ...],
    limit: int,
) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    for i, (row, query) in enumerate(queries):
        # Each mode goes first in turn: the first to touch a query's pages pays for them.
        for mode in modes[i % len(modes) :] + modes[: i % len(modes)]:
            began = time.perf_counter()
            hits = await searcher.candidates(
                query, filters, mode=mode, limit=limit, query_vector=qvs[row]
            )  # type: ignore[arg-type]
            searcher.rank(hits, mode, query=query)  # type: ignore[arg-type]
            if i >= 10:  # warm-up
                latencies[mode].append(time.perf_counter() - began)
    return latencies


async def lexical_quality(
    searcher: Searcher,
    filters: Filters,
    url: str,
    collection: uuid.UUID,
    queries: list[tuple[int, str]],
    oracle: int,
    limit: int,
) -> str:
    from knowledge.analysis import query_terms

    exact, scored, recalls, same = 0, [], [], 0
    stats = None
    for i, (_, query) in enumerate(queries):
        result = await searcher.lexical(query, filters, limit)
        exact += result.exact
        scored.append(result.scored)
        if i >= oracle:
            continue
        with psycopg.connect(url) as conn:
            if stats is None:
                stats = conn.execute(
                    "SELECT chunk_count, lexical_terms::float8 / chunk_count FROM collections "
                    "WHERE id = %s",
                    (collection,),
                ).fetchone()
            terms = query_terms(query)
            rows = conn.execute(
                EXHAUSTIVE,
                {
                    "terms": terms,
                    "c": collection,
                    "n": stats[0],
                    "avgdl": stats[1],
                    "k1": searcher.bm25_k1,
                    "b": searcher.bm25_b,
                    "match": " | ".join(f"'{t}'" for t in terms),
                    "limit": limit,
                },
            ).fetchall()
        # The synthetic chunks tie often (same length, tf 1): compare scores, not ids.
        truth = [float(r[1]) for r in rows]
        got = [score for _, score in result.hits]
        if truth:
            tenth = truth[min(10, len(truth)) - 1]
            top = sum(score >= tenth - 1e-9 for score in got[:10])
            recalls.append(top / min(10, len(truth)))
        same += len(got) == len(truth) and np.allclose(got, truth, rtol=1e-9, atol=1e-9)
    checked = (
        f"; vs exhaustive BM25 on {len(recalls)}: recall@10 "
        f"{statistics.mean(recalls):.3f}, same top-{limit} scores {same}/{len(recalls)}"
        if recalls
        else ""
    )
    return (
        f"exact (proved) {exact}/{len(queries)}, chunks scored p50 "
        f"{statistics.median(scored):,.0f} p95 {np.percentile(scored, 95):,.0f} "
        f"max {max(scored):,}{checked}"
    )


def warm_page_cache(folder: Path) -> int:
    """Read every file under ``folder`` once; the bytes read."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 24):
                    total += len(chunk)
    return total


async def run(args: argparse.Namespace, n: int) -> None:
    rng = np.random.default_rng(args.seed)
    began = time.perf_counter()
    vectors, texts, _ = synthetic(n, rng)
    print(f"{n:,} chunks (generated in {time.perf_counter() - began:.0f} s)")
    async with AsyncExitStack() as stack:
        if args.keep:
            folder = Path(args.keep) / f"{n}-{args.seed}"
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = Settings(data_dir=folder)
        database = await open_database(settings)
        stack.push_async_callback(database.close)
        knowledge = make_knowledge(settings, database)
        collection = await knowledge.store.ensure_collection("bench", knowledge.embedder)
        url = database.engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
        if collection.chunk_count != n:
            if collection.chunk_count:
                raise SystemExit(f"{folder} holds another data set: delete it")
            await asyncio.to_thread(load, url, collection.id, vectors, texts, args.maintenance_mem)
        else:
            print(f"  reusing the data loaded in {folder}")
        if collection.chunk_count == n:  # reused
            # A long-running server has its tables and indexes in the page cache; a restarted
            # bench would otherwise time the disk. Reading the files once puts them there.
            began = time.perf_counter()
            size = warm_page_cache(folder)
            took = time.perf_counter() - began
            print(f"  page cache warmed: {size / 2**30:.1f} GiB read in {took:.0f} s")
        searcher = Searcher(knowledge.store, knowledge.embedder, dense_floor=-1.0)
        limit = max(searcher.candidate_pool, K * 4)
        filters = Filters([collection.id], None, None, None)
        picks = rng.choice(n, args.queries, replace=False)
        queries = make_queries(texts, picks, rng)
        qvs = {}
        for row in picks:
            noise = rng.standard_normal(DIM).astype(np.float32)
            qv = vectors[row] + args.noise * noise / np.linalg.norm(noise)
            qvs[int(row)] = qv / np.linalg.norm(qv)
        print(
            f"  Searcher defaults: ef_search {searcher.ef_search}, candidate depth {limit}; "
            f"query noise norm {args.noise}; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs"
        )
        for name, modes in (
            ("mixed", ("hybrid", "dense", "lexical")),
            ("common", ("hybrid", "lexical")),
        ):
            latencies = await timed_modes(searcher, filters, queries[name], qvs, modes, limit)
            print(f"  {name} queries ({len(queries[name])}):")
            for mode, values in latencies.items():
                print(f"    {mode:<8} {percentiles(values)}")
            quality = await lexical_quality(
                searcher, filters, url, collection.id, queries[name], args.oracle, limit
            )
            print(f"    BM25: {quality}")
        recall_line = []
        for ef in sorted({100, searcher.ef_search}):
            probe = Searcher(knowledge.store, knowledge.embedder, dense_floor=-1.0, ef_search=ef)
            recalls = []
            for row in picks:
                qv = qvs[int(row)]
                hits = await probe.candidates("", filters, mode="dense", limit=10, query_vector=qv)
                exact = {f"c{j}" for j in np.argpartition(-(vectors @ qv), 10)[:10]}
                recalls.append(len(exact & set(hits)) / 10)
            recall_line.append(f"ef_search {ef}: {statistics.mean(recalls):.3f}")
        print(f"  dense recall@10 vs exact: {', '.join(recall_line)}")
        print(f"  load average at the end {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, action="append", default=None)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise", type=float, default=0.2, help="norm of a query's noise")
    parser.add_argument("--oracle", type=int, default=20, help="queries checked exhaustively")
    parser.add_argument("--maintenance-mem", default="6GB")
    parser.add_argument("--keep", default=None, help="keep and reuse the databases here")
    args: Any = parser.parse_args()
    for size in args.chunks or [100_000]:
        asyncio.run(run(args, size))


if __name__ == "__main__":
    main()
