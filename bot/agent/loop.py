"""The agent loop: model call, tool calls in parallel, results back, until an answer.

Bounded in steps (model calls and tool calls), tokens and wall-clock time (:class:`Limits`);
reaching a bound ends the run with a message to the user, never silence. Every run, message
and step is stored (:mod:`bot.agent.run` records them, :mod:`bot.agent.store` writes them).

Tool failures come in two kinds (see :mod:`tools.errors`): a :class:`~tools.errors.ToolError`
or a timeout goes back to the model as the tool's result so it can correct itself; a
:class:`~tools.errors.FatalToolError` or an unexpected exception ends the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.agent.answer import Answer, ToolCallRecord, cited
from bot.agent.budget import DailyBudget
from bot.agent.prompts import SYSTEM_PROMPT
from bot.agent.run import Limits, RunEndedError, RunState, jsonable
from bot.agent.store import ConversationStore
from bot.messages import ThreadKey
from bot.metrics import MODEL_TOKENS, RUN_SECONDS, TOOL_CALLS, TOOL_ERRORS, tool_label
from bot.schema import RunStatus
from knowledge.cleaning import clean_text, clean_value
from tools.base import ToolContext, ToolOutput, ToolRegistry
from tools.chat_backend import (
    BackendError,
    ChatBackend,
    ChatMessage,
    ChatResponse,
    TextCallback,
    ToolCall,
    Usage,
)
from tools.errors import FatalToolError, ToolError
from tools.model_retry import complete_with_retries

__all__ = ["Agent", "Answer", "Limits", "ToolCallRecord", "ToolCallback"]

log = logging.getLogger(__name__)

ToolCallback = Callable[[str, dict[str, Any]], Awaitable[None]]


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
        budget: DailyBudget | None = None,
    ) -> None:
        self.backend = backend
        self.tools = tools
        self.store = store
        self.limits = limits or Limits()
        self.instructions = instructions
        self.budget = budget

    async def ask(
        self,
        thread: ThreadKey,
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
        question = clean_text(question)  # NUL or a lone surrogate would fail the run's insert
        prompt = instructions or self.instructions
        refusal = None
        if self.budget is not None:  # over a daily budget: the run is stored, and refused
            refusal = await self.budget.refusal(context.user_id, thread.workspace_id, question)
        schemas = self.tools.schemas()
        record, history = await self.store.begin_run(
            thread,
            question=question,
            user_id=context.user_id,
            model=self.backend.model,
            instructions=prompt,
            tools=schemas,
            external_id=external_id,
        )
        run = RunState(
            record=record,
            question=question,
            context=context,
            limits=self.limits,
            deadline=started + self.limits.deadline,
            messages=self._fit(prompt, [*earlier, *history], question),
        )
        status: RunStatus
        try:
            if refusal is not None:
                raise refusal
            text = await self._loop(run, schemas, on_text, on_tool_call)
            status, error = "completed", None
        except RunEndedError as ended:
            text, status, error = ended.message, ended.status, ended.error
        except asyncio.CancelledError:
            # The process is stopping (SIGTERM, Ctrl-C, a worker's shutdown): the steps so
            # far are stored and the run is closed as cancelled, never left in progress.
            self._cancelled(run)
            raise
        answer = await self._finish(run, status, text, error)
        RUN_SECONDS.labels(self.backend.name, status).observe(time.monotonic() - started)
        return answer

    async def _loop(
        self,
        run: RunState,
        schemas: list[dict[str, Any]],
        on_text: TextCallback | None,
        on_tool_call: ToolCallback | None,
    ) -> str:
        for _ in range(self.limits.max_steps):
            response = await self._model_call(run, schemas, on_text)
            if not response.tool_calls:
                return clean_text(response.text)
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
        raise run.out_of_steps()

    async def _model_call(
        self, run: RunState, schemas: list[dict[str, Any]], on_text: TextCallback | None
    ) -> ChatResponse:
        remaining = run.deadline - time.monotonic()
        if remaining <= 0:
            raise run.out_of_time()
        estimate = sum(self.backend.count_tokens(m.content) for m in run.messages)
        if run.tokens + estimate > self.limits.token_budget:
            raise run.out_of_tokens()
        ordinal = run.next_ordinal()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(remaining):
                wire = [message.to_wire() for message in run.messages]
                completion = await complete_with_retries(
                    self.backend,
                    wire,
                    tools=schemas,
                    on_text=on_text,
                    retries=self.limits.model_retries,
                    deadline=run.deadline,
                )
            response = ChatResponse.from_completion(completion)
        except TimeoutError:
            run.model_step(ordinal, started, status="expired", error="deadline")
            raise run.out_of_time() from None
        except BackendError as exc:
            run.model_step(ordinal, started, status="failed", error=str(exc))
            raise run.model_failed(str(exc)) from None
        usage = response.usage
        if usage.total == 0:  # some servers send no usage; count it ourselves
            usage = Usage(estimate, self.backend.count_tokens(response.text))
        run.prompt_tokens += usage.prompt_tokens
        run.completion_tokens += usage.completion_tokens
        spent = {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
        for kind, count in spent.items():
            MODEL_TOKENS.labels(self.backend.name, self.backend.model, kind).inc(count)
        run.model_step(ordinal, started, status="completed", usage=usage)
        return response

    async def _tool_call(
        self, run: RunState, call: ToolCall, on_tool_call: ToolCallback | None
    ) -> tuple[ChatMessage, ToolCallRecord]:
        ordinal = run.next_ordinal()
        arguments = _loads(call.arguments)
        tool = tool_label(call.name, self.tools.names())
        TOOL_CALLS.labels(tool).inc()
        if on_tool_call is not None:
            await on_tool_call(call.name, arguments if isinstance(arguments, dict) else {})
        started = time.perf_counter()
        result: Any = None
        error: str | None = None
        try:
            result = await self._execute(run, call)
        except ToolError as exc:
            error = str(exc)
            TOOL_ERRORS.labels(tool).inc()
        except RunEndedError as ended:
            TOOL_ERRORS.labels(tool).inc()
            run.tool_step(ordinal, call, arguments, started, None, ended.error)
            raise
        run.tool_step(ordinal, call, arguments, started, result, error)
        content = {"error": error} if error else result
        message = ChatMessage("tool", self._render(content), tool_call_id=call.id)
        return message, ToolCallRecord(call.name, arguments, error)

    async def _execute(self, run: RunState, call: ToolCall) -> Any:
        tool = self.tools.get(call.name)
        if tool is None:
            names = ", ".join(self.tools.names())
            raise ToolError(f"there is no tool named {call.name!r}; use one of: {names}")
        timeout = min(tool.timeout, self.limits.tool_timeout, run.deadline - time.monotonic())
        if timeout <= 0:
            raise run.out_of_time()
        try:
            async with asyncio.timeout(timeout):
                output = await tool.call(run.context, call.arguments)
        except TimeoutError:
            raise ToolError(f"{call.name} timed out after {timeout:g} s") from None
        except (ToolError, RunEndedError):
            raise
        except FatalToolError as exc:
            raise run.tool_failed(call.name, str(exc)) from None
        except Exception as exc:
            log.exception("tool %s failed", call.name)
            raise run.tool_failed(call.name, f"{type(exc).__name__}: {exc}") from None
        return output.data if isinstance(output, ToolOutput) else output

    def _render(self, content: Any) -> str:
        text = json.dumps(jsonable(content), ensure_ascii=False)
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

    def _cancelled(self, run: RunState) -> None:
        tool_calls = [{"name": r.name, "error": r.error} for r in run.records]
        outcome = {
            "status": "cancelled",
            "error": "stopped before the answer (the process was stopped)",
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "metadata": {"citations": [], "tool_calls": tool_calls},
        }
        self.store.write(run.record, outcome=outcome)  # the store drains it on close

    async def _finish(
        self, run: RunState, status: RunStatus, text: str, error: str | None
    ) -> Answer:
        citations = cited(text, run.context) if status == "completed" else []
        meta = {
            "citations": [n for n, _ in citations],
            "tool_calls": [{"name": r.name, "error": r.error} for r in run.records],
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
            tool_calls=run.records,
            usage=Usage(run.prompt_tokens, run.completion_tokens),
            error=error,
            model=self.backend.model,
        )


def _loads(arguments: str) -> dict[str, Any] | str:
    try:
        value = clean_value(json.loads(arguments or "{}"))
    except json.JSONDecodeError:
        return clean_text(arguments)
    return value if isinstance(value, dict) else clean_text(arguments)
