"""Text as PostgreSQL and every terminal can take it: the cleaner the parsers use, for others.

Questions, tool arguments and model replies reach the database too; without NULs, controls
and lone surrogates they are stored instead of failing the run.
"""

from __future__ import annotations

from typing import Any

from knowledge._clean import clean_text

__all__ = ["clean_text", "clean_value"]


def clean_value(value: Any) -> Any:
    """``value`` with :func:`clean_text` applied to every string in it (keys too)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_value(key): clean_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_value(item) for item in value]
    return value
