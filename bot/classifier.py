"""The comment classifier ``DESKBOT_CLASSIFIER_MODE`` asks for, wired from settings.

The classifiers themselves live in :mod:`tools.classifier`; this module only chooses and
builds one, because only ``bot`` reads settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.errors import ConfigError
from bot.settings import Settings
from tools.chat_backend import ChatBackend
from tools.classifier import (
    DEFAULT_EXAMPLES,
    CombinedClassifier,
    CommentClassifier,
    FewShotExample,
    LLMClassifier,
    LocalClassifier,
)

__all__ = ["make_comment_classifier"]


async def make_comment_classifier(
    settings: Settings,
    backend: ChatBackend | None,
    *,
    examples: Sequence[FewShotExample] = DEFAULT_EXAMPLES,
) -> CommentClassifier:
    """The classifier ``DESKBOT_CLASSIFIER_MODE`` asks for.

    ``local``: the model at ``settings.classifier_path``. ``llm``: the language model only.
    ``combined``: the local model, and the language model for comments in the uncertain
    band; without a language model configured, the local model alone. ``backend`` is
    used only when ``settings.llm_configured``.

    Raises:
        ModelLoadError: the local model is needed and missing or unreadable.
        ConfigError: ``llm`` mode without a language model, or an inverted band.
    """
    limit = settings.classifier_max_chars
    has_llm = backend is not None and settings.llm_configured
    if settings.classifier_mode == "llm":
        if backend is None or not has_llm:
            raise ConfigError(
                "DESKBOT_CLASSIFIER_MODE=llm needs a language model: set OPENAI_API_KEY "
                "or OPENAI_BASE_URL"
            )
        return LLMClassifier(backend, examples=examples, max_chars=limit)
    local = await asyncio.to_thread(LocalClassifier.load, settings.classifier_path, max_chars=limit)
    if settings.classifier_mode == "local" or backend is None or not has_llm:
        return local
    low, high = settings.classifier_band_low, settings.classifier_band_high
    if low > high:
        raise ConfigError(
            f"DESKBOT_CLASSIFIER_BAND_LOW ({low}) is above DESKBOT_CLASSIFIER_BAND_HIGH ({high})"
        )
    # The language model answers with the local model's label set.
    llm = LLMClassifier(backend, labels=local.labels, examples=examples, max_chars=limit)
    return CombinedClassifier(local, llm, band_low=low, band_high=high)
