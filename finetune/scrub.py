"""Personal data taken out of training text: e-mail addresses, phone numbers, RRNs.

Each find is replaced by a placeholder (``[EMAIL]``, ``[PHONE]``, ``[RRN]``) so the model
learns the shape of an answer without the data, and counted so the export can say how many
of each it removed. Korean resident registration numbers go first: their 13 digits would
otherwise be half-read as a phone number.

Phone numbers: Korean mobiles (``010-1234-5678``, ``01012345678``), Korean landlines with
an area code (``02-123-4567``, ``031-123-4567``), ``+82`` forms of both, and international
numbers written with a leading ``+`` (8 to 15 digits). Bare digit runs without a ``+`` or a
Korean prefix (order ids, stock codes such as ``005930``, dates) are left alone.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

__all__ = ["PLACEHOLDERS", "Scrubber"]

PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "rrn": "[RRN]"}

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# YYMMDD, then the 7-digit part whose first digit is 1-8 (century and sex, foreigners 5-8).
_RRN = re.compile(r"(?<!\d)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?-?\s?[1-8]\d{6}(?!\d)")
_SEP = r"[-. ]?"
_KOREAN_PHONE = re.compile(
    r"(?<![\d+])(?:\+82" + _SEP + r"\(?0?\)?|0)"  # +82 (the trunk 0 dropped) or the trunk 0
    r"(?:1[016789]|2|[3-6][1-5])" + _SEP + r"\d{3,4}" + _SEP + r"\d{4}(?!\d)"
)
_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[-. ]?\(?\d{1,5}\)?){1,5}(?!\d)")


class Scrubber:
    """Replaces personal data in strings and counts what it replaced."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def text(self, value: str) -> str:
        """``value`` with every e-mail address, RRN and phone number replaced."""
        value = self._sub(_EMAIL, "email", value)
        value = self._sub(_RRN, "rrn", value)
        value = self._sub(_KOREAN_PHONE, "phone", value)
        return _INTERNATIONAL.sub(self._international, value)

    def deep(self, value: Any) -> Any:
        """Every string inside ``value`` (dicts, lists, tool arguments) scrubbed; keys kept."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        return value

    def _sub(self, pattern: re.Pattern[str], kind: str, value: str) -> str:
        replaced, found = pattern.subn(PLACEHOLDERS[kind], value)
        self.counts[kind] += found
        return replaced

    def _international(self, match: re.Match[str]) -> str:
        digits = sum(ch.isdigit() for ch in match.group())
        if not 8 <= digits <= 15:
            return match.group()
        self.counts["phone"] += 1
        return PLACEHOLDERS["phone"]
