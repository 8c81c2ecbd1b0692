"""Wiring for the agent: backend, tools and agent from settings, in one place.

:func:`open_app` is what every entry point that answers questions uses (``ask``, ``chat``,
the worker, the adapters): it opens the database and shared state, builds the knowledge
services, the tool registry and the chat backend, and closes them all on exit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bot.agent.backends import OfflineBackend, OpenAIBackend
from bot.agent.loop import Agent, Limits
from bot.agent.prompts import Prompts, load_prompts
from bot.agent.store import ConversationStore
from bot.knowledge import Knowledge, make_knowledge
from bot.settings import Settings
from bot.state import SharedState, open_state
from bot.storage import Database, open_database
from tools.base import FatalToolError, Tool, ToolRegistry
from tools.chat_backend import ChatBackend
from tools.documents import PassageAnswers, make_document_tools

__all__ = ["App", "make_backend", "make_limits", "make_tools", "open_app"]

log = logging.getLogger(__name__)


@dataclass
class App:
    """Everything needed to answer a question."""

    settings: Settings
    database: Database
    state: SharedState
    knowledge: Knowledge
    tools: ToolRegistry
    backend: ChatBackend
    agent: Agent
    conversations: ConversationStore
    prompts: Prompts


def make_backend(settings: Settings) -> ChatBackend:
    """The OpenAI-compatible backend when one is configured, else retrieval-only."""
    if not settings.llm_configured:
        return OfflineBackend(answer_with=PassageAnswers())
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAIBackend(
        model=settings.model,
        api_key=key,
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )


def make_limits(settings: Settings) -> Limits:
    """The run bounds from settings."""
    return Limits(
        max_steps=settings.max_steps,
        token_budget=settings.run_token_budget,
        deadline=settings.run_deadline,
        tool_timeout=settings.tool_timeout,
        context_tokens=settings.context_tokens,
    )


async def make_tools(
    settings: Settings,
    knowledge: Knowledge,
    state: SharedState,
    stack: AsyncExitStack,
    *,
    backend: ChatBackend | None = None,
) -> ToolRegistry:
    """Every tool the settings enable. A tool whose service is not configured is absent."""
    registry = ToolRegistry(make_document_tools(knowledge.searcher))
    if settings.sql_url is not None:
        from tools.sql import SqlDatabase, make_sql_tools

        sql = SqlDatabase(
            settings.sql_url.get_secret_value(),
            allowed_tables=settings.sql_allowed_table_list,
            row_limit=settings.sql_row_limit,
            timeout=settings.sql_timeout,
        )
        stack.push_async_callback(sql.close)
        try:  # the schema goes into run_sql's description, so the model needs no extra call
            await sql.describe()
        except FatalToolError as exc:
            log.warning("SQL database not described (run_sql will say why when used): %s", exc)
        for item in make_sql_tools(sql):
            registry.add(item)
    for item in _stock_tools(settings, state):
        registry.add(item)
    for item in await _classifier_tools(settings, backend):
        registry.add(item)
    return registry


async def _classifier_tools(settings: Settings, backend: ChatBackend | None) -> list[Tool]:
    """``classify_comment`` when a local model exists (or the LLM alone is asked for)."""
    from bot.classifier import make_comment_classifier
    from tools.classifier import make_classifier_tools

    wanted_llm = settings.classifier_mode == "llm" and settings.llm_configured
    if not (settings.classifier_path.exists() or wanted_llm):
        return []  # no model trained yet: the tool is absent, not stubbed
    return make_classifier_tools(await make_comment_classifier(settings, backend))


def _stock_tools(settings: Settings, state: SharedState) -> list[Tool]:
    from tools.stocks import (
        CachedQuoteProvider,
        CsvQuoteProvider,
        QuoteProvider,
        YFinanceQuoteProvider,
        make_stock_tools,
    )

    use_csv = settings.stock_provider == "csv" or (
        settings.stock_provider == "auto" and settings.stock_data_dir is not None
    )
    provider: QuoteProvider
    if use_csv:
        if settings.stock_data_dir is None:
            from bot.errors import ConfigError

            raise ConfigError("DESKBOT_STOCK_DATA_DIR: required when DESKBOT_STOCK_PROVIDER=csv")
        provider = CsvQuoteProvider(settings.stock_data_dir)
    else:
        provider = YFinanceQuoteProvider()
    cached = CachedQuoteProvider(provider, state.cache, ttl=settings.stock_cache_ttl)
    return list(make_stock_tools(cached))


@asynccontextmanager
async def open_app(settings: Settings) -> AsyncIterator[App]:
    """Open every service the agent needs; close them on exit."""
    async with AsyncExitStack() as stack:
        database = await open_database(settings)
        stack.push_async_callback(database.close)
        state = await open_state(settings)
        stack.push_async_callback(state.close)
        knowledge = make_knowledge(settings, database)
        stack.push_async_callback(knowledge.ingestor.aclose)  # its parser processes
        backend = make_backend(settings)
        stack.push_async_callback(backend.close)
        tools = await make_tools(settings, knowledge, state, stack, backend=backend)
        conversations = ConversationStore(database.engine)
        stack.push_async_callback(conversations.drain)  # before the database closes
        prompts = load_prompts(settings.system_prompt_file)
        agent = Agent(
            backend,
            tools,
            conversations,
            limits=make_limits(settings),
            instructions=prompts.default,
        )
        yield App(
            settings, database, state, knowledge, tools, backend, agent, conversations, prompts
        )
