"""Chat backends behind one Protocol: an OpenAI-compatible endpoint, or retrieval-only.

The agent speaks :class:`ChatMessage` / :class:`ChatResponse`; ``openai`` types never
leave :class:`OpenAIBackend`. :class:`OfflineBackend` needs no language model: it searches
the documents with the user's words and answers with the best passages, labelled as such,
through the same loop (so runs, steps and citations look the same).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.errors import DeskbotError
from knowledge.tokens import tiktoken_encoding

__all__ = [
    "BackendError",
    "ChatBackend",
    "ChatMessage",
    "ChatResponse",
    "OfflineBackend",
    "OpenAIBackend",
    "TextCallback",
    "ToolCall",
    "Usage",
    "estimate_tokens",
]

TextCallback = Callable[[str], Awaitable[None]]
Role = Literal["system", "user", "assistant", "tool"]


class BackendError(DeskbotError):
    """The language model could not be reached or refused the request."""


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is the model's raw JSON."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    """One message in Chat Completions roles."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The message as the Chat Completions API takes it."""
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        return message


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


class ChatBackend(Protocol):
    """Something that answers a conversation, optionally calling tools."""

    name: str
    model: str

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
        on_text: TextCallback | None = None,
    ) -> ChatResponse:
        """The next assistant turn; text is passed to ``on_text`` as it is generated."""
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


class OpenAIBackend:
    """Any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure, vLLM, Ollama ...).

    Retries 429 and 5xx with exponential backoff (honouring ``Retry-After``) through the
    SDK; every request has a timeout. Streams when a text callback is given.
    """

    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None,
        timeout: float = 60.0,
        max_retries: int = 3,
        temperature: float | None = None,
    ) -> None:
        from openai import AsyncOpenAI

        self.model = model
        self.temperature = temperature
        self._client = AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._encoding: Any = None

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
        on_text: TextCallback | None = None,
    ) -> ChatResponse:
        import openai

        request: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_openai() for m in messages],
        }
        if tools:
            request["tools"] = list(tools)
            request["parallel_tool_calls"] = True
        if self.temperature is not None:
            request["temperature"] = self.temperature
        from openai import AsyncStream
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        # The body is already in wire format, so it is posted as is: the SDK's typed
        # create() re-walks every message through its TypedDict transforms (about 2 ms a
        # call here), while retries, timeouts, auth and response parsing stay the SDK's.
        try:
            if on_text is None:
                completion = await self._client.post(
                    "/chat/completions", body=request, cast_to=ChatCompletion
                )
                return _from_completion(completion)
            request.update(stream=True, stream_options={"include_usage": True})
            stream = await self._client.post(
                "/chat/completions",
                body=request,
                cast_to=ChatCompletion,
                stream=True,
                stream_cls=AsyncStream[ChatCompletionChunk],
            )
            return await _from_stream(stream, on_text)
        except openai.APIStatusError as exc:
            raise BackendError(
                f"the language model refused the request ({exc.status_code}): {_short(exc)}"
            ) from None
        except openai.APIError as exc:
            raise BackendError(f"the language model is unreachable: {_short(exc)}") from None

    def count_tokens(self, text: str) -> int:
        if self._encoding is None:
            self._encoding = tiktoken_encoding(self.model) or False
        if self._encoding is False:
            return estimate_tokens(text)
        return len(self._encoding.encode(text, disallowed_special=()))

    async def close(self) -> None:
        await self._client.close()


def _short(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc).splitlines()[0][:300]


def _from_completion(completion: Any) -> ChatResponse:
    choice = completion.choices[0]
    calls = tuple(
        ToolCall(call.id, call.function.name, call.function.arguments or "{}")
        for call in choice.message.tool_calls or ()
    )
    usage = completion.usage
    return ChatResponse(
        text=choice.message.content or "",
        tool_calls=calls,
        usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
        finish_reason=choice.finish_reason or "stop",
    )


async def _from_stream(stream: Any, on_text: TextCallback) -> ChatResponse:
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    usage = Usage()
    finish = "stop"
    async for chunk in stream:
        if chunk.usage:
            usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                text.append(delta.content)
                await on_text(delta.content)
            for call in delta.tool_calls or ():
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.id or slot["id"]
                if call.function:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
            finish = choice.finish_reason or finish
    tool_calls = tuple(
        ToolCall(c["id"], c["name"], c["arguments"] or "{}") for _, c in sorted(calls.items())
    )
    return ChatResponse("".join(text), tool_calls, usage, finish)


class OfflineBackend:
    """Retrieval-only answers when no language model is configured.

    First turn: call ``search_documents`` with the question. Second turn: the passages it
    returned, each with its citation number, under a label that says no model wrote this.
    """

    name = "offline"
    model = "retrieval-only"
    label = "Retrieval-only answer (no language model is configured)"

    def __init__(self, *, k: int = 3, snippet_chars: int = 600) -> None:
        self.k = k
        self.snippet_chars = snippet_chars

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
        on_text: TextCallback | None = None,
    ) -> ChatResponse:
        last = messages[-1]
        if last.role == "user":
            if any(t["function"]["name"] == "search_documents" for t in tools):
                query = {"query": last.content, "k": self.k * 2}  # room for repeated sources
                arguments = json.dumps(query, ensure_ascii=False)
                return ChatResponse(
                    tool_calls=(ToolCall("offline-search", "search_documents", arguments),),
                    finish_reason="tool_calls",
                )
            text = (
                f"{self.label}: no documents are searchable here. "
                "Use /sql, /stock or /classify, or set OPENAI_API_KEY for full answers."
            )
        else:
            text = self._answer(last.content)
        if on_text is not None:
            await on_text(text)
        return ChatResponse(text=text)

    def _answer(self, tool_result: str) -> str:
        try:
            passages = json.loads(tool_result).get("passages", [])
        except (json.JSONDecodeError, AttributeError):
            passages = []
        if not passages:
            return (
                f"{self.label}. The documents I can search contain nothing relevant to this "
                "question. / 검색할 수 있는 문서에서 관련 내용을 찾지 못했습니다."
            )
        lines = [f"{self.label}. The most relevant passages:"]
        shown: set[int] = set()
        for passage in passages:
            if passage["citation"] in shown or len(shown) == self.k:
                continue  # one passage per source: the best one
            shown.add(passage["citation"])
            snippet = _squash(passage.get("content", ""), self.snippet_chars)
            lines.append(f"\n[{passage['citation']}] {snippet}")
        return "\n".join(lines)

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def close(self) -> None:
        return None


def _squash(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
