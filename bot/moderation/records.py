"""What the moderation store reads back: events, appeals, a member's history, stats."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from bot.errors import DeskbotError
from bot.moderation.policy import Action, Mode
from bot.schema import AppealStatus

__all__ = [
    "AppealError",
    "AppealRecord",
    "EventRecord",
    "MemberHistory",
    "ModerationError",
    "NotFoundError",
    "PurgeCounts",
    "Stats",
]


class ModerationError(DeskbotError):
    """A moderation request that cannot be carried out; the message says why."""


class NotFoundError(ModerationError):
    """No moderation event or appeal has that id (it may have been purged)."""


class AppealError(ModerationError):
    """An appeal refused or already decided.

    ``reason`` is ``not_author``, ``duplicate``, ``expired``, ``not_actioned`` or ``closed``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value) if isinstance(value, uuid.UUID) else value


def _from_row(cls: type[Any], row: Mapping[Any, Any]) -> Any:
    return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class EventRecord:
    """One stored moderation decision."""

    id: uuid.UUID
    guild_id: str
    channel_id: str
    message_id: str
    author_id: str
    label: str
    scores: dict[str, float]
    classifier: str
    threshold_action: Action
    action: Action
    timeout_minutes: int | None
    strikes: int
    mode: Mode
    enforced: bool
    excerpt: str
    log_message_id: str | None
    overturned_at: dt.datetime | None
    overturned_by: str | None
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> EventRecord:
        """From a ``moderation_events`` row."""
        record: EventRecord = _from_row(cls, row)
        return record

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (ids and times as strings)."""
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class AppealRecord:
    """A member's appeal against one event, and the moderators' decision."""

    id: uuid.UUID
    event_id: uuid.UUID
    author_id: str
    reason: str
    status: AppealStatus
    reviewer_id: str | None
    review_reason: str
    created_at: dt.datetime
    decided_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AppealRecord:
        """From an ``appeals`` row."""
        record: AppealRecord = _from_row(cls, row)
        return record

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (ids and times as strings)."""
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class MemberHistory:
    """One member's events (newest first), their appeals and active strikes."""

    events: list[EventRecord]
    appeals: list[AppealRecord]
    active_strikes: int


@dataclass(frozen=True)
class Stats:
    """A guild's decisions over the last ``days`` days.

    Attributes:
        decisions: label -> final action -> count.
        overturned: Decisions approved by a moderator or overturned on appeal.
        overturn_rate: label -> overturned / decisions: a high one says the label's
            thresholds are too strict.
    """

    days: int
    total: int
    decisions: dict[str, dict[str, int]]
    appeals: int
    appeals_accepted: int
    overturned: int
    overturn_rate: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class PurgeCounts:
    """Rows deleted by a purge, per table."""

    events: int
    strikes: int
    appeals: int
    audit: int
