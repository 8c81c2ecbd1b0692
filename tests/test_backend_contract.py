"""The chat-backend contract: one test class that every backend passes.

:class:`BackendContract` runs against each backend through a small harness that prepares
its next turn (the scripted OpenAI server is told what to answer; the retrieval-only
backend decides for itself; the local model from ``finetune`` learnt the turns). A new
backend joins by adding a harness to ``HARNESSES``.

The contract, in Chat Completions wire format (plain dicts, see :mod:`tools.chat_backend`):
a turn is one assistant choice, with text or with tool calls that name an offered tool and
carry JSON-object arguments; streamed text is the text returned; usage is in tokens; a
refused request is a :class:`~tools.chat_backend.BackendError`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from bot.agent.backends import OfflineBackend, OpenAIBackend
from tests.fakes.openai_server import ScriptedOpenAI
from tests.secret_values import OPENAI_KEY
from tools.base import Tool
from tools.chat_backend import (
    BackendError,
    ChatBackend,
    ChatResponse,
    Completion,
    Message,
    ToolSpec,
)
from tools.documents import PassageAnswers

QUESTION = "What is the hotel cap in Tokyo?"
PASSAGES = {
    "query": QUESTION,
    "passages": [
        {"citation": 1, "title": "Handbook", "content": "The hotel cap in Tokyo is 180 USD."}
    ],
}


async def search_documents(query: str) -> dict[str, Any]:
    """Search the company documents.

    Args:
        query: What to look for.
    """
    return PASSAGES


# A tool as the agent offers one (the local model learnt these turns from the agent's runs).
SEARCH: ToolSpec = Tool.from_function(search_documents).schema()


class Harness(Protocol):
    """One backend under test, and how to prepare its next turn."""

    backend: ChatBackend

    def expect_text(self) -> None:
        """The next turn answers in text (citing [1] after the search result)."""

    def expect_search(self) -> None:
        """The next turn calls ``search_documents`` with the question."""

    def expect_refusal(self) -> None:
        """The next request (an empty conversation) is refused."""


class OpenAIHarness:
    """The OpenAI-compatible backend against the scripted server, retries off."""

    def __init__(self, server: ScriptedOpenAI) -> None:
        self.server = server
        self.backend = OpenAIBackend(
            model=server.model, api_key=OPENAI_KEY, base_url=server.base_url, max_retries=0
        )

    def expect_text(self) -> None:
        self.server.reply_text("The hotel cap in Tokyo is 180 USD [1].")

    def expect_search(self) -> None:
        self.server.reply_tool_calls(("search_documents", {"query": QUESTION}))

    def expect_refusal(self) -> None:
        self.server.reply_error(400, "'messages' must contain at least one message")


class OfflineHarness:
    """The retrieval-only backend, answering with ``search_documents``: nothing to script."""

    def __init__(self, server: ScriptedOpenAI) -> None:
        self.backend = OfflineBackend(answer_with=PassageAnswers())

    def expect_text(self) -> None:
        return None

    def expect_search(self) -> None:
        return None

    def expect_refusal(self) -> None:
        return None


class LocalHarness(OfflineHarness):
    """The local model from ``finetune``, trained on these very turns as the agent stored and
    ``finetune export`` wrote them (``tests/finetune_chain.py``): nothing to script."""

    def __init__(self, model_dir: Path) -> None:
        from bot.app import LocalModelBackend
        from finetune.local import LocalBackend

        self.backend = LocalModelBackend(LocalBackend(model_dir))


HARNESSES: dict[str, Callable[[ScriptedOpenAI], Harness]] = {
    "openai": OpenAIHarness,
    "offline": OfflineHarness,
}


@pytest.fixture
def local_model(request: pytest.FixtureRequest) -> Path | None:
    """The session chain's merged model for the local harness (built here, outside the event
    loop: the chain starts the embedded PostgreSQL when no test has yet)."""
    if request.node.callspec.params.get("harness") != "local":
        return None
    from tests.finetune_chain import chain_once

    pg, factory = request.getfixturevalue("pg_server"), request.getfixturevalue("tmp_path_factory")
    return chain_once(pg, factory).merged


@pytest.fixture(params=sorted([*HARNESSES, "local"]))
async def harness(
    request: pytest.FixtureRequest, openai_server: ScriptedOpenAI, local_model: Path | None
) -> AsyncIterator[Harness]:
    made = LocalHarness(local_model) if local_model else HARNESSES[request.param](openai_server)
    yield made
    await made.backend.close()
    assert openai_server.pending == 0, "a scripted turn was not asked for"


def _conversation(text: str = QUESTION) -> list[Message]:
    return [
        {"role": "system", "content": "You answer questions about company documents."},
        {"role": "user", "content": text},
    ]


def _only_choice(completion: Completion) -> Message:
    assert isinstance(completion, dict)  # wire format: a plain dict, not an object
    assert isinstance(completion["model"], str)
    (choice,) = completion["choices"]
    message = choice["message"]
    assert message["role"] == "assistant"
    return message


class BackendContract:
    """What every :class:`~tools.chat_backend.ChatBackend` does."""

    async def test_a_text_turn_is_one_assistant_message(self, harness: Harness) -> None:
        harness.expect_text()

        completion = await harness.backend.complete(_conversation())

        message = _only_choice(completion)
        assert isinstance(message["content"], str) and message["content"].strip()
        assert not message.get("tool_calls")
        assert completion["choices"][0]["finish_reason"] == "stop"

    async def test_streamed_text_is_the_text_returned(self, harness: Harness) -> None:
        harness.expect_text()
        pieces: list[str] = []

        async def collect(piece: str) -> None:
            pieces.append(piece)

        completion = await harness.backend.complete(_conversation(), on_text=collect)

        assert "".join(pieces) == _only_choice(completion)["content"]
        assert len(pieces) >= 1

    @pytest.mark.parametrize("streaming", [False, True], ids=["whole", "streamed"])
    async def test_a_tool_call_round_trip(self, harness: Harness, streaming: bool) -> None:
        async def ignore(_: str) -> None:
            return None

        on_text = ignore if streaming else None
        harness.expect_search()
        first = await harness.backend.complete(_conversation(), tools=[SEARCH], on_text=on_text)

        asked = _only_choice(first)
        (call,) = asked.get("tool_calls") or []
        assert first["choices"][0]["finish_reason"] == "tool_calls"
        assert call["id"] and call["type"] == "function"
        assert call["function"]["name"] == "search_documents"
        assert json.loads(call["function"]["arguments"])["query"] == QUESTION
        result: Message = {
            "role": "tool",
            "content": json.dumps(PASSAGES),
            "tool_call_id": call["id"],
        }
        harness.expect_text()
        second = await harness.backend.complete(
            [*_conversation(), asked, result], tools=[SEARCH], on_text=on_text
        )

        answer = _only_choice(second)
        assert not answer.get("tool_calls")
        assert "180 USD" in (answer["content"] or "") and "[1]" in (answer["content"] or "")

    async def test_usage_is_counted_in_tokens(self, harness: Harness) -> None:
        harness.expect_text()

        completion = await harness.backend.complete(_conversation())

        usage = completion.get("usage")
        if usage is not None:  # a backend may leave counting to the loop
            assert usage["prompt_tokens"] >= 0 and usage["completion_tokens"] >= 0
            total = usage.get("total_tokens")
            assert total is None or total == usage["prompt_tokens"] + usage["completion_tokens"]
        parsed = ChatResponse.from_completion(completion)
        assert parsed.usage.total == (
            usage["prompt_tokens"] + usage["completion_tokens"] if usage else 0
        )
        count = harness.backend.count_tokens
        assert 0 < count("hello") < count("hello " * 50)
        assert count("호텔 숙박비 상한은 180 USD입니다") > 0

    async def test_a_refused_request_is_a_backend_error(self, harness: Harness) -> None:
        harness.expect_refusal()

        with pytest.raises(BackendError) as refused:
            await harness.backend.complete([])

        assert "\n" not in str(refused.value) and str(refused.value)


class TestEveryBackend(BackendContract):
    """The contract, run against every harness in ``HARNESSES``."""


class _Lookup:
    """A made-up tool whose result is a JSON object with an ``answer`` field."""

    name = "lookup_policy"

    def arguments(self, question: str) -> dict[str, Any]:
        return {"topic": question}

    def render(self, result: str) -> str:
        return f"The policy says: {json.loads(result)['answer']}"


async def test_the_offline_backend_answers_with_whatever_tool_it_is_given() -> None:
    backend = OfflineBackend(answer_with=_Lookup())
    offered: ToolSpec = {"type": "function", "function": {"name": "lookup_policy"}}

    first = await backend.complete(_conversation("hotel cap"), tools=[offered])
    (call,) = _only_choice(first).get("tool_calls") or []
    result: Message = {
        "role": "tool",
        "content": json.dumps({"answer": "180 USD a night"}),
        "tool_call_id": call["id"],
    }
    second = await backend.complete([*_conversation(), _only_choice(first), result])

    assert call["function"]["name"] == "lookup_policy"
    assert json.loads(call["function"]["arguments"]) == {"topic": "hotel cap"}
    assert _only_choice(second)["content"] == (
        "Retrieval-only answer (no language model is configured). The policy says: 180 USD a night"
    )


async def test_the_offline_backend_does_not_call_a_tool_the_loop_does_not_offer() -> None:
    backend = OfflineBackend(answer_with=_Lookup())

    completion = await backend.complete(_conversation(), tools=[SEARCH])

    message = _only_choice(completion)
    assert not message.get("tool_calls")
    assert "Use /sql, /stock or /classify" in (message["content"] or "")


def test_the_seam_and_the_classifier_import_nothing_from_bot() -> None:
    code = (
        "import sys, tools.chat_backend, tools.classifier; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'bot', 'finetune', 'openai'}))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"
