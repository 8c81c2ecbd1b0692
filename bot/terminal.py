"""The terminal chat: the local adapter, for trying deskbot and for operators.

It turns typed lines into agent runs in one ``terminal`` thread (kept across restarts in
``$DESKBOT_DATA_DIR/terminal_session``), streams the answer as it is written, then lists
the cited sources. Slash commands reach the tools directly: ``/sql``, ``/stock``,
``/classify``, plus ``/ingest``, ``/new`` and ``/help``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown

from bot.agent.loop import Answer
from bot.app import App
from bot.ingesting import ingest_files
from bot.messages import ThreadKey
from bot.rendering import source_line, sources_of
from knowledge.errors import KnowledgeError
from tools.base import ToolContext, ToolError, ToolOutput

__all__ = ["TerminalChat", "finish_answer", "print_sources"]

HELP = """\
Ask anything in Korean or English; answers cite the documents they come from.

  /sql SELECT ...              run a read-only SQL query on the company database
  /stock TICKER [START [END]]  a quote, or prices between two dates (YYYY-MM-DD)
  /classify TEXT               classify a comment (hate / offensive / none)
  /ingest PATH [COLLECTION]    add files or a folder to the documents (default: local)
  /new                         start a new conversation
  /help                        this help;  /quit (or Ctrl-D) to leave
"""


def print_sources(console: Console, answer: Answer, *, indent: str = "") -> None:
    """The answer's cited sources, one dim line each: ``[n] Title · p. 3 · Section · file``."""
    for source in sources_of(answer.citations):
        line = indent + source_line(source)
        console.print(line, style="dim", highlight=False, markup=False)


def finish_answer(console: Console, answer: Answer, streamed: str, *, indent: str = "") -> None:
    """End an answer whose text was streamed: what was not streamed, then its sources.

    A bound's or a failure's message replaces the answer without being streamed, so it is
    printed here; an answer streamed whole is not printed twice.
    """
    if not streamed.strip().endswith(answer.text.strip()[-40:]):
        console.out(answer.text, highlight=False)
    console.print()
    print_sources(console, answer, indent=indent)


