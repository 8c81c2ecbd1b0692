"""Wiring for the agent: backend, tools and agent from settings, in one place.

:func:`open_app` is what every entry point that answers questions uses (``ask``, ``chat``,
the worker, the adapters): it opens the database and shared state, builds the knowledge
services, the tool registry and the chat backend, and closes them all on exit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

from bot.agent.backends import OfflineBackend, OpenAIBackend
from bot.agent.budget import DailyBudget
from bot.agent.loop import Agent, Limits
from bot.agent.prompts import Prompts, load_prompts
from bot.agent.store import ConversationStore
from bot.errors import ConfigError
from bot.knowledge import Knowledge, make_knowledge
from bot.settings import Settings
from bot.state import SharedState, open_state
from bot.storage import Database, open_database
from tools.base import FatalToolError, Tool, ToolRegistry
from tools.chat_backend import (
    BackendError,
    ChatBackend,
    Completion,
    Message,
    TextCallback,
    ToolSpec,
)
from tools.documents import PassageAnswers, make_document_tools

if TYPE_CHECKING:
    from finetune.local import LocalBackend

__all__ = [
    "App",
    "LocalModelBackend",
    "make_backend",
    "make_budget",
    "make_limits",
    "make_tools",
    "open_app",
]

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
    """The local model, the OpenAI-compatible backend when one is configured, else retrieval-only.

    Raises:
        ConfigError: ``DESKBOT_LLM=local`` without a usable ``DESKBOT_LOCAL_MODEL`` (or adapter).
    """
    if settings.llm == "local":
        return LocalModelBackend.from_settings(settings)
    if not settings.llm_configured:
        return OfflineBackend(answer_with=PassageAnswers())
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAIBackend(
        model=settings.model,
        api_key=key,
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
    )


class LocalModelBackend:
    """The in-process local model (:class:`finetune.local.LocalBackend`) as a chat backend.

    ``finetune`` speaks the wire format without importing ``tools``, so its errors are its
    own; here they become :class:`~tools.chat_backend.BackendError`, which the agent loop
    handles like any model failure (a malformed tool call included).
    """

    name: Literal["local"] = "local"

    def __init__(self, local: LocalBackend) -> None:
        self.local = local
        self.model = local.model

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalModelBackend:
        """The model in ``DESKBOT_LOCAL_MODEL`` (plus ``DESKBOT_LOCAL_ADAPTER``), not yet loaded.

        Raises:
            ConfigError: the setting is missing, or a directory holds no model.
        """
        from finetune.local import LocalBackend, LocalModelError

        if settings.local_model is None:
            raise ConfigError("DESKBOT_LOCAL_MODEL: required when DESKBOT_LLM=local")
        which = "DESKBOT_LOCAL_ADAPTER" if settings.local_adapter else "DESKBOT_LOCAL_MODEL"
        try:
            local = LocalBackend(
                settings.local_model,
                adapter=settings.local_adapter,
                max_new_tokens=settings.local_max_new_tokens,
            )
        except LocalModelError as exc:
            raise ConfigError(f"{which}: {exc}") from None
        return cls(local)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        on_text: TextCallback | None = None,
    ) -> Completion:
        from finetune.local import LocalModelError

        try:
            body = await self.local.complete(messages, tools=tools, on_text=on_text)
        except LocalModelError as exc:
            raise BackendError(str(exc)) from None
        return cast(Completion, body)

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    async def close(self) -> None:
        await self.local.close()


def make_limits(settings: Settings) -> Limits:
    """The run bounds from settings."""
    return Limits(
        max_steps=settings.max_steps,
        token_budget=settings.run_token_budget,
        deadline=settings.run_deadline,
        tool_timeout=settings.tool_timeout,
        context_tokens=settings.context_tokens,
        model_retries=settings.llm_max_retries,
    )


def make_budget(settings: Settings, database: Database) -> DailyBudget | None:
    """The daily token budgets, or None when neither is set (no query per run)."""
    per_user, per_workspace = settings.daily_tokens_per_user, settings.daily_tokens_per_workspace
    if per_user is None and per_workspace is None:
        return None
    return DailyBudget(database.engine, per_user=per_user, per_workspace=per_workspace)


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
            budget=make_budget(settings, database),
        )
        yield App(
            settings, database, state, knowledge, tools, backend, agent, conversations, prompts
        )
