"""The issue's chain as one flow, on the model trained from the agent's own exported runs.

Runs the agent stored against the scripted OpenAI server -> ``deskbot finetune export`` ->
``train`` (the tiny model, a few dozen steps) -> ``merge`` (all in
``tests/finetune_chain.py``, once per session) -> the merged directory loads with the plain
``AutoModelForCausalLM``/``AutoTokenizer`` and writes the exported call -> the local backend
emits it as a parseable tool call -> the agent runs a full turn on ``DESKBOT_LLM=local`` (the
tool executed, the answer returned) -> ``deskbot serve-model`` answers the OpenAI SDK with
``tool_calls`` and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.agent import Agent, ConversationStore, ThreadKey
from bot.app import make_backend
from bot.embedded_pg import EmbeddedPostgres
from bot.settings import Settings
from bot.storage import Database
from finetune.local import LocalBackend
from finetune.toolcalls import parse_assistant
from tests.conftest import REPO
from tests.finetune_chain import (
    AGENT_ANSWER,
    AGENT_QUESTION,
    INSTRUCTIONS,
    STEPS,
    Chain,
    chain_once,
    hotel_cap,
)
from tools.base import Tool, ToolContext, ToolRegistry

pytestmark = pytest.mark.e2e

TOOLS = ToolRegistry([Tool.from_function(hotel_cap)])
ASKED = [
    {"role": "system", "content": INSTRUCTIONS},
    {"role": "user", "content": AGENT_QUESTION},
]


@pytest.fixture(scope="module")
def chain(pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return chain_once(pg_server, tmp_path_factory)


def _exported(chain: Chain) -> list[dict[str, Any]]:
    lines = chain.data.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_export_wrote_each_run_with_the_tools_it_offered(chain: Chain) -> None:
    assert (chain.export["runs"], chain.export["train"], chain.export["dropped"]) == (5, 5, {})
    examples = _exported(chain)
    osaka = next(e for e in examples if e["messages"][1]["content"] == AGENT_QUESTION)
    assert osaka["tools"] == TOOLS.schemas()  # what the agent offered, as it offered it
    assert [m["role"] for m in osaka["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert osaka["messages"][2]["tool_calls"][0]["function"] == {
        "name": "hotel_cap",
        "arguments": {"city": "Osaka"},
    }
    assert sorted(len(e["tools"]) for e in examples) == [0, 1, 1, 1]  # a run offered none
    assert chain.summary["steps"] == STEPS and chain.summary["examples"] == 4


async def test_the_model_trained_on_the_export_serves_the_agent(
    chain: Chain,
    make_settings: Callable[..., Settings],
    database: Database,
    tmp_path: Path,
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # the merged directory, loaded the plain way, writes the call it learnt
    tokenizer = AutoTokenizer.from_pretrained(chain.merged)
    model = AutoModelForCausalLM.from_pretrained(chain.merged).eval()
    prompt = tokenizer.apply_chat_template(
        ASKED, tools=TOOLS.schemas(), add_generation_prompt=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=64, do_sample=False)
    written = tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    (plain_call,) = parse_assistant(written).tool_calls
    assert json.loads(plain_call["function"]["arguments"]) == {"city": "Osaka"}

    # the local backend emits it as a parseable tool call
    completion = await LocalBackend(chain.merged).complete(ASKED, tools=TOOLS.schemas())
    (call,) = completion["choices"][0]["message"]["tool_calls"]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert call["function"]["name"] == "hotel_cap"
    assert json.loads(call["function"]["arguments"]) == {"city": "Osaka"}

    # the agent runs a full turn on DESKBOT_LLM=local: the tool runs, the answer comes back
    backend = make_backend(make_settings(llm="local", local_model=chain.merged))
    store = ConversationStore(database.engine)
    agent = Agent(backend, TOOLS, store, instructions=INSTRUCTIONS)
    answer = await agent.ask(ThreadKey("terminal", "chain"), AGENT_QUESTION, ToolContext.operator())
    await store.drain()
    await backend.close()
    assert answer.status == "completed", answer.error
    assert [(t.name, t.arguments, t.error) for t in answer.tool_calls] == [
        ("hotel_cap", {"city": "Osaka"}, None)
    ]
    assert answer.text == AGENT_ANSWER

    # serve-model answers the OpenAI SDK with tool_calls, then stops cleanly on SIGTERM
    _served_tool_call(chain.merged, tmp_path)


def _served_tool_call(merged: Path, home: Path) -> None:
    from openai import OpenAI

    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
        "DESKBOT_DATA_DIR": str(home / "data"),
        "DESKBOT_LOG_LEVEL": "WARNING",
    }
    script = Path(sys.executable).with_name("deskbot")
    with subprocess.Popen(
        [str(script), "serve-model", str(merged), "--port", "0"],
        env=env,
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert " at http://127.0.0.1:" in line, f"the server did not start: {line!r}"
            client = OpenAI(base_url=line.split(" at ", 1)[1].split()[0], api_key="-")
            reply = client.chat.completions.create(
                model=merged.name, messages=ASKED, tools=TOOLS.schemas()
            )
            client.close()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
    (served,) = reply.choices[0].message.tool_calls or []
    assert reply.choices[0].finish_reason == "tool_calls"
    assert served.function.name == "hotel_cap"
    assert json.loads(served.function.arguments) == {"city": "Osaka"}
