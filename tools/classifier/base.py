"""What every comment classifier shares: the label set, the result, the Protocol, errors.

Exceptions, under the tools' base (:class:`~tools.errors.BaseToolError`); how the CLI turns
them into exit codes is decided in ``bot.cli.exits``, not here::

    ClassifierError            classifying failed (the language model's reply was
    │                          malformed, it was unreachable) or saving did
    ├── ClassifierInputError   bad input: empty comment, unreadable data file, missing
    │                          column, labels outside the label set, a single class
    └── ModelLoadError         the model directory is missing, unreadable or incompatible

The ``classify_comment`` tool turns a :class:`ClassifierInputError` into a
:class:`~tools.errors.ToolError` (the model can fix it) and any other into a
:class:`~tools.errors.FatalToolError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from tools.errors import BaseToolError

__all__ = [
    "DEFAULT_LABELS",
    "Classification",
    "ClassifierError",
    "ClassifierInputError",
    "CommentClassifier",
    "ModelLoadError",
    "prepare_comment",
]

DEFAULT_LABELS: tuple[str, ...] = ("hate", "offensive", "none")


class ClassifierError(BaseToolError):
    """Classifying failed, or the model could not be saved."""


class ClassifierInputError(ClassifierError):
    """The comment or the data is unusable; the message says what to change."""


class ModelLoadError(ClassifierError):
    """The model directory is missing, unreadable or made by incompatible versions."""


@dataclass(frozen=True)
class Classification:
    """One decision: ``scores`` has every label and sums to 1.

    ``label`` is the decision: the local model's highest score, or the language model's
    choice (whose own scores need not agree). ``classifier`` says which one decided.
    """

    label: str
    scores: dict[str, float]
    classifier: Literal["local", "llm"]
    truncated: bool = False
    rationale: str | None = None
    note: str | None = None

    @property
    def top_score(self) -> float:
        """The highest score (the local model's confidence)."""
        return max(self.scores.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, scores rounded to 4 places; empty optional fields left out."""
        data: dict[str, Any] = {
            "label": self.label,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "classifier": self.classifier,
            "truncated": self.truncated,
        }
        data.update({k: v for k, v in (("rationale", self.rationale), ("note", self.note)) if v})
        return data


@runtime_checkable
class CommentClassifier(Protocol):
    """Anything that classifies one comment (local model, language model, both)."""

    async def classify(self, text: str) -> Classification:
        """Classify ``text``; :class:`ClassifierInputError` if it is empty."""
        ...


def prepare_comment(text: str, max_chars: int) -> tuple[str, bool]:
    """The comment stripped and cut to ``max_chars``, and whether it was cut."""
    text = text.strip()
    if not text:
        raise ClassifierInputError("the comment is empty: pass the text to classify")
    return (text[:max_chars], True) if len(text) > max_chars else (text, False)
