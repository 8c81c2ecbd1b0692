"""Hermes ``<tool_call>`` blocks read as OpenAI tool calls, and the text shown while streaming."""

from __future__ import annotations

import json

import pytest

from finetune.toolcalls import (
    LocalModelError,
    MalformedToolCallError,
    VisibleText,
    parse_assistant,
)

pytestmark = pytest.mark.unit


def _block(payload: str) -> str:
    return f"<tool_call>\n{payload}\n</tool_call>"


def test_plain_text_is_the_content_and_no_calls() -> None:
    turn = parse_assistant("  The hotel cap in Tokyo is 180 USD [1].\n")

    assert turn.content == "The hotel cap in Tokyo is 180 USD [1]."
    assert turn.tool_calls == []


def test_one_call_becomes_a_wire_tool_call_with_arguments_as_a_json_string() -> None:
    turn = parse_assistant(
        _block('{"name": "search_documents", "arguments": {"query": "호텔 상한", "k": 3}}')
    )

    (call,) = turn.tool_calls
    assert call["type"] == "function"
    assert call["id"].startswith("call_") and len(call["id"]) > 10
    assert call["function"]["name"] == "search_documents"
    assert isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"query": "호텔 상한", "k": 3}
    assert "호텔" in call["function"]["arguments"]  # not \u-escaped: the model's own text
    assert turn.content == ""


def test_several_calls_keep_their_order_and_get_distinct_ids_and_the_text_around_them() -> None:
    text = (
        "Let me look both up.\n"
        + _block('{"name": "stock_quote", "arguments": {"symbol": "AAPL"}}')
        + "\n"
        + _block('{"name": "stock_quote", "arguments": {"symbol": "005930.KS"}}')
        + "\nOne moment."
    )

    turn = parse_assistant(text)

    symbols = [json.loads(c["function"]["arguments"])["symbol"] for c in turn.tool_calls]
    assert symbols == ["AAPL", "005930.KS"]
    assert len({c["id"] for c in turn.tool_calls}) == 2
    assert turn.content.startswith("Let me look both up.") and turn.content.endswith("One moment.")
    assert "<tool_call>" not in turn.content


def test_missing_arguments_are_an_empty_object_and_a_json_string_of_an_object_is_read() -> None:
    turn = parse_assistant(
        _block('{"name": "list_collections"}')
        + _block('{"name": "run_sql", "arguments": "{\\"query\\": \\"SELECT 1\\"}"}')
    )

    assert [json.loads(c["function"]["arguments"]) for c in turn.tool_calls] == [
        {},
        {"query": "SELECT 1"},
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (_block('{"name": "search_documents", "arguments": {"query": '), "not JSON"),
        (_block('["search_documents"]'), "not an object"),
        (_block('{"arguments": {"query": "x"}}'), "has no name"),
        (_block('{"name": "  ", "arguments": {}}'), "has no name"),
        (_block('{"name": "search_documents", "arguments": [1, 2]}'), "not an object"),
        ('Sure.\n<tool_call>\n{"name": "search_documents", "arguments": {}}', "unclosed"),
        ('{"name": "x", "arguments": {}}\n</tool_call>', "never opened"),
    ],
    ids=["bad-json", "array", "no-name", "blank-name", "array-args", "unclosed", "stray-close"],
)
def test_a_malformed_call_is_one_clear_error(text: str, why: str) -> None:
    with pytest.raises(MalformedToolCallError) as raised:
        parse_assistant(text)

    message = str(raised.value)
    assert why in message and "\n" not in message
    assert isinstance(raised.value, LocalModelError)  # what the application maps to its own


def test_a_long_bad_call_is_quoted_short() -> None:
    with pytest.raises(MalformedToolCallError) as raised:
        parse_assistant(_block('{"name": "x", "arguments": {"q": "' + "a" * 5000))

    assert len(str(raised.value)) < 300


def _stream(pieces: list[str]) -> tuple[list[str], str]:
    visible = VisibleText()
    shown = [visible.feed(piece) for piece in pieces]
    shown.append(visible.finish())
    return [s for s in shown if s], "".join(shown)


def test_streamed_text_equals_the_parsed_content_of_a_text_turn() -> None:
    pieces = ["\n", "The hotel", " cap", " is 180", " USD", " [1].", "\n", " "]

    shown, joined = _stream(pieces)

    assert joined == parse_assistant("".join(pieces)).content
    assert len(shown) >= 3  # passed on as it came, not all at the end


def test_streaming_stops_at_the_tool_call_even_when_the_tag_arrives_in_pieces() -> None:
    pieces = ["Checking", " now.", "\n<to", "ol_", "call>", '\n{"name": "x"', "}\n</tool_call>"]

    shown, joined = _stream(pieces)

    assert joined == "Checking now."
    assert not any("<" in s or "{" in s for s in shown)


def test_text_that_only_looks_like_the_tag_start_is_shown_in_the_end() -> None:
    _, joined = _stream(["a < b and ", "x <to", "y"])

    assert joined == "a < b and x <toy"
