"""A deferred ingest: every file is stored (searchable) before the model reads any of them,
then one fill embeds the batch; meanwhile hybrid search embeds the lexical candidates it
finds without a vector, and keeps those vectors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.storage import Database
from knowledge.documents import document_from_text
from knowledge.errors import EmbeddingMismatchError
from knowledge.ingest import FileResult, Ingestor, Progress
from knowledge.reindex import fill_vectors
from knowledge.schema import Chunk
from knowledge.search import Scope, Searcher
from knowledge.store import KnowledgeStore
from tests.shared_models import RecordingEmbedder

pytestmark = pytest.mark.integration

DOCS = {
    "hotel.md": "# Travel\n\nHotel stays are paid up to 180 dollars a night in Seoul.\n",
    "leave.md": "# 휴가\n\n연차 휴가는 입사 첫해에 15일이 주어진다.\n",
    "parking.txt": "Parking permits are sold at the front desk on the first floor.\n",
}


class _Events(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def file_finished(self, result: FileResult) -> None:
        self.events.append(("file", result.status))

    def vectors(self, done: int, total: int) -> None:
        self.events.append(("vectors", (done, total)))


def _write(folder: Path) -> Path:
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


async def _without_vectors(database: Database) -> int:
    async with database.engine.connect() as conn:
        query = select(func.count()).where(Chunk.embedding.is_(None), Chunk.kind != "table")
        return int((await conn.execute(query)).scalar_one())


async def test_every_file_is_stored_before_the_fill_embeds_the_batch(
    database: Database, tmp_path: Path
) -> None:
    store = KnowledgeStore(database.engine)
    embedder = RecordingEmbedder()
    collection = await store.ensure_collection("handbook", embedder)
    ingestor = Ingestor(store, embedder, defer_vectors=True)
    progress = _Events()

    results = await ingestor.ingest_paths(
        [_write(tmp_path / "docs")], collection, progress=progress
    )
    await ingestor.aclose()

    total = sum(r.embedded for r in results)
    assert [r.status for r in results] == ["stored"] * 3 and total >= 3
    # All three files were stored before the model read a single chunk, then one fill.
    assert progress.events[:3] == [("file", "stored")] * 3
    fill = [e for _, e in progress.events[3:]]
    assert fill[0] == (0, total) and fill[-1] == (total, total)
    assert len(embedder.read) == total
    assert await _without_vectors(database) == 0

    # The same files again: unchanged, so nothing is embedded and no fill runs.
    quiet = _Events()
    again = await ingestor.ingest_paths([tmp_path / "docs"], collection, progress=quiet)
    await ingestor.aclose()
    assert [r.status for r in again] == ["unchanged"] * 3
    assert [kind for kind, _ in quiet.events] == ["file"] * 3
    assert len(embedder.read) == total


async def test_a_failed_fill_loses_no_file_and_the_next_one_finishes(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = KnowledgeStore(database.engine)
    embedder = RecordingEmbedder()
    collection = await store.ensure_collection("handbook", embedder)
    ingestor = Ingestor(store, embedder, defer_vectors=True)
    embedder.failing = True

    with caplog.at_level(logging.WARNING, logger="knowledge.ingest"):
        results = await ingestor.ingest_paths([_write(tmp_path / "docs")], collection)
    await ingestor.aclose()

    assert [r.status for r in results] == ["stored"] * 3
    waiting = await _without_vectors(database)
    assert waiting == sum(r.embedded for r in results) > 0
    assert "handbook: vectors left for later (RuntimeError: model server went away)" in (
        caplog.text
    )
    # Searchable by its words meanwhile.
    lexical = Searcher(store, embedder, vectors_on_demand=0)
    hits = await lexical.search("parking permits", Scope.everything(), mode="lexical")
    assert hits and "front desk" in hits[0].content

    # The next ingest that stores something fills what this one left, with its own.
    embedder.failing = False
    (tmp_path / "docs" / "lunch.md").write_text("Lunch is served from noon.\n")
    later = _Events()
    results = await ingestor.ingest_paths([tmp_path / "docs"], collection, progress=later)
    await ingestor.aclose()
    assert [r.status for r in results] == ["unchanged", "unchanged", "stored", "unchanged"]
    assert ("vectors", (waiting + 1, waiting + 1)) in later.events
    assert await _without_vectors(database) == 0


async def test_hybrid_search_embeds_the_candidates_it_finds_without_a_vector(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    store = KnowledgeStore(database.engine)
    embedder = RecordingEmbedder()
    collection = await store.ensure_collection("handbook", embedder)
    ingestor = Ingestor(store, embedder)
    for name, text in DOCS.items():
        doc = document_from_text(name, name, text)
        await ingestor.store_parsed(
            doc, collection, source=name, digest=name, size_bytes=len(text), embed=False
        )
    assert embedder.read == [] and await _without_vectors(database) == 3

    # Off: hybrid ranks by words alone, and nothing gets a vector.
    off = await Searcher(store, embedder, vectors_on_demand=0).search(
        "hotel dollars", Scope.everything()
    )
    assert off[0].citation.source == "hotel.md" and off[0].dense_score is None
    assert embedder.read == []

    searcher = Searcher(store, embedder)
    hits = await searcher.search("hotel dollars", Scope.everything())
    top = hits[0]
    assert top.citation.source == "hotel.md" and len(embedder.read) == 1
    # The score is the cosine the stored vector gives: the dense retriever now finds it
    # with the same one, and a second search embeds nothing.
    assert top.dense_score is not None
    dense = await searcher.search("hotel dollars", Scope.everything(), mode="dense")
    assert dense[0].chunk_id == top.chunk_id
    assert dense[0].dense_score == pytest.approx(top.dense_score, abs=1e-5)
    await searcher.search("hotel dollars", Scope.everything())
    assert len(embedder.read) == 1 and await _without_vectors(database) == 2

    # Another model's collection is never given this model's vectors.
    other = RecordingEmbedder("recorder/two")
    await Searcher(store, other).search("parking permits", Scope.everything())
    assert other.read == [] and await _without_vectors(database) == 2

    # A model that fails on demand costs the search its vectors, not its answer.
    embedder.failing = True
    with caplog.at_level(logging.WARNING, logger="knowledge.search"):
        found = await searcher.search("parking permits", Scope.everything())
    assert found[0].citation.source == "parking.txt" and found[0].dense_score is None
    assert "vectors on demand failed (RuntimeError: model server went away)" in caplog.text
    assert await _without_vectors(database) == 2


async def test_a_fill_refuses_a_collection_another_model_made(database: Database) -> None:
    store = KnowledgeStore(database.engine)
    await store.ensure_collection("handbook", RecordingEmbedder("recorder/one"))
    with pytest.raises(EmbeddingMismatchError, match="deskbot reindex handbook"):
        await fill_vectors(store, RecordingEmbedder("recorder/two"), "handbook")
