"""Hybrid search over the chunks a caller may read: dense, lexical (BM25), or both.

- Dense: cosine distance on the collection's HNSW index, ``hnsw.ef_search`` raised for
  recall and iterative scans on, so filters do not starve the result list.
- Lexical: BM25 computed in SQL over the ``lexical`` tsvector (term frequencies are the
  positions the tsvector keeps); candidates come from its GIN index.
- Hybrid (the default): each list's scores min-max normalized, then a weighted sum. On our
  measurements plain reciprocal rank fusion loses to the better single retriever when the
  other is much weaker (e5 on Korean BM25's home ground); ``fusion="rrf"`` is still there.

Every search takes a :class:`Scope`; chunks of collections the scope may not read are
never selected.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from knowledge.analysis import query_terms
from knowledge.embedders import Embedder
from knowledge.errors import KnowledgeError, NotFoundError
from knowledge.store import CollectionInfo, KnowledgeStore, check_embedder

__all__ = ["Citation", "Filters", "Hit", "Mode", "Scope", "SearchResult", "Searcher"]

Mode = Literal["hybrid", "dense", "lexical"]
Fusion = Literal["weighted", "rrf"]

# Terms in more than this share of the chunks still score, but do not select candidates:
# their IDF is near zero and they would make BM25 score most of the collection.
_COMMON_TERM_SHARE = 0.1

_COLLECTION_STATS = """
    SELECT greatest(sum(chunk_count), 1)::bigint AS n,
           greatest(sum(lexical_terms)::float8 / greatest(sum(chunk_count), 1), 1) AS avgdl,
           max(updated_at)::text AS version
    FROM collections WHERE id = ANY(:collections)
"""

_DOCUMENT_FREQUENCIES = """
    SELECT t.term, (
        SELECT count(*) FROM chunks c
        WHERE c.collection_id = ANY(:collections)
          AND c.lexical @@ to_tsquery('simple', quote_literal(t.term))
    ) AS df
    FROM unnest(CAST(:terms AS text[])) AS t(term)
"""

_BM25 = """
    WITH df AS (
        SELECT * FROM unnest(CAST(:terms AS text[]), CAST(:dfs AS bigint[])) AS d(term, df)
    ),
    candidates AS (
        SELECT c.id, c.lexical, c.lexical_len FROM chunks c
        WHERE c.collection_id = ANY(:collections)
          AND c.lexical @@ to_tsquery('simple', (
                SELECT string_agg(quote_literal(s), ' | ')
                FROM unnest(CAST(:selective AS text[])) AS s))
          {filters}
    )
    SELECT cand.id, sum(
        ln(1 + (:n - df.df + 0.5) / (df.df + 0.5))
        * cardinality(u.positions) * (:k1 + 1)
        / (cardinality(u.positions) + :k1 * (1 - :b + :b * cand.lexical_len / :avgdl))
    ) AS score
    FROM candidates cand
    CROSS JOIN LATERAL unnest(cand.lexical) AS u(lexeme, positions, weights)
    JOIN df ON df.term = u.lexeme
    GROUP BY cand.id
    ORDER BY score DESC
    LIMIT :limit
"""


def _selective_terms(df: dict[str, int], n: int) -> list[str]:
    """Terms that pick candidates: present, and not in most chunks (else the rarest)."""
    present = sorted((count, term) for term, count in df.items() if count > 0)
    selective = [term for count, term in present if count <= max(_COMMON_TERM_SHARE * n, 50)]
    return selective or [term for _, term in present[:2]]


@dataclass(frozen=True)
class Scope:
    """Who is searching, and so which collections they may read.

    Public collections are readable everywhere unless they name allowed channels. Private
    ones only in a private conversation (a DM), by users holding one of their roles or in
    one of their channels. ``operator`` (the CLI on the server) reads everything.
    """

    channel_id: str | None = None
    user_id: str | None = None
    roles: frozenset[str] = frozenset()
    private_conversation: bool = False
    operator: bool = False

    @classmethod
    def everything(cls) -> Scope:
        """The operator's scope: every collection."""
        return cls(operator=True)

    def can_read(self, collection: CollectionInfo) -> bool:
        """True if this caller may read ``collection``."""
        if self.operator:
            return True
        in_channel = self.channel_id is not None and self.channel_id in collection.allowed_channels
        if collection.visibility == "public":
            return not collection.allowed_channels or in_channel
        if not self.private_conversation and not in_channel:
            return False
        return in_channel or bool(self.roles & set(collection.allowed_roles))


