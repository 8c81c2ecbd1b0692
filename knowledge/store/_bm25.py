"""BM25 in SQL over the ``lexical`` tsvector, pruned MaxScore-style to BM25's exact top.

Term frequencies are the positions the tsvector keeps; document frequencies and per-term
bounds come from ``term_statistics``; candidates come from the GIN index. Every chunk
scored is scored over all query terms. Each term has an upper bound on what it adds to any
chunk (its IDF at its largest term frequency in the shortest chunk holding it). First the
likely best are scored: chunks with all the terms or with two not too common together,
then, if they are fewer than ``limit``, chunks with the rarest terms (each round up to
``Bm25.batch`` chunks); the ``limit``-th best score is then the floor. A chunk can beat it
only if it holds a group of terms whose bounds add up to more, so the second round scores
the chunks holding such a group, and the list is BM25's exact top. When that round could
pass ``Bm25.budget`` chunks (queries of common words only, in a large collection), it is
skipped: the list is the first round's, marked inexact.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from knowledge.store._retrieval import Filters

# BM25 statistics in one round trip: chunk count and mean length of the collections, and
# for each query lexeme its document frequency and bounds (largest term frequency, shortest
# chunk). Query terms go through the same ``simple`` configuration as ``chunks.lexical``,
# so they are exactly the lexemes stored there.
_STATISTICS = """
    WITH stats AS (
        SELECT greatest(sum(chunk_count), 1)::bigint AS n,
               greatest(sum(lexical_terms)::float8 / greatest(sum(chunk_count), 1), 1) AS avgdl
        FROM collections WHERE id = ANY(:collections)
    )
    SELECT stats.n, stats.avgdl, t.term, coalesce(s.df, 0) AS df, s.max_tf, s.min_len
    FROM stats
    CROSS JOIN unnest(tsvector_to_array(to_tsvector('simple', :text))) AS t(term)
    LEFT JOIN LATERAL (
        SELECT sum(df)::bigint AS df, max(max_tf) AS max_tf, min(min_len) AS min_len
        FROM term_statistics
        WHERE collection_id = ANY(:collections) AND term = t.term
    ) s ON true
"""

# BM25 of the chunks matching ``:match`` (and not ``:seen``, scored before), at most
# ``:cap`` of them, over every query term; ``matched``: how many there were. ``setweight``
# + ``ts_filter`` cut each tsvector down to the query's lexemes, and ``unnest`` in the
# select list streams them, which is several times cheaper than unnesting whole tsvectors.
_SCORE = """
    SELECT m.id, sum(
        w.idf * cardinality((m.u).positions) * (:k1 + 1)
        / (cardinality((m.u).positions) + :k1 * (1 - :b + :b * m.len / :avgdl))
    ) AS score, count(*) OVER () AS matched
    FROM (
        SELECT c.id, c.lexical_len AS len,
               unnest(ts_filter(setweight(c.lexical, 'A', CAST(:terms AS text[])), '{{a}}')) AS u
        FROM (
            SELECT c.id, c.lexical, c.lexical_len FROM chunks c
            WHERE c.collection_id = ANY(:collections)
              AND c.lexical @@ CAST(:match AS tsquery)
              {seen}
              {filters}
            LIMIT :cap
        ) c
    ) m
    JOIN unnest(CAST(:terms AS text[]), CAST(:idfs AS float8[])) AS w(term, idf)
      ON w.term = (m.u).lexeme
    GROUP BY m.id
    ORDER BY score DESC
    LIMIT :limit
"""

# Above this many query terms, or minimal groups, pruning falls back to single terms.
_MAX_GROUP_TERMS = 10
_MAX_GROUPS = 64

Groups = list[tuple[str, ...]]


@dataclass(frozen=True)
class Bm25:
    """BM25's parameters, and the pruning budgets in chunks (a round's and a search's)."""

    k1: float = 1.2
    b: float = 0.75
    batch: int = 4_000
    budget: int = 20_000


@dataclass(frozen=True)
class Lexical:
    """One BM25 search: the best chunks, whether they are exactly BM25's, chunks scored."""

    hits: list[tuple[str, float]]
    exact: bool
    scored: int


@dataclass
class _Query:
    """A query's terms present in the collections: counts, score bounds, SQL parameters."""

    n: int
    df: dict[str, int]
    bounds: dict[str, float]
    params: dict[str, Any]


@dataclass
class _Round:
    """The best chunks so far, what need not be scored again, and how many were scored."""

    best: dict[str, float]
    seen: Groups | None
    scored: int


async def bm25(
    conn: AsyncConnection, terms: Sequence[str], filters: Filters, limit: int, bm: Bm25
) -> Lexical:
    """The ``limit`` best chunks by BM25, scoring as few as exactness allows (see above)."""
    query = await _prepare(conn, terms, filters, limit, bm) if terms else None
    if query is None:
        return Lexical([], exact=True, scored=0)
    first = await _first_round(conn, query, filters, limit, bm)
    groups = _groups(query.bounds, _floor(first.best, limit))
    # At most this many chunks hold one of the groups (its rarest term's count each).
    ceiling = sum(min(query.df[t] for t in group) for group in groups)
    exact = not groups
    if groups and ceiling <= bm.budget - first.scored:
        found, matched = await _score(conn, query.params, filters, groups, first.seen, None)
        first.best.update(found)
        first.scored += matched
        exact = True
    top = heapq.nlargest(limit, first.best.items(), key=lambda hit: hit[1])
    return Lexical(top, exact=exact, scored=first.scored)


