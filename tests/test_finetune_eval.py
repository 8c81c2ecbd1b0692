"""Tool-calling metrics on hand-made turns whose right figures are known."""

from __future__ import annotations

from typing import Any

import pytest

from finetune.metrics import Scores, argument_match, chrf, score_turn
from tests.finetune_support import WEATHER_TOOL

pytestmark = pytest.mark.unit

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "k": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["query"],
        },
    },
}
TOOLS = [WEATHER_TOOL, LOOKUP]


def calls(*pairs: tuple[str, Any]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"type": "function", "function": {"name": n, "arguments": a}} for n, a in pairs
        ],
    }


def answer(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


@pytest.mark.parametrize(
    ("got", "matches"),
    [
        ({"query": "vacation", "k": 3}, True),
        ({"query": "  VACATION ", "k": "3"}, True),  # strings trimmed and case-folded, "3" is 3
        ({"query": "vacation", "k": 3.0}, True),
        ({"query": "vacation", "k": 4}, False),
        ({"k": 3}, False),  # the required query is missing
        ({"query": "vacation", "k": 3, "page": 2}, False),  # lookup takes no page
        ({"query": "vacation"}, True),  # an optional argument left to its default
        (
            {"query": "vacation", "k": 3, "tags": ["HR"]},
            True,
        ),  # an optional one the teacher left out
    ],
)
def test_arguments_match_in_the_bfcl_style(got: dict[str, Any], matches: bool) -> None:
    expected = [{"name": "lookup", "arguments": {"query": "vacation", "k": 3}}]
    assert argument_match(expected, [{"name": "lookup", "arguments": got}], TOOLS) is matches


def test_parallel_calls_match_in_any_order_but_not_in_another_number() -> None:
    seoul = {"name": "get_weather", "arguments": {"city": "Seoul"}}
    busan = {"name": "get_weather", "arguments": {"city": "Busan"}}
    assert argument_match([seoul, busan], [busan, seoul], TOOLS)
    assert not argument_match([seoul, busan], [seoul, seoul], TOOLS)
    assert not argument_match([seoul], [seoul, busan], TOOLS)


def test_chrf_of_known_pairs() -> None:
    assert chrf("the cat sat", "the cat sat") == 100.0
    assert chrf("thecat", "the cat") == 100.0  # spaces are not characters to chrF
    assert chrf("xyz", "abc") == 0.0
    assert chrf("", "abc") == 0.0
    # orders 1 and 2 only: F2(P=1, R=2/3) = 10/14 and F2(P=1, R=1/2) = 5/9, averaged
    assert chrf("ab", "abc") == pytest.approx(100 * (10 / 14 + 5 / 9) / 2)


def test_scores_over_turns_of_every_kind() -> None:
    scores = Scores()
    seoul = calls(("get_weather", {"city": "Seoul"}))
    scores.add(score_turn(seoul, calls(("get_weather", '{"city": "seoul"}')), TOOLS))  # right
    scores.add(score_turn(seoul, calls(("get_weather", {"city": "Busan"})), TOOLS))  # wrong city
    scores.add(score_turn(seoul, calls(("lookup", {"query": "Seoul"})), TOOLS))  # wrong tool
    scores.add(score_turn(seoul, None, TOOLS))  # did not parse
    scores.add(score_turn(answer("It is sunny."), answer("It is sunny."), TOOLS))
    scores.add(score_turn(answer("It is sunny."), seoul, TOOLS))  # should not have called

    assert scores.as_dict() == {
        "turns": 6,
        "parse_rate": 5 / 6,
        "tool_selection": 3 / 6,
        "call_turns": 4,
        "call_selection": 2 / 4,
        "no_call_turns": 2,
        "should_not_call": 1 / 2,
        "argument_match": 1 / 4,
        "chrf": 50.0,
    }
