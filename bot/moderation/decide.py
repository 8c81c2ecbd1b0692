"""From a message to a decision: who is moderated, classification in windows, the outcome.

:class:`Moderator` is what an adapter calls for each guild message (messages that arrive
together are decided in one batch, see the class); :func:`classify_worst` is the window
rule it shares with :func:`bot.moderation.replay.replay`, which runs a file of texts
through a policy without a platform or a database, to tune thresholds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from bot.moderation.policy import Action, Mode, Outcome, Policy, severity
from bot.moderation.store import DecisionStore, EventDraft
from tools.classifier import (
    Classification,
    ClassifierError,
    ClassifierInputError,
    CommentClassifier,
)

__all__ = [
    "EXCERPT_CHARS",
    "Decision",
    "Incoming",
    "Moderator",
    "Observer",
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
    ``parent_channel_id`` is the channel a thread belongs to (a thread is moderated as its
    channel is); None outside threads.
    """

    guild_id: str
    channel_id: str
    message_id: str
    author_id: str
    text: str
    roles: frozenset[str] = frozenset()
    can_manage_messages: bool = False
    is_bot: bool = False
    parent_channel_id: str | None = None


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


Observer = Callable[[Incoming, "Decision | None", float], None]
"""Told of each decision: the message, the decision (None: nothing to do), seconds taken."""


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
    found = (text[start : start + window_chars] for start in starts)
    parts.extend(part for part in found if part.strip())  # a run of blanks says nothing
    return parts


def _harm(classification: Classification) -> float:
    return max((s for k, s in classification.scores.items() if k != "none"), default=0.0)


@runtime_checkable
class _ClassifiesMany(Protocol):
    """A classifier that takes a batch in one call (the local model: one thread hop)."""

    async def classify_many(self, texts: Sequence[str]) -> list[Classification]: ...


async def _classify_all(classifier: CommentClassifier, texts: list[str]) -> list[Classification]:
    if isinstance(classifier, _ClassifiesMany):
        return await classifier.classify_many(texts)  # one thread hop for every window
    return [await classifier.classify(text) for text in texts]


def _worst(policy: Policy, parts: Sequence[str], results: Sequence[Classification]) -> Verdict:
    """The window with the worst action; ties go to the higher harmful score, then the first."""
    best: tuple[int, float, int] | None = None
    for index, result in enumerate(results):
        key = (severity(policy.threshold_action(result.scores)[0]), _harm(result), -index)
        best = key if best is None else max(best, key)
    assert best is not None
    chosen = results[-best[2]]
    action, label = policy.threshold_action(chosen.scores)
    return Verdict(action, label, chosen, parts[-best[2]].strip()[:EXCERPT_CHARS])


async def classify_worst(
    classifier: CommentClassifier, policy: Policy, text: str, *, max_chars: int, window_chars: int
) -> Verdict | None:
    """Classify ``text`` whole and in windows; the window with the worst action wins.

    None for an empty text. Ties on the action go to the higher harmful score.
    """
    if not text.strip():
        return None
    parts = windows(text, max_chars=max_chars, window_chars=window_chars)
    return _worst(policy, parts, await _classify_all(classifier, parts))


