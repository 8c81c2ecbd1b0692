"""The agent: an Assistant-style loop of our own on Chat Completions function calling.

Threads, runs and steps live in PostgreSQL (:mod:`bot.agent.store`); the model sits behind
:class:`~bot.agent.backends.ChatBackend`; tools come from :mod:`tools`.
"""

from bot.agent.backends import (
    BackendError,
    ChatBackend,
    ChatMessage,
    ChatResponse,
    OfflineBackend,
    OpenAIBackend,
    ToolCall,
    Usage,
)
from bot.agent.loop import Agent, Answer, Limits, ToolCallRecord
from bot.agent.store import ConversationStore, ThreadKey

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
