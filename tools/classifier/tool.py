"""``classify_comment``: the agent's tool, deciding with any :class:`CommentClassifier`."""

from __future__ import annotations

from tools.base import Tool, ToolOutput
from tools.classifier.base import (
    Classification,
    ClassifierError,
    ClassifierInputError,
    CommentClassifier,
)
from tools.errors import FatalToolError, ToolError

__all__ = ["make_classifier_tools"]


def make_classifier_tools(classifier: CommentClassifier) -> list[Tool]:
    """The ``classify_comment`` tool, deciding with ``classifier``."""

    async def classify_comment(text: str) -> ToolOutput:
        """Classify a comment (Korean or English) as hate speech, offensive, or neither.

        Returns the label, a score per label (summing to 1), which classifier decided
        (local model or language model) and whether the text was cut to fit.

        Args:
            text: The comment, verbatim.
        """
        try:
            result = await classifier.classify(text)
        except ClassifierInputError as exc:
            raise ToolError(str(exc)) from None
        except ClassifierError as exc:
            raise FatalToolError(f"the comment classifier failed: {exc}") from None
        return ToolOutput(result.to_dict(), markdown=_markdown(result))

    return [Tool.from_function(classify_comment, timeout=60.0)]


def _markdown(result: Classification) -> str:
    scores = ", ".join(f"{label} {score:.2f}" for label, score in result.scores.items())
    lines = [f"**{result.label}** ({scores}; decided by the {result.classifier} classifier)"]
    if result.truncated:
        lines.append("The comment was cut to fit the classifier's limit.")
    lines += [line for line in (result.rationale, result.note) if line]
    return "\n\n".join(lines)
