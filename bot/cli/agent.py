"""Agent commands: ``ask``, ``chat``, ``demo`` and ``tools list|call``.

``ask`` streams the answer to the terminal (or prints one JSON object with ``--json``) and
exits 1 when the run ended without an answer (a bound was reached, the model failed).
``tools call`` runs one tool directly and exits 1 with the tool's message if it refuses.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr
from rich.console import Console

from bot.app import open_app
from bot.cli.common import echo_json, pass_settings, run
from bot.cli.exits import ExitCode
from bot.errors import ConfigError
from bot.ingesting import ingest_files
from bot.knowledge import Knowledge
from bot.settings import Settings
from knowledge.search import Scope
from tools.base import ToolContext, ToolOutput
from tools.errors import ToolError

__all__ = ["DEMO_COLLECTION", "ask", "chat", "demo", "tools"]

DEMO_COLLECTION = "demo"


# --- ask and chat -----------------------------------------------------------------------


@click.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--thread", help="Continue this conversation (any name you choose).")
@pass_settings
def ask(settings: Settings, question: str, as_json: bool, thread: str | None) -> None:
    """Ask one question and print the answer with its sources."""
    if not question.strip():
        raise click.UsageError("QUESTION is empty")
    sys.exit(run(_ask(settings, question, as_json=as_json, thread=thread)))


async def _ask(settings: Settings, question: str, *, as_json: bool, thread: str | None) -> ExitCode:
    from bot.messages import ThreadKey
    from bot.terminal import finish_answer

    console = Console()
    streamed: list[str] = []

    async def on_text(chunk: str) -> None:
        streamed.append(chunk)
        console.out(chunk, end="", highlight=False)

    async with open_app(settings) as app:
        key = ThreadKey("api", thread or f"ask-{uuid.uuid4().hex}")
        answer = await app.agent.ask(
            key, question, ToolContext.operator(), on_text=None if as_json else on_text
        )
    if as_json:
        echo_json(answer.to_json())
    else:
        finish_answer(console, answer, "".join(streamed))
    return ExitCode.OK if answer.status == "completed" else ExitCode.FAILED


@click.command()
@pass_settings
def chat(settings: Settings) -> None:
    """Chat in the terminal (history is kept; /new starts over)."""
    from bot.terminal import TerminalChat

    async def go() -> None:
        async with open_app(settings) as app:
            await TerminalChat(app).run()

    run(go())


# --- demo -------------------------------------------------------------------------------


@click.command()
@click.option("--no-chat", is_flag=True, help="Prepare the demo data, then exit.")
@pass_settings
def demo(settings: Settings, no_chat: bool) -> None:
    """Load the sample documents, database and stock prices, then open the chat."""
    run(_demo(settings, chat=not no_chat))


async def _demo(settings: Settings, *, chat: bool) -> None:
    from bot.demo_data import (
        DEMO_QUESTIONS,
        write_demo_corpus,
        write_demo_database,
        write_demo_stocks,
    )
    from bot.terminal import TerminalChat

    folder = settings.data_dir / "demo"
    console = Console(stderr=not chat)
    paths = write_demo_corpus(folder / "documents")
    overrides: dict[str, Any] = {}
    if settings.sql_url is None:
        database = write_demo_database(folder / "company.db")
        overrides["sql_url"] = SecretStr(f"sqlite:///{database}")
    if settings.stock_data_dir is None and settings.stock_provider != "yfinance":
        write_demo_stocks(folder / "stocks")
        overrides["stock_data_dir"] = folder / "stocks"
    demo_settings = settings.model_copy(update=overrides)
    async with open_app(demo_settings) as app:
        await _ingest_demo(app.knowledge, paths, console)
        if chat:
            await TerminalChat(app, examples=DEMO_QUESTIONS).run()


async def _ingest_demo(knowledge: Knowledge, paths: list[Path], console: Console) -> None:
    with console.status("Loading the sample documents (first run: about 30 s) ..."):
        summary = await ingest_files(knowledge, DEMO_COLLECTION, paths)
    console.print(
        f"[dim]Sample documents: {len(summary.files)} files in collection "
        f"'{DEMO_COLLECTION}' ({len(summary.stored)} new, {len(summary.refused)} refused).[/]"
    )
    for result in summary.refused:
        console.print(f"  refused {result.path}: {result.detail}", style="red", markup=False)


# --- tools ------------------------------------------------------------------------------


@click.group()
def tools() -> None:
    """The tools the agent may call."""


@tools.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the function schemas.")
@pass_settings
def tools_list(settings: Settings, as_json: bool) -> None:
    """List the tools the current settings enable."""

    async def go() -> list[dict[str, Any]]:
        async with open_app(settings) as app:
            return app.tools.schemas()

    schemas = run(go())
    if as_json:
        echo_json(schemas)
        return
    for schema in schemas:
        function = schema["function"]
        summary = function["description"].split("\n")[0]
        click.echo(f"{function['name']:<20} {summary}")


@tools.command("call")
@click.argument("name")
@click.option("--args", "arguments", default="{}", help="Arguments as a JSON object.")
@click.option("--user", help="Call as this user (default: the operator, who reads all).")
@click.option("--channel", help="Call from this channel.")
@pass_settings
def tools_call(
    settings: Settings, name: str, arguments: str, user: str | None, channel: str | None
) -> None:
    """Run one tool and print its JSON result."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--args") from None
    context = (
        ToolContext(scope=Scope(channel_id=channel, user_id=user), user_id=user, channel_id=channel)
        if user or channel
        else ToolContext.operator()
    )
    sys.exit(run(_call_tool(settings, name, parsed, context)))


async def _call_tool(
    settings: Settings, name: str, arguments: Any, context: ToolContext
) -> ExitCode:
    async with open_app(settings) as app:
        tool = app.tools.get(name)
        if tool is None:
            known = ", ".join(app.tools.names())
            raise ConfigError(f"no tool named {name!r} is enabled; enabled tools: {known}")
        try:
            output = await tool.call(context, arguments)
        except ToolError as exc:  # the tool's own refusal, named so the user knows which
            click.echo(f"deskbot: {name}: {exc}", err=True)
            return ExitCode.FAILED
    data = output.data if isinstance(output, ToolOutput) else output
    echo_json(data)
    return ExitCode.OK
