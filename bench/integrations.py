"""What the other front doors cost per search: MCP (stdio, HTTP) and LangChain vs in-process.

    .venv/bin/python bench/integrations.py [--rounds 30] [--cold-rounds 5] [--json]

The demo corpus (8 files, Korean and English) is ingested once into an embedded PostgreSQL
in a temporary data directory; every system then searches it as the operator with the demo's
document questions (``k=5``), each round in rotating order so drift on a shared machine hits
them alike:

- in-process tool: ``search_documents`` through the app's registry (``Tool.call``), what the
  agent runs;
- LangChain retriever: ``DeskbotRetriever.ainvoke`` over the same searcher (``k=5``);
- MCP stdio / MCP HTTP: ``call_tool`` from the ``mcp`` client on one warm connection each to
  a ``deskbot mcp`` process (stdio; ``--http --as-operator`` on a free port);
- ``deskbot tools call`` (the peer: what a script did before ``deskbot mcp``): one process
  per question, ``--cold-rounds`` rounds only (seconds each).

All servers share the embedded PostgreSQL the benchmark started (same data directory). Each
keeps its own query-vector cache, so from round two on every warm system searches with a
cached vector, as repeated questions do in production. Also reported: the time from starting
``deskbot mcp`` (stdio) to its first answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from bot.app import open_app
from bot.demo_data import DEMO_QUESTIONS, write_demo_corpus
from bot.ingesting import ingest_files
from bot.settings import Settings
from knowledge.langchain import DeskbotRetriever
from knowledge.search import Scope
from tools.base import ToolContext

SCRIPT = Path(sys.executable).with_name("deskbot")
QUESTIONS = [q for q in DEMO_QUESTIONS if "employees" not in q and "HNBT" not in q][:6]

Search = Callable[[str], Awaitable[int]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int) -> None:
    for _ in range(600):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return
    raise SystemExit(f"deskbot mcp --http never listened on {port}")


def passages(result: Any) -> int:
    assert not result.is_error, result.content
    return len(json.loads(result.content[0].text)["passages"])


def cold_tools_call(env: dict[str, str]) -> Search:
    async def search(query: str) -> int:
        args = json.dumps({"query": query, "k": 5})
        proc = await asyncio.create_subprocess_exec(
            str(SCRIPT), "tools", "call", "search_documents", "--args", args,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        return len(json.loads(out)["passages"])

    return search


async def main(rounds: int, cold_rounds: int, as_json: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="deskbot-bench-integrations-"))
    env = {**os.environ, "DESKBOT_DATA_DIR": str(folder / "data"), "DESKBOT_LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    settings = Settings(_env_file=None, data_dir=folder / "data")  # type: ignore[call-arg]
    async with open_app(settings) as app:
        summary = await ingest_files(app.knowledge, "demo", write_demo_corpus(folder / "docs"))
        print(f"demo corpus: {len(summary.stored)} files stored", file=sys.stderr)
        tool = app.tools.get("search_documents")
        assert tool is not None
        retriever = DeskbotRetriever(searcher=app.knowledge.searcher, scope=Scope.everything())

        async def in_process(query: str) -> int:
            out = await tool.call(ToolContext.operator(), {"query": query, "k": 5})
            return len(out.data["passages"])

        async def langchain(query: str) -> int:
            return len(await retriever.ainvoke(query))

        started = time.perf_counter()
        params = StdioServerParameters(command=str(SCRIPT), args=["mcp"], env=env)
        port = free_port()
        http = await asyncio.create_subprocess_exec(
            str(SCRIPT), "mcp", "--http", "--as-operator", "--port", str(port), env=env
        )
        try:
            async with Client(stdio_client(params), read_timeout_seconds=300) as stdio:
                first = passages(await stdio.call_tool("search_documents", {"query": "VPN"}))
                startup = time.perf_counter() - started
                await wait_for_port(port)
                async with Client(f"http://127.0.0.1:{port}/mcp") as over_http:

                    async def mcp_stdio(query: str) -> int:
                        args = {"query": query, "k": 5}
                        return passages(await stdio.call_tool("search_documents", args))

                    async def mcp_http(query: str) -> int:
                        args = {"query": query, "k": 5}
                        return passages(await over_http.call_tool("search_documents", args))

                    systems: dict[str, Search] = {
                        "in-process tool": in_process,
                        "LangChain retriever": langchain,
                        "MCP stdio": mcp_stdio,
                        "MCP HTTP": mcp_http,
                        "deskbot tools call (a process per call)": cold_tools_call(env),
                    }
                    times = await measure(systems, rounds, cold_rounds)
        finally:
            http.send_signal(signal.SIGTERM)
            await asyncio.wait_for(http.wait(), timeout=60)
    report(times, startup, first, as_json)


async def measure(
    systems: dict[str, Search], rounds: int, cold_rounds: int
) -> dict[str, list[float]]:
    """Per-search seconds, rotating the systems' order each round; round one is warm-up."""
    times: dict[str, list[float]] = defaultdict(list)
    names = list(systems)
    for number in range(rounds + 1):
        order = names[number % len(names) :] + names[: number % len(names)]
        for name in order:
            if name.startswith("deskbot tools call") and number > cold_rounds:
                continue
            for query in QUESTIONS:
                start = time.perf_counter()
                found = await systems[name](query)
                if number > 0:
                    times[name].append(time.perf_counter() - start)
                assert found > 0, (name, query)
    return times


def report(times: dict[str, list[float]], startup: float, first: int, as_json: bool) -> None:
    base = statistics.median(times["in-process tool"])
    rows = [
        {
            "system": name,
            "searches": len(values),
            "median_ms": round(statistics.median(values) * 1000, 2),
            "p95_ms": round(sorted(values)[int(0.95 * (len(values) - 1))] * 1000, 2),
            "x_in_process": round(statistics.median(values) / base, 2),
        }
        for name, values in sorted(times.items(), key=lambda item: statistics.median(item[1]))
    ]
    if as_json:
        print(json.dumps({"rows": rows, "mcp_stdio_first_answer_s": round(startup, 2)}))
        return
    print(f"{'system':<42} {'searches':>8} {'median ms':>10} {'p95 ms':>9} {'x in-process':>13}")
    for row in rows:
        print(
            f"{row['system']:<42} {row['searches']:>8} {row['median_ms']:>10} "
            f"{row['p95_ms']:>9} {row['x_in_process']:>13}"
        )
    print(f"deskbot mcp (stdio): start to first answer {startup:.2f} s ({first} passages)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cold-rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.cold_rounds, options.json))
