"""Community moderation, platform-neutral: policy, decisions, storage, appeals, replay.

- :mod:`~bot.moderation.policy`: :class:`Policy` (mode, thresholds per label and action,
  the strike ladder, scope), :class:`Rung`, :class:`Outcome`.
- :mod:`~bot.moderation.decide`: :class:`Incoming` (a message from any platform),
  :class:`Moderator` (exemptions, classification whole and in windows, the decision;
  messages decided in natural batches), :class:`Decision`, :data:`Observer`.
- :mod:`~bot.moderation.store` and :mod:`~bot.moderation.appeals`: :class:`ModerationStore`,
  policies, events, strikes, appeals, stats, export and purge in PostgreSQL, every write
  audited.
- :mod:`~bot.moderation.replay`: :func:`replay`, a policy over a file of texts.

Adapters (Discord) turn their messages into :class:`Incoming` and act on the
:class:`Decision`; the core never calls a platform.
"""

from bot.moderation.appeals import ModerationStore
from bot.moderation.decide import (
    EXCERPT_CHARS,
    Decision,
    Incoming,
    Moderator,
    Observer,
    Verdict,
    windows,
)
from bot.moderation.policy import (
    ACTIONS,
    DEFAULT_LADDER,
    DEFAULT_THRESHOLDS,
    MODES,
    Action,
    Mode,
    Outcome,
    Policy,
    Rung,
    format_minutes,
    parse_action,
    parse_mode,
    severity,
)
from bot.moderation.records import (
    AppealError,
    AppealRecord,
    EventRecord,
    MemberHistory,
    ModerationError,
    NotFoundError,
    PurgeCounts,
    Stats,
)
from bot.moderation.replay import ActionScore, ReplayReport, replay
from bot.moderation.store import BOT_ACTOR, EventDraft

__all__ = [
    "ACTIONS",
    "BOT_ACTOR",
    "DEFAULT_LADDER",
    "DEFAULT_THRESHOLDS",
    "EXCERPT_CHARS",
    "MODES",
    "Action",
    "ActionScore",
    "AppealError",
    "AppealRecord",
    "Decision",
    "EventDraft",
    "EventRecord",
    "Incoming",
    "MemberHistory",
    "Mode",
    "ModerationError",
    "ModerationStore",
    "Moderator",
    "NotFoundError",
    "Observer",
    "Outcome",
    "Policy",
    "PurgeCounts",
    "ReplayReport",
    "Rung",
    "Stats",
    "Verdict",
    "format_minutes",
    "parse_action",
    "parse_mode",
    "replay",
    "severity",
    "windows",
]
