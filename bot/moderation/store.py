"""Moderation in PostgreSQL: policies, events, strikes, and an audit row for every action.

Each write is one transaction with its audit row, so the log never misses an action that
happened. Decisions are written in batches (one transaction, one multi-row insert per
table): strike counts are read and strikes added under per-member advisory locks, and a
burst of messages from one member climbs the ladder one step per message.
Appeals, stats, export and purge live in :mod:`bot.moderation.appeals`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, and_, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.moderation.policy import Action, Outcome, Policy
from bot.moderation.records import AppealRecord, EventRecord, MemberHistory, NotFoundError
from bot.moderation.rows import (
    EventDraft,
    decision_reason,
    event_values,
    policy_from_row,
    policy_values,
)
from bot.schema import Appeal, AuditLog, ModerationEvent, ModerationPolicy, ModerationStrike

__all__ = ["BOT_ACTOR", "DecisionStore", "EventDraft", "utc_now"]

BOT_ACTOR = "deskbot"
"""The audit log's actor for what the bot does by itself."""

_policies: Table = ModerationPolicy.__table__  # type: ignore[assignment]
_events: Table = ModerationEvent.__table__  # type: ignore[assignment]
_strikes: Table = ModerationStrike.__table__  # type: ignore[assignment]
_appeals: Table = Appeal.__table__  # type: ignore[assignment]
_audit: Table = AuditLog.__table__  # type: ignore[assignment]

# Per-member locks for the strike counts, released when the transaction ends; taken in
# the order given (sorted by the caller), so two batches never deadlock.
_LOCK_MEMBERS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
    "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(k, n) ORDER BY n"
)


def utc_now() -> dt.datetime:
    """The current time in UTC (the store's default clock)."""
    return dt.datetime.now(dt.UTC)


