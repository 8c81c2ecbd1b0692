"""Agent overhead per turn beyond model time: deskbot vs a LangChain agent, in one run.

    .venv/bin/python bench/agent.py [--turns 200] [--warmup 20] [--json] [--profile]

One turn is one question that needs two tools: the scripted OpenAI-compatible server
(``tests/fakes/openai_server.py``, a real local HTTP server) answers the first request with
two parallel tool calls (``get_weather``, ``add``) and the second with the final text. The
systems, each run once per round in rotating order so drift hits them alike:

- raw client: the same two Chat Completions requests made directly with ``AsyncOpenAI``
  (no agent at all): the "model time" every agent pays, here server + HTTP + SDK parsing;
- deskbot (new thread): ``Agent.ask`` with ``OpenAIBackend`` and a real, migrated embedded
  PostgreSQL (thread, run, messages and steps stored: part of deskbot's cost), a new thread
  per turn (the fair match for a stateless LangChain agent);
- deskbot (same thread): every turn in one thread, so history is read and sent too (its
  requests grow, up to 50 earlier messages, so its "model time" is larger than the raw one);
- deskbot (no DB): the same agent on an in-memory store, to tell the loop from the writes;
- LangChain: ``langchain.agents.create_agent`` with ``langchain_openai.ChatOpenAI`` on the
  same server, the same two async tools and the same system prompt, no checkpointer (it
  stores nothing);
- LangChain + PostgresSaver: the same agent checkpointing every turn, in a new thread, to the
  same PostgreSQL; only when ``langgraph-checkpoint-postgres`` is importable, e.g.
  ``pip install --no-deps --target /tmp/lcextra langgraph-checkpoint-postgres`` and
  ``PYTHONPATH=/tmp/lcextra``.

Overhead of a turn = its wall time minus the raw client's median turn time (p95 overhead is
p95 wall minus that median). Both agents use the openai SDK underneath, so the subtraction
leaves what the agent itself adds. ``--profile`` adds a breakdown of deskbot's new-thread
turn (wall time inside the store and the backend, calls per turn) and its top cProfile
entries. The LangChain rows need the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bot.agent import Agent
from bot.agent.backends import OpenAIBackend
from bot.agent.prompts import SYSTEM_PROMPT
from bot.agent.store import ConversationStore, RunRecord, ThreadKey
from bot.settings import Settings
from bot.storage import Database, open_database
from tools.base import Tool, ToolContext, ToolRegistry

REPO = Path(__file__).resolve().parent.parent
QUESTION = "What is the weather in Seoul, and what is 2 + 3?"
ANSWER = "It is 21 °C and sunny in Seoul, and 2 + 3 = 5."
CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("get_weather", {"city": "Seoul"}),
    ("add", {"a": 2, "b": 3}),
)

Turn = Callable[[], Awaitable[str]]


async def get_weather(city: str) -> dict[str, Any]:
    """The current weather in a city.

    Args:
        city: The city's name, in English.
    """
    return {"city": city, "celsius": 21, "sky": "sunny"}


async def add(a: float, b: float) -> float:
    """The sum of two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


# --- the systems ------------------------------------------------------------------------


