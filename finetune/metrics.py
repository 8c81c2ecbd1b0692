"""Tool-calling metrics on one assistant turn at a time, against the teacher's turn.

- **parse**: the generated turn is a well-formed call block or plain text.
- **tool selection**: the same tools are called (as a multiset), or none when the teacher
  called none ("should not call" turns are reported apart as well).
- **argument match**, in the BFCL style (an AST match, not a string one): each teacher call
  has a generated call of the same function whose every required argument, and every
  optional one it gives, equals the teacher's after type normalisation (``"3"`` and ``3.0``
  for an integer parameter are 3; strings compare trimmed and case-folded), and which gives
  no argument the schema does not know.
- **chrF** of the generated answer against the teacher's on answer turns, as sacreBLEU
  computes it: character n-grams of orders 1 to 6, spaces removed, F-beta with beta 2 per
  order, averaged over the orders both sides have.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Scores", "TurnResult", "argument_match", "chrf", "score_turn"]

CHRF_ORDER = 6
CHRF_BETA = 2.0


@dataclass(frozen=True)
class TurnResult:
    """How one generated turn compares with the teacher's."""

    parsed: bool
    expects_call: bool
    selection: bool
    arguments: bool | None  # None on turns where the teacher called nothing
    chrf: float | None  # None on turns where the teacher called a tool


@dataclass
class Scores:
    """The metrics over many turns (each a share in [0, 1], chrF in [0, 100])."""

    turns: list[TurnResult] = field(default_factory=list)

    def add(self, result: TurnResult) -> None:
        """Count one more turn."""
        self.turns.append(result)

    def as_dict(self) -> dict[str, Any]:
        """The figures, each with the number of turns it is taken over."""
        calls = [t for t in self.turns if t.expects_call]
        answers = [t for t in self.turns if not t.expects_call]
        return {
            "turns": len(self.turns),
            "parse_rate": _share([t.parsed for t in self.turns]),
            "tool_selection": _share([t.selection for t in self.turns]),
            "call_turns": len(calls),
            "call_selection": _share([t.selection for t in calls]),
            "no_call_turns": len(answers),
            "should_not_call": _share([t.selection for t in answers]),
            "argument_match": _share([bool(t.arguments) for t in calls]),
            "chrf": _mean([t.chrf for t in answers if t.chrf is not None]),
        }


def _share(values: Sequence[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_turn(
    reference: Mapping[str, Any],
    generated: Mapping[str, Any] | None,
    tools: Sequence[Mapping[str, Any]],
) -> TurnResult:
    """Compare a generated assistant turn (None: it did not parse) with the teacher's."""
    expected = _calls(reference)
    if generated is None:
        return TurnResult(False, bool(expected), False, False if expected else None, None)
    got = _calls(generated)
    selection = Counter(c["name"] for c in expected) == Counter(c["name"] for c in got)
    if expected:
        return TurnResult(True, True, selection, argument_match(expected, got, tools), None)
    text = "" if got else str(generated.get("content") or "")
    return TurnResult(True, False, selection, None, chrf(text, str(reference.get("content") or "")))


def _calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function", call)
        arguments = function.get("arguments") or {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments or "{}")
        calls.append({"name": function["name"], "arguments": arguments})
    return calls


def argument_match(
    expected: Sequence[Mapping[str, Any]],
    got: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]],
) -> bool:
    """Every teacher call is matched by its own generated call (BFCL's AST check)."""
    if len(expected) != len(got):
        return False
    schemas = {t["function"]["name"]: t["function"].get("parameters") or {} for t in tools}
    unused = list(got)
    for call in expected:
        schema = schemas.get(call["name"], {})
        match = next((g for g in unused if _same_call(call, g, schema)), None)
        if match is None:
            return False
        unused.remove(match)
    return True


def _same_call(
    expected: Mapping[str, Any], got: Mapping[str, Any], schema: Mapping[str, Any]
) -> bool:
    if expected["name"] != got["name"]:
        return False
    properties = schema.get("properties") or {}
    want, have = expected["arguments"], got["arguments"]
    if properties and set(have) - set(properties):
        return False  # an argument the function does not take
    required = schema.get("required", list(want))
    if any(name not in have for name in required):
        return False
    return all(
        _equal(want.get(name), value, properties.get(name, {}))
        for name, value in have.items()
        if name in want or name in required
    )


def _equal(want: Any, have: Any, schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    numeric = isinstance(want, int | float) and not isinstance(want, bool)
    if kind in ("integer", "number") or numeric:
        return _number(want) is not None and _number(want) == _number(have)
    if isinstance(want, str) and isinstance(have, str):
        return want.strip().casefold() == have.strip().casefold()
    if isinstance(want, list) and isinstance(have, list):
        item = schema.get("items") or {}
        return len(want) == len(have) and all(
            _equal(a, b, item) for a, b in zip(want, have, strict=True)
        )
    if isinstance(want, dict) and isinstance(have, dict):
        inner = schema.get("properties") or {}
        return set(want) == set(have) and all(
            _equal(want[k], have[k], inner.get(k, {})) for k in want
        )
    return bool(want == have)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def chrf(hypothesis: str, reference: str) -> float:
    """sacreBLEU's chrF (0-100) of ``hypothesis`` against ``reference``."""
    hyp, ref = "".join(hypothesis.split()), "".join(reference.split())
    if hyp == ref:
        return 100.0 if ref else 0.0
    total, orders = 0.0, 0
    factor = CHRF_BETA**2
    for n in range(1, CHRF_ORDER + 1):
        hyp_grams, ref_grams = _grams(hyp, n), _grams(ref, n)
        if not hyp_grams or not ref_grams:
            continue
        matched = sum((hyp_grams & ref_grams).values())
        precision, recall = matched / hyp_grams.total(), matched / ref_grams.total()
        orders += 1
        if precision + recall > 0:
            total += (1 + factor) * precision * recall / (factor * precision + recall)
    return 100 * total / orders if orders else 0.0


def _grams(text: str, n: int) -> Counter[str]:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))
