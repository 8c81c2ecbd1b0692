"""Sources drawn from one model on every surface: plain text, the terminal, Slack."""

from __future__ import annotations

import uuid

import pytest
from rich.console import Console

from bot.agent.loop import Answer
from bot.ingesting import IngestSummary
from bot.rendering import Source, ranked_sources, source_line, sources_of
from bot.schema import RunStatus
from bot.slack.admin import summary as slack_summary
from bot.slack.format import answer_messages
from bot.terminal import finish_answer
from knowledge.ingest import FileResult
from knowledge.search import Citation, SearchResult

pytestmark = pytest.mark.unit


def citation(
    title: str, source: str, *, page: int | None = None, section: str | None = None
) -> Citation:
    return Citation(uuid.uuid4(), title, source, "handbook", page, section, "snippet")


def test_a_source_holds_title_page_section_and_location_once() -> None:
    paper = citation("Leave policy", "docs/leave.pdf", page=3, section="Annual leave")
    untitled = citation("", "notes/vpn.md", page=0, section="notes/vpn.md")
    web = citation("Handbook", "https://hr.example.com/h", section="Handbook")
    assert sources_of([(1, paper), (2, untitled), (4, web)]) == [
        Source(1, "Leave policy", None, 3, "Annual leave", "docs/leave.pdf"),
        Source(2, "notes/vpn.md"),  # no page 0, no title repeated as section or location
        Source(4, "Handbook", "https://hr.example.com/h", location="https://hr.example.com/h"),
    ]


def test_plain_text_line() -> None:
    paper = citation("Leave policy", "docs/leave.pdf", page=3, section="Annual leave")
    (source,) = sources_of([(2, paper)])
    assert source_line(source) == "[2] Leave policy · p. 3 · Annual leave · docs/leave.pdf"


def test_search_results_are_numbered_by_rank() -> None:
    results = [
        SearchResult(f"c{i}", "text", "content", 1.0 - i / 10, citation(f"Doc {i}", f"d{i}.md"))
        for i in range(3)
    ]
    assert [source_line(s) for s in ranked_sources(results)] == [
        "[1] Doc 0 · d0.md",
        "[2] Doc 1 · d1.md",
        "[3] Doc 2 · d2.md",
    ]


def _answer(text: str, *, completed: bool = True) -> Answer:
    cited = [(1, citation("Travel [policy]", "travel.md", page=2))]
    status: RunStatus = "completed" if completed else "failed"
    return Answer(uuid.uuid4(), uuid.uuid4(), status, text, citations=cited)


def test_terminal_prints_the_same_line_without_reading_markup() -> None:
    console = Console(record=True, width=200)
    answer = _answer("Tokyo: 180 USD [1].")
    finish_answer(console, answer, "Tokyo: 180 USD [1].", indent="  ")
    shown = console.export_text()
    assert shown.count("Tokyo: 180 USD") == 0  # streamed already, not printed twice
    assert "  [1] Travel [policy] · p. 2 · travel.md" in shown


def test_terminal_prints_an_answer_that_was_not_streamed() -> None:
    console = Console(record=True, width=200)
    finish_answer(console, _answer("The run reached its step limit.", completed=False), "")
    assert "The run reached its step limit." in console.export_text()


def test_slack_links_the_title_and_keeps_the_labels() -> None:
    web = citation("Handbook", "https://hr.example.com/h", page=4, section="Travel")
    (message,) = answer_messages("Answer [1].", sources_of([(1, web)]), run_id=None)
    line = message.blocks[-1]["elements"][0]["text"]
    assert line == "[1] <https://hr.example.com/h|Handbook> · p. 4 · Travel"


def test_slack_upload_report_groups_refusals_by_reason() -> None:
    files = (
        FileResult("a/handbook.md", "stored", chunks=4, tables=1),
        FileResult("a/old.md", "unchanged"),
        FileResult("a/x.exe", "refused", reason="unsupported", detail="unsupported file type .exe"),
        FileResult("big.pdf", "refused", reason="too_large", detail="over 50 MB"),
    )
    report = slack_summary(IngestSummary("general", files))
    assert report.splitlines() == [
        "*Documents added to `general`*",
        "• :white_check_mark: handbook.md: 4 chunks, 1 tables",
        "• :white_circle: old.md: unchanged",
        "• :x: x.exe: unsupported file type .exe",
        "• :x: big.pdf: over 50 MB",
        "1 stored, 1 unchanged, 2 refused (1 unsupported, 1 too large)",
    ]
