"""The local model first, the language model only when the local one is unsure."""

from __future__ import annotations

from dataclasses import replace

from tools.classifier.base import (
    Classification,
    ClassifierError,
    ClassifierInputError,
    CommentClassifier,
)

__all__ = ["CombinedClassifier"]


class CombinedClassifier:
    """The ``first`` classifier's answer, unless its top score is in ``[low, high)``.

    Then ``second`` (the language model) decides; if it fails, the first answer stands
    with a note. Without a ``second``, this is the first classifier.
    """

    def __init__(
        self,
        first: CommentClassifier,
        second: CommentClassifier | None,
        *,
        band_low: float = 0.45,
        band_high: float = 0.75,
    ) -> None:
        if not 0 <= band_low <= band_high <= 1:
            raise ValueError(f"need 0 <= band_low <= band_high <= 1, got {band_low}, {band_high}")
        self.first = first
        self.second = second
        self.band = (band_low, band_high)

    def uncertain(self, result: Classification) -> bool:
        """Whether the first classifier's top score falls in the band."""
        return self.band[0] <= result.top_score < self.band[1]

    async def classify(self, text: str) -> Classification:
        first = await self.first.classify(text)
        if self.second is None or not self.uncertain(first):
            return first
        try:
            second = await self.second.classify(text)
        except ClassifierInputError:
            raise
        except ClassifierError as exc:
            return replace(first, note=f"the language model failed, local label kept: {exc}")
        return replace(second, truncated=first.truncated or second.truncated)
