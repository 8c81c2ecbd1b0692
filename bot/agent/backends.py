"""Chat backends: an OpenAI-compatible endpoint, or retrieval-only answers.

Both satisfy :class:`~tools.chat_backend.ChatBackend` (Chat Completions wire format in and
out); ``openai`` types never leave :class:`OpenAIBackend`. :class:`OfflineBackend` needs no
language model: it calls the one tool it was given with the user's words and answers with
that tool's result, rendered for people and labelled as such, through the same loop (so
runs, steps and citations look the same).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from knowledge.tokens import tiktoken_encoding
from tools.chat_backend import (
    BackendError,
    ChatMessage,
    ChatResponse,
    Completion,
    Message,
    TextCallback,
    ToolCall,
    ToolCallDict,
    ToolSpec,
    UsageDict,
    estimate_tokens,
)

__all__ = ["AnswerTool", "OfflineBackend", "OpenAIBackend"]


class OpenAIBackend:
    """Any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure, vLLM, Ollama ...).

    Every request has a timeout. The SDK does not retry: a 429, 408, 409, 5xx, timeout or
    unreachable server is a transient :class:`BackendError` carrying the server's
    ``Retry-After``, which the caller retries within its own deadline
    (:func:`tools.model_retry.complete_with_retries`). Streams when a text callback is given.
    """

    name: Literal["openai"] = "openai"

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None,
        timeout: float = 60.0,
        max_retries: int = 0,
        temperature: float | None = None,
    ) -> None:
        from openai import AsyncOpenAI

        self.model = model
        self.temperature = temperature
        self.timeout = timeout
        self._client = AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,  # 0 in the app: the agent retries within its deadline
        )
        self._encoding: Any = None

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        on_text: TextCallback | None = None,
    ) -> Completion:
        import openai

        request: dict[str, Any] = {"model": self.model, "messages": list(messages)}
        if tools:
            request["tools"] = list(tools)
            request["parallel_tool_calls"] = True
        if self.temperature is not None:
            request["temperature"] = self.temperature
        try:
            if on_text is None:
                return await self._post(request)
            return await self._stream(request, on_text)
        except openai.APIStatusError as exc:
            raise BackendError(
                f"the language model refused the request ({exc.status_code}): {_short(exc)}",
                transient=exc.status_code in _TRANSIENT or exc.status_code >= 500,
                retry_after=_retry_after(exc.response.headers),
            ) from None
        except openai.APITimeoutError:
            raise BackendError(
                f"the language model did not answer within {self.timeout:g} s", transient=True
            ) from None
        except openai.APIConnectionError as exc:
            raise BackendError(
                f"the language model is unreachable: {_short(exc)}", transient=True
            ) from None
        except openai.APIError as exc:
            raise BackendError(f"the language model is unreachable: {_short(exc)}") from None

    # The body is already in wire format, so it is posted as is: the SDK's typed create()
    # re-walks every message through its TypedDict transforms (about 2 ms a call here),
    # while retries, timeouts, auth and response parsing stay the SDK's.
    async def _post(self, request: dict[str, Any]) -> Completion:
        from openai.types.chat import ChatCompletion

        completion = await self._client.post(
            "/chat/completions", body=request, cast_to=ChatCompletion
        )
        return _from_completion(completion)

    async def _stream(self, request: dict[str, Any], on_text: TextCallback) -> Completion:
        from openai import AsyncStream
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        request.update(stream=True, stream_options={"include_usage": True})
        stream = await self._client.post(
            "/chat/completions",
            body=request,
            cast_to=ChatCompletion,
            stream=True,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )
        return await _from_stream(stream, on_text, self.model)

    def count_tokens(self, text: str) -> int:
        if self._encoding is None:
            self._encoding = tiktoken_encoding(self.model) or False
        if self._encoding is False:
            return estimate_tokens(text)
        return len(self._encoding.encode(text, disallowed_special=()))

    async def close(self) -> None:
        await self._client.close()


_TRANSIENT = frozenset({408, 409, 429})
_LONGEST_WAIT = 600.0  # a Retry-After beyond this is a server's mistake, not a plan


def _retry_after(headers: Any) -> float | None:
    """Seconds in ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return min(_LONGEST_WAIT, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            seconds = when.timestamp() - time.time()
    except (TypeError, ValueError):
        return None
    return min(_LONGEST_WAIT, max(0.0, seconds))


def _short(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc).splitlines()[0][:300]


def _from_completion(completion: Any) -> Completion:
    """The SDK's parsed completion back in wire format (its first choice)."""
    choice = completion.choices[0]
    calls = tuple(
        ToolCall(call.id, call.function.name, call.function.arguments or "{}")
        for call in choice.message.tool_calls or ()
    )
    message = ChatMessage("assistant", choice.message.content or "", calls).to_wire()
    result: Completion = {
        "model": completion.model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": choice.finish_reason or "stop"}
        ],
    }
    if completion.usage:
        result["usage"] = _usage(completion.usage)
    return result


