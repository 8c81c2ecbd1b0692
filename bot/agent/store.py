"""Threads, messages, runs and run steps in PostgreSQL.

Each write is one transaction, so a crash mid-run leaves whole steps and a run still marked
``in_progress``, never a half-written step; the worker's upkeep marks such a run ``expired``
(:meth:`ConversationStore.expire_stale_runs`, wired in :func:`bot.jobs.make_worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db_reconnect import is_disconnect
from bot.messages import ThreadKey
from bot.schema import Feedback, Message, Run, RunStatus, RunStep, StepStatus, StepType, Thread
from tools.chat_backend import ChatMessage, ToolCall

__all__ = ["ConversationStore", "RunRecord", "StoredRun", "ThreadKey"]

log = logging.getLogger(__name__)

_threads: Table = Thread.__table__  # type: ignore[assignment]
_messages: Table = Message.__table__  # type: ignore[assignment]
_runs: Table = Run.__table__  # type: ignore[assignment]
_steps: Table = RunStep.__table__  # type: ignore[assignment]
_feedback: Table = Feedback.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class StoredRun:
    """A run as stored, with its steps, for ``show``-style commands and tests."""

    id: uuid.UUID
    thread_id: uuid.UUID
    status: RunStatus
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    steps: list[dict[str, Any]]
    meta: dict[str, Any]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Starting a run: the thread (created on first use), the run, the question and the history
# before it, in one statement (the history subquery sees the snapshot from before the inserts).
_BEGIN_RUN = text(
    """
WITH t AS (
    INSERT INTO threads (platform, external_id, workspace_id, channel_id, title)
    VALUES (:platform, :thread_external_id, :workspace_id, :channel_id, :title)
    ON CONFLICT (platform, external_id) DO UPDATE SET updated_at = now()
    RETURNING id
), r AS (
    INSERT INTO runs (
        thread_id, status, model, instructions, tools, user_id, workspace_id, started_at
    )
    SELECT id, 'in_progress', :model, :instructions, CAST(:tools AS json), :user_id,
           :workspace_id, now()
    FROM t
    RETURNING id, thread_id
), m AS (
    INSERT INTO messages (thread_id, run_id, role, content, user_id, external_id, metadata)
    SELECT thread_id, id, 'user', :question, :user_id, :external_id, '{"final": true}'
    FROM r
    RETURNING id
)
SELECT r.thread_id, r.id AS run_id, h.role, h.content
FROM r CROSS JOIN (SELECT count(*) FROM m) AS written
LEFT JOIN LATERAL (
    SELECT role, content, created_at, id FROM messages
    WHERE thread_id = r.thread_id AND role IN ('user', 'assistant') AND tool_calls IS NULL
      AND (metadata ->> 'final')::boolean IS DISTINCT FROM false
    ORDER BY created_at DESC, id DESC
    LIMIT :history_limit
) AS h ON true
ORDER BY h.created_at DESC, h.id DESC
"""
)
# How many earlier questions and answers a run sees at most (the loop trims to its budget).
_HISTORY_LIMIT = 50


@dataclass
class RunRecord:
    """Messages and steps of a run not yet written (see :meth:`ConversationStore.write`)."""

    thread_id: uuid.UUID
    run_id: uuid.UUID
    messages: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def message(
        self, message: ChatMessage, *, final: bool = False, meta: dict[str, Any] | None = None
    ) -> None:
        """Buffer an assistant or tool message (``final``: the answer shown to the user)."""
        self.messages.append(
            {
                "thread_id": self.thread_id,
                "run_id": self.run_id,
                "role": message.role,
                "content": message.content,
                "tool_call_id": message.tool_call_id,
                "tool_calls": [_call_json(c) for c in message.tool_calls] or None,
                "metadata": {"final": final, **(meta or {})},
                "created_at": _now(),
            }
        )

    def step(self, ordinal: int, *, type: StepType, status: StepStatus, **values: Any) -> None:
        """Buffer one finished model call or tool call (``values``: the other columns)."""
        row: dict[str, Any] = {
            "tool_name": None,
            "tool_call_id": None,
            "arguments": None,
            "result": None,
            "error": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
        }
        row.update(values, type=type, status=status)
        row.update(run_id=self.run_id, ordinal=ordinal, completed_at=_now())
        self.steps.append(row)

    def take(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The buffered rows, leaving the buffer empty."""
        messages, steps = self.messages, self.steps
        self.messages, self.steps = [], []
        return messages, steps