def raw_turn(base_url: str, model: str) -> Turn:
    """The two requests of a turn, straight through the openai SDK."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="test", max_retries=2)
    schemas = ToolRegistry([Tool.from_function(get_weather), Tool.from_function(add)]).schemas()
    opening = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": QUESTION}]

    async def turn() -> str:
        first = await client.chat.completions.create(
            model=model, messages=opening, tools=schemas, parallel_tool_calls=True
        )
        message = first.choices[0].message
        calls = message.tool_calls or []
        follow_up = [
            *opening,
            message.model_dump(exclude_none=True),
            *({"role": "tool", "tool_call_id": c.id, "content": "{}"} for c in calls),
        ]
        second = await client.chat.completions.create(
            model=model, messages=follow_up, tools=schemas, parallel_tool_calls=True
        )
        return second.choices[0].message.content or ""

    return turn


def deskbot_agent(base_url: str, model: str, database: Database) -> Agent:
    backend = OpenAIBackend(model=model, api_key="test", base_url=base_url, max_retries=2)
    tools = ToolRegistry([Tool.from_function(get_weather), Tool.from_function(add)])
    return Agent(backend, tools, ConversationStore(database.engine))


class MemoryStore:
    """ConversationStore's write path in memory: deskbot's loop without the database."""

    async def begin_run(self, thread: ThreadKey, **values: Any) -> tuple[RunRecord, list[Any]]:
        thread_id = uuid.uuid5(uuid.NAMESPACE_URL, thread.external_id)
        return RunRecord(thread_id, uuid.uuid4()), []

    def write(self, record: RunRecord, *, outcome: dict[str, Any] | None = None) -> None:
        record.take()

    async def drain(self) -> None:
        return None


def deskbot_turn(agent: Agent, *, same_thread: bool, drain: bool = False) -> Turn:
    fixed = ThreadKey("api", f"bench-same-{uuid.uuid4().hex}")

    async def turn() -> str:
        key = fixed if same_thread else ThreadKey("api", f"bench-{uuid.uuid4().hex}")
        answer = await agent.ask(key, QUESTION, ToolContext())
        if drain:  # wait until the run's steps and outcome are stored, too
            await agent.store.drain()
        if answer.status != "completed" or len(answer.tool_calls) != 2:
            raise RuntimeError(f"deskbot turn went wrong: {answer.status} {answer.error}")
        return answer.text

    return turn


def langchain_turn(base_url: str, model: str, checkpointer: Any = None) -> Turn:
    """The idiomatic LangChain 1.x agent: ``create_agent`` + ``ChatOpenAI``."""
    from langchain.agents import create_agent
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model=model, base_url=base_url, api_key="test", max_retries=2)  # type: ignore[arg-type]
    agent = create_agent(
        llm, [tool(get_weather), tool(add)], system_prompt=SYSTEM_PROMPT, checkpointer=checkpointer
    )

    async def turn() -> str:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}  # a new thread per turn
        state = await agent.ainvoke(
            {"messages": [{"role": "user", "content": QUESTION}]},
            config,  # type: ignore[arg-type]
        )
        messages = state["messages"]
        if sum(m.type == "tool" for m in messages) != 2:
            raise RuntimeError("LangChain turn did not run both tools")
        return str(messages[-1].content)

    return turn


# --- measuring --------------------------------------------------------------------------


async def timed(server: Any, turn: Turn) -> float:
    """Seconds one turn takes, with its two replies scripted first."""
    server.reply_tool_calls(*CALLS)
    server.reply_text(ANSWER)
    began = time.perf_counter()
    text = await turn()
    elapsed = time.perf_counter() - began
    if text != ANSWER or server.pending or server.errors:
        raise RuntimeError(f"turn went wrong: {text!r}, {server.pending} left, {server.errors}")
    return elapsed


async def measure(
    server: Any, systems: dict[str, Turn], turns: int, warmup: int
) -> dict[str, list[float]]:
    """Per-turn seconds of each system, run round by round in rotating order."""
    names = list(systems)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(warmup + turns):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = await timed(server, systems[name])
            if round_ >= warmup:
                times[name].append(seconds)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def summarize(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    base = statistics.median(times["raw client"])
    rows = {}
    for name, values in times.items():
        wall50, wall95 = statistics.median(values), p95(values)
        rows[name] = {
            "wall_p50_ms": wall50 * 1000,
            "wall_p95_ms": wall95 * 1000,
            "overhead_p50_ms": (wall50 - base) * 1000,
            "overhead_p95_ms": (wall95 - base) * 1000,
        }
    return rows


def print_table(rows: dict[str, dict[str, float]], turns: int, model: str) -> None:
    print(f"{turns} turns per system, 2 parallel tool calls + final text each (model {model!r})")
    print(f"{'system':<24}{'wall p50':>10}{'wall p95':>10}{'overhead p50':>14}{'p95':>8}  ms")
    for name, row in rows.items():
        print(
            f"{name:<24}{row['wall_p50_ms']:>10.1f}{row['wall_p95_ms']:>10.1f}"
            f"{row['overhead_p50_ms']:>14.1f}{row['overhead_p95_ms']:>8.1f}"
        )


def ratios(rows: dict[str, dict[str, float]]) -> dict[str, float]:
    """LangChain's p50 overhead over deskbot's, for each pair of rows (>1: deskbot is lower)."""
    return {
        f"{theirs} / {ours}": rows[theirs]["overhead_p50_ms"] / rows[ours]["overhead_p50_ms"]
        for theirs in rows
        if theirs.startswith("LangChain")
        for ours in rows
        if ours.startswith("deskbot") and rows[ours]["overhead_p50_ms"] > 0
    }


# --- where deskbot's time goes (--profile) ------------------------------------------------


class Spans:
    """Wall time spent inside groups of methods, overlapping calls counted once."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._open: dict[str, int] = defaultdict(int)
        self._since: dict[str, float] = {}

    def wrap(self, group: str, owner: Any, name: str) -> None:
        """Replace ``owner.name`` (an async method) by a timed one, on this instance only."""
        method = getattr(owner, name)

        @functools.wraps(method)
        async def timed_method(*args: Any, **kwargs: Any) -> Any:
            self.calls[f"{group}.{name}"] += 1
            if self._open[group] == 0:
                self._since[group] = time.perf_counter()
            self._open[group] += 1
            try:
                return await method(*args, **kwargs)
            finally:
                self._open[group] -= 1
                if self._open[group] == 0:
                    self.seconds[group] += time.perf_counter() - self._since[group]

        setattr(owner, name, timed_method)


