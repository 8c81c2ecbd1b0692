"""Weighted fusion of dense and lexical scores (``Searcher.rank``), on hand-made scores."""

from __future__ import annotations

import random

import pytest

from knowledge.search import Hit, Searcher

pytestmark = pytest.mark.unit


def _searcher(candidate_pool: int = 10) -> Searcher:
    # rank() reads neither the store nor the embedder.
    return Searcher(None, None, dense_floor=-1.0, candidate_pool=candidate_pool)  # type: ignore[arg-type]


def test_the_tail_below_the_anchor_keeps_its_order() -> None:
    lexical = {f"c{i:03}": 100.0 - i for i in range(100)}
    dense = {f"c{i:03}": 0.5 for i in range(0, 100, 7)}  # a flat dense list adds nothing
    items = list(lexical)
    random.Random(3).shuffle(items)  # insertion order must not decide ties
    hits = {cid: Hit(dense=dense.get(cid), lexical=lexical[cid]) for cid in items}
    ranked = [cid for cid, _ in _searcher().rank(hits, "hybrid", query="tail order")]
    assert ranked == sorted(lexical)  # c000 first ... c099 last: 90 of them below rank 10


def test_a_chunk_one_retriever_missed_scores_as_that_retrievers_lowest() -> None:
    hits = {
        "both-top": Hit(dense=0.9, lexical=9.0),
        "lexical-only": Hit(dense=None, lexical=5.0),
        "dense-lowest": Hit(dense=0.2, lexical=5.0),
        "dense-mid": Hit(dense=0.5, lexical=1.0),
    }
    scores = dict(_searcher().rank(hits, "hybrid", query="missing"))
    assert scores["lexical-only"] == pytest.approx(scores["dense-lowest"])
    assert scores["both-top"] == pytest.approx(1.0)


def test_without_dense_hits_hybrid_is_the_lexical_order() -> None:
    hits = {f"c{i}": Hit(lexical=float(i)) for i in range(30)}
    ranked = [cid for cid, _ in _searcher().rank(hits, "hybrid", query="no vectors")]
    assert ranked == [f"c{i}" for i in reversed(range(30))]


def test_the_dense_weight_follows_the_querys_script() -> None:
    searcher = Searcher(None, None, dense_weight=1.0, dense_weight_latin=0.0, dense_floor=-1.0)  # type: ignore[arg-type]
    hits = {"dense-best": Hit(dense=0.9, lexical=1.0), "lexical-best": Hit(dense=0.5, lexical=9.0)}
    assert searcher.rank(hits, "hybrid", query="강아지 사료")[0][0] == "dense-best"
    assert searcher.rank(hits, "hybrid", query="dog food")[0][0] == "lexical-best"


def test_a_chunk_without_a_vector_yet_ranks_by_its_words_not_below_the_embedded() -> None:
    # A deferred ingest's chunk the search did not embed has no dense score to be low: it
    # keeps its lexical score on both sides, where a chunk the dense list missed takes the
    # list's lowest.
    hits = {
        "embedded-top": Hit(dense=0.9, lexical=10.0),
        "embedded-low": Hit(dense=0.1, lexical=2.0),
        "waiting": Hit(lexical=6.0, unembedded=True),
        "missed": Hit(lexical=6.0),
    }
    scores = dict(_searcher().rank(hits, "hybrid", query="waiting"))
    lexical_of_waiting = (6.0 - 2.0) / (10.0 - 2.0)
    assert scores["waiting"] == pytest.approx(lexical_of_waiting)
    assert scores["missed"] == pytest.approx(0.8 * lexical_of_waiting)  # dense at the lowest, 0
    assert [cid for cid, _ in _searcher().rank(hits, "hybrid", query="w")][:2] == [
        "embedded-top",
        "waiting",
    ]
