"""The issue's chain, built once per test session: the model every local-model test uses.

1. The agent answers a handful of questions against the scripted OpenAI server, with real
   tools, and stores its runs in PostgreSQL (each run records the tools it offered).
2. ``deskbot finetune export`` writes them in the training form; one conversation (Tokyo)
   is moved to ``data.eval.jsonl`` as the held-out example.
3. ``deskbot finetune train`` trains a LoRA adapter on the tiny model for a few dozen
   full-batch steps, at a rate that makes the tiny model learn every exported assistant turn
   by heart (seeded: the same weights each time); 4. ``deskbot finetune merge`` merges it.
   ``train`` runs as a process of its own, as a user runs it; export and merge run in this
   process through click's runner (no second import of torch and transformers).

The exported turns are what the tests then ask of the merged model: the hotel-cap call and
answer (an agent turn with a real tool), a malformed call (a "model" that learnt one), and
the backend contract's turns (a text answer without tools, a search call, the cited answer).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.embedded_pg import EmbeddedPostgres
from finetune.tiny import init_tiny
from tests.conftest import TEMPLATE_DB
from tests.fakes.openai_server import ScriptedOpenAI
from tests.finetune_support import deskbot, deskbot_in_process
from tests.secret_values import OPENAI_KEY
from tools.base import Tool, ToolRegistry

__all__ = [
    "AGENT_ANSWER",
    "AGENT_QUESTION",
    "BROKEN_QUESTION",
    "CONTRACT_ANSWER",
    "HELD_OUT_QUESTION",
    "INSTRUCTIONS",
    "STEPS",
    "TRAIN_FLAGS",
    "Chain",
    "build_chain",
    "chain_once",
    "hotel_cap",
]

INSTRUCTIONS = "You answer travel policy questions with the tools."
AGENT_QUESTION = "How much may I spend on a hotel in Osaka?"
AGENT_ANSWER = "You may spend up to 150 USD a night in Osaka."
HELD_OUT_QUESTION = "How much may I spend on a hotel in Tokyo?"
BROKEN_QUESTION = "Look up the hotel cap, but break the call."
BROKEN_CALL = '<tool_call>\n{"name": "hotel_cap", "arguments": {"city": \n</tool_call>'
CONTRACT_ANSWER = "The hotel cap in Tokyo is 180 USD [1]."
CAPS = {"Osaka": 150, "Tokyo": 180}

STEPS = 100  # every exported turn is word-perfect by 80 steps at this rate (60: 2 of 6)
# Full batch (4 examples), rank 64 (the tiny model's width), seeded; no --max-steps here.
TRAIN_FLAGS = (
    "--learning-rate", "0.005", "--batch-size", "4", "--max-length", "1024",
    "--lora-r", "64", "--lora-alpha", "128", "--lora-dropout", "0",
    "--save-steps", "48", "--eval-steps", "50", "--logging-steps", "4", "--seed", "0",
    "--no-progress",
)  # fmt: skip
_BUILT: dict[str, Chain] = {}


async def hotel_cap(city: str) -> dict[str, Any]:
    """The most a night in a hotel may cost in a city, in US dollars.

    Args:
        city: The city, in English.
    """
    return {"city": city, "cap_usd": CAPS.get(city)}


@dataclass(frozen=True)
class Chain:
    """What each step of the chain wrote."""

    tiny: Path  # the base model
    data: Path  # exported training examples (data.eval.jsonl beside it)
    export: dict[str, Any]  # export's --json report
    adapter: Path  # train's --out
    summary: dict[str, Any]  # train's --json summary
    merged: Path  # merge's --out


def build_chain(pg: EmbeddedPostgres, folder: Path) -> Chain:
    """Store the runs, export, train and merge under ``folder`` (about half a minute)."""
    url = _fresh_database(pg)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # its own event loop
        pool.submit(asyncio.run, _store_runs(url)).result()
    tiny = init_tiny(folder / "tiny", seed=0)
    data = folder / "data.jsonl"
    run = deskbot_in_process(folder / "data")
    exported = run(
        "finetune", "export", "--out", str(data), "--eval-share", "0", "--json",
        env={"DATABASE_URL": url},
    )  # fmt: skip
    assert exported.code == 0, exported.stderr
    _hold_out(data, HELD_OUT_QUESTION)
    # train as the script runs it: the one step of the chain run as a process of its own
    args = ("finetune", "train", "--base", str(tiny), "--data", str(data), "--out", "adapter")
    # One thread: the tiny model's matrices are too small to share out, and on a busy machine
    # two threads wait for each other (30 steps at load 4: 9 s on one, 24-44 s on two).
    single = {"OMP_NUM_THREADS": "1"}
    trained = deskbot(
        *args, *TRAIN_FLAGS, "--max-steps", str(STEPS), "--json", cwd=folder, env=single
    )
    assert trained.code == 0, trained.stderr
    merge = ("finetune", "merge", "--adapter", str(folder / "adapter"))
    merged = run(*merge, "--out", str(folder / "merged"), "--shard-size", "100KB")
    assert merged.code == 0, merged.stderr
    return Chain(
        tiny=tiny,
        data=data,
        export=json.loads(exported.stdout),
        adapter=folder / "adapter",
        summary=json.loads(trained.stdout),
        merged=folder / "merged",
    )


def chain_once(pg: EmbeddedPostgres, factory: pytest.TempPathFactory) -> Chain:
    """The session's chain, built on first use and then shared by every test module."""
    if "chain" not in _BUILT:
        _BUILT["chain"] = build_chain(pg, factory.mktemp("finetune-chain"))
    return _BUILT["chain"]


