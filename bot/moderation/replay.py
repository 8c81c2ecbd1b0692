"""Replay: what a policy would do to a set of texts, without a platform or a database.

How a moderator tunes thresholds before switching a guild to ``enforce``: the counts per
action, and with gold labels, precision and recall of each action (a text counts as
flagged by an action when its threshold action is that bad or worse; it is harmful when
its gold label is not ``none``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bot.moderation.decide import classify_worst
from bot.moderation.policy import ACTIONS, Action, Policy, severity
from tools.classifier import CommentClassifier

__all__ = ["ActionScore", "ReplayReport", "replay"]

ENFORCED = "enforced"
"""The :attr:`ReplayReport.scores` key for any action beyond ``log``."""


@dataclass(frozen=True)
class ActionScore:
    """How well one action separates harmful texts from the rest."""

    precision: float
    recall: float
    predicted: int
    gold: int
    correct: int


@dataclass(frozen=True)
class ReplayReport:
    """What a policy would have done to each text.

    Attributes:
        total: Texts replayed.
        counts: Texts per threshold action (every action present, zeros included).
        actions: Each text's threshold action, in input order.
        scores: With gold labels: per action beyond ``none`` and ``enforced``.
    """

    total: int
    counts: dict[Action, int]
    actions: list[Action]
    scores: dict[str, ActionScore]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, without the per-text actions."""
        return {
            "total": self.total,
            "counts": dict(self.counts),
            "scores": {k: asdict(v) for k, v in self.scores.items()},
        }


async def replay(
    policy: Policy,
    classifier: CommentClassifier,
    texts: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    max_chars: int = 2000,
    window_chars: int = 400,
) -> ReplayReport:
    """Run ``texts`` through ``policy`` (thresholds only: no strikes, nothing stored).

    Raises:
        ValueError: ``labels`` is given and not one per text.
    """
    if labels is not None and len(labels) != len(texts):
        raise ValueError(f"{len(labels)} labels for {len(texts)} texts")
    actions: list[Action] = []
    for text in texts:
        verdict = await classify_worst(
            classifier, policy, text, max_chars=max_chars, window_chars=window_chars
        )
        actions.append("none" if verdict is None else verdict.threshold_action)
    counted = Counter(actions)
    scores = {} if labels is None else _scores(actions, [label != "none" for label in labels])
    return ReplayReport(
        total=len(texts),
        counts={action: counted.get(action, 0) for action in ACTIONS},
        actions=actions,
        scores=scores,
    )


def _scores(actions: list[Action], harmful: list[bool]) -> dict[str, ActionScore]:
    gold = sum(harmful)
    cutoffs: dict[str, int] = {a: severity(a) for a in ACTIONS[1:]}
    cutoffs[ENFORCED] = severity("warn")
    scores = {}
    for name, cutoff in cutoffs.items():
        flagged = [severity(a) >= cutoff for a in actions]
        predicted = sum(flagged)
        correct = sum(f and h for f, h in zip(flagged, harmful, strict=True))
        scores[name] = ActionScore(
            precision=correct / predicted if predicted else 0.0,
            recall=correct / gold if gold else 0.0,
            predicted=predicted,
            gold=gold,
            correct=correct,
        )
    return scores