async def _prepare(
    conn: AsyncConnection, terms: Sequence[str], filters: Filters, limit: int, bm: Bm25
) -> _Query | None:
    """Statistics of ``terms`` in the collections; None if no chunk holds any of them."""
    rows = (
        await conn.execute(text(_STATISTICS), {"text": " ".join(terms), **filters.params()})
    ).all()
    present = [row for row in rows if row.df > 0]
    if not present:
        return None
    n, avgdl = int(rows[0].n), float(rows[0].avgdl)
    k1, b = bm.k1, bm.b
    df = {row.term: int(row.df) for row in present}
    idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
    bounds = {
        row.term: idf[row.term]
        * row.max_tf
        * (k1 + 1)
        / (row.max_tf + k1 * (1 - b + b * row.min_len / avgdl))
        * (1 + 1e-9)  # float rounding must not make a bound fall short
        for row in present
    }
    params = {
        **filters.params(),
        "terms": list(idf),
        "idfs": list(idf.values()),
        "avgdl": avgdl,
        "k1": k1,
        "b": b,
        "limit": limit,
    }
    return _Query(n, df, bounds, params)


async def _first_round(
    conn: AsyncConnection, query: _Query, filters: Filters, limit: int, bm: Bm25
) -> _Round:
    """Score the likely best chunks, seed group by seed group, until ``limit`` are found."""
    state = _Round({}, [], 0)
    for seed in _seeds(query.df, query.n, bm.batch):
        if len(state.best) >= limit:
            break
        found, matched = await _score(conn, query.params, filters, seed, None, bm.batch)
        state.best.update(found)
        state.scored += matched
        # What was scored whole need not be scored again.
        whole = state.seen is not None and matched < bm.batch
        state.seen = state.seen + seed if whole and state.seen is not None else None
    return state


def _seeds(df: dict[str, int], n: int, batch: int) -> list[Groups]:
    """Groups of terms whose chunks are likely among the best, and few, in the order
    to try them: chunks with all the terms or with pairs unlikely to be common
    together; then chunks with the rarest terms (or the one term, if it is alone).
    """
    terms = sorted(df, key=lambda t: (df[t], t))
    together: Groups = []
    if len(terms) >= 2:
        together.append(tuple(terms))
    if 2 < len(terms) <= _MAX_GROUP_TERMS:
        for i, first in enumerate(terms):
            for second in terms[i + 1 :]:
                if df[first] * df[second] / n <= batch / 4:  # if independent
                    together.append((first, second))
    rarest: Groups = []
    total = 0
    for term in terms:
        if total + df[term] > batch // 2:
            break
        rarest.append((term,))
        total += df[term]
    return [seed for seed in (together, rarest or [(terms[0],)]) if seed]


async def _score(
    conn: AsyncConnection,
    params: dict[str, Any],
    filters: Filters,
    groups: Groups,
    seen: Groups | None,
    cap: int | None,
) -> tuple[dict[str, float], int]:
    """The best chunks holding one of ``groups`` (none of ``seen``; at most ``cap`` of
    them) with their scores, and how many were scored.
    """
    exclude = "AND NOT c.lexical @@ CAST(:seen AS tsquery)" if seen else ""
    sql = _SCORE.format(seen=exclude, filters=filters.sql("c"))
    values = {**params, "match": _tsquery(groups), "seen": _tsquery(seen or []), "cap": cap}
    rows = (await conn.execute(text(sql), values)).all()
    matched = int(rows[0].matched) if rows else 0
    return {row.id: float(row.score) for row in rows}, matched


def _tsquery(groups: Sequence[Sequence[str]]) -> str:
    """``('a' & 'b') | 'c'``: lexemes as they are, quotes and backslashes escaped."""

    def quote(term: str) -> str:
        return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"

    return " | ".join("(" + " & ".join(map(quote, group)) + ")" for group in groups)


def _groups(bounds: dict[str, float], floor: float) -> Groups:
    """Minimal sets of terms whose bounds add up to more than ``floor``.

    A chunk scoring above ``floor`` holds all the terms of at least one of them. With many
    terms (or groups), single terms instead: all but those whose bounds, smallest first,
    still add up to at most ``floor`` (MaxScore's essential terms).
    """
    terms = sorted(bounds, key=lambda t: (-bounds[t], t))
    if len(terms) <= _MAX_GROUP_TERMS:
        groups = []
        for mask in range(1, 1 << len(terms)):
            group = [t for i, t in enumerate(terms) if mask >> i & 1]
            total = sum(bounds[t] for t in group)
            if total > floor and all(total - bounds[t] <= floor for t in group):
                groups.append(tuple(group))
        if len(groups) <= _MAX_GROUPS:
            return sorted(groups, key=lambda g: (len(g), g))
    essential: Groups = []
    below = 0.0
    for term in reversed(terms):  # smallest bound first
        below += bounds[term]
        if below > floor:
            essential.append((term,))
    return essential


def _floor(best: dict[str, float], limit: int) -> float:
    """The score to beat: the ``limit``-th best so far (0 with fewer)."""
    if len(best) < limit:
        return 0.0
    return heapq.nlargest(limit, best.values())[-1]
