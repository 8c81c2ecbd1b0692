"""Tool schemas from signatures, argument validation, the registry, citations, prompts."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field

from bot.agent.prompts import SYSTEM_PROMPT, load_prompts
from bot.errors import ConfigError
from knowledge.search import Citation
from tools.base import CitationBook, Tool, ToolContext, ToolError, ToolRegistry

pytestmark = pytest.mark.unit


async def history(
    ctx: ToolContext,
    ticker: str,
    days: Annotated[int, Field(ge=1, le=365)] = 30,
    interval: Literal["1d", "1wk"] = "1d",
    note: str | None = None,
) -> dict[str, object]:
    """Price history of one share.

    Closing prices only.

    Args:
        ticker: Symbol, e.g. AAPL.
        days: How many days back,
            counted in calendar days.
        interval: Bar size.
        note: Unused.

    Returns:
        The bars.
    """
    return {"ticker": ticker, "days": days, "user": ctx.user_id}


def test_schema_comes_from_signature_and_docstring() -> None:
    function = Tool.from_function(history).schema()["function"]

    assert function["name"] == "history"
    assert function["description"] == "Price history of one share.\n\nClosing prices only."
    parameters = function["parameters"]
    assert parameters["required"] == ["ticker"]
    assert parameters["additionalProperties"] is False
    props = parameters["properties"]
    assert list(props) == ["ticker", "days", "interval", "note"]  # ctx is not the model's
    assert props["ticker"] == {"type": "string", "description": "Symbol, e.g. AAPL."}
    assert props["days"]["description"] == "How many days back, counted in calendar days."
    assert (props["days"]["minimum"], props["days"]["maximum"]) == (1, 365)
    assert props["interval"]["enum"] == ["1d", "1wk"]


async def test_call_validates_and_passes_the_context() -> None:
    tool = Tool.from_function(history)
    context = ToolContext(user_id="U1")

    assert await tool.call(context, '{"ticker": "AAPL", "days": "7"}') == {
        "ticker": "AAPL",
        "days": 7,
        "user": "U1",
    }
    for bad, message in [
        ({"days": 7}, "ticker: Field required"),
        ({"ticker": "A", "days": 0}, "days: Input should be greater than or equal to 1"),
        ({"ticker": "A", "interval": "1h"}, "interval: Input should be '1d' or '1wk'"),
        ({"ticker": "A", "user_id": "U2"}, "user_id: Extra inputs are not permitted"),
        ("[1, 2]", "arguments must be a JSON object"),
        ("{oops", "arguments are not valid JSON"),
    ]:
        with pytest.raises(ToolError, match=message.replace("(", r"\(")):
            await tool.call(context, bad)


def test_only_async_functions_are_tools_and_names_are_unique() -> None:
    def sync_tool() -> None:
        """Not async."""

    with pytest.raises(TypeError, match="must be an async function"):
        Tool.from_function(sync_tool)  # type: ignore[arg-type]
    tool = Tool.from_function(history)
    registry = ToolRegistry([tool])
    with pytest.raises(ValueError, match="already registered"):
        registry.add(tool)
    assert registry.names() == ["history"]
    assert "history" in registry
    assert registry.get("missing") is None


def test_citation_numbers_are_stable_within_a_run() -> None:
    book = CitationBook()
    doc = uuid.uuid4()
    first = Citation(doc, "Handbook", "handbook.md", "hr", 3, "Leave", "…")
    again = Citation(doc, "Handbook", "handbook.md", "hr", 3, "Leave", "other snippet")
    other = Citation(doc, "Handbook", "handbook.md", "hr", 4, "Travel", "…")

    assert [book.cite(first), book.cite(other), book.cite(again)] == [1, 2, 1]
    assert book.get(2) is other
    assert book.get(0) is None
    assert book.get(3) is None


def test_prompts_from_text_yaml_and_bad_files(tmp_path: Path) -> None:
    assert load_prompts(None).for_channel("C1") == SYSTEM_PROMPT
    text = tmp_path / "prompt.txt"
    text.write_text("Answer like a pirate.\n", encoding="utf-8")
    assert load_prompts(text).for_channel(None) == "Answer like a pirate."
    mapping = tmp_path / "prompts.yaml"
    mapping.write_text("channels:\n  C1: HR questions only.\n", encoding="utf-8")
    prompts = load_prompts(mapping)
    assert prompts.for_channel("C1") == "HR questions only."
    assert prompts.for_channel("C2") == SYSTEM_PROMPT

    for name, content, message in [
        ("empty.txt", "  ", "is empty"),
        ("bad.yaml", "channels: [", "is not valid YAML"),
        ("list.yaml", "- a", "must be a mapping"),
        ("typo.yaml", "chanels: {}", "must be a mapping"),
        ("blank.yaml", "channels:\n  C1: ''", "'channels' must map channel ids"),
    ]:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_prompts(path)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_prompts(tmp_path / "missing.txt")
