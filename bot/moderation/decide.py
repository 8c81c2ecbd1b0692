"""From a message to a decision: who is moderated, classification in windows, the outcome.

:class:`Moderator` is what an adapter calls for each guild message; :func:`replay` runs a
file of texts through a policy without a platform or a database, to tune thresholds.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bot.moderation.policy import Action, Mode, Outcome, Policy, severity
from bot.moderation.store import DecisionStore, EventDraft
from tools.classifier import (
    Classification,
    ClassifierError,
    ClassifierInputError,
    CommentClassifier,
    LocalClassifier,
)

__all__ = [
    "EXCERPT_CHARS",
    "Decision",
    "Incoming",
    "Moderator",
    "Verdict",
    "classify_worst",
    "windows",
]

log = logging.getLogger(__name__)

EXCERPT_CHARS = 300
"""The most of a message a moderation event keeps."""
_MAX_WINDOWS = 24  # bounds the work one very long message costs


@dataclass(frozen=True)
class Incoming:
    """A guild message as an adapter hands it over (no platform types).

    ``text`` is the content, the attachments' file names and the embeds' text, one per line.
    """

    guild_id: str
    channel_id: str
    message_id: str
    author_id: str
    text: str
    roles: frozenset[str] = frozenset()
    can_manage_messages: bool = False
    is_bot: bool = False


@dataclass(frozen=True)
class Decision:
    """A stored moderation decision: the classification and what was (or would be) done.

    ``enforced`` is False in shadow mode: the adapter posts ``would have: <summary>`` and
    does nothing to the member. ``member_action`` is the ladder's step (or a worse
    threshold action); ``delete_message`` says the message goes.
    """

    event_id: uuid.UUID
    guild_id: str
    channel_id: str
    message_id: str
    author_id: str
    label: str
    scores: dict[str, float]
    classifier: str
    threshold_action: Action
    action: Action
    member_action: Action | None
    delete_message: bool
    timeout_minutes: int | None
    strikes: int
    mode: Mode
    enforced: bool
    excerpt: str
    outcome: Outcome = field(repr=False, compare=False)

    def summary(self) -> str:
        """``delete + timeout 1 h``, ``warn``, ``log``."""
        return self.outcome.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with the summary."""
        data = {k: v for k, v in self.__dict__.items() if k != "outcome"}
        return data | {"event_id": str(self.event_id), "summary": self.summary()}


@dataclass(frozen=True)
class Verdict:
    """The worst classification of a text under a policy, and the text that earned it."""

    threshold_action: Action
    label: str
    classification: Classification
    excerpt: str


