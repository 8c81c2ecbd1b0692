"""``deskbot serve-model``: the local model behind an OpenAI-compatible endpoint.

The real ``deskbot serve-model`` process answers the real OpenAI SDK (tool calls, a streamed
answer, the model list) and stops cleanly on SIGTERM; the project's own OpenAI backend reads
its streamed tool calls; requests it cannot take are OpenAI-shaped errors.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.agent.backends import OpenAIBackend
from finetune.local import LocalBackend
from finetune.serve import chat_app
from tests.conftest import REPO, CliResult
from tests.finetune_local_support import (
    AGENT_ANSWER,
    AGENT_QUESTION,
    BROKEN_QUESTION,
    INSTRUCTIONS,
    hotel_cap,
    taught_model_dir,
)
from tests.test_backend_contract import _conversation as contract_conversation
from tools.base import Tool, ToolRegistry
from tools.chat_backend import BackendError

pytestmark = pytest.mark.integration

TOOLS = ToolRegistry([Tool.from_function(hotel_cap)]).schemas()


def _asked(question: str = AGENT_QUESTION) -> list[Any]:
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": question},
    ]


@pytest.fixture(scope="module")
def served_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    """``deskbot serve-model`` on a free port, as a user starts it (network guarded)."""
    home = tmp_path_factory.mktemp("serve-home")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
        "DESKBOT_DATA_DIR": str(home / "data"),
        "DESKBOT_LOG_LEVEL": "WARNING",
    }
    script = Path(sys.executable).with_name("deskbot")
    with (home / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(
            [str(script), "serve-model", str(taught_model_dir()), "--port", "0"],
            env=env,
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="module")
def base_url(served_process: subprocess.Popen[str]) -> str:
    assert served_process.stdout is not None
    line = served_process.stdout.readline()
    assert " at http://127.0.0.1:" in line, f"the server did not start: {line!r}"
    return line.split(" at ", 1)[1].split()[0]


@pytest.mark.e2e
def test_the_openai_sdk_gets_tool_calls_and_a_streamed_answer(base_url: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    (listed,) = client.models.list().data
    first = client.chat.completions.create(model=listed.id, messages=_asked(), tools=TOOLS)
    asked = first.choices[0].message
    (call,) = asked.tool_calls or []
    result = {
        "role": "tool",
        "tool_call_id": call.id,
        "content": '{"city": "Osaka", "cap_usd": 150}',
    }
    stream = client.chat.completions.create(
        model=listed.id,
        messages=[*_asked(), asked.model_dump(exclude_none=True), result],
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    client.close()

    assert listed.id == taught_model_dir().name
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "hotel_cap"
    assert json.loads(call.function.arguments) == {"city": "Osaka"}
    assert first.usage is not None and first.usage.completion_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == AGENT_ANSWER
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 100


@pytest.mark.e2e
def test_sigterm_stops_the_server_cleanly(
    base_url: str, served_process: subprocess.Popen[str]
) -> None:
    served_process.send_signal(signal.SIGTERM)

    assert served_process.wait(timeout=20) == 0


@pytest.mark.e2e
def test_a_missing_directory_is_one_line_and_exit_2(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = run_cli("serve-model", str(tmp_path / "nowhere"))

    assert result.code == 2
    assert result.stderr.strip().endswith(
        "no such directory (the model is read from disk, never downloaded)"
    )


@pytest.fixture(scope="module")
async def in_process() -> AsyncIterator[str]:
    """The same server in this process, on a free port: its base URL."""
    runner = web.AppRunner(chat_app(LocalBackend(taught_model_dir())))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    await runner.cleanup()


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