class TerminalChat:
    """A read-eval-print loop over the agent."""

    def __init__(
        self,
        app: App,
        *,
        console: Console | None = None,
        session_file: Path | None = None,
        examples: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.console = console or Console()
        self.session_file = session_file or app.settings.data_dir / "terminal_session"
        self.examples = list(examples)
        self.session = self._load_session()
        self._commands: dict[str, Callable[[str], Awaitable[None]]] = {
            "/help": self._help,
            "/new": self._new,
            "/sql": self._sql,
            "/stock": self._stock,
            "/classify": self._classify,
            "/ingest": self._ingest,
        }

    async def run(self) -> None:
        """Read lines until /quit or end of input."""
        await self._greet()
        while True:
            try:
                line = await self._read_line("[bold cyan]you ›[/] ")
            except EOFError:
                self.console.print()
                return
            line = line.strip()
            if not line:
                continue
            if line in {"/quit", "/exit", "/q"}:
                return
            await self.handle(line)

    async def _read_line(self, prompt: str) -> str:
        """The next typed line, read in a daemon thread.

        ``asyncio.to_thread`` would do, but a stopped chat (SIGTERM, Ctrl-C) then waited at
        exit for that thread, blocked on a line nobody types.
        """
        loop = asyncio.get_running_loop()
        typed: asyncio.Future[str] = loop.create_future()

        def settle(line: str | None, error: BaseException | None) -> None:
            if typed.done():  # the chat stopped while the line was being typed
                return
            if error is not None:
                typed.set_exception(error)
            else:
                typed.set_result(line or "")

        def read() -> None:
            try:
                line, error = self._input(prompt), None
            except BaseException as exc:  # EOFError above all; handed to the loop
                line, error = None, exc
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(settle, line, error)

        threading.Thread(target=read, name="chat-input", daemon=True).start()
        return await typed

    def _input(self, prompt: str) -> str:
        if sys.stdin.isatty():  # readline editing; it holds no lock of sys.stdin's
            return self.console.input(prompt)
        # Piped: read the file descriptor itself. A daemon thread blocked in sys.stdin's
        # buffered reader makes the interpreter abort at exit (it cannot take its lock).
        self.console.print(prompt, end="")
        line = bytearray()
        while not line.endswith(b"\n"):
            byte = os.read(sys.stdin.fileno(), 1)
            if not byte:
                if not line:
                    raise EOFError
                break
            line += byte
        return line.decode("utf-8", errors="replace").rstrip("\r\n")

    async def handle(self, line: str) -> None:
        """Answer one line: a slash command or a question."""
        name, _, rest = line.partition(" ")
        command = self._commands.get(name.lower()) if line.startswith("/") else None
        if line.startswith("/") and command is None:
            self.console.print(f"Unknown command {name}. Type /help.", style="yellow")
            return
        if command is not None:
            await command(rest.strip())
            return
        await self._ask(line)

    # --- questions -------------------------------------------------------------------

    async def _ask(self, question: str) -> None:
        console = self.console
        console.print("[bold green]deskbot ›[/] ", end="")
        streamed: list[str] = []

        async def on_text(chunk: str) -> None:
            streamed.append(chunk)
            console.out(chunk, end="", highlight=False)

        async def on_tool_call(name: str, arguments: dict[str, Any]) -> None:
            shown = json.dumps(arguments, ensure_ascii=False)
            console.print(f"\n  [dim]→ {name} {shown[:120]}[/]")

        answer = await self.app.agent.ask(
            self._thread(),
            question,
            ToolContext.operator(),
            on_text=on_text,
            on_tool_call=on_tool_call,
        )
        finish_answer(console, answer, "".join(streamed), indent="  ")

    def _thread(self) -> ThreadKey:
        return ThreadKey("terminal", self.session)

    async def _greet(self) -> None:
        backend = self.app.backend
        mode = (
            "retrieval-only (set OPENAI_API_KEY for full answers)"
            if backend.name == "offline"
            else f"model {backend.model}"
        )
        tools = ", ".join(self.app.tools.names())
        self.console.print(f"[bold]deskbot[/] chat · {mode} · tools: {tools}")
        thread_id = await self.app.conversations.thread(self._thread())
        earlier = await self.app.conversations.history(thread_id)
        if earlier:
            self.console.print(
                f"[dim]Continuing your conversation ({len(earlier)} earlier messages); "
                "/new starts a fresh one.[/]"
            )
        self.console.print("[dim]/help for commands, /quit to leave.[/]")

    # --- commands --------------------------------------------------------------------

    async def _help(self, _: str) -> None:
        self.console.print(HELP, highlight=False)
        if self.examples:
            self.console.print("Try:")
            for example in self.examples:
                self.console.print(f"  {example}", highlight=False)

    async def _new(self, _: str) -> None:
        self.session = uuid.uuid4().hex
        self._save_session(self.session)
        self.console.print("[dim]New conversation.[/]")

    async def _sql(self, query: str) -> None:
        if not query:
            self.console.print("Usage: /sql SELECT ...", style="yellow")
            return
        await self._tool(
            "run_sql", {"query": query}, missing="no database is configured (set DESKBOT_SQL_URL)"
        )

    async def _stock(self, rest: str) -> None:
        words = rest.split()
        if not words or len(words) > 3:
            self.console.print("Usage: /stock TICKER [START [END]]", style="yellow")
            return
        if len(words) == 1:
            await self._tool("get_stock_quote", {"ticker": words[0]}, missing="no stock data")
            return
        arguments = {"ticker": words[0], "start": words[1]}
        if len(words) == 3:
            arguments["end"] = words[2]
        await self._tool("get_stock_history", arguments, missing="no stock data")

    async def _classify(self, text: str) -> None:
        if not text:
            self.console.print("Usage: /classify TEXT", style="yellow")
            return
        await self._tool(
            "classify_comment", {"text": text}, missing="the comment classifier is not installed"
        )

    async def _tool(self, name: str, arguments: dict[str, Any], *, missing: str) -> None:
        tool = self.app.tools.get(name)
        if tool is None:
            self.console.print(f"/{name}: {missing}.", style="yellow")
            return
        try:
            output = await tool.call(ToolContext.operator(), arguments)
        except ToolError as exc:
            self.console.print(str(exc), style="red", highlight=False)
            return
        if isinstance(output, ToolOutput) and output.markdown:
            self.console.print(Markdown(output.markdown))
        else:
            data = output.data if isinstance(output, ToolOutput) else output
            self.console.print_json(json.dumps(data, ensure_ascii=False, default=str))

    async def _ingest(self, rest: str) -> None:
        try:
            words = shlex.split(rest)
        except ValueError as exc:
            self.console.print(f"Usage: /ingest PATH [COLLECTION] ({exc})", style="yellow")
            return
        if not words or len(words) > 2:
            self.console.print("Usage: /ingest PATH [COLLECTION]", style="yellow")
            return
        path = Path(words[0])
        name = words[1] if len(words) == 2 else "local"
        try:
            with self.console.status(f"Ingesting {path} into {name} ..."):
                summary = await ingest_files(self.app.knowledge, name, [path])
        except KnowledgeError as exc:
            self.console.print(str(exc), style="red", highlight=False)
            return
        for result in summary.files:
            style = "red" if result.status == "refused" else "green"
            detail = result.detail or f"{result.chunks} chunks"
            self.console.print(
                f"  {result.status:9} {result.path} ({detail})",
                style=style,
                highlight=False,
                markup=False,
            )
        self.console.print(f"  {summary.counts()}", style="dim", highlight=False)

    # --- the session -----------------------------------------------------------------

    def _load_session(self) -> str:
        try:
            value = self.session_file.read_text().strip()
        except OSError:
            value = ""
        if not value:
            value = uuid.uuid4().hex
            self._save_session(value)
        return value

    def _save_session(self, session: str) -> None:
        self.session_file.parent.mkdir(parents=True, exist_ok=True)
        self.session_file.write_text(session + "\n")
