"""Shared by the fine-tuning tests: the tiny model (built once per test session) and the
``deskbot`` command run in this process.

Most fine-tuning tests run the CLI through click's runner (:func:`deskbot_in_process`): the same
group, settings and error mapping as the script, without a process start that imports torch,
transformers and trl again (2-5 s each). A real process is kept where the process is what is
tested: ``serve-model`` over HTTP and the chain's ``finetune train`` (its trainer log lines
moved off stdout, so ``--json`` stays parseable).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
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


def deskbot_in_process(data_dir: Path) -> Callable[..., CliResult]:
    """``run_cli``'s twin that runs ``deskbot ARGS`` in this process, settings from ``env``."""

    def run(*args: str, env: dict[str, str] | None = None) -> CliResult:
        base = {"DESKBOT_DATA_DIR": str(data_dir), "DESKBOT_LOG_LEVEL": "WARNING"}
        # Its own thread: commands start their own event loop, and async tests hold one.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(_invoke, list(args), {**base, **(env or {})}).result()

    return run


def _invoke(args: list[str], env: dict[str, str]) -> CliResult:
    from click.testing import CliRunner

    from bot.cli import cli

    # The script's warning filters, not the suite's "error": a library's warning is a line on
    # stderr for a user, as it is in the process these tests stand for.
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for kind in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", kind)
        result = CliRunner().invoke(cli, args, env=env, catch_exceptions=True)
    root = logging.getLogger()  # the command's handler wrote to the runner's closed stream
    for handler in [h for h in root.handlers if getattr(h, "_deskbot", False)]:
        root.removeHandler(handler)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash fails the test with its traceback, as a process would
    return CliResult(result.exit_code, result.stdout, result.stderr)


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
