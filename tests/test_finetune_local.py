"""The local backend: a model on disk answering the agent in-process, tool calls included.

The model is the tiny one trained on the agent's own exported runs until it knows them by
heart (``tests/finetune_chain.py``, built once per session), so its greedy output is known: a
tool call, an answer, a malformed call. ``tests/test_finetune_chain.py`` runs the agent's full
turn and serve-model on it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.agent import Agent, ConversationStore, ThreadKey
from bot.app import LocalModelBackend, make_backend
from bot.embedded_pg import EmbeddedPostgres
from bot.errors import ConfigError
from bot.settings import Settings
from bot.storage import Database
from finetune.local import LocalBackend, LocalModelError, describe_model
from finetune.tiny import init_tiny
from tests.conftest import CliResult, FreshDatabase
from tests.finetune_chain import (
    AGENT_QUESTION,
    BROKEN_QUESTION,
    INSTRUCTIONS,
    Chain,
    chain_once,
    hotel_cap,
)
from tests.finetune_support import deskbot_in_process
from tests.test_backend_contract import _conversation as contract_conversation
from tools.base import Tool, ToolContext, ToolRegistry
from tools.chat_backend import ChatBackend

pytestmark = pytest.mark.integration


@pytest.fixture
def deskbot_cli(tmp_path: Path) -> Callable[..., CliResult]:
    """``deskbot`` through click's runner in this process (``run_cli`` without the process)."""
    return deskbot_in_process(tmp_path / "data")


TOOLS = ToolRegistry([Tool.from_function(hotel_cap)])
KEY = ThreadKey("terminal", "local-model")


@pytest.fixture(scope="module")
def chain(pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return chain_once(pg_server, tmp_path_factory)


@pytest.fixture(scope="module")
def taught(chain: Chain) -> Path:
    """The merged model trained from the export."""
    return chain.merged


@pytest.fixture
def local_settings(make_settings: Callable[..., Settings], taught: Path) -> Settings:
    return make_settings(llm="local", local_model=taught)


@pytest.fixture
async def store(database: Database) -> AsyncIterator[ConversationStore]:
    conversations = ConversationStore(database.engine)
    yield conversations
    await conversations.drain()


def _asked(question: str = AGENT_QUESTION) -> list[Any]:
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": question},
    ]


async def test_a_malformed_tool_call_ends_the_run_like_any_model_failure(
    local_settings: Settings, store: ConversationStore
) -> None:
    agent = Agent(make_backend(local_settings), TOOLS, store, instructions=INSTRUCTIONS)

    answer = await agent.ask(KEY, BROKEN_QUESTION, ToolContext.operator())

    assert answer.status == "failed"
    assert answer.text.startswith("I could not get an answer from the language model")
    assert answer.error is not None and "tool call is not JSON" in answer.error
    assert answer.tool_calls == []


async def test_a_call_cut_off_by_max_new_tokens_says_so(taught: Path) -> None:
    backend = LocalModelBackend(LocalBackend(taught, max_new_tokens=8))

    with pytest.raises(Exception, match=r"cut off at 8 new tokens") as raised:
        await backend.complete(_asked(), tools=TOOLS.schemas())

    assert type(raised.value).__name__ == "BackendError"