class Moderator:
    """Decides about each guild message with a classifier and stores the decision.

    Messages are decided in natural batches: :meth:`moderate` queues its message and one
    drain task takes everything queued (up to ``batch_max``), classifies every window of
    every message in one call when the classifier can (the local model: one thread hop,
    one vectorizer pass) and stores all the decisions in one transaction. Nothing waits
    for a batch to fill, so an idle server decides each message at once; under load the
    batches grow and the fixed costs are shared. One message the classifier refuses is let
    through alone; a database error fails only its batch, and the next one is tried.

    Args:
        classifier: Any :class:`~tools.classifier.CommentClassifier` (``combined`` asks the
            language model only in the uncertain band and keeps the local answer if it fails).
        store: Where policies are read and decisions written.
        max_chars: Characters classified whole; default the classifier's own limit.
        window_chars: Length of the windows a longer message is also classified in.
        policy_ttl: Seconds a guild's policy is cached (a change elsewhere shows within it).
        batch_max: The most messages decided together.
        observers: Called with each message, its decision (None: nothing to do) and the
            seconds from :meth:`moderate` to the decision; for metrics. A message whose
            batch failed is not observed (its caller gets the error).
    """

    def __init__(
        self,
        classifier: CommentClassifier,
        store: DecisionStore,
        *,
        max_chars: int | None = None,
        window_chars: int = 400,
        policy_ttl: float = 5.0,
        batch_max: int = 64,
        observers: Iterable[Observer] = (),
    ) -> None:
        self.classifier = classifier
        self.store = store
        self.max_chars = max_chars or int(getattr(classifier, "max_chars", 2000))
        self.window_chars = window_chars
        self.policy_ttl = policy_ttl
        self.batch_max = batch_max
        self.observers: list[Observer] = list(observers)
        self._policies: dict[str, tuple[float, Policy]] = {}
        self._queue: deque[_Pending] = deque()
        self._drainer: asyncio.Task[None] | None = None

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
            or not policy.moderates(message.channel_id, parent_id=message.parent_channel_id)
        )

    async def moderate(self, message: Incoming) -> Decision | None:
        """Classify ``message`` and store the decision; None when nothing is to be done.

        None: exempt, unmoderated channel, empty text, below every threshold, or the
        classifier failed (logged; the message is let through rather than punished).
        Raises the database's error when its batch could not be stored.
        """
        started = time.perf_counter()
        if message.is_bot or message.can_manage_messages:
            self._observe(message, None, started)  # no queue: the bot's own cost nothing
            return None
        future: asyncio.Future[Decision | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(message, future, started))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="deskbot-moderation")
        return await future

    async def aclose(self) -> None:
        """Decide everything queued and wait for it (a later message starts a new drain)."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        while self._queue:
            count = min(len(self._queue), self.batch_max)
            batch = [self._queue.popleft() for _ in range(count)]
            try:
                results = await self._decide([p.message for p in batch])
            except Exception as exc:  # the database: this batch fails, the next is tried
                log.exception("moderation: storing %d decisions failed", len(batch))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for pending, decision in zip(batch, results, strict=True):
                self._observe(pending.message, decision, pending.started)
                if not pending.future.done():  # its caller may have been cancelled
                    pending.future.set_result(decision)

    def _observe(self, message: Incoming, decision: Decision | None, started: float) -> None:
        elapsed = time.perf_counter() - started
        for observer in self.observers:
            try:
                observer(message, decision, elapsed)
            except Exception:  # a metrics bug must not lose a decision
                log.exception("moderation observer %r failed", observer)

    async def _decide(self, messages: Sequence[Incoming]) -> list[Decision | None]:
        """One batch: policies, exemptions, classification, then one transaction."""
        policies = {g: await self.policy(g) for g in dict.fromkeys(m.guild_id for m in messages)}
        moderated = [i for i, m in enumerate(messages) if not self.exempt(m, policies[m.guild_id])]
        verdicts = await self._verdicts([messages[i] for i in moderated], policies)
        acted = {
            i: _draft(messages[i], v) for i, v in zip(moderated, verdicts, strict=True)
            if v is not None and v.threshold_action != "none"
        }  # fmt: skip
        drafts = list(acted.values())
        stored = await self.store.record_decisions(drafts, policies) if drafts else []
        decided: list[Decision | None] = [None] * len(messages)
        for i, draft, (event_id, outcome) in zip(acted, drafts, stored, strict=True):
            decided[i] = _decision(draft, policies[draft.guild_id].mode, event_id, outcome)
        return decided

    async def _verdicts(
        self, messages: Sequence[Incoming], policies: Mapping[str, Policy]
    ) -> list[Verdict | None]:
        """Each message's worst window: every window in one call when the classifier can."""
        classifier = self.classifier
        if not isinstance(classifier, _ClassifiesMany) or len(messages) < 2:
            return await self._each(messages, policies)
        parts = [self._windows(m.text) for m in messages]
        try:
            results = await classifier.classify_many([p for ps in parts for p in ps])
        except ClassifierError:  # one odd text refuses the batch: alone, only it fails
            return await self._each(messages, policies)
        verdicts: list[Verdict | None] = []
        for message, texts in zip(messages, parts, strict=True):
            mine, results = results[: len(texts)], results[len(texts) :]
            verdicts.append(_worst(policies[message.guild_id], texts, mine) if texts else None)
        return verdicts

    def _windows(self, text: str) -> list[str]:
        if not text.strip():
            return []
        return windows(text, max_chars=self.max_chars, window_chars=self.window_chars)

    async def _each(
        self, messages: Sequence[Incoming], policies: Mapping[str, Policy]
    ) -> list[Verdict | None]:
        """Messages classified one by one, concurrently (e.g. a language model's band)."""
        found = [self._verdict(m, policies[m.guild_id]) for m in messages]
        return list(await asyncio.gather(*found))

    async def _verdict(self, message: Incoming, policy: Policy) -> Verdict | None:
        try:
            return await classify_worst(
                self.classifier, policy, message.text,
                max_chars=self.max_chars, window_chars=self.window_chars,
            )  # fmt: skip
        except ClassifierInputError:
            return None
        except ClassifierError as exc:
            log.warning("moderation: classifying message %s failed: %s", message.message_id, exc)
            return None


@dataclass(frozen=True)
class _Pending:
    message: Incoming
    future: asyncio.Future[Decision | None]
    started: float  # perf_counter() when moderate() was called


def _draft(message: Incoming, verdict: Verdict) -> EventDraft:
    result = verdict.classification
    return EventDraft(
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


def _decision(draft: EventDraft, mode: Mode, event_id: uuid.UUID, outcome: Outcome) -> Decision:
    return Decision(
        event_id=event_id,
        **{k: v for k, v in draft.__dict__.items() if k != "threshold_action"},
        threshold_action=outcome.threshold_action,
        action=outcome.action,
        member_action=outcome.member_action,
        delete_message=outcome.delete_message,
        timeout_minutes=outcome.timeout_minutes,
        strikes=outcome.strikes,
        mode=mode,
        enforced=outcome.enforced,
        outcome=outcome,
    )
