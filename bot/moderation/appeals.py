"""The moderation store's member-facing half: appeals, stats, export for retraining, purge.

An appeal is one per event (a unique constraint, so two presses at once still make one),
only for an action the member felt (enforced, beyond ``log``), only by the event's author
and only within ``appeal_days`` of the decision. Accepting one overturns the event as an
approval does: the strike goes, and the excerpt becomes a labelled false positive.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.moderation.policy import severity
from bot.moderation.records import AppealError, AppealRecord, NotFoundError, PurgeCounts, Stats
from bot.moderation.store import DecisionStore
from bot.schema import Appeal, AppealStatus, AuditLog, ModerationEvent, ModerationStrike

__all__ = ["ModerationStore"]

_events: Table = ModerationEvent.__table__  # type: ignore[assignment]
_strikes: Table = ModerationStrike.__table__  # type: ignore[assignment]
_appeals: Table = Appeal.__table__  # type: ignore[assignment]
_audit: Table = AuditLog.__table__  # type: ignore[assignment]


class ModerationStore(DecisionStore):
    """Everything moderation keeps in PostgreSQL; every write is audited.

    Args:
        engine: The bot's database engine.
        appeal_days: How long after a decision its member may appeal (``DESKBOT_APPEAL_DAYS``).
        clock: The current time; tests pass their own to move through windows.
    """

    # --- appeals -----------------------------------------------------------------------

    async def open_appeal(
        self, event_id: uuid.UUID, *, author_id: str, reason: str
    ) -> AppealRecord:
        """Open the member's appeal against ``event_id``.

        Raises:
            NotFoundError: No such event.
            AppealError: Not the author's event (``not_author``), nothing was done to them
                (``not_actioned``), past the appeal window (``expired``), or an appeal
                already exists (``duplicate``).
        """
        now = self.clock()
        async with self.engine.begin() as conn:
            event = await self._event(conn, event_id)
            if event.author_id != author_id:
                raise AppealError("not_author", "only the member it concerns can appeal this")
            if not event.enforced or severity(event.action) <= severity("log"):
                raise AppealError("not_actioned", "nothing was done to you: there is no appeal")
            if now - event.created_at > dt.timedelta(days=self.appeal_days):
                raise AppealError(
                    "expired", f"appeals close {self.appeal_days} days after the decision"
                )
            values = {"event_id": event_id, "author_id": author_id, "reason": reason}
            stmt = pg_insert(_appeals).values(values | {"created_at": now})
            stmt = stmt.on_conflict_do_nothing(index_elements=["event_id"])
            row = (await conn.execute(stmt.returning(*_appeals.c))).mappings().first()
            if row is None:
                raise AppealError("duplicate", "this decision has already been appealed")
            await self._audit(
                conn, author_id, "moderation.appeal.open", f"user:{author_id}", reason,
                event.guild_id, {"event_id": str(event_id), "appeal_id": str(row["id"])},
            )  # fmt: skip
        return AppealRecord.from_row(row)

    async def decide_appeal(
        self, appeal_id: uuid.UUID, *, reviewer_id: str, accept: bool, reason: str = ""
    ) -> AppealRecord:
        """Accept (strike removed, event overturned) or reject an open appeal; audited.

        Raises:
            NotFoundError: No such appeal.
            AppealError: It was already decided (``closed``).
        """
        status: AppealStatus = "accepted" if accept else "rejected"
        async with self.engine.begin() as conn:
            appeal = await self._appeal(conn, appeal_id, lock=True)
            if appeal.status != "open":
                raise AppealError("closed", f"this appeal was already {appeal.status}")
            event = await self._event(conn, appeal.event_id)
            values = {
                "status": status,
                "reviewer_id": reviewer_id[:64],
                "review_reason": reason,
                "decided_at": self.clock(),
            }
            stmt = update(_appeals).where(_appeals.c.id == appeal_id).values(values)
            await conn.execute(stmt)
            if accept:
                await self._overturn(conn, appeal.event_id, reviewer_id)
            await self._audit(
                conn, reviewer_id, f"moderation.appeal.{status}", f"user:{appeal.author_id}",
                reason, event.guild_id, {"event_id": str(event.id), "appeal_id": str(appeal_id)},
            )  # fmt: skip
            return await self._appeal(conn, appeal_id)

    async def appeal(self, appeal_id: uuid.UUID) -> AppealRecord:
        """One appeal; :class:`NotFoundError` when there is none."""
        async with self.engine.connect() as conn:
            return await self._appeal(conn, appeal_id)

    async def _appeal(
        self, conn: AsyncConnection, appeal_id: uuid.UUID, *, lock: bool = False
    ) -> AppealRecord:
        query = select(_appeals).where(_appeals.c.id == appeal_id)
        row = (await conn.execute(query.with_for_update() if lock else query)).mappings().first()
        if row is None:
            raise NotFoundError(f"no appeal {appeal_id}")
        return AppealRecord.from_row(row)

    async def appeal_for_event(self, event_id: uuid.UUID) -> AppealRecord | None:
        """The appeal against ``event_id``, if one was made."""
        query = select(_appeals).where(_appeals.c.event_id == event_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else AppealRecord.from_row(row)

    async def appeals(
        self, guild_id: str | None = None, *, status: AppealStatus | None = None
    ) -> list[AppealRecord]:
        """Appeals, newest first, of one guild and/or one status."""
        query = select(_appeals).join(_events, _appeals.c.event_id == _events.c.id)
        if guild_id is not None:
            query = query.where(_events.c.guild_id == guild_id)
        if status is not None:
            query = query.where(_appeals.c.status == status)
        query = query.with_only_columns(*_appeals.c).order_by(_appeals.c.created_at.desc())
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [AppealRecord.from_row(row) for row in rows]

    async def export_appeals(
        self, *, status: AppealStatus = "accepted", guild_id: str | None = None
    ) -> list[tuple[str, str]]:
        """``(text, label)`` rows for retraining, oldest decision first.

        An accepted appeal was a false positive, so its text is labelled ``none``; any
        other status keeps the label the classifier gave.
        """
        query = select(_events.c.excerpt, _events.c.label).join(
            _appeals, _appeals.c.event_id == _events.c.id
        )
        query = query.where(_appeals.c.status == status)
        if guild_id is not None:
            query = query.where(_events.c.guild_id == guild_id)
        query = query.order_by(_appeals.c.decided_at, _appeals.c.created_at)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(excerpt, "none" if status == "accepted" else label) for excerpt, label in rows]

    # --- stats ---------------------------------------------------------------------------

    async def stats(self, guild_id: str, *, days: int = 30) -> Stats:
        """Decisions per label and action over the last ``days`` days, appeals, overturns."""
        since = self.clock() - dt.timedelta(days=days)
        overturns = func.count(_events.c.overturned_at)
        per_action = (
            select(_events.c.label, _events.c.action, func.count(), overturns)
            .where(_events.c.guild_id == guild_id, _events.c.created_at >= since)
            .group_by(_events.c.label, _events.c.action)
        )
        appeals = (
            select(func.count(), func.count().filter(_appeals.c.status == "accepted"))
            .select_from(_appeals.join(_events, _appeals.c.event_id == _events.c.id))
            .where(_events.c.guild_id == guild_id, _events.c.created_at >= since)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(per_action)).all()
            appealed, accepted = (await conn.execute(appeals)).one()
        return _stats(days, [tuple(row) for row in rows], int(appealed), int(accepted))

    # --- retention -----------------------------------------------------------------------

    async def purge(self, retention_days: int) -> PurgeCounts:
        """Delete events, their strikes and appeals, and the audit rows about members,
        older than ``retention_days`` (``DESKBOT_MODERATION_RETENTION_DAYS``)."""
        cutoff = self.clock() - dt.timedelta(days=retention_days)
        old_events = select(_events.c.id).where(_events.c.created_at < cutoff)
        async with self.engine.begin() as conn:
            appeals = await _count_deleted(
                conn, delete(_appeals).where(_appeals.c.event_id.in_(old_events))
            )
            strikes = await _count_deleted(
                conn, delete(_strikes).where(_strikes.c.event_id.in_(old_events))
            )
            events = await _count_deleted(
                conn, delete(_events).where(_events.c.created_at < cutoff)
            )
            audit = await _count_deleted(conn, delete(_audit).where(*_about_members(cutoff)))
        return PurgeCounts(events=events, strikes=strikes, appeals=appeals, audit=audit)


def _about_members(cutoff: dt.datetime) -> list[Any]:
    # Policy changes concern the guild, not a member: they stay as its history.
    return [
        _audit.c.created_at < cutoff,
        _audit.c.action.startswith("moderation."),
        _audit.c.action != "moderation.policy",
    ]


async def _count_deleted(conn: AsyncConnection, stmt: Any) -> int:
    result = await conn.execute(stmt)
    return int(result.rowcount)


def _stats(days: int, rows: list[tuple[Any, ...]], appealed: int, accepted: int) -> Stats:
    decisions: dict[str, dict[str, int]] = defaultdict(dict)
    overturned: dict[str, int] = defaultdict(int)
    for label, action, count, overturns in rows:
        decisions[label][action] = int(count)
        overturned[label] += int(overturns)
    per_label = {label: sum(actions.values()) for label, actions in decisions.items()}
    return Stats(
        days=days,
        total=sum(per_label.values()),
        decisions=dict(decisions),
        appeals=appealed,
        appeals_accepted=accepted,
        overturned=sum(overturned.values()),
        overturn_rate={label: overturned[label] / n for label, n in per_label.items() if n},
    )
