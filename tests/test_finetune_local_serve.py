"""``deskbot serve-model``: the local model behind an OpenAI-compatible endpoint.

The real ``deskbot serve-model`` process answering the OpenAI SDK with tool calls and stopping
on SIGTERM is part of the chain (``tests/test_finetune_chain.py``). Here, on the same model
served in this process: the OpenAI SDK gets the model list, tool calls and a streamed answer;
the project's own OpenAI backend reads streamed tool calls; requests it cannot take are
OpenAI-shaped errors.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.agent.backends import OpenAIBackend
from bot.embedded_pg import EmbeddedPostgres
from finetune.local import LocalBackend
from finetune.serve import chat_app
from tests.conftest import CliResult
from tests.finetune_chain import (
    AGENT_ANSWER,
    AGENT_QUESTION,
    BROKEN_QUESTION,
    INSTRUCTIONS,
    Chain,
    chain_once,
    hotel_cap,
)
from tests.finetune_support import deskbot_in_process
from tests.test_backend_contract import _conversation as contract_conversation
from tools.base import Tool, ToolRegistry
from tools.chat_backend import BackendError

pytestmark = pytest.mark.integration


@pytest.fixture
def deskbot_cli(tmp_path: Path) -> Callable[..., CliResult]:
    """``deskbot`` through click's runner in this process (``run_cli`` without the process)."""
    return deskbot_in_process(tmp_path / "data")


TOOLS = ToolRegistry([Tool.from_function(hotel_cap)]).schemas()


def _asked(question: str = AGENT_QUESTION) -> list[Any]:
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": question},
    ]


@pytest.mark.e2e
def test_a_missing_directory_is_one_line_and_exit_2(
    deskbot_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = deskbot_cli("serve-model", str(tmp_path / "nowhere"))

    assert result.code == 2
    assert result.stderr.strip().endswith(
        "no such directory (the model is read from disk, never downloaded)"
    )


@pytest.fixture(scope="module")
def chain(pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return chain_once(pg_server, tmp_path_factory)


@pytest.fixture(scope="module")
async def in_process(chain: Chain) -> AsyncIterator[str]:
    """serve-model's app on the chain's merged model, in this process: its base URL."""
    runner = web.AppRunner(chat_app(LocalBackend(chain.merged)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    await runner.cleanup()


async def test_the_openai_sdk_gets_tool_calls_and_a_streamed_answer(
    in_process: str, chain: Chain
) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=in_process, api_key="unused", max_retries=0)
    (listed,) = (await client.models.list()).data
    first = await client.chat.completions.create(model=listed.id, messages=_asked(), tools=TOOLS)
    asked = first.choices[0].message
    (call,) = asked.tool_calls or []
    result = {
        "role": "tool",
        "tool_call_id": call.id,
        "content": json.dumps(await hotel_cap("Osaka"), ensure_ascii=False),
    }
    stream = await client.chat.completions.create(
        model=listed.id,
        messages=[*_asked(), asked.model_dump(exclude_none=True), result],
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    await client.close()

    assert listed.id == chain.merged.name
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "hotel_cap"
    assert json.loads(call.function.arguments) == {"city": "Osaka"}
    assert first.usage is not None and first.usage.completion_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == AGENT_ANSWER
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 100


async def test_the_projects_openai_backend_reads_streamed_tool_calls(in_process: str) -> None:
    backend = OpenAIBackend(model="any", api_key="unused", base_url=in_process, max_retries=0)
    shown: list[str] = []

    async def collect(piece: str) -> None:
        shown.append(piece)

    completion = await backend.complete(_asked(), tools=TOOLS, on_text=collect)
    await backend.close()

    (call,) = completion["choices"][0]["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert json.loads(call["function"]["arguments"]) == {"city": "Osaka"}
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert shown == []  # a call is not prose


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "streamed"])
async def test_requests_the_model_cannot_take_are_openai_errors(
    in_process: str, streaming: bool
) -> None:
    async def ignore(_: str) -> None:
        return None

    backend = OpenAIBackend(model="any", api_key="unused", base_url=in_process, max_retries=0)
    on_text = ignore if streaming else None

    with pytest.raises(BackendError) as empty:
        await backend.complete([], on_text=on_text)
    with pytest.raises(BackendError) as broken:
        await backend.complete(_asked(BROKEN_QUESTION), tools=TOOLS, on_text=on_text)
    await backend.close()

    assert "the conversation is empty" in str(empty.value)
    assert "tool call is not JSON" in str(broken.value)
    if not streaming:
        assert "(400)" in str(empty.value) and "(500)" in str(broken.value)


async def test_max_tokens_lowers_the_bound_of_one_turn(in_process: str) -> None:
    from openai import AsyncOpenAI, BadRequestError

    client = AsyncOpenAI(base_url=in_process, api_key="unused", max_retries=0)
    short = await client.chat.completions.create(
        model="any", messages=contract_conversation(), max_tokens=4
    )
    with pytest.raises(BadRequestError, match="max_tokens"):
        await client.chat.completions.create(
            model="any", messages=contract_conversation(), max_tokens=0
        )
    await client.close()

    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 4