async def test_a_text_turn_stops_at_max_new_tokens_with_finish_length(taught: Path) -> None:
    backend = LocalBackend(taught, max_new_tokens=4)

    completion = await backend.complete(contract_conversation())  # taught a longer answer

    assert completion["usage"]["completion_tokens"] == 4
    assert completion["choices"][0]["finish_reason"] == "length"


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model untaught: it rambles in Korean and never says it is done."""
    return init_tiny(tmp_path_factory.mktemp("random"), seed=0)


async def test_streamed_korean_text_joins_up_to_the_content(random_model: Path) -> None:
    backend = LocalBackend(random_model, max_new_tokens=48)
    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    completion = await backend.complete([{"role": "user", "content": "hello"}], on_text=collect)

    content = completion["choices"][0]["message"]["content"]
    assert "".join(pieces) == content
    assert any("\uac00" <= ch <= "\ud7a3" for ch in content)  # Hangul, split across tokens
    assert len(pieces) > 5 and "\ufffd" not in content


async def test_generation_leaves_the_event_loop_free_and_a_cancelled_turn_stops(
    random_model: Path,
) -> None:
    backend = LocalBackend(random_model, max_new_tokens=3000)
    await backend.load()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await backend.complete([{"role": "user", "content": "hello"}])
    began = time.perf_counter()
    backend.max_new_tokens = 5
    second = await backend.complete([{"role": "user", "content": "hello"}])
    waited = time.perf_counter() - began
    ticker.cancel()

    assert ticks >= 20  # the loop ran all along (50 ticks if nothing blocked it)
    assert second["usage"]["completion_tokens"] == 5
    assert waited < 2.0  # the cancelled turn stopped instead of generating 3000 tokens


async def test_the_base_with_the_trained_adapter_answers_like_the_merged_model(
    chain: Chain,
) -> None:
    backend = LocalBackend(chain.tiny, adapter=chain.adapter)

    completion = await backend.complete(_asked(), tools=TOOLS.schemas())

    (call,) = completion["choices"][0]["message"]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"city": "Osaka"}
    assert backend.model == f"{chain.tiny.name}+adapter"
    info = describe_model(chain.tiny, adapter=chain.adapter)
    assert info.parameters > describe_model(chain.tiny).parameters


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
async def test_a_merged_directory_answers_exactly_as_base_plus_adapter(
    tmp_path: Path, random_model: Path
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.merge import merge

    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapted = get_peft_model(AutoModelForCausalLM.from_pretrained(random_model), lora)
    adapted.save_pretrained(tmp_path / "adapter")  # random B: the adapter changes the output
    AutoTokenizer.from_pretrained(random_model).save_pretrained(tmp_path / "adapter")
    merged = merge(tmp_path / "adapter", tmp_path / "merged", shard_size="200KB")
    asked = [{"role": "user", "content": "hello"}]

    def turn(completion: dict[str, Any]) -> tuple[str, int]:
        return completion["choices"][0]["message"]["content"], completion["usage"]["total_tokens"]

    with_adapter = turn(
        await LocalBackend(random_model, adapter=tmp_path / "adapter").complete(asked)
    )
    from_merged = turn(await LocalBackend(merged.out).complete(asked))
    base_alone = turn(await LocalBackend(random_model).complete(asked))

    assert from_merged == with_adapter
    assert base_alone != with_adapter
    assert merged.shards > 1  # the sharded layout loads too
    assert describe_model(merged.out).parameters == describe_model(random_model).parameters


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "DESKBOT_LOCAL_MODEL: required when DESKBOT_LLM=local"),
        ({"local_model": "nowhere"}, "DESKBOT_LOCAL_MODEL: nowhere: no such directory"),
        ({"local_adapter": "nowhere"}, "DESKBOT_LOCAL_ADAPTER: nowhere: no such directory"),
        ({"local_adapter": "."}, "not a LoRA adapter directory (no adapter_config.json)"),
    ],
    ids=["unset", "missing-model", "missing-adapter", "not-an-adapter"],
)
def test_a_missing_model_is_a_one_line_config_error(
    make_settings: Callable[..., Settings], taught: Path, values: dict[str, str], message: str
) -> None:
    settings = make_settings(llm="local", **({"local_model": taught} if values else {}) | values)

    with pytest.raises(ConfigError) as raised:
        make_backend(settings)

    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_local_backend_is_a_chat_backend_and_counts_with_its_tokenizer(
    local_settings: Settings,
) -> None:
    backend: ChatBackend = make_backend(local_settings)

    assert backend.name == "local"
    assert local_settings.llm_configured
    assert backend.count_tokens("hello") < backend.count_tokens("hello " * 50)


def test_a_bad_directory_is_a_local_model_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    with pytest.raises(LocalModelError, match=r"not a model directory \(no config.json\)"):
        LocalBackend(tmp_path / "empty")


@pytest.mark.e2e
def test_doctor_reports_the_local_model(
    deskbot_cli: Callable[..., CliResult], taught: Path, fresh_database: FreshDatabase
) -> None:
    env = {
        "DESKBOT_LLM": "local",
        "DESKBOT_LOCAL_MODEL": str(taught),
        "DATABASE_URL": fresh_database.url,
    }

    result = deskbot_cli("doctor", "--json", env=env)

    assert result.code == 0, result.stderr
    (llm,) = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "llm"]
    assert llm["status"] == "ok"
    assert str(taught) in llm["detail"]
    assert "parameters on cpu (fp32)" in llm["detail"]
    assert "chat template takes tools" in llm["detail"]
