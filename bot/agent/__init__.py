"""The agent: an Assistant-style loop of our own on Chat Completions function calling.

The loop (:mod:`bot.agent.loop`) keeps each run's state, bounds and steps in
:mod:`bot.agent.run` and returns an :mod:`bot.agent.answer`; threads, runs and steps live in
PostgreSQL (:mod:`bot.agent.store`); the model sits behind
:class:`~tools.chat_backend.ChatBackend` (:mod:`bot.agent.backends` implements it); tools
come from :mod:`tools`.
"""

from bot.agent.backends import OfflineBackend, OpenAIBackend
from bot.agent.loop import Agent, Answer, Limits, ToolCallRecord
from bot.agent.store import ConversationStore
from bot.messages import ThreadKey
from tools.chat_backend import (
    BackendError,
    ChatBackend,
    ChatMessage,
    ChatResponse,
    ToolCall,
    Usage,
)

__all__ = [
    "Agent",
    "Answer",
    "BackendError",
    "ChatBackend",
    "ChatMessage",
    "ChatResponse",
    "ConversationStore",
    "Limits",
    "OfflineBackend",
    "OpenAIBackend",
    "ThreadKey",
    "ToolCall",
    "ToolCallRecord",
    "Usage",
]
