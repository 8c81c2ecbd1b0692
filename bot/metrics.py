"""Prometheus metrics: what an operator graphs and alerts on.

Every metric lives in ``prometheus_client``'s default registry of the process that counts
it; each process (adapter, worker) serves its own at ``/metrics`` (:mod:`bot.health`) and
Prometheus scrapes each one. Labels are closed sets (platform, job kind, backend, model,
tool, action, mode, scope): never a user, channel or message id, so the series stay few.

The queue gauges are not counted as things happen: :func:`observe_queue` sets them from the
queue's own status just before a scrape is answered.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from bot.moderation import Decision
    from bot.state.base import QueueStatus

__all__ = [
    "BUDGET_REFUSALS",
    "EVENTS_DEDUPLICATED",
    "EVENTS_RATE_LIMITED",
    "EVENTS_RECEIVED",
    "JOBS_DEAD_LETTERED",
    "JOBS_RETRIED",
    "MODEL_TOKENS",
    "MODERATION_DECISIONS",
    "QUEUE_DEAD",
    "QUEUE_IN_FLIGHT",
    "QUEUE_OLDEST_AGE",
    "QUEUE_WAITING",
    "RUN_SECONDS",
    "TOOL_CALLS",
    "TOOL_ERRORS",
    "count_decision",
    "observe_queue",
    "tool_label",
]

EVENTS_RECEIVED = Counter(
    "deskbot_events_received",
    "Platform events that asked the bot something (before dedup and rate limits).",
    ["platform"],
)
EVENTS_DEDUPLICATED = Counter(
    "deskbot_events_deduplicated",
    "Events dropped as a platform retry or replay of one already taken.",
    ["platform"],
)
EVENTS_RATE_LIMITED = Counter(
    "deskbot_events_rate_limited",
    "Questions refused by the per-user or per-guild rate limit (the user was told).",
    ["platform"],
)

QUEUE_WAITING = Gauge("deskbot_queue_waiting", "Jobs queued and not yet taken by a worker.")
QUEUE_IN_FLIGHT = Gauge("deskbot_queue_in_flight", "Jobs taken by a worker and not yet acked.")
QUEUE_OLDEST_AGE = Gauge(
    "deskbot_queue_oldest_age_seconds",
    "Seconds since the oldest waiting or in-flight job was enqueued (0 when empty).",
)
QUEUE_DEAD = Gauge("deskbot_queue_dead_letters", "Jobs given up on and kept as dead letters.")
JOBS_RETRIED = Counter(
    "deskbot_jobs_retried", "Jobs handed back to the queue after a failure.", ["kind"]
)
JOBS_DEAD_LETTERED = Counter(
    "deskbot_jobs_dead_lettered",
    "Jobs given up on: attempts spent, no handler, or a worker died holding them too often.",
    ["kind"],
)

RUN_SECONDS = Histogram(
    "deskbot_run_seconds",
    "Seconds from the start of an agent run to its answer (or the message ending it).",
    ["backend", "status"],
    buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300),
)
TOOL_CALLS = Counter("deskbot_tool_calls", "Tool calls the model made.", ["tool"])
TOOL_ERRORS = Counter(
    "deskbot_tool_errors",
    "Tool calls that failed (returned to the model to fix, or ending the run).",
    ["tool"],
)
MODEL_TOKENS = Counter(
    "deskbot_model_tokens",
    "Tokens the language model read (prompt) and wrote (completion).",
    ["backend", "model", "kind"],
)
BUDGET_REFUSALS = Counter(
    "deskbot_budget_refusals",
    "Questions refused because a daily token budget was spent (the user was told).",
    ["scope"],
)
MODERATION_DECISIONS = Counter(
    "deskbot_moderation_decisions",
    "Moderation decisions by action (taken in enforce mode, would-have in shadow mode).",
    ["action", "mode"],
)


def observe_queue(status: QueueStatus) -> None:
    """Set the queue gauges from a :meth:`~bot.state.JobQueue.status` reading."""
    QUEUE_WAITING.set(status.waiting)
    QUEUE_IN_FLIGHT.set(status.in_flight)
    QUEUE_OLDEST_AGE.set(status.oldest_age or 0.0)
    QUEUE_DEAD.set(status.dead)


def count_decision(_message: object, decision: Decision | None, _seconds: float) -> None:
    """A :class:`~bot.moderation.Moderator` observer counting each decision by action."""
    if decision is not None:
        MODERATION_DECISIONS.labels(decision.action, decision.mode).inc()


def tool_label(name: str, known: Collection[str]) -> str:
    """``name`` when it is a registered tool, else ``unknown`` (the model may invent names)."""
    return name if name in known else "unknown"
