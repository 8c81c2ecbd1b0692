"""The training form, and stored runs turned into it.

One example per line of JSONL, in OpenAI chat form with the tool-call arguments as objects:

    {"messages": [{"role": "system", ...}, {"role": "user", ...},
                  {"role": "assistant", "content": null, "tool_calls": [{"id": "c1",
                   "type": "function", "function": {"name": "search_documents",
                   "arguments": {"query": "..."}}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "..."},
                  {"role": "assistant", "content": "..."}],
     "tools": [{"type": "function", "function": {...}}]}

:func:`build_dataset` takes runs as plain dicts (the CLI reads them from PostgreSQL; this
package imports nothing from the bot), keeps the ones worth learning from, scrubs personal
data, drops duplicates and splits train from eval by thread, so no conversation is learnt
from and evaluated on at once.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from finetune.errors import FinetuneInputError
from finetune.scrub import Scrubber

__all__ = [
    "ExportReport",
    "Selection",
    "build_dataset",
    "eval_path",
    "example_from_run",
    "read_jsonl",
    "scrub_and_dedupe",
    "split_by_thread",
    "write_jsonl",
]

Example = dict[str, Any]
FeedbackRule = Literal["positive", "any"]


@dataclass(frozen=True)
class Selection:
    """Which runs become examples.

    Attributes:
        feedback: ``positive``: only runs with more thumbs up than down; ``any``: every run
            except those with more thumbs down than up.
        min_tools: Keep runs with at least this many tool calls.
        eval_share: Share of threads held out for evaluation.
    """

    feedback: FeedbackRule = "any"
    min_tools: int = 0
    eval_share: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.eval_share < 1:
            raise FinetuneInputError(f"eval share must be in [0, 1), not {self.eval_share}")
        if self.min_tools < 0:
            raise FinetuneInputError("min-tools cannot be negative")


@dataclass
class ExportReport:
    """What an export kept, dropped and scrubbed."""

    runs: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    scrubbed: Counter[str] = field(default_factory=Counter)
    train: int = 0
    eval: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for ``--json`` and the model card."""
        return {
            "runs": self.runs,
            "dropped": dict(self.dropped),
            "duplicates": self.duplicates,
            "scrubbed": {k: self.scrubbed.get(k, 0) for k in ("email", "phone", "rrn")},
            "train": self.train,
            "eval": self.eval,
        }


def build_dataset(
    runs: Iterable[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], selection: Selection
) -> tuple[list[Example], list[Example], ExportReport]:
    """Train and eval examples from stored runs, and the report of what happened.

    Each run is a dict: ``thread`` and ``run`` (ids), ``instructions`` (the system prompt),
    ``tools`` (the function schemas the model was offered, or None when the run did not
    record them), ``feedback`` (thumbs up minus down), ``history`` (earlier questions and
    final answers of the thread) and ``messages`` (the question, then the run's assistant
    and tool messages, tool-call arguments as the model's JSON strings). ``tools`` (the
    argument) stands in for a run that recorded none. A run calling a tool outside its
    tools is dropped.
    """
    report = ExportReport()
    selected: list[tuple[str, Example]] = []
    for run in runs:
        report.runs += 1
        offered = tools if run.get("tools") is None else run["tools"]
        example, reason = example_from_run(run, offered, selection)
        if example is None:
            report.dropped[reason] += 1
        else:
            selected.append((str(run["thread"]), example))
    train, held = split_by_thread(scrub_and_dedupe(selected, report), selection.eval_share)
    report.train, report.eval = len(train), len(held)
    return train, held, report


def scrub_and_dedupe(
    examples: Iterable[tuple[str, Example]], report: ExportReport
) -> list[tuple[str, Example]]:
    """The examples with personal data replaced and exact repeats left out (first one kept),
    counting both in ``report``."""
    scrubber, seen = Scrubber(), set()
    kept = []
    for key, example in examples:
        example["messages"] = scrubber.deep(example["messages"])
        digest = _digest(example["messages"])
        if digest in seen:
            report.duplicates += 1
            continue
        seen.add(digest)
        kept.append((key, example))
    report.scrubbed.update(scrubber.counts)
    return kept