class ConversationStore:
    """Reads and writes conversations on one engine.

    Starting a run is one transaction (thread, history, run, question), awaited. What a run
    produces afterwards (steps, messages, its outcome) is written behind the reply, in order
    per thread: the user does not wait for it, and the next run in the same thread, and
    :meth:`get_run`, wait until it is stored. :meth:`drain` waits for every pending write.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # one statement needs no BEGIN/COMMIT round trips: it is atomic on its own
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pending: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._thread_ids: dict[ThreadKey, uuid.UUID] = {}

    async def thread(self, key: ThreadKey) -> uuid.UUID:
        """The id of the thread at ``key``, created on first use."""
        statement = (
            pg_insert(_threads)
            .values(
                platform=key.platform,
                external_id=key.external_id,
                workspace_id=key.workspace_id,
                channel_id=key.channel_id,
            )
            .on_conflict_do_update(
                index_elements=["platform", "external_id"], set_={"updated_at": func.now()}
            )
            .returning(_threads.c.id)
        )
        async with self.engine.begin() as conn:
            thread_id = uuid.UUID(str((await conn.execute(statement)).scalar_one()))
        self._remember(key, thread_id)
        return thread_id

    def _remember(self, key: ThreadKey, thread_id: uuid.UUID) -> None:
        if len(self._thread_ids) > 10_000:
            self._thread_ids.clear()
        self._thread_ids[key] = thread_id

    async def has_thread(self, key: ThreadKey) -> bool:
        """True if a conversation exists at ``key`` (the bot has taken part in it)."""
        if key in self._thread_ids:
            return True
        statement = select(_threads.c.id).where(
            _threads.c.platform == key.platform, _threads.c.external_id == key.external_id
        )
        async with self.engine.connect() as conn:
            found = (await conn.execute(statement)).scalar_one_or_none()
        if found is not None:
            self._remember(key, uuid.UUID(str(found)))
        return found is not None

    async def record_feedback(self, run_id: uuid.UUID, user_id: str, value: int) -> bool:
        """Store a user's thumbs-up (+1) or -down (-1) on a run; a second click replaces it.

        Returns False if the run does not exist.
        """
        await self.drain()
        statement = (
            pg_insert(_feedback)
            .values(run_id=run_id, user_id=user_id, value=value)
            .on_conflict_do_update(
                index_elements=["run_id", "user_id"],
                set_={"value": value, "created_at": func.now()},
            )
        )
        async with self.engine.begin() as conn:
            exists = (
                await conn.execute(select(_runs.c.id).where(_runs.c.id == run_id))
            ).scalar_one_or_none()
            if exists is None:
                return False
            await conn.execute(statement)
        return True

    async def history(self, thread_id: uuid.UUID) -> list[ChatMessage]:
        """The last questions and final answers of the thread, oldest first."""
        await self.settled(thread_id)
        # Tool calls of earlier runs are left out: their answers already carry what they
        # found, and the raw results would crowd the context window.
        statement = (
            select(_messages.c.role, _messages.c.content)
            .where(
                _messages.c.thread_id == thread_id,
                _messages.c.role.in_(("user", "assistant")),
                _messages.c.tool_calls.is_(None),
                _messages.c["metadata"]["final"].as_boolean().is_not(False),
            )
            .order_by(_messages.c.created_at.desc(), _messages.c.id.desc())
            .limit(_HISTORY_LIMIT)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [ChatMessage(role=row.role, content=row.content) for row in reversed(rows)]

    async def begin_run(
        self,
        thread: ThreadKey,
        *,
        question: str,
        user_id: str | None,
        model: str,
        instructions: str,
        tools: Sequence[dict[str, Any]] | None = None,
        external_id: str | None = None,
    ) -> tuple[RunRecord, list[ChatMessage]]:
        """Store the question and a run answering it (``in_progress``); return the history.

        One statement, so one round trip: the thread (created on first use), its history
        before this question, the run (with ``tools``, the schemas the model is offered)
        and the question.
        """
        known = self._thread_ids.get(thread)
        if known is not None:
            await self.settled(known)
        values = {
            "question": question,
            "user_id": user_id,
            "model": model,
            "instructions": instructions,
            "tools": None if tools is None else json.dumps(list(tools), ensure_ascii=False),
            "external_id": external_id,
            "history_limit": _HISTORY_LIMIT,
            "platform": thread.platform,
            "thread_external_id": thread.external_id,
            "workspace_id": thread.workspace_id,
            "channel_id": thread.channel_id,
            "title": question[:80],
        }
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(_BEGIN_RUN, values)).all()
        thread_id, run_id = uuid.UUID(str(rows[0].thread_id)), uuid.UUID(str(rows[0].run_id))
        self._remember(thread, thread_id)
        history = [ChatMessage(role=r.role, content=r.content) for r in reversed(rows) if r.role]
        return RunRecord(thread_id, run_id), history

    def write(self, record: RunRecord, *, outcome: dict[str, Any] | None = None) -> None:
        """Write what ``record`` buffered (and, with ``outcome``, close the run) behind the
        caller, after any earlier pending write of the same thread."""
        messages, steps = record.take()
        before = self._pending.get(record.thread_id)
        task = asyncio.create_task(
            self._write(before, record.run_id, messages, steps, outcome),
            name=f"deskbot-run-write-{record.run_id}",
        )
        self._pending[record.thread_id] = task
        task.add_done_callback(lambda done: self._written(record.thread_id, done))

    async def _write(
        self,
        before: asyncio.Task[None] | None,
        run_id: uuid.UUID,
        messages: list[dict[str, Any]],
        steps: list[dict[str, Any]],
        outcome: dict[str, Any] | None,
    ) -> None:
        if before is not None:
            with contextlib.suppress(Exception):  # its failure was logged; keep order only
                await asyncio.shield(before)
        for attempt in (1, 2):  # a database restart cut the first try off: once more
            try:
                async with self.engine.begin() as conn:
                    if messages:
                        await conn.execute(insert(_messages), messages)
                    if steps:
                        await conn.execute(insert(_steps), steps)
                    if outcome is not None:
                        done = {"completed_at": _now(), **outcome}
                        await conn.execute(update(_runs).where(_runs.c.id == run_id).values(done))
                return
            except DBAPIError as exc:
                if attempt == 2 or not is_disconnect(exc):
                    raise

    def _written(self, thread_id: uuid.UUID, task: asyncio.Task[None]) -> None:
        if self._pending.get(thread_id) is task:
            del self._pending[thread_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("could not store run steps: %s", task.exception())

    async def settled(self, thread_id: uuid.UUID) -> None:
        """Wait until what was written behind the reply in ``thread_id`` is stored."""
        task = self._pending.get(thread_id)
        if task is not None:
            await asyncio.wait([task])

    async def drain(self) -> None:
        """Wait until every pending write is stored (or has failed and been logged)."""
        while self._pending:
            await asyncio.wait(list(self._pending.values()))

    async def get_run(self, run_id: uuid.UUID) -> StoredRun | None:
        """A run and its steps in order."""
        await self.drain()
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
        """Mark runs ``in_progress`` for longer than ``older_than`` as ``expired``.

        Such a run was left by a process that stopped mid-run. Returns how many were marked.
        """
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(_runs)
                .where(_runs.c.status == "in_progress", _runs.c.started_at < _now() - older_than)
                .values(status="expired", error="the process running it stopped")
            )
        return int(result.rowcount or 0)

    async def expire_runs_of(self, external_id: str) -> int:
        """Mark the runs answering the message ``external_id`` still ``in_progress`` as
        ``expired`` (their process died and the message is being answered again)."""
        asked = select(_messages.c.run_id).where(
            _messages.c.external_id == external_id, _messages.c.role == "user"
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(_runs)
                .where(_runs.c.status == "in_progress", _runs.c.id.in_(asked))
                .values(status="expired", error="the process running it stopped")
            )
        return int(result.rowcount or 0)


def _call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