def _fresh_database(pg: EmbeddedPostgres) -> str:
    name = f"chain_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.url("postgres", driver=None), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    return pg.url(name, driver=None)


async def _store_runs(url: str) -> None:
    """The agent's runs, each in its own thread, answered by the scripted server."""
    from bot.agent import Agent, ConversationStore, OpenAIBackend, ThreadKey
    from bot.settings import Settings
    from bot.storage import open_database
    from tests import test_backend_contract as contract
    from tools.base import ToolContext

    hotel = ToolRegistry([Tool.from_function(hotel_cap)])
    search = ToolRegistry([Tool.from_function(contract.search_documents)])
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    database = await open_database(settings, migrate=False)
    store = ConversationStore(database.engine)
    with ScriptedOpenAI() as server:
        backend = OpenAIBackend(model="teacher", api_key=OPENAI_KEY, base_url=server.base_url)
        system = "You answer questions about company documents."
        tokyo_answer = "You may spend up to 180 USD a night in Tokyo."
        search_call = ("search_documents", {"query": contract.QUESTION})
        osaka, tokyo = ("hotel_cap", {"city": "Osaka"}), ("hotel_cap", {"city": "Tokyo"})
        lessons: list[tuple[ToolRegistry, str, str, list[Any], str]] = [
            (hotel, INSTRUCTIONS, AGENT_QUESTION, [osaka], AGENT_ANSWER),
            (hotel, INSTRUCTIONS, BROKEN_QUESTION, [], BROKEN_CALL),
            (ToolRegistry(), system, contract.QUESTION, [], CONTRACT_ANSWER),
            (search, system, contract.QUESTION, [search_call], CONTRACT_ANSWER),
            (hotel, INSTRUCTIONS, HELD_OUT_QUESTION, [tokyo], tokyo_answer),
        ]  # fmt: skip
        for number, (tools, instructions, question, calls, answer) in enumerate(lessons):
            if calls:
                server.reply_tool_calls(*calls)
            server.reply_text(answer)
            agent = Agent(backend, tools, store, instructions=instructions)
            thread = ThreadKey("slack", f"lesson-{number}")
            done = await agent.ask(thread, question, ToolContext.operator())
            assert done.status == "completed", done.error
        await store.drain()
        await backend.close()
        assert not server.errors, server.errors
    await database.close()


def _hold_out(data: Path, question: str) -> None:
    """Move the example asking ``question`` to ``data.eval.jsonl``."""
    lines = data.read_text(encoding="utf-8").splitlines()
    held = [line for line in lines if json.dumps(question) in line]
    assert len(held) == 1, f"{question!r} was not exported once"
    data.write_text("".join(f"{line}\n" for line in lines if line not in held), encoding="utf-8")
    data.with_name("data.eval.jsonl").write_text(held[0] + "\n", encoding="utf-8")
