"""Shared by the fine-tuning tests: the tiny model, built once per test session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finetune.tiny import init_tiny
from tests.conftest import REPO, CliResult

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


CITIES = (
    ("Seoul", "Sunny in Seoul."),
    ("Busan", "Rain in Busan."),
    ("Jeju", "Windy in Jeju."),
    ("Daegu", "Hot in Daegu."),
    ("Incheon", "Cloudy in Incheon."),
    ("Gwangju", "Clear in Gwangju."),
)


def write_weather_data(folder: Path) -> Path:
    """``data.jsonl`` (five tool-call conversations) and ``data.eval.jsonl`` (one more)."""
    examples = [
        {"messages": weather_conversation(city, answer), "tools": [WEATHER_TOOL]}
        for city, answer in CITIES
    ]
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(e, ensure_ascii=False) for e in examples]
    (folder / "data.eval.jsonl").write_text(lines[-1] + "\n", encoding="utf-8")
    (folder / "data.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    return folder / "data.jsonl"


def deskbot(*args: str, cwd: Path, env: dict[str, str] | None = None) -> CliResult:
    """Run the ``deskbot`` script as the ``run_cli`` fixture does, for fixtures wider than
    one test (the session's chain: export, train, merge)."""
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(cwd / "home"),
        "PYTHONPATH": f"{REPO / 'tests' / 'netguard'}{os.pathsep}{REPO}",
        "DESKBOT_DATA_DIR": str(cwd / "data"),
        "DESKBOT_LOG_LEVEL": "WARNING",
    }
    script = Path(sys.executable).with_name("deskbot")
    proc = subprocess.run(
        [str(script), *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
