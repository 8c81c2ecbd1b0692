"""One run's state while the loop works: its bounds, the steps it records, how it ends early.

:class:`RunState` carries the conversation sent to the model, the tokens spent and the tool
calls made, and buffers every model call and tool call as a step (written by
:meth:`~bot.agent.store.ConversationStore.write`). A bound reached or a fatal failure ends
the run through :class:`RunEndedError`, whose message is said to the user in the language
of the question: the loop never ends in silence.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.agent.answer import ToolCallRecord
from bot.agent.store import RunRecord
from bot.language import in_language_of
from bot.schema import StepStatus
from tools.base import ToolContext
from tools.chat_backend import ChatMessage, ToolCall, Usage

__all__ = ["Limits", "RunEndedError", "RunState"]


@dataclass(frozen=True)
class Limits:
    """Bounds of one run."""

    max_steps: int = 8
    token_budget: int = 60_000
    deadline: float = 120.0
    tool_timeout: float = 30.0
    model_retries: int = 3
    context_tokens: int = 16_000
    tool_result_chars: int = 12_000


class RunEndedError(Exception):
    """A bound or a fatal failure ended the run; ``message`` is what the user is told."""

    def __init__(self, status: Literal["failed", "expired"], message: str, error: str) -> None:
        super().__init__(error)
        self.status: Literal["failed", "expired"] = status
        self.message = message
        self.error = error


@dataclass
class RunState:
    """What one run has sent, spent and done so far."""

    record: RunRecord
    question: str
    context: ToolContext
    limits: Limits
    deadline: float
    messages: list[ChatMessage]
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    records: list[ToolCallRecord] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens spent so far."""
        return self.prompt_tokens + self.completion_tokens

    def next_ordinal(self) -> int:
        """The number of the next step (model calls and tool calls share the count)."""
        self.steps += 1
        return self.steps

    def say(self, english: str, korean: str) -> str:
        """A message to the user in the language of the question."""
        return in_language_of(self.question, english, korean)

    # --- steps ------------------------------------------------------------------------

    def model_step(
        self,
        ordinal: int,
        started: float,
        *,
        status: StepStatus,
        error: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        """Record a model call that began at ``started`` (``time.perf_counter``)."""
        self.record.step(
            ordinal,
            type="model_call",
            status=status,
            latency_ms=(time.perf_counter() - started) * 1000,
            error=error,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def tool_step(
        self,
        ordinal: int,
        call: ToolCall,
        arguments: Any,
        started: float,
        result: Any,
        error: str | None,
    ) -> None:
        """Record a tool call that began at ``started``."""
        self.record.step(
            ordinal,
            type="tool_call",
            status="failed" if error else "completed",
            latency_ms=(time.perf_counter() - started) * 1000,
            tool_name=call.name,
            tool_call_id=call.id,
            arguments=arguments if isinstance(arguments, dict) else {"raw": arguments},
            result=jsonable(result),
            error=error,
        )

    # --- ways a run ends early --------------------------------------------------------

    def out_of_steps(self) -> RunEndedError:
        """The step bound was reached without an answer."""
        steps = self.limits.max_steps
        return RunEndedError(
            "failed",
            self.say(
                f"I stopped after {steps} steps without reaching an answer. "
                "Please ask a narrower question.",
                f"{steps}단계 안에 답을 찾지 못해 멈췄습니다. 질문을 좀 더 구체적으로 해 주세요.",
            ),
            f"step limit ({steps}) reached",
        )

    def out_of_tokens(self) -> RunEndedError:
        """The next model call would spend more than the token budget."""
        budget = self.limits.token_budget
        return RunEndedError(
            "failed",
            self.say(
                "This question needs more work than one answer may spend "
                f"({budget:,} tokens). Please ask a narrower question.",
                f"한 번의 답변에 쓸 수 있는 양({budget:,} 토큰)을 넘었습니다. 질문을 좁혀 주세요.",
            ),
            f"token budget ({budget}) reached",
        )

    def out_of_time(self) -> RunEndedError:
        """The run's deadline passed."""
        seconds = self.limits.deadline
        return RunEndedError(
            "expired",
            self.say(
                f"I ran out of time ({seconds:g} s) before finishing this answer. "
                "Please try again or ask a narrower question.",
                f"제한 시간({seconds:g}초) 안에 답을 마치지 못했습니다. "
                "다시 시도하거나 질문을 좁혀 주세요.",
            ),
            f"deadline ({seconds:g} s) reached",
        )

    def model_failed(self, reason: str) -> RunEndedError:
        """The language model could not be reached or refused the request."""
        return RunEndedError(
            "failed",
            self.say(
                f"I could not get an answer from the language model: {reason}",
                f"언어 모델에서 답을 받지 못했습니다: {reason}",
            ),
            reason,
        )

    def tool_failed(self, name: str, reason: str) -> RunEndedError:
        """A tool failed in a way the model cannot fix."""
        return RunEndedError(
            "failed",
            self.say(
                f"I could not finish this answer: the {name} tool failed ({reason}).",
                f"답을 마치지 못했습니다: {name} 도구가 실패했습니다 ({reason}).",
            ),
            f"{name}: {reason}",
        )


def jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold turned into strings."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))
