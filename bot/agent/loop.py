"""The agent loop: model call, tool calls in parallel, results back, until an answer.

Bounded in steps (model calls), tokens and wall-clock time; reaching a bound ends the run
with a message to the user, never silence. Every run, message and step is stored.

Tool failures come in two kinds (see :mod:`tools.base`): a :class:`~tools.base.ToolError`
or a timeout goes back to the model as the tool's result so it can correct itself; a
:class:`~tools.base.FatalToolError` or an unexpected exception ends the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.agent.prompts import SYSTEM_PROMPT
from bot.agent.store import ConversationStore, RunRecord, ThreadKey
from bot.language import in_language_of
from knowledge.search import Citation
from tools.base import FatalToolError, ToolContext, ToolError, ToolOutput, ToolRegistry
from tools.chat_backend import (
    BackendError,
    ChatBackend,
    ChatMessage,
    ChatResponse,
    TextCallback,
    ToolCall,
    Usage,
)

__all__ = ["Agent", "Answer", "Limits", "ToolCallRecord", "ToolCallback"]

log = logging.getLogger(__name__)

ToolCallback = Callable[[str, dict[str, Any]], Awaitable[None]]
_CITE = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True)
class Limits:
    """Bounds of one run."""

    max_steps: int = 8
    token_budget: int = 60_000
    deadline: float = 120.0
    tool_timeout: float = 30.0
    context_tokens: int = 16_000
    tool_result_chars: int = 12_000


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call of a run, as the user (or ``--json``) sees it."""

    name: str
    arguments: dict[str, Any] | str
    error: str | None = None
    latency_ms: float = 0.0


@dataclass
class Answer:
    """What a run produced: the reply text, its cited sources, and how it got there."""

    run_id: uuid.UUID
    thread_id: uuid.UUID
    status: str
    text: str
    citations: list[tuple[int, Citation]] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    model: str = ""

    def to_json(self) -> dict[str, Any]:
        """The answer as ``deskbot ask --json`` prints it."""
        return {
            "answer": self.text,
            "status": self.status,
            "citations": [
                {
                    "number": number,
                    "title": c.title,
                    "source": c.source,
                    "collection": c.collection,
                    "page": c.page,
                    "section": c.section,
                    "document_id": str(c.document_id),
                }
                for number, c in self.citations
            ],
            "tool_calls": [
                {"name": t.name, "arguments": t.arguments, "error": t.error}
                for t in self.tool_calls
            ],
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
            "model": self.model,
            "run_id": str(self.run_id),
            "thread_id": str(self.thread_id),
        }


