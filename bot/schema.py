"""Tables owned by the bot package: conversations, runs, feedback, moderation, audit.

Closed sets (run status, message role ...) are ``text`` with a CHECK constraint rather than
PostgreSQL enums, so a later migration can widen them without ``ALTER TYPE``. Each set is a
``Literal`` type here (or, for the platform and the role, where its values come from), and
the constraint is built from it, so the code's type and the table cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.messages import Platform
from knowledge.dbtypes import CreatedAt, JsonDict, UuidPk, new_metadata
from tools.chat_backend import Role

__all__ = [
    "APPEAL_STATUSES",
    "MODERATION_ACTIONS",
    "MODERATION_MODES",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "Appeal",
    "AppealStatus",
    "AuditLog",
    "BotBase",
    "Feedback",
    "Message",
    "ModerationAction",
    "ModerationEvent",
    "ModerationMode",
    "ModerationPolicy",
    "ModerationStrike",
    "Run",
    "RunStatus",
    "RunStep",
    "StepStatus",
    "StepType",
    "Thread",
]

RunStatus = Literal[
    "queued", "in_progress", "requires_action", "completed", "failed", "cancelled", "expired"
]
"""Where a run stands (the OpenAI Assistants run statuses; ``runs.status``)."""
StepStatus = Literal["in_progress", "completed", "failed", "cancelled", "expired"]
"""How one model call or tool call ended (``run_steps.status``)."""
StepType = Literal["model_call", "tool_call"]
"""What a run step is (``run_steps.type``)."""

ModerationAction = Literal["none", "log", "warn", "delete", "timeout", "kick", "ban"]
"""What moderation does about a message, mildest first (``moderation_events.action``)."""
ModerationMode = Literal["shadow", "enforce"]
"""``shadow`` records what would have been done; ``enforce`` does it."""
AppealStatus = Literal["open", "accepted", "rejected"]
"""Where a member's appeal stands (``appeals.status``)."""

RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
STEP_STATUSES: tuple[StepStatus, ...] = get_args(StepStatus)
MODERATION_ACTIONS: tuple[ModerationAction, ...] = get_args(ModerationAction)
MODERATION_MODES: tuple[ModerationMode, ...] = get_args(ModerationMode)
APPEAL_STATUSES: tuple[AppealStatus, ...] = get_args(AppealStatus)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class BotBase(DeclarativeBase):
    """Declarative base whose metadata holds only the bot tables."""

    metadata = new_metadata()


class Thread(BotBase):
    """A conversation: one Slack thread, Discord thread or channel, or terminal session."""

    __tablename__ = "threads"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        CheckConstraint(_one_of("platform", get_args(Platform)), "platform"),
    )

    id: Mapped[UuidPk]
    platform: Mapped[Platform] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(400))
    workspace_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, server_default="")
    meta: Mapped[JsonDict] = mapped_column("metadata")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class Run(BotBase):
    """One agent run answering one user message, with its bounds and outcome."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RUN_STATUSES), "status"),
        # the daily token budgets (bot.agent.budget): today's runs of a user, of a workspace
        Index(
            "ix_runs_user_id_started_at",
            "user_id",
            "started_at",
            postgresql_include=["prompt_tokens", "completion_tokens"],
        ),
        Index(
            "ix_runs_workspace_id_started_at",
            "workspace_id",
            "started_at",
            postgresql_include=["prompt_tokens", "completion_tokens"],
        ),
    )

    id: Mapped[UuidPk]
    thread_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[RunStatus] = mapped_column(String(24), server_default="queued")
    model: Mapped[str] = mapped_column(String(200), server_default="")
    instructions: Mapped[str] = mapped_column(Text, server_default="")
    user_id: Mapped[str | None] = mapped_column(String(64))
    # the thread's workspace, copied so a workspace's daily budget needs no join
    workspace_id: Mapped[str | None] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[JsonDict] = mapped_column("metadata")
    # The function schemas offered to the model, as it saw them (fine-tuning exports these);
    # NULL for runs stored before they were recorded. json, not jsonb: jsonb reorders keys,
    # and the key order is part of the prompt the model saw.
    tools: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[CreatedAt]
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Message(BotBase):
    """A message in a thread, in Chat Completions roles."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(_one_of("role", get_args(Role)), "role"),
        Index("ix_messages_thread_id_created_at", "thread_id", "created_at"),
    )

    id: Mapped[UuidPk]
    thread_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    role: Mapped[Role] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, server_default="")
    user_id: Mapped[str | None] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(200))
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB(none_as_null=True))
    tool_call_id: Mapped[str | None] = mapped_column(String(200))
    token_count: Mapped[int | None] = mapped_column(Integer)
    meta: Mapped[JsonDict] = mapped_column("metadata")
    created_at: Mapped[CreatedAt]