def windows(text: str, *, max_chars: int, window_chars: int) -> list[str]:
    """The text whole (up to ``max_chars``), then overlapping windows when it is longer
    than one window, so one bad sentence is not diluted by a long, calm message.

    Windows overlap by half; past :data:`_MAX_WINDOWS` they spread evenly over the text,
    the last one always ending at its end.
    """
    text = text.strip()
    parts = [text[:max_chars]]
    span = len(text) - window_chars
    if span <= 0:
        return parts
    count = min(_MAX_WINDOWS, -(-span // max(window_chars // 2, 1)) + 1)
    starts = sorted({round(i * span / (count - 1)) for i in range(count)})
    parts.extend(text[start : start + window_chars] for start in starts)
    return parts


def _harm(classification: Classification) -> float:
    return max((s for k, s in classification.scores.items() if k != "none"), default=0.0)


async def _classify_all(classifier: CommentClassifier, texts: list[str]) -> list[Classification]:
    if isinstance(classifier, LocalClassifier):
        return await classifier.classify_many(texts)  # one thread hop for every window
    return [await classifier.classify(text) for text in texts]


async def classify_worst(
    classifier: CommentClassifier, policy: Policy, text: str, *, max_chars: int, window_chars: int
) -> Verdict | None:
    """Classify ``text`` whole and in windows; the window with the worst action wins.

    None for an empty text. Ties on the action go to the higher harmful score.
    """
    if not text.strip():
        return None
    parts = windows(text, max_chars=max_chars, window_chars=window_chars)
    results = await _classify_all(classifier, parts)
    best: tuple[int, float, int] | None = None
    for index, result in enumerate(results):
        key = (severity(policy.threshold_action(result.scores)[0]), _harm(result), -index)
        best = key if best is None else max(best, key)
    assert best is not None
    chosen = results[-best[2]]
    action, label = policy.threshold_action(chosen.scores)
    excerpt = parts[-best[2]].strip()[:EXCERPT_CHARS]
    return Verdict(action, label, chosen, excerpt)


class Moderator:
    """Decides about each guild message with a classifier and stores the decision.

    Args:
        classifier: Any :class:`~tools.classifier.CommentClassifier` (``combined`` asks the
            language model only in the uncertain band and keeps the local answer if it fails).
        store: Where policies are read and decisions written.
        max_chars: Characters classified whole; default the classifier's own limit.
        window_chars: Length of the windows a longer message is also classified in.
        policy_ttl: Seconds a guild's policy is cached (a change elsewhere shows within it).
    """

    def __init__(
        self,
        classifier: CommentClassifier,
        store: DecisionStore,
        *,
        max_chars: int | None = None,
        window_chars: int = 400,
        policy_ttl: float = 5.0,
    ) -> None:
        self.classifier = classifier
        self.store = store
        self.max_chars = max_chars or int(getattr(classifier, "max_chars", 2000))
        self.window_chars = window_chars
        self.policy_ttl = policy_ttl
        self._policies: dict[str, tuple[float, Policy]] = {}

    async def policy(self, guild_id: str) -> Policy:
        """The guild's policy, cached for ``policy_ttl`` seconds."""
        cached = self._policies.get(guild_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        policy = await self.store.policy(guild_id)
        self._policies[guild_id] = (time.monotonic() + self.policy_ttl, policy)
        return policy

    def forget(self, guild_id: str) -> None:
        """Drop the cached policy (after this process changed it)."""
        self._policies.pop(guild_id, None)

    def exempt(self, message: Incoming, policy: Policy) -> bool:
        """Whether ``message`` is never moderated under ``policy``: a bot, a member who can
        manage messages, an exempt role, or a channel the policy does not cover."""
        return (
            message.is_bot
            or message.can_manage_messages
            or bool(message.roles & policy.exempt_roles)
            or not policy.moderates(message.channel_id)
        )

    async def moderate(self, message: Incoming) -> Decision | None:
        """Classify ``message`` and store the decision; None when nothing is to be done.

        None: exempt, unmoderated channel, empty text, below every threshold, or the
        classifier failed (logged; the message is let through rather than punished).
        """
        if message.is_bot or message.can_manage_messages:
            return None  # before the policy read: the bot's own messages cost nothing
        policy = await self.policy(message.guild_id)
        if self.exempt(message, policy):
            return None
        try:
            verdict = await classify_worst(
                self.classifier, policy, message.text,
                max_chars=self.max_chars, window_chars=self.window_chars,
            )  # fmt: skip
        except ClassifierInputError:
            return None
        except ClassifierError as exc:
            log.warning("moderation: classifying message %s failed: %s", message.message_id, exc)
            return None
        if verdict is None or verdict.threshold_action == "none":
            return None
        return await self._record(message, policy, verdict)

    async def _record(self, message: Incoming, policy: Policy, verdict: Verdict) -> Decision:
        result = verdict.classification
        draft = EventDraft(
            guild_id=message.guild_id,
            channel_id=message.channel_id,
            message_id=message.message_id,
            author_id=message.author_id,
            label=verdict.label,
            scores={k: round(v, 4) for k, v in result.scores.items()},
            classifier=result.classifier,
            threshold_action=verdict.threshold_action,
            excerpt=verdict.excerpt,
        )
        event_id, outcome = await self.store.record_decision(draft, policy)
        return Decision(
            event_id=event_id,
            **{k: v for k, v in draft.__dict__.items() if k != "threshold_action"},
            threshold_action=outcome.threshold_action,
            action=outcome.action,
            member_action=outcome.member_action,
            delete_message=outcome.delete_message,
            timeout_minutes=outcome.timeout_minutes,
            strikes=outcome.strikes,
            mode=policy.mode,
            enforced=outcome.enforced,
            outcome=outcome,
        )