class _RunEndedError(Exception):
    """Internal: a bound or a fatal error ended the run."""

    def __init__(self, status: str, message: str, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.message = message
        self.error = error


@dataclass
class _Run:
    record: RunRecord
    question: str
    context: ToolContext
    deadline: float
    messages: list[ChatMessage]
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    records: list[ToolCallRecord] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def next_ordinal(self) -> int:
        self.steps += 1
        return self.steps

    def say(self, english: str, korean: str) -> str:
        """A message to the user in the language of the question."""
        return in_language_of(self.question, english, korean)


class Agent:
    """Answers questions in threads with a backend and a tool registry."""

    def __init__(
        self,
        backend: ChatBackend,
        tools: ToolRegistry,
        store: ConversationStore,
        *,
        limits: Limits | None = None,
        instructions: str = SYSTEM_PROMPT,
    ) -> None:
        self.backend = backend
        self.tools = tools
        self.store = store
        self.limits = limits or Limits()
        self.instructions = instructions

    async def ask(
        self,
        thread: ThreadKey | uuid.UUID,
        question: str,
        context: ToolContext,
        *,
        on_text: TextCallback | None = None,
        on_tool_call: ToolCallback | None = None,
        instructions: str | None = None,
        external_id: str | None = None,
        earlier: Sequence[ChatMessage] = (),
    ) -> Answer:
        """Run the agent on ``question`` in ``thread`` and return its answer.

        ``earlier``: messages of the platform conversation from before the bot took part
        (a Slack thread it is called into), placed before the stored history.
        """
        started = time.monotonic()
        prompt = instructions or self.instructions
        record, history = await self.store.begin_run(
            thread,
            question=question,
            user_id=context.user_id,
            model=self.backend.model,
            instructions=prompt,
            external_id=external_id,
        )
        run = _Run(
            record=record,
            question=question,
            context=context,
            deadline=started + self.limits.deadline,
            messages=self._fit(prompt, [*earlier, *history], question),
        )
        try:
            text = await self._loop(run, on_text, on_tool_call)
            status, error = "completed", None
        except _RunEndedError as ended:
            text, status, error = ended.message, ended.status, ended.error
        return await self._finish(run, status, text, error)

    async def _loop(
        self, run: _Run, on_text: TextCallback | None, on_tool_call: ToolCallback | None
    ) -> str:
        schemas = self.tools.schemas()
        for _ in range(self.limits.max_steps):
            response = await self._model_call(run, schemas, on_text)
            if not response.tool_calls:
                return response.text
            assistant = ChatMessage("assistant", response.text, tool_calls=response.tool_calls)
            run.messages.append(assistant)
            run.record.message(assistant)
            results = await asyncio.gather(
                *(self._tool_call(run, call, on_tool_call) for call in response.tool_calls),
                return_exceptions=True,
            )
            for result in results:  # every call has finished and been stored by now
                if isinstance(result, BaseException):
                    raise result
                message, record = result
                run.records.append(record)
                run.messages.append(message)
                run.record.message(message)
            self.store.write(run.record)  # behind the next model call
        raise _RunEndedError(
            "failed",
            run.say(
                f"I stopped after {self.limits.max_steps} steps without reaching an answer. "
                "Please ask a narrower question.",
                f"{self.limits.max_steps}단계 안에 답을 찾지 못해 멈췄습니다. "
                "질문을 좀 더 구체적으로 해 주세요.",
            ),
            f"step limit ({self.limits.max_steps}) reached",
        )

    async def _model_call(
        self, run: _Run, schemas: list[dict[str, Any]], on_text: TextCallback | None
    ) -> ChatResponse:
        remaining = run.deadline - time.monotonic()
        if remaining <= 0:
            raise self._expired(run)
        estimate = sum(self.backend.count_tokens(m.content) for m in run.messages)
        if run.tokens + estimate > self.limits.token_budget:
            raise _RunEndedError(
                "failed",
                run.say(
                    "This question needs more work than one answer may spend "
                    f"({self.limits.token_budget:,} tokens). Please ask a narrower question.",
                    f"한 번의 답변에 쓸 수 있는 양({self.limits.token_budget:,} 토큰)을 "
                    "넘었습니다. 질문을 좁혀 주세요.",
                ),
                f"token budget ({self.limits.token_budget}) reached",
            )
        ordinal = run.next_ordinal()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(remaining):
                wire = [message.to_wire() for message in run.messages]
                completion = await self.backend.complete(wire, tools=schemas, on_text=on_text)
            response = ChatResponse.from_completion(completion)
        except TimeoutError:
            self._model_step(run, ordinal, started, status="expired", error="deadline")
            raise self._expired(run) from None
        except BackendError as exc:
            self._model_step(run, ordinal, started, status="failed", error=str(exc))
            raise _RunEndedError(
                "failed",
                run.say(
                    f"I could not get an answer from the language model: {exc}",
                    f"언어 모델에서 답을 받지 못했습니다: {exc}",
                ),
                str(exc),
            ) from None
        usage = response.usage
        if usage.total == 0:  # some servers send no usage; count it ourselves
            usage = Usage(estimate, self.backend.count_tokens(response.text))
        run.prompt_tokens += usage.prompt_tokens
        run.completion_tokens += usage.completion_tokens
        self._model_step(run, ordinal, started, status="completed", usage=usage)
        return response

    def _model_step(
        self,
        run: _Run,
        ordinal: int,
        started: float,
        *,
        status: str,
        error: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        run.record.step(
            ordinal,
            type="model_call",
            status=status,
            latency_ms=(time.perf_counter() - started) * 1000,
            error=error,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def _expired(self, run: _Run) -> _RunEndedError:
        return _RunEndedError(
            "expired",
            run.say(
                f"I ran out of time ({self.limits.deadline:g} s) before finishing this answer. "
                "Please try again or ask a narrower question.",
                f"제한 시간({self.limits.deadline:g}초) 안에 답을 마치지 못했습니다. "
                "다시 시도하거나 질문을 좁혀 주세요.",
            ),
            f"deadline ({self.limits.deadline:g} s) reached",
        )

    async def _tool_call(
        self, run: _Run, call: ToolCall, on_tool_call: ToolCallback | None
    ) -> tuple[ChatMessage, ToolCallRecord]:
        ordinal = run.next_ordinal()
        arguments = _loads(call.arguments)
        if on_tool_call is not None:
            await on_tool_call(call.name, arguments if isinstance(arguments, dict) else {})
        started = time.perf_counter()
        result: Any = None
        error: str | None = None
        try:
            result = await self._execute(run, call)
        except ToolError as exc:
            error = str(exc)
        except _RunEndedError as ended:
            error = ended.error
            self._tool_step(run, ordinal, call, arguments, started, None, error, "failed")
            raise
        status = "failed" if error else "completed"
        latency = self._tool_step(run, ordinal, call, arguments, started, result, error, status)
        content = {"error": error} if error else result
        message = ChatMessage("tool", self._render(content), tool_call_id=call.id)
        return message, ToolCallRecord(call.name, arguments, error, latency)

    async def _execute(self, run: _Run, call: ToolCall) -> Any:
        tool = self.tools.get(call.name)
        if tool is None:
            names = ", ".join(self.tools.names())
            raise ToolError(f"there is no tool named {call.name!r}; use one of: {names}")
        timeout = min(tool.timeout, self.limits.tool_timeout, run.deadline - time.monotonic())
        if timeout <= 0:
            raise self._expired(run)
        try:
            async with asyncio.timeout(timeout):
                output = await tool.call(run.context, call.arguments)
        except TimeoutError:
            raise ToolError(f"{call.name} timed out after {timeout:g} s") from None
        except (ToolError, _RunEndedError):
            raise
        except FatalToolError as exc:
            raise self._tool_failed(run, call.name, str(exc)) from None
        except Exception as exc:
            log.exception("tool %s failed", call.name)
            raise self._tool_failed(run, call.name, f"{type(exc).__name__}: {exc}") from None
        return output.data if isinstance(output, ToolOutput) else output

    def _tool_failed(self, run: _Run, name: str, reason: str) -> _RunEndedError:
        return _RunEndedError(
            "failed",
            run.say(
                f"I could not finish this answer: the {name} tool failed ({reason}).",
                f"답을 마치지 못했습니다: {name} 도구가 실패했습니다 ({reason}).",
            ),
            f"{name}: {reason}",
        )

    def _tool_step(
        self,
        run: _Run,
        ordinal: int,
        call: ToolCall,
        arguments: Any,
        started: float,
        result: Any,
        error: str | None,
        status: str,
    ) -> float:
        latency = (time.perf_counter() - started) * 1000
        run.record.step(
            ordinal,
            type="tool_call",
            status=status,
            latency_ms=latency,
            tool_name=call.name,
            tool_call_id=call.id,
            arguments=arguments if isinstance(arguments, dict) else {"raw": arguments},
            result=_jsonable(result),
            error=error,
        )
        return latency

    def _render(self, content: Any) -> str:
        text = json.dumps(_jsonable(content), ensure_ascii=False)
        limit = self.limits.tool_result_chars
        if len(text) <= limit:
            return text
        return text[:limit] + f"… [cut: the result had {len(text):,} characters]"

    def _fit(self, prompt: str, history: Sequence[ChatMessage], question: str) -> list[ChatMessage]:
        """System prompt, as much recent history as fits, and the question (always)."""
        count = self.backend.count_tokens
        budget = self.limits.context_tokens - count(prompt) - count(question)
        kept: list[ChatMessage] = []
        for message in reversed(history):
            budget -= count(message.content) + 4
            if budget < 0:
                break
            kept.append(message)
        kept.reverse()
        while kept and kept[0].role != "user":  # never start mid-turn
            kept.pop(0)
        return [ChatMessage("system", prompt), *kept, ChatMessage("user", question)]

    async def _finish(self, run: _Run, status: str, text: str, error: str | None) -> Answer:
        citations = _cited(text, run.context) if status == "completed" else []
        records = run.records
        meta = {
            "citations": [n for n, _ in citations],
            "tool_calls": [{"name": r.name, "error": r.error} for r in records],
        }
        final = ChatMessage("assistant", text)
        run.record.message(final, final=status == "completed", meta={"status": status})
        outcome = {
            "status": status,
            "error": error,
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "metadata": meta,
        }
        self.store.write(run.record, outcome=outcome)  # stored behind the reply
        return Answer(
            run_id=run.record.run_id,
            thread_id=run.record.thread_id,
            status=status,
            text=text,
            citations=citations,
            tool_calls=records,
            usage=Usage(run.prompt_tokens, run.completion_tokens),
            error=error,
            model=self.backend.model,
        )


def _cited(text: str, context: ToolContext) -> list[tuple[int, Citation]]:
    """The sources the answer cites as [n], in order of their numbers."""
    numbers = sorted({int(n) for n in _CITE.findall(text)})
    found = [(n, context.citations.get(n)) for n in numbers]
    return [(n, c) for n, c in found if c is not None]


def _loads(arguments: str) -> dict[str, Any] | str:
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return arguments
    return value if isinstance(value, dict) else arguments


def _jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold turned into strings."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))