def example_from_run(
    run: Mapping[str, Any], tools: Sequence[Mapping[str, Any]], selection: Selection
) -> tuple[Example | None, str]:
    """One run in the training form, offering ``tools``, or None and the reason it is left
    out."""
    feedback = int(run.get("feedback") or 0)
    if feedback < 0 or (selection.feedback == "positive" and feedback <= 0):
        return None, "feedback"
    calls = [c for m in run["messages"] for c in (m.get("tool_calls") or [])]
    if len(calls) < selection.min_tools:
        return None, "too few tool calls"
    offered = {t["function"]["name"] for t in tools}
    if any(c["function"]["name"] not in offered for c in calls):
        return None, "calls a tool not offered"
    try:
        turns = _renumbered([_message(m) for m in run["messages"]])
    except ValueError:
        return None, "malformed tool arguments"
    if not turns or turns[-1]["role"] != "assistant" or turns[-1].get("tool_calls"):
        return None, "no final answer"
    system = [{"role": "system", "content": run["instructions"]}] if run.get("instructions") else []
    history = [{"role": m["role"], "content": m["content"]} for m in run.get("history") or []]
    return {"messages": [*system, *history, *turns], "tools": [dict(t) for t in tools]}, ""


def _message(stored: Mapping[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": stored["role"], "content": stored.get("content")}
    if stored.get("tool_calls"):
        message["content"] = stored.get("content") or None
        message["tool_calls"] = [_call(c) for c in stored["tool_calls"]]
    if stored.get("tool_call_id"):
        message["tool_call_id"] = stored["tool_call_id"]
    return message


def _renumbered(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool-call ids as ``call_1``, ``call_2``...: the provider's random ids teach nothing and
    would keep two identical conversations from being seen as one."""
    ids: dict[str, str] = {}
    for turn in turns:
        for call in turn.get("tool_calls", []):
            call["id"] = ids.setdefault(call["id"], f"call_{len(ids) + 1}")
        if "tool_call_id" in turn:
            turn["tool_call_id"] = ids.get(turn["tool_call_id"], turn["tool_call_id"])
    return turns


def _call(call: Mapping[str, Any]) -> dict[str, Any]:
    arguments = call["function"].get("arguments") or {}
    if isinstance(arguments, str):
        arguments = json.loads(arguments or "{}")  # ValueError: the run is dropped
    if not isinstance(arguments, dict):
        raise ValueError("tool arguments must be a JSON object")
    function = {"name": call["function"]["name"], "arguments": arguments}
    return {"id": call.get("id", ""), "type": "function", "function": function}


def _digest(messages: Any) -> str:
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def split_by_thread(
    examples: Sequence[tuple[str, Example]], eval_share: float
) -> tuple[list[Example], list[Example]]:
    """Whole threads to eval (about ``eval_share`` of them, at least one when there are two
    or more), the rest to train; which threads is fixed by their ids, not by chance."""
    threads = sorted({t for t, _ in examples}, key=lambda t: hashlib.sha256(t.encode()).digest())
    count = round(len(threads) * eval_share)
    if eval_share > 0 and len(threads) >= 2:
        count = min(max(count, 1), len(threads) - 1)
    held = set(threads[:count])
    train = [e for t, e in examples if t not in held]
    return train, [e for t, e in examples if t in held]


def eval_path(path: Path) -> Path:
    """Where the held-out examples of ``path`` go: ``data.jsonl`` -> ``data.eval.jsonl``."""
    return path.with_name(f"{path.stem}.eval{path.suffix or '.jsonl'}")


def write_jsonl(path: Path, examples: Iterable[Example]) -> int:
    """Write one example per line (UTF-8, Korean kept readable); returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(example, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> list[Example]:
    """Examples in the training form, checked line by line.

    Raises:
        FinetuneInputError: The file is missing, a line is not JSON, or has no ``messages``.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FinetuneInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FinetuneInputError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
            raise FinetuneInputError(f"{path}:{number}: an example needs a messages list")
        examples.append(example)
    return examples
