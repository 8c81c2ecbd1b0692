"""What a run gives back to the front door that asked: the answer and how it got there."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from bot.schema import RunStatus
from knowledge.search import Citation
from tools.base import ToolContext
from tools.chat_backend import Usage

__all__ = ["Answer", "ToolCallRecord", "cited"]

_CITE = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call of a run, as the user (or ``--json``) sees it."""

    name: str
    arguments: dict[str, Any] | str
    error: str | None = None


@dataclass
class Answer:
    """What a run produced: the reply text, its cited sources, and how it got there."""

    run_id: uuid.UUID
    thread_id: uuid.UUID
    status: RunStatus
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
            "citations": [_citation_json(number, c) for number, c in self.citations],
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


def _citation_json(number: int, citation: Citation) -> dict[str, Any]:
    return {
        "number": number,
        "title": citation.title,
        "source": citation.source,
        "collection": citation.collection,
        "page": citation.page,
        "section": citation.section,
        "document_id": str(citation.document_id),
    }


def cited(text: str, context: ToolContext) -> list[tuple[int, Citation]]:
    """The sources ``text`` cites as [n], in order of their numbers."""
    numbers = sorted({int(n) for n in _CITE.findall(text)})
    found = [(n, context.citations.get(n)) for n in numbers]
    return [(n, c) for n, c in found if c is not None]