@dataclass(frozen=True)
class Citation:
    """Where a passage comes from, for a numbered source list."""

    document_id: uuid.UUID
    title: str
    source: str
    collection: str
    page: int | None
    section: str | None
    snippet: str


@dataclass(frozen=True)
class SearchResult:
    """One passage with its scores (``score`` is the one results are ranked by)."""

    chunk_id: str
    kind: str
    content: str
    score: float
    citation: Citation
    dense_score: float | None = None
    lexical_score: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hit:
    """One chunk's scores from each retriever (None: that retriever did not return it)."""

    dense: float | None = None
    lexical: float | None = None


class Searcher:
    """Runs searches with one embedder over the store."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        *,
        dense_weight: float = 0.35,
        dense_weight_latin: float = 0.2,
        dense_floor: float = 0.80,
        ef_search: int = 400,
        candidate_pool: int = 50,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.dense_weight_latin = dense_weight_latin
        self.dense_floor = dense_floor
        self.ef_search = ef_search
        self.candidate_pool = candidate_pool
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self._df_cache: dict[tuple[tuple[tuple[str, ...], str], str], int] = {}

    async def readable_collections(
        self, scope: Scope, names: Sequence[str] | None = None
    ) -> list[CollectionInfo]:
        """The collections ``scope`` may read, optionally narrowed to ``names``."""
        collections = await self.store.list_collections()
        if names:
            known = {c.name for c in collections}
            missing = [n for n in names if n not in known]
            if missing:
                raise NotFoundError(f"no collection named {missing[0]!r}")
            collections = [c for c in collections if c.name in set(names)]
        return [c for c in collections if scope.can_read(c)]

    async def search(
        self,
        query: str,
        scope: Scope,
        *,
        k: int = 5,
        mode: Mode = "hybrid",
        collections: Sequence[str] | None = None,
        document_ids: Sequence[uuid.UUID] | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        fusion: Fusion = "weighted",
    ) -> list[SearchResult]:
        """The ``k`` best passages for ``query`` that ``scope`` may read.

        An empty list means nothing relevant was found: no lexical match and no passage
        whose similarity reaches the relevance floor.
        """
        if not query.strip():
            raise KnowledgeError("the query is empty")
        readable = await self.readable_collections(scope, collections)
        if not readable:
            return []
        if mode != "lexical":
            for collection in readable:
                check_embedder(collection, self.embedder)
        filters = Filters([c.id for c in readable], document_ids, since, until)
        hits = await self.candidates(
            query, filters, mode=mode, limit=max(self.candidate_pool, k * 4)
        )
        ranked = self.rank(hits, mode, fusion)[:k]
        return await self._results(ranked, hits)

    async def candidates(
        self,
        query: str,
        filters: Filters,
        *,
        mode: Mode,
        limit: int,
        query_vector: np.ndarray[Any, Any] | None = None,
    ) -> dict[str, Hit]:
        """Chunk id -> the scores each retriever gave it (``None`` where it did not)."""
        hits: dict[str, Hit] = {}
        lexical: list[tuple[str, float]] = []
        dense: list[tuple[str, float]] = []
        if mode != "lexical" and query_vector is None:
            query_vector = await self.embedder.embed_query(query)
        if mode == "hybrid":  # both retrievers at once, on two connections
            lexical, dense = await asyncio.gather(
                self._lexical(query, filters, limit),
                self._dense(query_vector, filters, limit),  # type: ignore[arg-type]
            )
        elif mode == "lexical":
            lexical = await self._lexical(query, filters, limit)
        else:
            dense = await self._dense(query_vector, filters, limit)  # type: ignore[arg-type]
        for chunk, score in lexical:
            hits.setdefault(chunk, Hit()).lexical = score
        for chunk, score in dense:
            hits.setdefault(chunk, Hit()).dense = score
        return hits

    def rank(
        self,
        hits: dict[str, Hit],
        mode: Mode,
        fusion: Fusion = "weighted",
        *,
        query: str = "",
    ) -> list[tuple[str, float]]:
        """Chunk ids best first under ``mode``, passages below the relevance floor dropped.

        The dense weight depends on the query's script: multilingual-e5-small is nearly a
        match for BM25 on Korean but far behind stemmed BM25 on English (see the README).
        """
        relevant = {
            cid: hit
            for cid, hit in hits.items()
            if hit.lexical is not None or (hit.dense or 0.0) >= self.dense_floor
        }
        if mode == "lexical":
            scores = {cid: hit.lexical or 0.0 for cid, hit in relevant.items()}
        elif mode == "dense":
            scores = {cid: hit.dense or 0.0 for cid, hit in relevant.items()}
        elif fusion == "rrf":
            scores = _rrf(relevant)
        else:
            scores = self._weighted(relevant, self.weight_for(query))
        return sorted(scores.items(), key=lambda item: item[1], reverse=True)

    def weight_for(self, query: str) -> float:
        """The dense weight for ``query``: the Latin one unless it has non-Latin letters."""
        latin = not any(ch.isalpha() and not ch.isascii() for ch in query)
        return self.dense_weight_latin if latin else self.dense_weight

    def _weighted(self, hits: dict[str, Hit], w: float) -> dict[str, float]:
        dense = _normalize({cid: h.dense for cid, h in hits.items()}, self.candidate_pool)
        lexical = _normalize({cid: h.lexical for cid, h in hits.items()}, self.candidate_pool)
        return {cid: w * dense.get(cid, 0.0) + (1 - w) * lexical.get(cid, 0.0) for cid in hits}

    async def _lexical(self, query: str, filters: Filters, limit: int) -> list[tuple[str, float]]:
        terms = query_terms(query)
        if not terms:
            return []
        params = {"terms": terms, **filters.params()}
        async with self.store.engine.connect() as conn:
            stats = (await conn.execute(text(_COLLECTION_STATS), params)).one()
            n, avgdl = stats.n, stats.avgdl
            df = await self._document_frequencies(conn, terms, filters, stats.version)
            selective = _selective_terms(df, n)
            if not selective:
                return []
            rows = await conn.execute(
                text(_BM25.format(filters=filters.sql("c"))),
                {
                    **params,
                    "terms": list(df),
                    "dfs": list(df.values()),
                    "selective": selective,
                    "n": n,
                    "avgdl": avgdl,
                    "k1": self.bm25_k1,
                    "b": self.bm25_b,
                    "limit": limit,
                },
            )
            return [(row[0], float(row[1])) for row in rows]

    async def _document_frequencies(
        self, conn: AsyncConnection, terms: list[str], filters: Filters, version: str
    ) -> dict[str, int]:
        """Chunks containing each term, cached until any of the collections is written."""
        scope = (tuple(sorted(map(str, filters.collections))), version)
        missing = [t for t in terms if (scope, t) not in self._df_cache]
        if missing:
            rows = await conn.execute(
                text(_DOCUMENT_FREQUENCIES), {**filters.params(), "terms": missing}
            )
            if len(self._df_cache) > 100_000:
                self._df_cache.clear()
            for row in rows:
                self._df_cache[(scope, row.term)] = row.df
        return {t: self._df_cache[(scope, t)] for t in terms}

    async def _dense(
        self, vector: np.ndarray[Any, Any], filters: Filters, limit: int
    ) -> list[tuple[str, float]]:
        dim = int(self.embedder.dim)
        literal = _vector_literal(vector)
        sql = f"""
            SELECT c.id, 1 - (c.embedding::vector({dim}) <=> CAST(:q AS vector({dim}))) AS score
            FROM chunks c
            WHERE c.embedding_dim = {dim} AND c.collection_id = ANY(:collections)
              {filters.sql("c")}
            ORDER BY c.embedding::vector({dim}) <=> CAST(:q AS vector({dim}))
            LIMIT :limit
        """
        async with self.store.engine.begin() as conn:
            await conn.execute(text(f"SET LOCAL hnsw.ef_search = {int(self.ef_search)}"))
            await conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = await conn.execute(text(sql), {"q": literal, "limit": limit, **filters.params()})
            found = [(row[0], float(row[1])) for row in rows]
        return sorted(found, key=lambda item: item[1], reverse=True)

    async def _results(
        self, ranked: list[tuple[str, float]], hits: dict[str, Hit]
    ) -> list[SearchResult]:
        if not ranked:
            return []
        sql = """
            SELECT c.id, c.kind, c.content, c.page, c.section, c.metadata,
                   d.id, d.title, d.source, col.name
            FROM chunks c
            JOIN documents d ON d.id = c.document_id
            JOIN collections col ON col.id = c.collection_id
            WHERE c.id = ANY(:ids)
        """
        async with self.store.engine.connect() as conn:
            rows = {
                row[0]: row
                for row in await conn.execute(text(sql), {"ids": [cid for cid, _ in ranked]})
            }
        results = []
        for cid, score in ranked:
            row = rows.get(cid)
            if row is None:  # replaced by a new version between the two queries
                continue
            citation = Citation(
                document_id=row[6],
                title=row[7],
                source=row[8],
                collection=row[9],
                page=row[3],
                section=row[4],
                snippet=_snippet(row[2]),
            )
            hit = hits[cid]
            results.append(
                SearchResult(
                    chunk_id=cid,
                    kind=row[1],
                    content=row[2],
                    score=round(score, 6),
                    citation=citation,
                    dense_score=hit.dense,
                    lexical_score=hit.lexical,
                    meta=dict(row[5]),
                )
            )
        return results


@dataclass(frozen=True)
class Filters:
    """What to search in: collections (already checked against the scope) and narrowing."""

    collections: list[uuid.UUID]
    document_ids: Sequence[uuid.UUID] | None
    since: dt.datetime | None
    until: dt.datetime | None

    def sql(self, alias: str) -> str:
        clauses = []
        if self.document_ids:
            clauses.append(f"AND {alias}.document_id = ANY(:document_ids)")
        if self.since is not None or self.until is not None:
            clauses.append(
                f"AND {alias}.document_id IN (SELECT id FROM documents WHERE "
                "created_at >= coalesce(:since, '-infinity') "
                "AND created_at < coalesce(:until, 'infinity'))"
            )
        return " ".join(clauses)

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"collections": self.collections}
        if self.document_ids:
            params["document_ids"] = list(self.document_ids)
        if self.since is not None or self.until is not None:
            params["since"] = self.since
            params["until"] = self.until
        return params


def _vector_literal(vector: np.ndarray[Any, Any]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"


def _normalize(scores: dict[str, float | None], reference: int) -> dict[str, float]:
    """Scale so the best is 1 and the ``reference``-th best is 0 (lower ones clamp at 0).

    Anchoring at a fixed rank, not at the last candidate, keeps fused scores the same
    however deep the candidate lists are fetched.
    """
    values = {k: v for k, v in scores.items() if v is not None}
    if not values:
        return {}
    ordered = sorted(values.values(), reverse=True)
    high, low = ordered[0], ordered[min(reference, len(ordered)) - 1]
    if high - low < 1e-12:
        return dict.fromkeys(values, 1.0)
    return {k: max(0.0, (v - low) / (high - low)) for k, v in values.items()}


def _rrf(hits: dict[str, Hit], k: int = 60) -> dict[str, float]:
    scores: dict[str, float] = dict.fromkeys(hits, 0.0)
    for attribute in ("dense", "lexical"):
        ordered = sorted(
            (cid for cid, h in hits.items() if getattr(h, attribute) is not None),
            key=lambda cid, a=attribute: getattr(hits[cid], a),  # type: ignore[misc]
            reverse=True,
        )
        for rank, cid in enumerate(ordered, start=1):
            scores[cid] += 1 / (k + rank)
    return scores


def _snippet(content: str, limit: int = 280) -> str:
    flat = " ".join(content.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
