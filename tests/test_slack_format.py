"""Markdown to Slack mrkdwn, splitting to Block Kit limits, answer and progress messages."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest

from bot.rendering import Source
from bot.slack.format import (
    MESSAGE_TEXT_LIMIT,
    SlackMessage,
    answer_messages,
    plain_text,
    progress_message,
    split_text,
    to_mrkdwn,
)
from tests.fakes.slack_api import blocks_text_size

pytestmark = pytest.mark.unit

FENCE = "```"
ZWSP = "\u200b"

LLM_ANSWER = """# 휴가 정책 요약 (Leave policy)

연차는 **입사일 기준**으로 부여됩니다.
See the [HR handbook | 2024](https://hr.example.com/handbook?lang=ko&v=2) for details [1].

## Key points

- Annual leave: *15 days* in the first year
- Carry-over:
  - up to 5 days
  - must be used by **March 31**
- Sick leave needs a doctor's note & manager approval

1. Submit the request in the portal
2. Wait for approval

> 주의: 반차는 오전/오후로만 신청할 수 있습니다.

| 구분 | 일수 | 비고 |
|------|-----:|------|
| 연차 | 15 | 1년 차 |
| 병가 | 10 | 진단서 필요 |

```python
def days_left(used: int) -> int:
    return 15 - used  # **not bold** & <not a tag>
```

Questions? Ask in #hr-help ~~or email~~.
"""


def display_width(text: str) -> int:
    """Display columns, computed independently of the module under test."""
    return sum(
        2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        for char in text
        if not unicodedata.combining(char)
    )


def code_blocks(mrkdwn: str) -> list[str]:
    return re.findall(r"```\n(.*?)\n```", mrkdwn, re.DOTALL)


def links(mrkdwn: str) -> list[str]:
    return re.findall(r"<[^<>]*>", mrkdwn)


def content(*texts: str) -> str:
    """Text without whitespace and code fences: what splitting must preserve."""
    return re.sub(r"\s+|```", "", "".join(texts))


# --- to_mrkdwn: inline ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("a **bold** b", "a *bold* b"),
        ("a __bold__ b", "a *bold* b"),
        ("a *italic* b", "a _italic_ b"),
        ("a _italic_ b", "a _italic_ b"),
        ("a ~~gone~~ b", "a ~gone~ b"),
        ("***both***", "_*both*_"),
        ("**bold with _italic_ inside**", "*bold with _italic_ inside*"),
    ],
)
def test_emphasis_becomes_slack_markers(markdown: str, expected: str) -> None:
    assert to_mrkdwn(markdown) == expected


def test_marker_next_to_hangul_gets_an_invisible_boundary() -> None:
    # Slack ignores "*중요*합니다" (no word boundary after the closing marker).
    assert to_mrkdwn("**중요**합니다") == f"*중요*{ZWSP}합니다"
    assert to_mrkdwn("이것은**중요**") == f"이것은{ZWSP}*중요*"
    assert to_mrkdwn("**중요**. 끝") == "*중요*. 끝"


def test_link_becomes_angle_link_with_pipe_and_gt_in_text_escaped() -> None:
    out = to_mrkdwn("See [a|b > c](https://ex.com/p?q=1&r=2) now")
    assert out == "See <https://ex.com/p?q=1&amp;r=2|a∣b &gt; c> now"
    assert out.count("|") == 1


def test_link_url_cannot_end_the_link_early() -> None:
    out = to_mrkdwn("[x](<https://ex.com/a|b>)")
    assert links(out) == ["<https://ex.com/a%7Cb|x>"]


def test_autolink_and_bare_url_are_kept() -> None:
    assert to_mrkdwn("<https://ex.com/a>") == "<https://ex.com/a>"
    assert to_mrkdwn("go to https://ex.com/a?b=1&c=2 now") == (
        "go to https://ex.com/a?b=1&amp;c=2 now"
    )


def test_image_becomes_link_to_image() -> None:
    assert to_mrkdwn("![chart](https://ex.com/c.png)") == "<https://ex.com/c.png|chart>"


def test_special_characters_are_escaped_outside_generated_links() -> None:
    out = to_mrkdwn("3 < 4 & 5 > 2, <!channel> <@U123>")
    assert out == "3 &lt; 4 &amp; 5 &gt; 2, &lt;!channel&gt; &lt;@U123&gt;"


def test_entities_in_markdown_are_not_double_escaped_wrongly() -> None:
    assert to_mrkdwn("AT&amp;T") == "AT&amp;T"


def test_citation_markers_are_left_alone() -> None:
    assert to_mrkdwn("Leave is 15 days [1][2]. See also [3].") == (
        "Leave is 15 days [1][2]. See also [3]."
    )


def test_inline_code_is_verbatim_except_slack_escapes() -> None:
    out = to_mrkdwn("Run `**x** <y> & _z_ [a](b)` now")
    assert out == "Run `**x** &lt;y&gt; &amp; _z_ [a](b)` now"


def test_korean_text_passes_through_unchanged() -> None:
    text = "안녕하세요. 회의실 예약은 3층 데스크에서 합니다! 문의: 인사팀 (내선 1234)"
    assert to_mrkdwn(text) == text
    decomposed = unicodedata.normalize("NFD", "한글 파일명")
    assert to_mrkdwn(decomposed) == decomposed


# --- to_mrkdwn: blocks ------------------------------------------------------------------


@pytest.mark.parametrize("level", range(1, 7))
def test_heading_of_any_level_becomes_bold_line(level: int) -> None:
    out = to_mrkdwn(f"{'#' * level} Getting **started**\nBody text")
    assert out == "*Getting started*\nBody text"


def test_bullet_lists_nest_with_indentation() -> None:
    markdown = "- one\n* two\n  - nested *x*\n    + deeper\n- three"
    assert to_mrkdwn(markdown).split("\n") == [
        "• one",
        "• two",
        "    ◦ nested _x_",
        "        ▪ deeper",
        "• three",
    ]


def test_ordered_list_keeps_numbers_and_start() -> None:
    assert to_mrkdwn("3. c\n4. d\n   - sub") == "3. c\n4. d\n    ◦ sub"


def test_list_item_continuation_lines_hang_under_the_text() -> None:
    assert to_mrkdwn("- first line\n  second line") == "• first line\n  second line"


def test_fenced_code_is_verbatim_with_only_slack_escapes() -> None:
    markdown = "```python\nif a < b and c:\n    print('**no** _markup_ [x](y)')\n```"
    assert to_mrkdwn(markdown) == (
        "```\nif a &lt; b and c:\n    print('**no** _markup_ [x](y)')\n```"
    )


def test_blockquote_keeps_quote_marker_on_every_line() -> None:
    assert to_mrkdwn("> quoted **b**\n> line 2\n>\n> para") == ("> quoted *b*\n> line 2\n>\n> para")


def test_small_table_becomes_aligned_code_block() -> None:
    markdown = "| Name | Qty | Note |\n|:--|--:|:-:|\n| apple | 3 | ok |\n| kiwi | 12 | fresh |"
    (block,) = code_blocks(to_mrkdwn(markdown))
    assert block.split("\n") == [
        "Name  | Qty | Note",
        "------+-----+------",
        "apple |   3 |  ok",
        "kiwi  |  12 | fresh",
    ]


def test_korean_table_aligns_by_display_width() -> None:
    markdown = "| 이름 | 부서 | 내선 |\n|---|---|--:|\n| 김철수 | 인사팀 | 1234 |\n| Bob | IT | 9 |"
    (block,) = code_blocks(to_mrkdwn(markdown))
    lines = block.split("\n")
    separators = [
        [display_width(line[: m.start()]) for m in re.finditer(r"[ -][|+][ -]", line)]
        for line in lines
    ]
    assert all(columns == separators[0] for columns in separators)
    assert len(separators[0]) == 2
    assert lines[2].startswith("김철수 | 인사팀 | ")
    assert display_width(lines[2]) == display_width(lines[3].rstrip()) == display_width(lines[0])


def test_wide_table_becomes_header_value_groups() -> None:
    markdown = (
        "| Product name | Description | Price |\n|---|---|---|\n"
        "| Deskbot Pro | A **team** chatbot for Slack and Discord in two languages | $10 |\n"
        "| 데스크봇 | 한국어와 영어로 답하는 팀 챗봇입니다, 문서 검색과 SQL 지원 | 만원 |"
    )
    out = to_mrkdwn(markdown)
    assert FENCE not in out
    assert out.split("\n\n") == [
        "*Product name:* Deskbot Pro\n"
        "*Description:* A *team* chatbot for Slack and Discord in two languages\n"
        "*Price:* $10",
        "*Product name:* 데스크봇\n"
        "*Description:* 한국어와 영어로 답하는 팀 챗봇입니다, 문서 검색과 SQL 지원\n"
        "*Price:* 만원",
    ]


def test_korean_table_switches_mode_on_display_width_not_length() -> None:
    # 32 characters of Hangul per row are 64 columns: over 60, though only 35 characters.
    cell = "가" * 16
    markdown = f"| 열 | 값 |\n|---|---|\n| {cell} | {cell} |"
    assert len(cell) * 2 + 3 < 60 < display_width(cell) * 2 + 3
    assert FENCE not in to_mrkdwn(markdown)
    assert FENCE in to_mrkdwn(markdown, table_width=80)


def test_table_cells_are_escaped_in_code_block() -> None:
    (block,) = code_blocks(to_mrkdwn("| a |\n|---|\n| x < y & z |"))
    assert "x &lt; y &amp; z" in block


def test_realistic_answer_converts_every_construct() -> None:
    out = to_mrkdwn(LLM_ANSWER)
    assert out.startswith("*휴가 정책 요약 (Leave policy)*\n연차는 *입사일 기준*")
    assert "<https://hr.example.com/handbook?lang=ko&amp;v=2|HR handbook ∣ 2024>" in out
    assert "[1]" in out
    assert "*Key points*\n• Annual leave: _15 days_ in the first year" in out
    assert "    ◦ must be used by *March 31*" in out
    assert "doctor's note &amp; manager approval" in out
    assert "1. Submit the request in the portal\n2. Wait for approval" in out
    assert "> 주의: 반차는 오전/오후로만 신청할 수 있습니다." in out
    table, code = code_blocks(out)
    assert table.split("\n")[2] == "연차 |   15 | 1년 차"
    assert "**not bold** &amp; &lt;not a tag&gt;" in code
    assert "~or email~" in out
    assert not [line for line in out.split("\n") if line.startswith("#")]
    assert "**" not in out.replace(code, "")


# --- plain_text -------------------------------------------------------------------------


def test_plain_text_strips_markup() -> None:
    mrkdwn = to_mrkdwn(
        "# Title\n\n**중요**합니다 and _it_ and ~~s~~ [docs](https://ex.com) `a<b`\n\n> q"
    )
    assert plain_text(mrkdwn) == "Title\n중요합니다 and it and s docs a<b\n\nq"


def test_plain_text_keeps_code_block_content() -> None:
    assert plain_text("```\nx = 1 &amp; *y*\n```") == "x = 1 & *y*"


# --- split_text -------------------------------------------------------------------------


def test_short_text_is_one_chunk() -> None:
    assert split_text("hello\n\nworld") == ["hello\n\nworld"]
    assert split_text("") == []


def test_prefers_paragraph_breaks() -> None:
    first, second = "a" * 60 + ". " + "b" * 30, "c" * 80
    assert split_text(f"{first}\n\n{second}", limit=120) == [first, second]


def test_then_line_breaks_then_sentences_then_spaces() -> None:
    assert split_text("x" * 70 + "\n" + "y" * 70, limit=100) == ["x" * 70, "y" * 70]
    sentence = "첫 번째 문장입니다. 두 번째 문장입니다 그리고 계속됩니다"
    assert split_text(sentence, limit=30) == [
        "첫 번째 문장입니다.",
        "두 번째 문장입니다 그리고 계속됩니다",
    ]
    words = "word " * 30
    assert all(not chunk.endswith("wor") for chunk in split_text(words, limit=40))


def test_hard_cut_when_nothing_else_fits() -> None:
    assert split_text("x" * 250, limit=100) == ["x" * 100, "x" * 100, "x" * 50]


def test_never_splits_a_link() -> None:
    link = "<https://ex.com/a/very/long/path|a label with several words>"
    text = " ".join(["intro words here"] + [link] * 12)
    chunks = split_text(text, limit=150)
    for chunk in chunks:
        assert len(chunk) <= 150
        assert chunk.count("<") == chunk.count(">")
        assert all(found == link for found in links(chunk))
    assert sum(len(links(chunk)) for chunk in chunks) == 12


def test_never_splits_an_entity_or_a_combining_sequence() -> None:
    text = ("&amp;" * 7 + "e\u0301" * 7 + "👍🏽") * 20
    for limit in range(16, 40):
        chunks = split_text(text, limit=limit)
        assert "".join(chunks) == text
        for chunk in chunks:
            assert len(chunk) <= limit
            assert not unicodedata.combining(chunk[0])
            assert chunk[0] != "\U0001f3fd"
            assert re.sub(r"&amp;", "", chunk).count("&") == 0


def test_code_block_is_closed_and_reopened_across_chunks() -> None:
    code = "\n".join(f"row_{i} = compute({i}) &amp; check" for i in range(60))
    text = f"Intro text.\n\n```\n{code}\n```\n\nOutro text."
    chunks = split_text(text, limit=300)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk) <= 300
        assert chunk.count(FENCE) % 2 == 0
    assert chunks[0].startswith("Intro text.")
    assert chunks[-1].endswith("Outro text.")
    for chunk in chunks[1:-1]:
        assert chunk.startswith(FENCE + "\nrow_")
        assert chunk.endswith(" check\n" + FENCE)
    assert content(*chunks) == content(text)


def test_fence_closer_right_after_a_cut_is_not_reopened_empty() -> None:
    text = "```\n" + "a" * 20 + "\n" + "b" * 20 + "\n```\nafter"
    # The cut falls before the closing fence: it moves up instead of leaving "```\n```".
    assert split_text(text, limit=len(text) - 3) == [text.removesuffix("\nafter"), "after"]


def test_bold_span_is_kept_whole_when_possible() -> None:
    text = "lead words " * 5 + "*bold words that go together*" + " tail" * 10
    for chunk in split_text(text, limit=70):
        assert chunk.count("*") % 2 == 0


def test_limit_too_small_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least"):
        split_text("text", limit=5)


def test_long_realistic_answer_splits_within_limits_and_keeps_content() -> None:
    text = to_mrkdwn("\n\n".join([LLM_ANSWER] * 12))
    chunks = split_text(text, limit=3000)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert len(chunk) <= 3000
        assert chunk.count(FENCE) % 2 == 0
        assert all(link.count("|") <= 1 for link in links(chunk))
    assert content(*chunks) == content(text)


# --- answer_messages --------------------------------------------------------------------


def sources(count: int) -> list[Source]:
    return [
        Source(i, f"Handbook part {i}", f"https://hr.example.com/{i}", page=i, section="Leave")
        for i in range(1, count + 1)
    ]


def blocks_of(message: SlackMessage, kind: str) -> list[dict[str, Any]]:
    return [block for block in message.blocks if block["type"] == kind]


def test_answer_message_has_sections_sources_and_feedback() -> None:
    (message,) = answer_messages(LLM_ANSWER, sources(2), run_id="run-42")
    kinds = [block["type"] for block in message.blocks]
    assert kinds == ["section", "context", "actions"]
    assert message.blocks[0]["text"] == {"type": "mrkdwn", "text": to_mrkdwn(LLM_ANSWER)}
    elements = message.blocks[1]["elements"]
    assert elements[0] == {
        "type": "mrkdwn",
        "text": "[1] <https://hr.example.com/1|Handbook part 1> · p. 1 · Leave",
    }
    actions = message.blocks[2]
    assert actions["block_id"] == "deskbot_feedback"
    assert [(b["action_id"], b["value"], b["text"]["text"]) for b in actions["elements"]] == [
        ("deskbot_feedback_up", "run-42", "👍"),
        ("deskbot_feedback_down", "run-42", "👎"),
    ]
    assert all(len(b["text"]["text"]) <= 75 for b in actions["elements"])
    assert message.text.startswith("휴가 정책 요약 (Leave policy)\n연차는 입사일 기준으로")
    assert "**입사일" not in message.text


def test_source_without_url_or_page_shows_title_escaped() -> None:
    source = Source(3, "Q&A <draft>", None, section="부록 A")
    (message,) = answer_messages("답변", [source], run_id=None)
    assert message.blocks[-1]["elements"][0]["text"] == "[3] Q&amp;A &lt;draft&gt; · 부록 A"


def test_no_run_id_means_no_buttons() -> None:
    (message,) = answer_messages("Answer", [], run_id=None)
    assert [block["type"] for block in message.blocks] == ["section"]


def test_notice_is_a_context_block_at_the_top() -> None:
    (message,) = answer_messages(
        "Answer", sources(1), run_id="r", notice="Retrieval-only answer & no model"
    )
    assert message.blocks[0] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "Retrieval-only answer &amp; no model"}],
    }
    assert message.text.startswith("Retrieval-only answer &amp; no model\nAnswer")


def test_many_sources_use_several_context_blocks_of_at_most_ten() -> None:
    (message,) = answer_messages("Answer", sources(23), run_id="r")
    contexts = blocks_of(message, "context")
    assert [len(block["elements"]) for block in contexts] == [10, 10, 3]


def test_long_answer_gives_several_messages_within_limits() -> None:
    markdown = "\n\n".join([LLM_ANSWER] * 250)
    messages = answer_messages(markdown, sources(15), run_id="run-7", notice="Notice")
    assert len(messages) >= 2
    for message in messages:
        assert 0 < len(message.blocks) <= 50
        assert 0 < len(message.text) <= 3000
        assert blocks_text_size(message.blocks) <= MESSAGE_TEXT_LIMIT
        for block in blocks_of(message, "section"):
            assert len(block["text"]["text"]) <= 3000
            assert block["text"]["text"].count(FENCE) % 2 == 0
        for block in blocks_of(message, "context"):
            assert len(block["elements"]) <= 10
    for message in messages[:-1]:
        assert not blocks_of(message, "actions")
        assert all(b["type"] == "section" for b in message.blocks[1:])
    last = messages[-1]
    assert last.blocks[-1]["type"] == "actions"
    assert [b["value"] for b in last.blocks[-1]["elements"]] == ["run-7", "run-7"]
    assert sum(len(b["elements"]) for b in blocks_of(last, "context")) == 15
    sections = [b["text"]["text"] for m in messages for b in blocks_of(m, "section")]
    assert content(*sections) == content(to_mrkdwn(markdown))


def test_few_long_sections_are_split_by_the_message_text_budget_not_the_block_count() -> None:
    """Slack refuses ~12,000 characters of blocks in one message, far below 50 full sections."""
    paragraphs = [f"Part {n}. " + "word " * 560 for n in range(8)]  # ~2,800 characters each

    messages = answer_messages("\n\n".join(paragraphs), sources(3), run_id="r")

    assert len(messages) == 3  # 3 + 3 + 2 sections, where 50 blocks would allow one message
    assert all(blocks_text_size(m.blocks) <= MESSAGE_TEXT_LIMIT < 12_000 for m in messages)
    assert [len(blocks_of(m, "section")) for m in messages] == [3, 3, 2]
    assert blocks_of(messages[-1], "actions") and len(blocks_of(messages[-1], "context")) == 1


def test_sources_with_long_links_spread_over_messages_within_the_budget() -> None:
    long = [
        Source(n, f"Report {n}", url=f"https://example.com/{'x' * 1800}/{n}") for n in range(1, 11)
    ]

    messages = answer_messages("Answer [1].", long, run_id="r")

    assert len(messages) >= 2
    assert all(blocks_text_size(m.blocks) <= MESSAGE_TEXT_LIMIT for m in messages)
    assert blocks_of(messages[-1], "actions")
    shown = "".join(
        e["text"] for m in messages for b in blocks_of(m, "context") for e in b["elements"]
    )
    assert all(f"/{n}|Report {n}>" in shown for n in range(1, 11))


def test_empty_run_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="run_id"):
        answer_messages("Answer", [], run_id="")


# --- progress_message -------------------------------------------------------------------


def test_progress_without_partial_text_is_only_the_status() -> None:
    message = progress_message(":mag: Searching documents…")
    assert message.blocks == [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": ":mag: Searching documents…"}]}
    ]
    assert message.text == ":mag: Searching documents…"


def test_progress_shows_partial_answer_as_mrkdwn() -> None:
    message = progress_message(":pencil: Writing…", "# 요약\n**중요**: 연차는 15일")
    assert message.blocks[1] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*요약*\n*중요*: 연차는 15일"},
    }


def test_progress_truncates_long_partial_text_with_ellipsis() -> None:
    message = progress_message(":pencil: Writing…", "긴 문장입니다. " * 800)
    text = message.blocks[1]["text"]["text"]
    assert len(text) <= 3000
    assert text.endswith("…")
    assert len(message.text) <= 3000


def test_progress_truncation_keeps_code_block_closed() -> None:
    partial = "```\n" + "\n".join(f"line {i}" for i in range(1000))
    text = progress_message("Working", partial).blocks[1]["text"]["text"]
    assert len(text) <= 3000
    assert text.count(FENCE) == 2
    assert text.endswith("```\n…")