async def breakdown(server: Any, agent: Agent, turns: int) -> dict[str, float]:
    """Per new-thread turn: ms inside the store and the backend, and calls to each."""
    spans = Spans()
    for name in ("begin_run", "drain"):
        spans.wrap("store", agent.store, name)
    spans.wrap("backend", agent.backend, "complete")
    turn = deskbot_turn(agent, same_thread=False)
    total = sum([await timed(server, turn) for _ in range(turns)])
    result = {f"{group} ms": s * 1000 / turns for group, s in spans.seconds.items()}
    result["turn ms"] = total * 1000 / turns
    result["rest ms (loop, tools, JSON)"] = result["turn ms"] - sum(
        v for k, v in result.items() if k != "turn ms"
    )
    result |= {f"calls {label}": n / turns for label, n in sorted(spans.calls.items())}
    return result


async def profile(server: Any, agent: Agent, turns: int) -> str:
    """Top functions by own time over ``turns`` new-thread turns (main thread only)."""
    turn = deskbot_turn(agent, same_thread=False)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(turns):
        await timed(server, turn)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    return out.getvalue()


# --- the run ------------------------------------------------------------------------------


def langchain_available() -> bool:
    try:
        import langchain.agents  # noqa: F401
        import langchain_openai  # noqa: F401
    except ImportError:
        return False
    return True


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))  # tests.fakes is not an installed package
    from tests.fakes.openai_server import ScriptedOpenAI

    report: dict[str, Any] = {"turns": args.turns, "warmup": args.warmup, "model": args.model}
    with tempfile.TemporaryDirectory() as tmp, ScriptedOpenAI(model=args.model) as server:
        settings = Settings(_env_file=None, data_dir=Path(tmp), database_url=None)  # type: ignore[call-arg]
        database = await open_database(settings)
        try:
            async with AsyncExitStack() as stack:
                systems = await make_systems(server.base_url, args.model, database, stack)
                times = await measure(server, systems, args.turns, args.warmup)
            report["rows"] = summarize(times)
            report["ratios_overhead_p50"] = ratios(report["rows"])
            if args.profile:
                agent = deskbot_agent(server.base_url, args.model, database)
                report["breakdown"] = await breakdown(server, agent, args.turns)
                report["profile"] = await profile(server, agent, min(args.turns, 100))
        finally:
            await database.close()
    return report


async def make_systems(
    base_url: str, model: str, database: Database, stack: AsyncExitStack
) -> dict[str, Turn]:
    agent = deskbot_agent(base_url, model, database)
    offline = deskbot_agent(base_url, model, database)
    offline.store = MemoryStore()  # type: ignore[assignment]
    systems = {
        "raw client": raw_turn(base_url, model),
        "deskbot (new thread)": deskbot_turn(agent, same_thread=False),
        "deskbot (+ writes done)": deskbot_turn(agent, same_thread=False, drain=True),
        "deskbot (same thread)": deskbot_turn(agent, same_thread=True),
        "deskbot (no DB)": deskbot_turn(offline, same_thread=False),
    }
    if not langchain_available():
        print("langchain-openai is not installed: no LangChain rows", file=sys.stderr)
        return systems
    systems["LangChain"] = langchain_turn(base_url, model)
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        print(
            "langgraph-checkpoint-postgres is not importable: no PostgresSaver row", file=sys.stderr
        )
        return systems
    url = database.engine.url.render_as_string(hide_password=False)
    saver = await stack.enter_async_context(
        AsyncPostgresSaver.from_conn_string(url.replace("postgresql+psycopg", "postgresql"))
    )
    await saver.setup()
    systems["LangChain + PostgresSaver"] = langchain_turn(base_url, model, saver)
    return systems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200, help="timed turns per system")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument("--model", default="gpt-4.1-mini", help="model name sent to the server")
    parser.add_argument("--profile", action="store_true", help="break deskbot's turn down")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print_table(report["rows"], args.turns, args.model)
    print("overhead p50 ratios (>1: deskbot lower):")
    for pair, ratio in report["ratios_overhead_p50"].items():
        print(f"  {pair:<52}{ratio:6.2f}x")
    if args.profile:
        print("\ndeskbot (new thread), per turn:")
        for label, value in report["breakdown"].items():
            print(f"  {label:<32}{value:8.2f}")
        print(report["profile"])


if __name__ == "__main__":
    main()
