"""Threads, messages, runs and run steps in PostgreSQL.

Every write is its own short transaction, so a crash mid-run leaves the steps so far and a
run still marked ``in_progress`` (visible, and easy to expire), never a half-written step.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.agent.backends import ChatMessage, ToolCall
from bot.schema import Message, Run, RunStep, Thread

__all__ = ["ConversationStore", "StoredRun", "ThreadKey"]

_threads: Table = Thread.__table__  # type: ignore[assignment]
_messages: Table = Message.__table__  # type: ignore[assignment]
_runs: Table = Run.__table__  # type: ignore[assignment]
_steps: Table = RunStep.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class ThreadKey:
    """Where a conversation lives on its platform (a Slack thread, a terminal session ...)."""

    platform: str
    external_id: str
    workspace_id: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True)
class StoredRun:
    """A run as stored, with its steps, for ``show``-style commands and tests."""

    id: uuid.UUID
    thread_id: uuid.UUID
    status: str
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    steps: list[dict[str, Any]]
    meta: dict[str, Any]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ConversationStore:
    """Reads and writes conversations on one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def thread(self, key: ThreadKey, *, title: str = "") -> uuid.UUID:
        """The id of the thread at ``key``, created on first use."""
        statement = (
            pg_insert(_threads)
            .values(
                platform=key.platform,
                external_id=key.external_id,
                workspace_id=key.workspace_id,
                channel_id=key.channel_id,
                title=title[:200],
            )
            .on_conflict_do_update(
                index_elements=["platform", "external_id"], set_={"updated_at": func.now()}
            )
            .returning(_threads.c.id)
        )
        async with self.engine.begin() as conn:
            return uuid.UUID(str((await conn.execute(statement)).scalar_one()))

    async def history(self, thread_id: uuid.UUID, *, limit: int = 50) -> list[ChatMessage]:
        """The last ``limit`` questions and final answers of completed runs, oldest first.

        Tool calls of earlier runs are left out: their answers already carry what they found,
        and the raw results would crowd the context window.
        """
        statement = (
            select(_messages.c.role, _messages.c.content)
            .where(
                _messages.c.thread_id == thread_id,
                _messages.c.role.in_(("user", "assistant")),
                _messages.c.tool_calls.is_(None),
                _messages.c["metadata"]["final"].as_boolean().is_not(False),
            )
            .order_by(_messages.c.created_at.desc(), _messages.c.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [ChatMessage(role=row.role, content=row.content) for row in reversed(rows)]

    async def start_run(
        self,
        thread_id: uuid.UUID,
        *,
        question: str,
        user_id: str | None,
        model: str,
        instructions: str,
        external_id: str | None = None,
    ) -> uuid.UUID:
        """Store the question and a run answering it, already ``in_progress``."""
        async with self.engine.begin() as conn:
            run_id = (
                await conn.execute(
                    insert(_runs)
                    .values(
                        thread_id=thread_id,
                        status="in_progress",
                        model=model,
                        instructions=instructions,
                        user_id=user_id,
                        started_at=_now(),
                    )
                    .returning(_runs.c.id)
                )
            ).scalar_one()
            await conn.execute(
                insert(_messages).values(
                    thread_id=thread_id,
                    run_id=run_id,
                    role="user",
                    content=question,
                    user_id=user_id,
                    external_id=external_id,
                    metadata={"final": True},
                )
            )
        return uuid.UUID(str(run_id))

    async def add_message(
        self,
        thread_id: uuid.UUID,
        run_id: uuid.UUID,
        message: ChatMessage,
        *,
        final: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Store an assistant or tool message of a run (``final``: the answer shown)."""
        values: dict[str, Any] = {
            "thread_id": thread_id,
            "run_id": run_id,
            "role": message.role,
            "content": message.content,
            "tool_call_id": message.tool_call_id,
            "metadata": {"final": final, **(meta or {})},
        }
        if message.tool_calls:
            values["tool_calls"] = [_call_json(c) for c in message.tool_calls]
        async with self.engine.begin() as conn:
            await conn.execute(insert(_messages).values(**values))

    async def add_step(
        self,
        run_id: uuid.UUID,
        ordinal: int,
        *,
        type: str,
        status: str,
        latency_ms: float,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
        arguments: Any = None,
        result: Any = None,
        error: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        """Store one finished model call or tool call."""
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(_steps).values(
                    run_id=run_id,
                    ordinal=ordinal,
                    type=type,
                    status=status,
                    tool_name=tool_name,
                    tool_call_id=tool_call_id,
                    arguments=arguments,
                    result=result,
                    error=error,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    latency_ms=latency_ms,
                    completed_at=_now(),
                )
            )

    async def finish_run(
        self,
        run_id: uuid.UUID,
        *,
        status: str,
        prompt_tokens: int,
        completion_tokens: int,
        error: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Close a run with its outcome and totals."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(_runs)
                .where(_runs.c.id == run_id)
                .values(
                    status=status,
                    error=error,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    completed_at=_now(),
                    metadata=meta or {},
                )
            )

    async def get_run(self, run_id: uuid.UUID) -> StoredRun | None:
        """A run and its steps in order."""
        async with self.engine.connect() as conn:
            run = (await conn.execute(select(_runs).where(_runs.c.id == run_id))).first()
            if run is None:
                return None
            steps = (
                await conn.execute(
                    select(_steps).where(_steps.c.run_id == run_id).order_by(_steps.c.ordinal)
                )
            ).all()
        return StoredRun(
            id=run.id,
            thread_id=run.thread_id,
            status=run.status,
            error=run.error,
            prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens,
            steps=[dict(step._mapping) for step in steps],
            meta=dict(run._mapping["metadata"]),
        )

    async def expire_stale_runs(self, *, older_than: dt.timedelta) -> int:
        """Mark runs left ``in_progress`` by a crashed process as ``expired``."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(_runs)
                .where(_runs.c.status == "in_progress", _runs.c.started_at < _now() - older_than)
                .values(status="expired", error="the process running it stopped")
            )
        return int(result.rowcount or 0)


def _call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