def _usage(usage: Any) -> UsageDict:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


async def _from_stream(stream: Any, on_text: TextCallback, model: str) -> Completion:
    """A streamed completion gathered into one body, its text passed on as it arrives."""
    text: list[str] = []
    calls: dict[int, ToolCallDict] = {}
    usage: UsageDict | None = None
    finish = "stop"
    async for chunk in stream:
        if chunk.usage:
            usage = _usage(chunk.usage)
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                text.append(delta.content)
                await on_text(delta.content)
            for call in delta.tool_calls or ():
                _add_call_delta(calls, call)
            finish = choice.finish_reason or finish
    message: Message = {"role": "assistant", "content": "".join(text)}
    if calls:
        message["tool_calls"] = [call for _, call in sorted(calls.items())]
        for call in message["tool_calls"]:
            call["function"]["arguments"] = call["function"]["arguments"] or "{}"
    result: Completion = {
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        result["usage"] = usage
    return result


def _add_call_delta(calls: dict[int, ToolCallDict], delta: Any) -> None:
    """Add one streamed fragment of a tool call (its id, name or a piece of arguments)."""
    slot = calls.setdefault(
        delta.index,
        {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
    )
    slot["id"] = delta.id or slot["id"]
    if delta.function:
        slot["function"]["name"] += delta.function.name or ""
        slot["function"]["arguments"] += delta.function.arguments or ""


class AnswerTool(Protocol):
    """The tool an :class:`OfflineBackend` answers with, and how its result reads for people.

    The tool's module provides it (it knows its own result), e.g.
    :class:`tools.documents.PassageAnswers` for ``search_documents``.
    """

    @property
    def name(self) -> str:
        """The tool's name in the registry."""
        ...

    def arguments(self, question: str) -> dict[str, Any]:
        """The tool's arguments for the user's question."""
        ...

    def render(self, result: str) -> str:
        """The tool's result (the JSON text the model would see) as the answer's body."""
        ...


class OfflineBackend:
    """Retrieval-only answers when no language model is configured.

    First turn: call the ``answer_with`` tool with the question, if the loop offers it.
    Second turn: that tool's result, rendered by ``answer_with``, under a label that says no
    model wrote this. Without the tool, a message that says what works without a model.
    """

    name: Literal["offline"] = "offline"
    model = "retrieval-only"
    label = "Retrieval-only answer (no language model is configured)"

    def __init__(self, *, answer_with: AnswerTool | None = None) -> None:
        self.answer_with = answer_with

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        on_text: TextCallback | None = None,
    ) -> Completion:
        if not messages:
            raise BackendError("the conversation is empty: nothing to answer")
        last = messages[-1]
        tool = self.answer_with
        if last["role"] == "tool" and tool is not None:
            text = f"{self.label}. {tool.render(last['content'] or '')}"
        elif tool is not None and any(t["function"]["name"] == tool.name for t in tools):
            arguments = json.dumps(tool.arguments(last["content"] or ""), ensure_ascii=False)
            call = ToolCall(f"offline-{tool.name}", tool.name, arguments)
            return self._reply(ChatResponse(tool_calls=(call,), finish_reason="tool_calls"))
        else:
            text = (
                f"{self.label}: no documents are searchable here. "
                "Use /sql, /stock or /classify, or set OPENAI_API_KEY for full answers."
            )
        if on_text is not None:
            await on_text(text)
        return self._reply(ChatResponse(text=text))

    def _reply(self, response: ChatResponse) -> Completion:
        return response.to_completion(self.model)

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def close(self) -> None:
        return None
