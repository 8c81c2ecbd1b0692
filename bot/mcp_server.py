"""deskbot's tools as a Model Context Protocol server (``deskbot mcp``).

The server lists exactly the tools the settings enable (the registry :func:`bot.app.open_app`
builds for the agent) with the same JSON schemas, and calls them through
:meth:`tools.base.Tool.call` with a :class:`~tools.base.ToolContext` made for each call
from the identity given on the command line, which decides what ``search_documents`` may
read. Citation numbers start at 1 in each result: MCP calls are independent requests (with
the 2026-07-28 protocol not even a session joins them), not the steps of one run.

A tool's refusal (a :class:`~tools.errors.ToolError`: bad argument, refused query, timeout)
and an unavailable service (a :class:`~tools.errors.FatalToolError`) both come back as an
MCP tool error (``isError``) whose text is the one-line message; any other exception is a
bug, logged with its traceback and reported the same way. An unknown tool name is a
protocol error (invalid params), as the MCP specification asks.

Transports: stdio (the client starts ``deskbot mcp`` itself; while serving, stray output
goes to stderr, never onto the wire) and streamable HTTP (``--http``, served by uvicorn on
``/mcp``, localhost by default with DNS-rebinding protection; SIGINT or SIGTERM stops it
gracefully, then the app closes and the command exits 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from bot.app import open_app
from bot.errors import ConfigError
from bot.settings import Settings
from knowledge.search import Scope
from tools.base import ToolContext, ToolOutput, ToolRegistry
from tools.errors import BaseToolError

__all__ = ["Identity", "McpTools", "serve"]

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "deskbot answers from the company's documents, databases and market data. Search the "
    "documents with search_documents (Korean or English) and cite passages as [n] with "
    "their titles; run_sql reads only (one SELECT)."
)


@dataclass(frozen=True)
class Identity:
    """Whom the server's callers act as (``--as-user``, ``--channel``, ``--role``).

    No identity is the operator, who reads every collection (like ``deskbot tools call``).
    A user alone is a private conversation, as a DM with the bot: public collections and
    the private ones allowed for the user's id or roles. A channel makes it that channel's
    scope: public collections and those allowed in the channel, as everyone there would
    read the answer.
    """

    user: str | None = None
    channel: str | None = None
    roles: tuple[str, ...] = ()

    @property
    def is_operator(self) -> bool:
        """True when no identity was given."""
        return not (self.user or self.channel or self.roles)

    def context(self) -> ToolContext:
        """A fresh tool context for this identity."""
        if self.is_operator:
            return ToolContext.operator()
        roles = frozenset({*self.roles, *([self.user] if self.user else [])})
        scope = Scope(
            channel_id=self.channel,
            user_id=self.user,
            roles=roles,
            private_conversation=self.channel is None,
        )
        return ToolContext(scope=scope, user_id=self.user, channel_id=self.channel)

    def describe(self) -> str:
        """Who the callers act as, for the log."""
        if self.is_operator:
            return "the operator (every collection)"
        parts = [("user", self.user), ("channel", self.channel), ("roles", ",".join(self.roles))]
        return ", ".join(f"{name} {value}" for name, value in parts if value)


class McpTools:
    """The MCP request handlers over one tool registry."""

    def __init__(self, tools: ToolRegistry, identity: Identity, *, timeout: float) -> None:
        self.tools = tools
        self.identity = identity
        self.timeout = timeout

    def server(self, version: str) -> Server[Any]:
        """A low-level MCP server answering ``tools/list`` and ``tools/call``."""
        return Server(
            "deskbot",
            version=version,
            instructions=INSTRUCTIONS,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
        )

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        """Every enabled tool, with the schema the agent's model gets."""
        listed = []
        for schema in self.tools.schemas():
            function = schema["function"]
            listed.append(
                types.Tool(
                    name=function["name"],
                    description=function["description"],
                    input_schema=function["parameters"],
                )
            )
        return types.ListToolsResult(tools=listed)

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        """Run one tool as the configured identity."""
        tool = self.tools.get(params.name)
        if tool is None:
            known = ", ".join(self.tools.names())
            raise MCPError(types.INVALID_PARAMS, f"no tool named {params.name!r}; tools: {known}")
        timeout = min(tool.timeout, self.timeout)
        try:
            async with asyncio.timeout(timeout):
                output = await tool.call(self.identity.context(), params.arguments or {})
        except TimeoutError:
            return _error(f"{tool.name} timed out after {timeout:g} s")
        except BaseToolError as exc:
            return _error(str(exc))
        except Exception as exc:
            log.exception("tool %s failed", tool.name)
            return _error(f"{tool.name} failed: {type(exc).__name__}: {exc}")
        data = output.data if isinstance(output, ToolOutput) else output
        data = json.loads(json.dumps(data, ensure_ascii=False, default=str))
        text = json.dumps(data, ensure_ascii=False)
        return types.CallToolResult(
            content=[types.TextContent(text=text)],
            structured_content=data if isinstance(data, dict) else None,
        )


def _error(message: str) -> types.CallToolResult:
    line = " ".join(message.split())
    return types.CallToolResult(content=[types.TextContent(text=line)], is_error=True)


async def serve(
    settings: Settings,
    identity: Identity,
    *,
    http: tuple[str, int] | None = None,
) -> None:
    """Open the app and serve its tools: over stdio, or over HTTP at ``http`` (host, port).

    For stdio, stdout is claimed before the app opens, so nothing printed on start-up (the
    embedded PostgreSQL included) reaches the wire; the client's first request waits in
    the pipe meanwhile.
    """
    from mcp.server.stdio import stdio_server

    version = importlib.metadata.version("deskbot")
    if http is not None:
        _check_port(*http)  # before the app starts anything
        async with open_app(settings) as app:
            server = McpTools(app.tools, identity, timeout=settings.tool_timeout).server(version)
            await _serve_http(server, *http, identity)
        return
    async with stdio_server() as (read_stream, write_stream), open_app(settings) as app:
        server = McpTools(app.tools, identity, timeout=settings.tool_timeout).server(version)
        log.info("deskbot mcp: stdio, as %s", identity.describe())
        await server.run(read_stream, write_stream, server.create_initialization_options())


def _check_port(host: str, port: int) -> None:
    """A port another process holds is one line, not uvicorn's exit after start-up."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"--port {port}: cannot listen on {host}: {exc.strerror}") from None


async def _serve_http(server: Server[Any], host: str, port: int, identity: Identity) -> None:
    import uvicorn

    class StopOnSignal(uvicorn.Server):
        """uvicorn's server, minus raising SIGINT/SIGTERM again after its graceful shutdown:
        the command then closes what it opened and exits 0, as ``deskbot worker`` does."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            stops = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(  # log_config=None: its lines go through deskbot's handler (masked)
        app, host=host, port=port, log_level="warning", lifespan="on", log_config=None
    )
    log.info("deskbot mcp: http://%s:%d/mcp, as %s", host, port, identity.describe())
    await StopOnSignal(config).serve()