class DecisionStore:
    """Policies, decisions, strikes and the audit log over an async engine.

    :class:`bot.moderation.appeals.ModerationStore` adds appeals, stats, export and purge;
    that is the class to use.

    Args:
        engine: The bot's database engine.
        appeal_days: How long after a decision its member may appeal (``DESKBOT_APPEAL_DAYS``).
        clock: The current time; tests pass their own to move through strike windows.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        appeal_days: int = 7,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.appeal_days = appeal_days
        self.clock = clock

    # --- policy ------------------------------------------------------------------------

    async def policy(self, guild_id: str) -> Policy:
        """The guild's stored policy, or :meth:`Policy.default` when none was saved."""
        async with self.engine.connect() as conn:
            row = (
                (await conn.execute(select(_policies).where(_policies.c.guild_id == guild_id)))
                .mappings()
                .first()
            )
        return Policy.default(guild_id) if row is None else policy_from_row(row)

    async def save_policy(self, policy: Policy, *, actor: str, reason: str = "") -> None:
        """Store ``policy`` for its guild (replacing the old one); audited."""
        values = policy_values(policy) | {"updated_by": actor[:64], "updated_at": self.clock()}
        stmt = pg_insert(_policies).values(guild_id=policy.guild_id, **values)
        stmt = stmt.on_conflict_do_update(index_elements=["guild_id"], set_=values)
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
            await self._audit(
                conn, actor, "moderation.policy", f"guild:{policy.guild_id}", reason,
                policy.guild_id, policy.to_dict(),
            )  # fmt: skip

    # --- decisions ---------------------------------------------------------------------

    async def record_decision(self, draft: EventDraft, policy: Policy) -> tuple[uuid.UUID, Outcome]:
        """Store one decision: :meth:`record_decisions` with a batch of one."""
        (recorded,) = await self.record_decisions([draft], {policy.guild_id: policy})
        return recorded

    async def record_decisions(
        self, drafts: Sequence[EventDraft], policies: Mapping[str, Policy]
    ) -> list[tuple[uuid.UUID, Outcome]]:
        """Store a batch of decisions in one transaction: events, strikes, audit rows.

        Each outcome comes from its guild's policy (``policies`` by guild id) and the
        member's active strikes, read under per-member locks taken in sorted order (two
        processes never wait on each other in a circle). Outcomes follow the drafts' order,
        so a burst from one member in one batch still climbs the ladder one step per
        message. The batch shares one timestamp. Returns (event id, outcome) per draft.
        """
        if not drafts:
            return []
        now = self.clock()
        members = sorted({(d.guild_id, d.author_id) for d in drafts})
        async with self.engine.begin() as conn:
            await conn.execute(_LOCK_MEMBERS, {"keys": [f"{g}:{u}" for g, u in members]})
            active = await self._count_many(conn, members, policies, now)
            outcomes = []
            for draft in drafts:
                key = (draft.guild_id, draft.author_id)
                outcome = policies[draft.guild_id].outcome(draft.threshold_action, active[key])
                active[key] += outcome.enforced
                outcomes.append(outcome)
            ids = [uuid.uuid4() for _ in drafts]
            await self._insert_rows(conn, drafts, ids, outcomes, policies, now)
        return list(zip(ids, outcomes, strict=True))

    async def _insert_rows(
        self,
        conn: AsyncConnection,
        drafts: Sequence[EventDraft],
        ids: Sequence[uuid.UUID],
        outcomes: Sequence[Outcome],
        policies: Mapping[str, Policy],
        now: dt.datetime,
    ) -> None:
        """The batch's events, strikes and audit rows: one multi-row insert each."""
        batch = list(zip(drafts, ids, outcomes, strict=True))
        events = [event_values(d, i, o, policies[d.guild_id].mode, now) for d, i, o in batch]
        await conn.execute(insert(_events), events)
        strikes = [
            {"event_id": i, "guild_id": d.guild_id, "user_id": d.author_id, "created_at": now}
            for d, i, o in batch
            if o.enforced
        ]
        if strikes:
            await conn.execute(pg_insert(_strikes).on_conflict_do_nothing(), strikes)
        audits = [
            self._audit_values(
                BOT_ACTOR,
                "moderation.decision",
                f"user:{d.author_id}",
                decision_reason(d, o),
                d.guild_id,
                {"event_id": str(i), "mode": policies[d.guild_id].mode},
                now,
            )
            for d, i, o in batch
        ]
        await conn.execute(insert(_audit), audits)

    async def _count_many(
        self,
        conn: AsyncConnection,
        members: Sequence[tuple[str, str]],
        policies: Mapping[str, Policy],
        now: dt.datetime,
    ) -> defaultdict[tuple[str, str], int]:
        """Active strikes per (guild, member), each guild with its own strike window."""
        users: defaultdict[str, set[str]] = defaultdict(set)
        for guild, user in members:
            users[guild].add(user)
        per_guild = [
            and_(
                _strikes.c.guild_id == guild,
                _strikes.c.user_id.in_(sorted(ids)),
                _strikes.c.created_at > now - dt.timedelta(days=policies[guild].strike_window_days),
            )
            for guild, ids in users.items()
        ]
        query = (
            select(_strikes.c.guild_id, _strikes.c.user_id, func.count())
            .where(_strikes.c.removed_at.is_(None), or_(*per_guild))
            .group_by(_strikes.c.guild_id, _strikes.c.user_id)
        )
        counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        for guild, user, count in (await conn.execute(query)).all():
            counts[(guild, user)] = int(count)
        return counts

    async def _insert_strike(
        self, conn: AsyncConnection, event_id: uuid.UUID, guild: str, user: str, now: dt.datetime
    ) -> None:
        values = {"event_id": event_id, "guild_id": guild, "user_id": user, "created_at": now}
        stmt = pg_insert(_strikes).values(values).on_conflict_do_nothing()
        await conn.execute(stmt)

    async def _count_strikes(
        self, conn: AsyncConnection, guild_id: str, user_id: str, window_days: int
    ) -> int:
        since = self.clock() - dt.timedelta(days=window_days)
        query = select(func.count()).where(
            _strikes.c.guild_id == guild_id,
            _strikes.c.user_id == user_id,
            _strikes.c.removed_at.is_(None),
            _strikes.c.created_at > since,
        )
        return int((await conn.execute(query)).scalar_one())

    async def active_strikes(self, guild_id: str, user_id: str, *, window_days: int) -> int:
        """The member's strikes younger than ``window_days`` and not removed."""
        async with self.engine.connect() as conn:
            return await self._count_strikes(conn, guild_id, user_id, window_days)

    # --- reading events ----------------------------------------------------------------

    async def event(self, event_id: uuid.UUID) -> EventRecord:
        """One event; :class:`NotFoundError` when there is none (or it was purged)."""
        async with self.engine.connect() as conn:
            return await self._event(conn, event_id)

    async def _event(self, conn: AsyncConnection, event_id: uuid.UUID) -> EventRecord:
        row = (
            (await conn.execute(select(_events).where(_events.c.id == event_id))).mappings().first()
        )
        if row is None:
            raise NotFoundError(f"no moderation event {event_id}")
        return EventRecord.from_row(row)

    async def events(
        self, guild_id: str, *, since: dt.datetime | None = None, limit: int = 100
    ) -> list[EventRecord]:
        """The guild's events, newest first, from ``since`` on."""
        query = select(_events).where(_events.c.guild_id == guild_id)
        if since is not None:
            query = query.where(_events.c.created_at >= since)
        query = query.order_by(_events.c.created_at.desc(), _events.c.id).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [EventRecord.from_row(row) for row in rows]

    async def set_log_message(self, event_id: uuid.UUID, message_id: str) -> None:
        """Remember the mod-log message posted for ``event_id`` (appeal threads start there)."""
        stmt = update(_events).where(_events.c.id == event_id).values(log_message_id=message_id)
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def history(self, guild_id: str, user_id: str, *, limit: int = 50) -> MemberHistory:
        """One member's events (newest first), appeals and active strikes."""
        policy = await self.policy(guild_id)
        query = select(_events).where(
            and_(_events.c.guild_id == guild_id, _events.c.author_id == user_id)
        )
        query = query.order_by(_events.c.created_at.desc()).limit(limit)
        appeals = select(_appeals).join(_events, _appeals.c.event_id == _events.c.id)
        appeals = appeals.where(_events.c.guild_id == guild_id, _events.c.author_id == user_id)
        async with self.engine.connect() as conn:
            events = (await conn.execute(query)).mappings().all()
            appeal_rows = (await conn.execute(appeals.order_by(_appeals.c.created_at.desc()))).all()
            active = await self._count_strikes(conn, guild_id, user_id, policy.strike_window_days)
        return MemberHistory(
            events=[EventRecord.from_row(row) for row in events],
            appeals=[AppealRecord.from_row(row._mapping) for row in appeal_rows],
            active_strikes=active,
        )

    # --- moderators' actions -----------------------------------------------------------

    async def approve(self, event_id: uuid.UUID, *, actor: str, reason: str = "") -> EventRecord:
        """Mark ``event_id`` a false positive: its strike removed, the event overturned.

        Returns the event as it was decided (its author, any timeout to lift). Audited.
        """
        async with self.engine.begin() as conn:
            event = await self._event(conn, event_id)
            await self._overturn(conn, event_id, actor)
            await self._audit(
                conn, actor, "moderation.approve", f"user:{event.author_id}", reason,
                event.guild_id, {"event_id": str(event_id)},
            )  # fmt: skip
        return event

    async def _overturn(self, conn: AsyncConnection, event_id: uuid.UUID, actor: str) -> None:
        now = self.clock()
        await conn.execute(
            update(_strikes)
            .where(_strikes.c.event_id == event_id, _strikes.c.removed_at.is_(None))
            .values(removed_at=now, removed_by=actor[:200])
        )
        await conn.execute(
            update(_events)
            .where(_events.c.id == event_id)
            .values(overturned_at=now, overturned_by=actor[:200])
        )

    async def record_action(
        self,
        event_id: uuid.UUID,
        *,
        actor: str,
        action: Action,
        minutes: int | None = None,
        reason: str = "",
    ) -> EventRecord:
        """A moderator's action on an event (delete, timeout, kick, ban); audited.

        The event takes the action, the member a strike if the event had none.
        """
        now = self.clock()
        async with self.engine.begin() as conn:
            event = await self._event(conn, event_id)
            values = {"action": action, "timeout_minutes": minutes, "enforced": True}
            await conn.execute(update(_events).where(_events.c.id == event_id).values(values))
            await self._insert_strike(conn, event_id, event.guild_id, event.author_id, now)
            await self._audit(
                conn, actor, f"moderation.{action}", f"user:{event.author_id}", reason,
                event.guild_id, {"event_id": str(event_id), "minutes": minutes},
            )  # fmt: skip
            return await self._event(conn, event_id)

    # --- audit -------------------------------------------------------------------------

    async def audit(
        self,
        *,
        actor: str,
        action: str,
        target: str = "",
        reason: str = "",
        guild_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one audit row (who, what, on whom, why)."""
        async with self.engine.begin() as conn:
            await self._audit(conn, actor, action, target, reason, guild_id, details)

    async def _audit(
        self,
        conn: AsyncConnection,
        actor: str,
        action: str,
        target: str,
        reason: str,
        guild_id: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        values = self._audit_values(actor, action, target, reason, guild_id, details)
        await conn.execute(insert(_audit).values(values))

    def _audit_values(
        self,
        actor: str,
        action: str,
        target: str,
        reason: str,
        guild_id: str | None,
        details: Mapping[str, Any] | None = None,
        when: dt.datetime | None = None,
    ) -> dict[str, Any]:
        return {
            "actor": actor[:200],
            "action": action[:64],
            "target": target,
            "reason": reason,
            "guild_id": guild_id,
            "details": dict(details or {}),
            "created_at": when or self.clock(),
        }

    async def audit_rows(self, guild_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The guild's audit rows, newest first."""
        query = select(_audit).where(_audit.c.guild_id == guild_id)
        query = query.order_by(_audit.c.created_at.desc(), _audit.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings().all()]
