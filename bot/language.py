"""Which language to answer a user in: Korean when they wrote Hangul, otherwise English."""

from __future__ import annotations

import re

__all__ = ["in_language_of", "is_korean"]

_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")


def is_korean(text: str) -> bool:
    """True if ``text`` contains Hangul."""
    return _HANGUL.search(text) is not None


def in_language_of(text: str, english: str, korean: str) -> str:
    """``korean`` for a Korean ``text``, else ``english``."""
    return korean if is_korean(text) else english
