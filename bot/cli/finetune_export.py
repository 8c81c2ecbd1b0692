"""Completed runs read from PostgreSQL as the plain dicts :mod:`finetune.data` takes.

A run becomes: its thread and run ids, the system prompt and the tool schemas it ran with
(``tools`` is None for runs stored before runs recorded them), its feedback (thumbs up minus
down), the earlier questions and final answers of its thread (what the agent put
before the question, as :meth:`ConversationStore.history` does) and its own messages: the
question, each assistant turn with its tool calls, each tool result, the answer.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.schema import Feedback, Message, Run

__all__ = ["HISTORY_TURNS", "read_runs"]

_messages: Table = Message.__table__  # type: ignore[assignment]
_runs: Table = Run.__table__  # type: ignore[assignment]
_feedback: Table = Feedback.__table__  # type: ignore[assignment]

HISTORY_TURNS = 10
"""Earlier questions and answers kept before a run's question (the agent trims by tokens)."""


async def read_runs(
    engine: AsyncEngine, *, since: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Every completed run (created at or after ``since``), oldest first."""
    score = func.coalesce(func.sum(_feedback.c.value), 0).label("feedback")
    statement = (
        select(_runs.c.id, _runs.c.thread_id, _runs.c.instructions, _runs.c.tools, score)
        .select_from(_runs.outerjoin(_feedback, _feedback.c.run_id == _runs.c.id))
        .where(_runs.c.status == "completed")
        .group_by(_runs.c.id)
        .order_by(_runs.c.created_at, _runs.c.id)
    )
    if since is not None:
        statement = statement.where(_runs.c.created_at >= since)
    async with engine.connect() as conn:
        runs = (await conn.execute(statement)).all()
        threads = sorted({run.thread_id for run in runs})
        rows = (
            await conn.execute(
                select(_messages)
                .where(_messages.c.thread_id.in_(threads))
                .order_by(_messages.c.created_at, _messages.c.id)
            )
        ).all()
    by_thread: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_thread[row.thread_id].append(dict(row._mapping))
    return [_run(run, by_thread[run.thread_id]) for run in runs]


def _run(run: Any, thread: list[dict[str, Any]]) -> dict[str, Any]:
    own = [m for m in thread if m["run_id"] == run.id]
    start = own[0]["created_at"] if own else None
    earlier = [m for m in thread if start is not None and m["created_at"] < start and _final(m)]
    return {
        "thread": str(run.thread_id),
        "run": str(run.id),
        "instructions": run.instructions,
        "tools": run.tools,
        "feedback": int(run.feedback),
        "history": [_plain(m) for m in earlier[-HISTORY_TURNS:]],
        "messages": [_plain(m) for m in own],
    }


def _final(message: dict[str, Any]) -> bool:
    """A question or final answer, as the agent's history sees them (no tool turns)."""
    return (
        message["role"] in ("user", "assistant")
        and not message["tool_calls"]
        and (message["metadata"] or {}).get("final") is not False
    )


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    keys = ("role", "content", "tool_calls", "tool_call_id")
    return {key: message[key] for key in keys if message[key] is not None}
