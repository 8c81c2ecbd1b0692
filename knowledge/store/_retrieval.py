"""Reading chunks for search: filters, nearest vectors, and the passages of ranked ids."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from knowledge.store._records import Passage


@dataclass(frozen=True)
class Filters:
    """What to search in: collections (already checked against the scope) and narrowing."""

    collections: list[uuid.UUID]
    document_ids: Sequence[uuid.UUID] | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def sql(self, alias: str) -> str:
        """``AND ...`` clauses on the chunks table aliased ``alias`` (collections aside)."""
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
        """The bind parameters :meth:`sql` and ``:collections`` refer to."""
        params: dict[str, Any] = {"collections": self.collections}
        if self.document_ids:
            params["document_ids"] = list(self.document_ids)
        if self.since is not None or self.until is not None:
            params["since"] = self.since
            params["until"] = self.until
        return params


async def nearest(
    conn: AsyncConnection,
    vector: np.ndarray[Any, Any],
    filters: Filters,
    limit: int,
    ef_search: int,
) -> list[tuple[str, float]]:
    """The ``limit`` chunks most cosine-similar to ``vector``, best first, on the HNSW index.

    ``hnsw.ef_search`` is raised for recall and iterative scans are on, so filters do not
    starve the list. Runs in the caller's transaction (the settings are local to it).
    """
    dim = int(np.asarray(vector).shape[-1])
    sql = f"""
        SELECT c.id, 1 - (c.embedding::vector({dim}) <=> CAST(:q AS vector({dim}))) AS score
        FROM chunks c
        WHERE c.embedding_dim = {dim} AND c.collection_id = ANY(:collections)
          {filters.sql("c")}
        ORDER BY c.embedding::vector({dim}) <=> CAST(:q AS vector({dim}))
        LIMIT :limit
    """
    await conn.execute(
        text(
            "SELECT set_config('hnsw.ef_search', :ef, true), "
            "set_config('hnsw.iterative_scan', 'relaxed_order', true)"
        ),
        {"ef": str(int(ef_search))},
    )
    literal = _vector_literal(vector)
    rows = await conn.execute(text(sql), {"q": literal, "limit": limit, **filters.params()})
    found = [(row[0], float(row[1])) for row in rows]
    return sorted(found, key=lambda item: item[1], reverse=True)


_PASSAGES = """
    SELECT c.id, c.kind, c.content, c.page, c.section, c.metadata,
           d.id AS document_id, d.title, d.source, col.name AS collection
    FROM chunks c
    JOIN documents d ON d.id = c.document_id
    JOIN collections col ON col.id = c.collection_id
    WHERE c.id = ANY(:ids)
"""


async def passages(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Passage]:
    """The chunks ``ids`` still stored, by id, with their document and collection."""
    if not ids:
        return {}
    rows = await conn.execute(text(_PASSAGES), {"ids": list(ids)})
    return {
        row.id: Passage(
            chunk_id=row.id,
            kind=row.kind,
            content=row.content,
            page=row.page,
            section=row.section,
            meta=dict(row.metadata),
            document_id=row.document_id,
            title=row.title,
            source=row.source,
            collection=row.collection,
        )
        for row in rows
    }


def _vector_literal(vector: np.ndarray[Any, Any]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"