class RunStep(BotBase):
    """One model call or one tool call inside a run, with timing and tokens."""

    __tablename__ = "run_steps"
    __table_args__ = (
        UniqueConstraint("run_id", "ordinal"),
        CheckConstraint(_one_of("type", get_args(StepType)), "type"),
        CheckConstraint(_one_of("status", STEP_STATUSES), "status"),
    )

    id: Mapped[UuidPk]
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    type: Mapped[StepType] = mapped_column(String(16))
    status: Mapped[StepStatus] = mapped_column(String(16), server_default="in_progress")
    tool_name: Mapped[str | None] = mapped_column(String(200))
    tool_call_id: Mapped[str | None] = mapped_column(String(200))
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    result: Mapped[Any | None] = mapped_column(JSONB(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[CreatedAt]
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Feedback(BotBase):
    """A thumbs-up (+1) or thumbs-down (-1) from one user on one run."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("run_id", "user_id"),
        CheckConstraint("value IN (-1, 1)", "value"),
    )

    id: Mapped[UuidPk]
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[CreatedAt]


class ModerationPolicy(BotBase):
    """One guild's moderation policy: mode, thresholds per label and action, strike ladder."""

    __tablename__ = "moderation_policies"
    __table_args__ = (CheckConstraint(_one_of("mode", MODERATION_MODES), "mode"),)

    id: Mapped[UuidPk]
    guild_id: Mapped[str] = mapped_column(String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    mode: Mapped[ModerationMode] = mapped_column(String(16), server_default="shadow")
    # {label: {action: min_score}}
    thresholds: Mapped[JsonDict]
    # [{"action": ..., "minutes": ...}, ...]: the n-th active strike takes the n-th step.
    ladder: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    strike_window_days: Mapped[int] = mapped_column(Integer, server_default="30")
    timeout_minutes: Mapped[int] = mapped_column(Integer, server_default="60")
    exempt_roles: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    exempt_channels: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    # NULL: every text channel except the mod-log channel.
    channels: Mapped[list[str] | None] = mapped_column(JSONB(none_as_null=True))
    mod_log_channel_id: Mapped[str | None] = mapped_column(String(64))
    updated_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class ModerationEvent(BotBase):
    """One moderation decision on a message: scores, the action, strikes, mode."""

    __tablename__ = "moderation_events"
    __table_args__ = (
        Index("ix_moderation_events_guild_id_created_at", "guild_id", "created_at"),
        Index("ix_moderation_events_guild_id_author_id", "guild_id", "author_id"),
        CheckConstraint(_one_of("action", MODERATION_ACTIONS), "action"),
        CheckConstraint(_one_of("threshold_action", MODERATION_ACTIONS), "threshold_action"),
        CheckConstraint(_one_of("mode", MODERATION_MODES), "mode"),
    )

    id: Mapped[UuidPk]
    guild_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    author_id: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    scores: Mapped[JsonDict]
    classifier: Mapped[str] = mapped_column(String(64), server_default="")
    threshold_action: Mapped[ModerationAction] = mapped_column(String(32), server_default="none")
    action: Mapped[ModerationAction] = mapped_column(String(32))
    timeout_minutes: Mapped[int | None] = mapped_column(Integer)
    strikes: Mapped[int] = mapped_column(Integer, server_default="0")
    mode: Mapped[ModerationMode] = mapped_column(String(16), server_default="shadow")
    enforced: Mapped[bool] = mapped_column(Boolean, server_default="false")
    excerpt: Mapped[str] = mapped_column(Text, server_default="")
    log_message_id: Mapped[str | None] = mapped_column(String(64))
    overturned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    overturned_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[CreatedAt]


class ModerationStrike(BotBase):
    """A strike against a member from an enforced action; counts until removed or expired."""

    __tablename__ = "moderation_strikes"
    __table_args__ = (
        Index("ix_moderation_strikes_guild_id_user_id", "guild_id", "user_id", "created_at"),
    )

    id: Mapped[UuidPk]
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("moderation_events.id", ondelete="CASCADE"), unique=True
    )
    guild_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    removed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[CreatedAt]


class Appeal(BotBase):
    """An author's appeal against a moderation event (one per event), and the decision."""

    __tablename__ = "appeals"
    __table_args__ = (CheckConstraint(_one_of("status", APPEAL_STATUSES), "status"),)

    id: Mapped[UuidPk]
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("moderation_events.id", ondelete="CASCADE"), unique=True
    )
    author_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, server_default="")
    status: Mapped[AppealStatus] = mapped_column(String(16), server_default="open")
    reviewer_id: Mapped[str | None] = mapped_column(String(64))
    review_reason: Mapped[str] = mapped_column(Text, server_default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[CreatedAt]


class AuditLog(BotBase):
    """Append-only record of administrative actions (uploads, deletions, policy changes)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text, server_default="")
    reason: Mapped[str] = mapped_column(Text, server_default="")
    guild_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[JsonDict]
    created_at: Mapped[CreatedAt]
