"""Rows of the moderation tables as the store writes them, and a policy read back.

Pure functions over :class:`EventDraft` and :class:`~bot.moderation.policy.Policy`, so
the store's methods stay about transactions.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.moderation.policy import Action, Outcome, Policy

__all__ = ["EventDraft", "decision_reason", "event_values", "policy_from_row", "policy_values"]


@dataclass(frozen=True)
class EventDraft:
    """A classified message about to become an event (what the store needs of it)."""

    guild_id: str
    channel_id: str
    message_id: str
    author_id: str
    label: str
    scores: dict[str, float]
    classifier: str
    threshold_action: Action
    excerpt: str


def decision_reason(draft: EventDraft, outcome: Outcome) -> str:
    """``hate 0.93: delete + warn (would have)``: the audit row's reason for a decision."""
    score = draft.scores.get(draft.label, 0.0)
    shadow = "" if outcome.enforced else " (would have)"
    return f"{draft.label} {score:.2f}: {outcome.summary()}{shadow}"


def event_values(
    draft: EventDraft, event_id: uuid.UUID, outcome: Outcome, mode: str, now: dt.datetime
) -> dict[str, Any]:
    """A ``moderation_events`` row for ``draft`` decided as ``outcome``."""
    return {
        **draft.__dict__,
        "id": event_id,
        "action": outcome.action,
        "timeout_minutes": outcome.timeout_minutes,
        "strikes": outcome.strikes,
        "mode": mode,
        "enforced": outcome.enforced,
        "created_at": now,
    }


def policy_values(policy: Policy) -> dict[str, Any]:
    """The ``moderation_policies`` columns of ``policy`` (its guild id aside)."""
    data = policy.to_dict()
    return {
        "enabled": policy.enabled,
        "mode": policy.mode,
        "thresholds": data["thresholds"],
        "ladder": data["ladder"],
        "strike_window_days": policy.strike_window_days,
        "timeout_minutes": policy.timeout_minutes,
        "exempt_roles": data["exempt_roles"],
        "exempt_channels": data["exempt_channels"],
        "channels": data["channels"],
        "mod_log_channel_id": policy.log_channel_id,
    }


def policy_from_row(row: Mapping[Any, Any]) -> Policy:
    """The policy a stored row describes."""
    # An empty stored ladder (a row from before ladders existed) reads as the default one.
    return Policy.from_dict(dict(row) | {"log_channel_id": row["mod_log_channel_id"]})
