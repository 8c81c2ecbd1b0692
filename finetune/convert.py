"""Outside datasets brought into the training form: Alpaca/KoAlpaca and ShareGPT.

    Alpaca, KoAlpaca   [{"instruction": ..., "input": ..., "output": ...}, ...]
    ShareGPT           [{"conversations": [{"from": "human", "value": ...},
                                           {"from": "gpt", "value": ...}], "tools": ...}, ...]

Either as one JSON array or as JSON lines. ShareGPT's tool turns (``function_call`` with a
``{"name", "arguments"}`` value, ``observation`` with the result) become OpenAI tool calls
and tool messages, and its ``tools`` (often a JSON string) the example's tools. The format
is told from the first record. Records that fit neither are counted and skipped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from finetune.errors import FinetuneInputError

__all__ = ["Format", "convert_records", "read_records"]

Format = Literal["alpaca", "sharegpt"]
Example = dict[str, Any]

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
_ROLES |= {"system": "system", "observation": "tool", "tool": "tool", "function_call": "call"}


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON array or JSON-lines file."""
    try:
        text = path.read_text(encoding="utf-8-sig").strip()
    except OSError as exc:
        raise FinetuneInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if text.startswith("[") else [json.loads(x) for x in _lines(text)]
    except json.JSONDecodeError as exc:
        raise FinetuneInputError(f"{path}: not JSON or JSON lines ({exc.msg})") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise FinetuneInputError(f"{path}: expected a list of records")
    return data


def _lines(text: str) -> Iterable[str]:
    return (line for line in text.splitlines() if line.strip())


def detect(record: Mapping[str, Any]) -> Format:
    """The format of ``record``: ShareGPT when it has ``conversations``, else Alpaca."""
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    raise FinetuneInputError(
        "unknown format: expected Alpaca (instruction, input, output) or ShareGPT (conversations)"
    )


def convert_records(
    records: Iterable[Mapping[str, Any]], kind: Format | None = None
) -> tuple[list[Example], Counter[str]]:
    """Examples in the training form and the count of records skipped, by reason."""
    examples: list[Example] = []
    skipped: Counter[str] = Counter()
    for record in records:
        kind = kind or detect(record)
        try:
            examples.append(_alpaca(record) if kind == "alpaca" else _sharegpt(record))
        except (KeyError, TypeError, ValueError) as exc:
            skipped[f"not {kind}: {type(exc).__name__}"] += 1
    return examples, skipped


def _alpaca(record: Mapping[str, Any]) -> Example:
    instruction, extra = str(record["instruction"]).strip(), str(record.get("input") or "").strip()
    output = str(record["output"]).strip()
    if not instruction or not output:
        raise ValueError("empty instruction or output")
    question = f"{instruction}\n\n{extra}" if extra else instruction
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": output}]
    return {"messages": messages, "tools": []}


def _sharegpt(record: Mapping[str, Any]) -> Example:
    messages: list[dict[str, Any]] = []
    for number, turn in enumerate(record["conversations"]):
        role, value = _ROLES[turn["from"]], turn["value"]
        if role == "call":
            messages.append(_call_turn(value, f"call_{number}"))
        elif role == "tool":
            call_id = f"call_{number - 1}"
            messages.append({"role": "tool", "tool_call_id": call_id, "content": str(value)})
        else:
            messages.append({"role": role, "content": str(value)})
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("the conversation does not end with an answer")
    tools = record.get("tools") or []
    return {"messages": messages, "tools": json.loads(tools) if isinstance(tools, str) else tools}


def _call_turn(value: Any, call_id: str) -> dict[str, Any]:
    call = json.loads(value) if isinstance(value, str) else value
    arguments = call.get("arguments") or {}
    arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
    if not isinstance(arguments, dict):
        raise TypeError("arguments must be an object")
    function = {"name": str(call["name"]), "arguments": arguments}
    tool_call = {"id": call_id, "type": "function", "function": function}
    return {"role": "assistant", "content": None, "tool_calls": [tool_call]}
