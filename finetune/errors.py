"""The exceptions of the fine-tuning package.

FinetuneError                 a fine-tuning step failed
└── FinetuneInputError        the user must fix something first: a missing base directory,
                              an unreadable data file, an unknown config key, examples
                              whose assistant tokens all fall past ``max_length``
"""

from __future__ import annotations

__all__ = ["FinetuneError", "FinetuneInputError"]


class FinetuneError(Exception):
    """A fine-tuning step failed."""


class FinetuneInputError(FinetuneError):
    """Input the user must fix first: a path, a data file, a config value."""
