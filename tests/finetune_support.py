"""Shared by the fine-tuning tests: the tiny model, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune.tiny import init_tiny

_BUILT: dict[str, Path] = {}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Today's weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def tiny_model_dir(factory: pytest.TempPathFactory) -> Path:
    """The tiny model's directory, written on first use (about a second) and then shared."""
    if "tiny" not in _BUILT:
        _BUILT["tiny"] = init_tiny(factory.mktemp("tiny-model"), seed=0)
    return _BUILT["tiny"]


def weather_conversation(
    city: str = "서울", answer: str = "It is sunny."
) -> list[dict[str, object]]:
    """A user question, one tool call, its result and the answer."""
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": city}},
    }
    return [
        {"role": "user", "content": f"What is the weather in {city}?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"sky": "sunny"}'},
        {"role": "assistant", "content": answer},
    ]
