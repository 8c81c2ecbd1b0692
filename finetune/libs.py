"""The heavy libraries, imported when a function first needs them.

They come back typed ``Any``: transformers, peft and trl are only partly annotated, and a
fine-tuning step talks to them through a handful of calls that the tests exercise.

Before the first of them loads, the Hugging Face hub client's telemetry is switched off:
TRL's trainers send a usage ping to huggingface.co each time one is built, and nothing here
reaches a hub (``HF_HUB_DISABLE_TELEMETRY=1``, set in the process as a user would).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["lib"]


def lib(name: str) -> Any:
    """Import ``name`` (``"transformers"``, ``"peft"``, ``"trl"``, ``"torch"``) on first use."""
    _no_telemetry()
    return importlib.import_module(name)


def _no_telemetry() -> None:
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"  # for processes this one starts
    # read at each ping, so this holds even when the hub client was imported earlier
    constants: Any = importlib.import_module("huggingface_hub.constants")
    constants.HF_HUB_DISABLE_TELEMETRY = True
