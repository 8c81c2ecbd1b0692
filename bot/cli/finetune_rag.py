"""``deskbot finetune eval --compare-rag QUESTIONS.jsonl``: RAG against fine-tuning.

The seed's experiment, on the same questions and the same collections. Three systems
answer each question through the one agent loop production uses:

    teacher + RAG   the configured OpenAI-compatible model with the configured tools
    LoRA alone      the local model (``--model``, ``--adapter``) with no tools
    LoRA + RAG      the local model with the configured tools

(the local model generates at most ``DESKBOT_LOCAL_MAX_NEW_TOKENS`` per turn).

QUESTIONS.jsonl holds ``{"question": ..., "answer": ...}`` lines (``answer``, the gold one,
is optional). Per system: the share of questions answered (the run completed), that used a
tool, whose answer cites a source, the chrF of the answers against the gold ones (against
the teacher's where none is given), and the seconds per question. The runs are stored while
they run, as every run is, and deleted at the end: they must not become training data.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.agent import Agent, Answer, ThreadKey
from bot.errors import ConfigError
from bot.schema import Thread
from bot.settings import Settings
from finetune.metrics import chrf
from tools.base import ToolContext, ToolRegistry

__all__ = ["SYSTEMS", "compare_rag", "read_questions"]

SYSTEMS = ("teacher + RAG", "LoRA alone", "LoRA + RAG")
_threads: Table = Thread.__table__  # type: ignore[assignment]


def read_questions(path: Path) -> list[dict[str, str]]:
    """The questions (and gold answers, where given) of a JSONL file."""
    try:
        lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        rows = [json.loads(line) for line in lines]
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read questions from {path}: {exc}") from None
    if not rows or not all(isinstance(r, dict) and r.get("question") for r in rows):
        raise ConfigError(f'{path}: each line needs a question: {{"question": ..., "answer": ...}}')
    return [{"question": str(r["question"]), "answer": str(r.get("answer") or "")} for r in rows]


async def compare_rag(
    settings: Settings, questions: list[dict[str, str]], model: Path, adapter: Path | None
) -> list[dict[str, Any]]:
    """One row of figures per system (see the module docstring)."""
    from bot.app import LocalModelBackend, make_limits, open_app
    from finetune.local import LocalBackend

    if settings.llm != "openai" or not settings.llm_configured:
        raise ConfigError(
            "--compare-rag needs the teacher: an OpenAI-compatible model (OPENAI_API_KEY or "
            "OPENAI_BASE_URL, DESKBOT_LLM=openai); --model is the local one"
        )
    async with open_app(settings) as app:
        limit = settings.local_max_new_tokens
        local = LocalModelBackend(LocalBackend(model, adapter=adapter, max_new_tokens=limit))
        options: dict[str, Any] = {
            "limits": make_limits(settings),
            "instructions": app.prompts.default,
        }
        agents = {
            SYSTEMS[0]: app.agent,
            SYSTEMS[1]: Agent(local, ToolRegistry([]), app.conversations, **options),
            SYSTEMS[2]: Agent(local, app.tools, app.conversations, **options),
        }
        answers: dict[str, list[tuple[Answer, float]]] = {name: [] for name in SYSTEMS}
        try:
            for name, agent in agents.items():
                for item in questions:
                    answers[name].append(await _ask(agent, item["question"]))
        finally:
            await local.close()
            await app.conversations.drain()
            await _forget(
                app.database.engine, [a.thread_id for rows in answers.values() for a, _ in rows]
            )
    teacher = [a.text for a, _ in answers[SYSTEMS[0]]]
    golds = [q["answer"] or t for q, t in zip(questions, teacher, strict=True)]
    have_gold = all(q["answer"] for q in questions)
    return [_row(name, answers[name], golds, name != SYSTEMS[0] or have_gold) for name in SYSTEMS]


async def _ask(agent: Agent, question: str) -> tuple[Answer, float]:
    started = time.perf_counter()
    thread = ThreadKey("terminal", f"finetune-compare-rag-{uuid.uuid4().hex}")
    answer = await agent.ask(thread, question, ToolContext.operator())
    return answer, time.perf_counter() - started


async def _forget(engine: AsyncEngine, threads: list[uuid.UUID]) -> None:
    if threads:
        async with engine.begin() as conn:  # runs, messages and steps go with their thread
            await conn.execute(delete(_threads).where(_threads.c.id.in_(threads)))


def _row(
    name: str, answers: list[tuple[Answer, float]], golds: list[str], scored: bool
) -> dict[str, Any]:
    count = len(answers) or 1
    completed = [a for a, _ in answers if a.status == "completed"]
    scores = [
        chrf(a.text if a.status == "completed" else "", g)
        for (a, _), g in zip(answers, golds, strict=True)
    ]
    return {
        "system": name,
        "questions": len(answers),
        "answered": len(completed) / count,
        "used_a_tool": sum(bool(a.tool_calls) for a, _ in answers) / count,
        "cited": sum(bool(a.citations) for a in completed) / count,
        "chrf": sum(scores) / count if scored else None,
        "seconds": sum(s for _, s in answers) / count,
    }
