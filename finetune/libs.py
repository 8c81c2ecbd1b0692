"""The heavy libraries, imported when a function first needs them.

They come back typed ``Any``: transformers, peft and trl are only partly annotated, and a
fine-tuning step talks to them through a handful of calls that the tests exercise.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["lib"]


def lib(name: str) -> Any:
    """Import ``name`` (``"transformers"``, ``"peft"``, ``"trl"``, ``"torch"``) on first use."""
    return importlib.import_module(name)
