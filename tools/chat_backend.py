"""The model seam: the chat-backend Protocol and OpenAI chat-completions wire types.

A :class:`ChatBackend` takes the conversation as Chat Completions request messages and
returns a Chat Completions response body, both plain dicts (:class:`Message`,
:class:`Completion`). Anything that speaks this wire format is a backend, structurally:
the OpenAI-compatible client and the retrieval-only answerer in ``bot.agent.backends``, and
a local model in ``finetune`` that never imports this module.

This module imports only the standard library, and sits in ``tools`` rather than ``bot``
because both sides of the seam use it: the agent (``bot``) and the language-model comment
classifier (``tools.classifier.llm``), and imports point ``bot -> tools`` only.

The dataclasses (:class:`ChatMessage`, :class:`ToolCall`, :class:`Usage`,
:class:`ChatResponse`) are a typed view of the same wire format for the code that reads it;
``ChatMessage.to_wire`` and ``ChatResponse.from_completion`` convert.

Errors: a backend that cannot answer (unreachable, a refused request, a reply that is not a
completion) raises :class:`BackendError` with a one-line message; nothing else escapes
``complete``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Protocol, TypedDict

__all__ = [
    "BackendError",
    "BackendKind",
    "ChatBackend",
    "ChatMessage",
    "ChatResponse",
    "Choice",
    "Completion",
    "FunctionCall",
    "Message",
    "Role",
    "TextCallback",
    "ToolCall",
    "ToolCallDict",
    "ToolSpec",
    "Usage",
    "UsageDict",
    "estimate_tokens",
]

Role = Literal["system", "user", "assistant", "tool"]
BackendKind = Literal["openai", "offline", "local"]
TextCallback = Callable[[str], Awaitable[None]]
# One entry of the request's ``tools`` list: {"type": "function", "function": {name, ...}}.
ToolSpec = dict[str, Any]


class BackendError(Exception):
    """The language model could not be reached or refused the request.

    Args:
        message: One line for the user.
        transient: Trying again may work: rate-limited (429), a server error (5xx), a
            timeout, or unreachable. :func:`tools.model_retry.complete_with_retries` retries
            only these.
        retry_after: Seconds the server asked to wait (``Retry-After``), when it said.
    """

    def __init__(
        self, message: str, *, transient: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


# --- Wire format (plain dicts) ---------------------------------------------------------


class FunctionCall(TypedDict):
    """The function a tool call names; ``arguments`` is the model's raw JSON text."""

    name: str
    arguments: str


class ToolCallDict(TypedDict):
    """One entry of an assistant message's ``tool_calls``."""

    id: str
    type: Literal["function"]
    function: FunctionCall


class Message(TypedDict):
    """A request message; ``tool_calls`` on assistant turns, ``tool_call_id`` on tool results."""

    role: Role
    content: str | None
    tool_calls: NotRequired[list[ToolCallDict]]
    tool_call_id: NotRequired[str]


class UsageDict(TypedDict):
    """Tokens one call spent, as the API reports them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: NotRequired[int]


class Choice(TypedDict):
    """One answer of a completion; backends here return exactly one."""

    index: int
    message: Message
    finish_reason: str


class Completion(TypedDict):
    """A Chat Completions response body (the fields this project reads)."""

    model: str
    choices: list[Choice]
    usage: NotRequired[UsageDict]


class ChatBackend(Protocol):
    """Something that answers a conversation in Chat Completions wire format."""

    @property
    def name(self) -> BackendKind:
        """Which kind of backend this is."""
        ...

    @property
    def model(self) -> str:
        """The model's name, as stored with each run."""
        ...

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        on_text: TextCallback | None = None,
    ) -> Completion:
        """The next assistant turn; text is passed to ``on_text`` as it is generated.

        Raises:
            BackendError: the model could not answer.
        """
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's context window."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about 3 UTF-8 bytes per token over Korean and English."""
    return len(text.encode()) // 3 + 1


# --- Typed view ------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is the model's raw JSON."""

    id: str
    name: str
    arguments: str

    def to_wire(self) -> ToolCallDict:
        """The call as an assistant message's ``tool_calls`` entry."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    @classmethod
    def from_wire(cls, call: ToolCallDict) -> ToolCall:
        """The call in a ``tool_calls`` entry (no arguments read as ``{}``)."""
        function = call["function"]
        return cls(call["id"], function["name"], function.get("arguments") or "{}")


@dataclass(frozen=True)
class ChatMessage:
    """One message in Chat Completions roles."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def to_wire(self) -> Message:
        """The message as the Chat Completions API takes it."""
        message: Message = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.to_wire() for call in self.tool_calls]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        return message

    @classmethod
    def from_wire(cls, message: Message) -> ChatMessage:
        """The typed view of a wire message."""
        calls = tuple(ToolCall.from_wire(c) for c in message.get("tool_calls") or ())
        return cls(message["role"], message["content"] or "", calls, message.get("tool_call_id"))


@dataclass(frozen=True)
class Usage:
    """Tokens one model call spent."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResponse:
    """The model's turn: text, tool calls, or both."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"

    @classmethod
    def from_completion(cls, completion: Completion) -> ChatResponse:
        """The first choice of ``completion``.

        Raises:
            BackendError: the body has no choice, or is not a completion at all.
        """
        try:
            choice = completion["choices"][0]
            message = ChatMessage.from_wire(choice["message"])
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError(
                f"the language model's reply is not a completion ({exc!r})"
            ) from None
        usage = completion.get("usage")
        return cls(
            text=message.content,
            tool_calls=message.tool_calls,
            usage=Usage(usage["prompt_tokens"], usage["completion_tokens"]) if usage else Usage(),
            finish_reason=choice.get("finish_reason") or "stop",
        )

    def to_completion(self, model: str) -> Completion:
        """This turn as a Chat Completions response body from ``model``."""
        message = ChatMessage("assistant", self.text, self.tool_calls).to_wire()
        usage = self.usage
        return {
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total,
            },
        }
