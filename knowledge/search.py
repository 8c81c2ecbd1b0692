"""Hybrid search over the chunks a caller may read: dense, lexical (BM25), or both.

- Dense: cosine similarity on the collection's HNSW index (:meth:`ChunkStore.dense`).
- Lexical: BM25 over the ``lexical`` tsvector, pruned to BM25's exact top
  (:meth:`ChunkStore.lexical`, see ``knowledge.store._bm25``).
- Hybrid (the default): each list's scores min-max normalized, then a weighted sum. On our
  measurements plain reciprocal rank fusion loses to the better single retriever when the
  other is much weaker (e5 on Korean BM25's home ground); ``fusion="rrf"`` is still there.
- Vectors on demand: a deferred ingest stores chunks before the model reads them. Until its
  fill reaches them, hybrid search embeds the best of its lexical candidates that have no
  vector (``vectors_on_demand``), keeps those vectors, and ranks the rest by their words.

:meth:`Searcher.search` is the one ranking path: the CLI, the ``search_documents`` tool,
Slack and ``deskbot eval retrieval`` all call it. The searcher issues no SQL: it asks a
:class:`ChunkStore` for candidates and passages, and ranks. Every search takes a
:class:`Scope`; chunks of collections the scope may not read are never selected.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from knowledge.analysis import query_terms
from knowledge.chunking import embedding_input
from knowledge.embedders import Embedder
from knowledge.errors import EmbeddingMismatchError, KnowledgeError, NotFoundError
from knowledge.fusion import Hit, normalize, rrf
from knowledge.store import (
    Bm25,
    ChunkStore,
    CollectionInfo,
    Filters,
    Lexical,
    Passage,
    check_embedder,
)

__all__ = ["Citation", "Filters", "Hit", "Mode", "Scope", "SearchResult", "Searcher"]

Mode = Literal["hybrid", "dense", "lexical"]
Fusion = Literal["weighted", "rrf"]
Vector = np.ndarray[Any, Any]

log = logging.getLogger(__name__)

# Query vectors kept for repeated questions and for a batch embedded ahead (``prime``).
_VECTOR_CACHE = 1024


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


class Searcher:
    """Runs searches with one embedder over a :class:`ChunkStore`."""

    # BM25's pruning budgets, in chunks: a round's and a search's (see ``knowledge.store``).
    lexical_batch = 4_000
    lexical_budget = 20_000

    def __init__(
        self,
        store: ChunkStore,
        embedder: Embedder,
        *,
        dense_weight: float = 0.35,
        dense_weight_latin: float = 0.2,
        dense_floor: float | None = None,
        ef_search: int = 400,
        candidate_pool: int = 50,
        vectors_on_demand: int = 20,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.dense_weight_latin = dense_weight_latin
        # A passage with no word of the question needs this cosine: the model's own floor.
        self.dense_floor = embedder.relevance_floor if dense_floor is None else dense_floor
        self.ef_search = ef_search
        self.candidate_pool = candidate_pool
        # Of a hybrid search's best lexical candidates, how many stored without a vector (a
        # deferred ingest's, until its fill reaches them) are embedded on the spot and kept.
        self.vectors_on_demand = vectors_on_demand
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self._vectors: OrderedDict[str, Vector] = OrderedDict()
        self._warned: set[str] = set()

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

        Each retriever is asked for ``max(candidate_pool, 4 * k)`` candidates. An empty
        list means nothing relevant was found: no lexical match and no passage whose
        similarity reaches the relevance floor.
        """
        if not query.strip():
            raise KnowledgeError("the query is empty")
        readable = await self.readable_collections(scope, collections)
        if not readable:
            return []
        strict = bool(collections) or mode == "dense"
        embedded_here = None if mode == "lexical" else self._embedded_here(readable, strict)
        filters = Filters([c.id for c in readable], document_ids, since, until)
        hits = await self.candidates(
            query, filters, mode=mode, limit=max(self.candidate_pool, k * 4),
            dense_collections=embedded_here,
        )  # fmt: skip
        ranked = self.rank(hits, mode, fusion, query=query)[:k]
        return await self._results(ranked, hits)

    def _embedded_here(self, readable: Sequence[CollectionInfo], strict: bool) -> list[uuid.UUID]:
        """The collections whose vectors this embedder made.

        Strict (collections named, or dense only): another model's collection is an error
        that points to ``deskbot reindex``. Otherwise it is searched by its words only, so
        one collection left on an old model does not stop every search; warned once.
        """
        usable = []
        for collection in readable:
            try:
                check_embedder(collection, self.embedder)
            except EmbeddingMismatchError as exc:
                if strict:
                    raise
                if collection.name not in self._warned:
                    self._warned.add(collection.name)
                    log.warning("%s; until then it is searched by words only", exc)
                continue
            usable.append(collection.id)
        return usable

    async def prime(self, queries: Iterable[str]) -> None:
        """Embed ``queries`` in one batch, so that searching them next skips the embedder.

        A batch is much faster than one query at a time; the vectors are the ones
        :meth:`search` would compute (the cache holds the latest 1,024 queries).
        """
        missing = list(dict.fromkeys(q for q in queries if q not in self._vectors))
        if missing:
            for text, vector in zip(
                missing, await self.embedder.embed_queries(missing), strict=True
            ):
                self._remember(text, vector)

    async def candidates(
        self,
        query: str,
        filters: Filters,
        *,
        mode: Mode,
        limit: int,
        query_vector: Vector | None = None,
        dense_collections: Sequence[uuid.UUID] | None = None,
    ) -> dict[str, Hit]:
        """Chunk id -> the scores each retriever gave it (``None`` where it did not).

        ``dense_collections`` narrows the dense retriever (default: ``filters``' collections).
        """
        hits: dict[str, Hit] = {}
        pending: set[str] = set()
        dense_filters = filters
        if dense_collections is not None:
            dense_filters = replace(filters, collections=list(dense_collections))
        lexical: list[tuple[str, float]] = []
        dense: list[tuple[str, float]] = []
        if mode != "lexical" and query_vector is None:
            query_vector = await self._query_vector(query)
        if mode == "hybrid":  # both retrievers at once, on two connections
            found, dense = await asyncio.gather(
                self.lexical(query, filters, limit),
                self._dense(query_vector, dense_filters, limit),
            )
            lexical = found.hits
            now, pending = await self._vectors_now(lexical, dense, dense_filters, query_vector)
            dense += now
        elif mode == "lexical":
            lexical = (await self.lexical(query, filters, limit)).hits
        else:
            dense = await self._dense(query_vector, dense_filters, limit)
        for chunk, score in lexical:
            hits.setdefault(chunk, Hit()).lexical = score
        for chunk, score in dense:
            hits.setdefault(chunk, Hit()).dense = score
        for chunk in pending:
            hits[chunk].unembedded = True
        return hits

    async def lexical(self, query: str, filters: Filters, limit: int) -> Lexical:
        """BM25's ``limit`` best chunks for ``query``, and whether the list is exact."""
        terms = query_terms(query)
        if not terms:
            return Lexical([], exact=True, scored=0)
        bm = Bm25(self.bm25_k1, self.bm25_b, self.lexical_batch, self.lexical_budget)
        return await self.store.lexical(terms, filters, limit=limit, bm=bm)

    def rank(
        self,
        hits: dict[str, Hit],
        mode: Mode,
        fusion: Fusion = "weighted",
        *,
        query: str,
    ) -> list[tuple[str, float]]:
        """Chunk ids best first under ``mode``, passages below the relevance floor dropped.

        The dense weight depends on the query's script: multilingual-e5-small is nearly a
        match for BM25 on Korean but far behind stemmed BM25 on English (see the README).
        ``query`` has no default: without it every question was ranked as a Latin one.
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
            scores = rrf(relevant)
        else:
            scores = self._weighted(relevant, self.weight_for(query))
        return sorted(scores.items(), key=lambda item: item[1], reverse=True)

    def weight_for(self, query: str) -> float:
        """The dense weight for ``query``: the Latin one unless it has non-Latin letters."""
        latin = not any(ch.isalpha() and not ch.isascii() for ch in query)
        return self.dense_weight_latin if latin else self.dense_weight

    def _weighted(self, hits: dict[str, Hit], w: float) -> dict[str, float]:
        """``w`` x dense + (1 - ``w``) x lexical, each normalized by :func:`normalize`.

        A chunk one retriever did not return is given that retriever's lowest returned
        score: it ranked below all of them, not at some fixed zero that could sit above
        the tail of the list. A chunk with no vector yet has no dense score to be low: it
        keeps its lexical one on both sides, so it ranks where words alone put it rather
        than below every chunk that happens to have been embedded.
        """
        dense = normalize({cid: h.dense for cid, h in hits.items()}, self.candidate_pool)
        lexical = normalize({cid: h.lexical for cid, h in hits.items()}, self.candidate_pool)
        dense_missing = min(dense.values(), default=0.0)
        lexical_missing = min(lexical.values(), default=0.0)
        fused = {}
        for cid, hit in hits.items():
            words = lexical.get(cid, lexical_missing)
            meaning = dense.get(cid, words if hit.unembedded else dense_missing)
            fused[cid] = w * meaning + (1 - w) * words
        return fused

    async def _query_vector(self, query: str) -> Vector:
        vector = self._vectors.get(query)
        if vector is None:
            vector = await self.embedder.embed_query(query)
        self._remember(query, vector)
        return vector

    def _remember(self, query: str, vector: Vector) -> None:
        self._vectors[query] = vector
        self._vectors.move_to_end(query)
        while len(self._vectors) > _VECTOR_CACHE:
            self._vectors.popitem(last=False)

    async def _dense(
        self, vector: Vector | None, filters: Filters, limit: int
    ) -> list[tuple[str, float]]:
        assert vector is not None  # the caller embedded the query for every dense mode
        if not filters.collections:
            return []
        return await self.store.dense(vector, filters, limit=limit, ef_search=self.ef_search)

    async def _vectors_now(
        self,
        lexical: list[tuple[str, float]],
        dense: list[tuple[str, float]],
        filters: Filters,
        vector: Vector | None,
    ) -> tuple[list[tuple[str, float]], set[str]]:
        """Lexical candidates stored without a vector: cosines for the best of them, embedded
        now, and the ids of the rest (their dense score unknown, see ``_weighted``).

        A deferred ingest makes documents searchable before the model has read them; until
        its fill reaches a chunk, a search that finds it by its words embeds it (the
        ``vectors_on_demand`` best lexical candidates at most) and stores the vector, so
        hybrid ranking sees both scores and the next search finds it by meaning too.
        """
        assert vector is not None  # hybrid embedded the query
        found = {cid for cid, _ in dense}
        ids = [cid for cid, _ in lexical if cid not in found]
        waiting = await self.store.unembedded(ids, filters.collections) if ids else set()
        if not waiting:
            return [], set()
        best = sorted(lexical, key=lambda item: item[1], reverse=True)
        wanted = [cid for cid, _ in best if cid in waiting][: self.vectors_on_demand]
        if not wanted:
            return [], waiting
        try:
            missing = await self.store.embedding_inputs_of(wanted)
            inputs = [
                embedding_input(r.title, r.section, r.embed_text or r.content) for r in missing
            ]
            vectors = await self.embedder.embed_documents(inputs)
            await self.store.set_vectors(
                [(r.chunk_id, v) for r, v in zip(missing, vectors, strict=True)],
                self.embedder.dim,
                missing=True,
            )
        except Exception as exc:  # the words still rank them: a search never fails for this
            log.warning("vectors on demand failed (%s: %s)", type(exc).__name__, exc)
            log.debug("vectors on demand failed", exc_info=exc)
            return [], waiting
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        cosines = np.asarray(vectors, dtype=np.float32) @ query
        now = [(r.chunk_id, float(c)) for r, c in zip(missing, cosines, strict=True)]
        return now, waiting - {cid for cid, _ in now}

    async def _results(
        self, ranked: list[tuple[str, float]], hits: dict[str, Hit]
    ) -> list[SearchResult]:
        found = await self.store.passages([cid for cid, _ in ranked])
        # A chunk missing here was replaced by a new version between the two reads.
        return [_result(found[cid], score, hits[cid]) for cid, score in ranked if cid in found]


def _result(passage: Passage, score: float, hit: Hit) -> SearchResult:
    citation = Citation(
        document_id=passage.document_id,
        title=passage.title,
        source=passage.source,
        collection=passage.collection,
        page=passage.page,
        section=passage.section,
        snippet=_snippet(passage.content),
    )
    return SearchResult(
        chunk_id=passage.chunk_id,
        kind=passage.kind,
        content=passage.content,
        score=round(score, 6),
        citation=citation,
        dense_score=hit.dense,
        lexical_score=hit.lexical,
        meta=dict(passage.meta),
    )


def _snippet(content: str, limit: int = 280) -> str:
    flat = " ".join(content.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
