"""Discord answer messages: parts, sources embed, feedback buttons, progress placeholder."""

from __future__ import annotations

import uuid

import pytest

from bot.discord.format import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    MESSAGE_LIMIT,
    DiscordMessage,
    answer_messages,
    feedback_components,
    parse_feedback,
    progress_message,
    sources_embed,
    split_markdown,
)
from bot.rendering import Source
from tests.test_discord_split import ZWSP, code_blocks, content, fence_lines, utf16

pytestmark = pytest.mark.unit

RUN = "0b7e4c1a-9d2f-4c3e-8a5b-6f1d2e3c4b5a"

LLM_ANSWER = """# 휴가 정책 요약 (Leave policy)

연차는 **입사일 기준**으로 부여됩니다.
See the [HR handbook](https://hr.example.com/handbook?lang=ko&v=2) for details [1].

#### Key points

- Annual leave: *15 days* in the first year
- Carry-over:
  - up to 5 days

| 구분 | 일수 | 비고 |
|------|-----:|------|
| 연차 | 15 | 1년 차 |
| 병가 | 10 | 진단서 필요 |

```python
def days_left(used: int) -> int:
    return 15 - used  # **not bold** @everyone
```

Questions? Ask @here in #hr-help.
"""

# --- DiscordMessage ---------------------------------------------------------------------


def test_to_json_always_sends_embeds_components_and_no_mentions() -> None:
    assert DiscordMessage("hi").to_json() == {
        "content": "hi",
        "embeds": [],
        "components": [],
        "allowed_mentions": {"parse": []},
    }
    embed = {"title": "t", "description": "d"}
    body = DiscordMessage("x", (embed,), tuple(feedback_components(RUN))).to_json()
    assert body["embeds"] == [embed]
    assert body["components"] == feedback_components(RUN)


# --- answer_messages --------------------------------------------------------------------


def sources(count: int) -> list[Source]:
    return [
        Source(i, f"Handbook part {i}", f"https://hr.example.com/{i}", page=i, section="Leave")
        for i in range(1, count + 1)
    ]


def test_answer_message_has_content_sources_embed_and_buttons() -> None:
    (message,) = answer_messages(LLM_ANSWER, sources(2), run_id=RUN)
    assert message.content.startswith("# 휴가 정책 요약 (Leave policy)\n\n연차는 **입사일 기준**")
    assert "[HR handbook](https://hr.example.com/handbook?lang=ko&v=2)" in message.content
    assert "**Key points**\n\n- Annual leave: *15 days*" in message.content
    table, code = code_blocks(message.content)
    assert table[1].split("\n")[2] == "연차 |   15 | 1년 차"
    assert code == (
        "python",
        "def days_left(used: int) -> int:\n    return 15 - used  # **not bold** @everyone",
    )
    assert f"Ask @{ZWSP}here" in message.content
    (embed,) = message.embeds
    assert embed["title"] == "출처"
    assert embed["description"].split("\n")[0] == (
        "[1] [Handbook part 1](https://hr.example.com/1) · p. 1 · Leave"
    )
    assert message.components == tuple(feedback_components(RUN))


def test_english_answer_titles_its_sources_in_english() -> None:
    (message,) = answer_messages("Leave is 15 days [1].", sources(1), run_id=None)
    assert message.embeds[0]["title"] == "Sources"
    assert message.components == ()


def test_long_answer_gives_several_messages_with_sources_and_buttons_on_the_last() -> None:
    markdown = "\n\n".join([LLM_ANSWER] * 30)
    messages = answer_messages(markdown, sources(3), run_id=RUN)
    assert len(messages) >= 4
    for message in messages:
        assert 0 < utf16(message.content) <= MESSAGE_LIMIT
        assert fence_lines(message.content) % 2 == 0
    assert all(not m.embeds and not m.components for m in messages[:-1])
    assert messages[-1].embeds and messages[-1].components
    assert content(*(m.content for m in messages)) == content(
        split_markdown(markdown, limit=10**6)[0]
    )


def test_empty_answer_is_still_one_message() -> None:
    (alone,) = answer_messages("", [], run_id=None)
    assert alone.content == "…"
    (with_sources,) = answer_messages("  ", sources(1), run_id=RUN)
    assert with_sources.content == "" and with_sources.embeds and with_sources.components


def test_run_id_that_is_not_a_uuid_is_rejected() -> None:
    with pytest.raises(ValueError, match="UUID"):
        answer_messages("Answer", [], run_id="run-42")


# --- sources_embed ----------------------------------------------------------------------


def test_source_without_url_is_escaped_plain_text_with_details() -> None:
    source = Source(3, "Q&A *draft* [v2] <@1> @everyone", None, section="부록 A")
    assert sources_embed([source])["description"] == (
        f"[3] Q&A \\*draft\\* \\[v2\\] \\<{ZWSP}@1\\> @{ZWSP}everyone · 부록 A"
    )


def test_source_link_url_is_encoded_and_an_address_title_is_shown_bare() -> None:
    linked = Source(1, "Guide (v2)", "https://ex.com/a b(1)", page=2)
    assert sources_embed([linked])["description"] == (
        "[1] [Guide (v2)](https://ex.com/a%20b%281%29) · p. 2"
    )
    bare = Source(2, "https://ex.com/doc", "https://ex.com/doc")
    assert sources_embed([bare])["description"] == "[2] https://ex.com/doc"
    not_web = Source(4, "Notes", "file:///etc/x")
    assert sources_embed([not_web])["description"] == "[4] Notes"


def test_sources_embed_stays_within_discord_limits() -> None:
    many = [
        Source(i, "제목 " * 200, f"https://ex.com/{i}", page=i, section="절 " * 100)
        for i in range(1, 301)
    ]
    embed = sources_embed(many, title="T" * 300)
    description = embed["description"]
    assert utf16(embed["title"]) <= EMBED_TITLE_LIMIT and embed["title"].endswith("…")
    assert utf16(description) <= EMBED_DESCRIPTION_LIMIT
    assert utf16(embed["title"]) + utf16(description) <= EMBED_TOTAL_LIMIT
    *lines, more = description.split("\n")
    assert lines and all(line.startswith(f"[{i}] [제목") for i, line in enumerate(lines, 1))
    assert more == f"… +{300 - len(lines)}"


def test_sources_that_fit_are_all_listed() -> None:
    description = sources_embed(sources(20))["description"]
    assert len(description.split("\n")) == 20
    assert "…" not in description


# --- feedback ---------------------------------------------------------------------------


def test_feedback_buttons_carry_the_run() -> None:
    assert feedback_components(RUN) == [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": 2,
                    "emoji": {"name": "👍"},
                    "custom_id": f"deskbot:feedback:up:{RUN}",
                },
                {
                    "type": 2,
                    "style": 2,
                    "emoji": {"name": "👎"},
                    "custom_id": f"deskbot:feedback:down:{RUN}",
                },
            ],
        }
    ]
    buttons = feedback_components(RUN)[0]["components"]
    assert all(len(button["custom_id"]) <= 100 for button in buttons)
    assert [parse_feedback(button["custom_id"]) for button in buttons] == [
        (1, uuid.UUID(RUN)),
        (-1, uuid.UUID(RUN)),
    ]


@pytest.mark.parametrize(
    "custom_id",
    [
        "",
        "deskbot:feedback:",
        f"deskbot:feedback:sideways:{RUN}",
        "deskbot:feedback:up:not-a-uuid",
        f"other:feedback:up:{RUN}",
        f"deskbot_feedback_up:{RUN}",
    ],
)
def test_parse_feedback_ignores_other_ids(custom_id: str) -> None:
    assert parse_feedback(custom_id) is None


# --- progress_message -------------------------------------------------------------------


def test_progress_without_text_is_the_status_alone() -> None:
    message = progress_message("*Searching documents…*")
    assert message.to_json() == {
        "content": "*Searching documents…*",
        "embeds": [],
        "components": [],
        "allowed_mentions": {"parse": []},
    }


def test_progress_shows_text_so_far_under_the_status() -> None:
    message = progress_message("*Writing…* @everyone", "# 요약\n**중요**: 연차는 15일")
    assert message.content == f"*Writing…* @{ZWSP}everyone\n\n# 요약\n**중요**: 연차는 15일"


def test_progress_closes_an_open_code_block() -> None:
    message = progress_message("*Writing…*", "Run:\n```sh\nmake ins")
    assert message.content == "*Writing…*\n\nRun:\n```sh\nmake ins\n```"


def test_progress_cuts_long_text_with_an_ellipsis() -> None:
    text = progress_message("*Writing…*", "긴 문장입니다. " * 800).content
    assert utf16(text) <= MESSAGE_LIMIT
    assert text.startswith("*Writing…*\n\n긴 문장입니다.") and text.endswith("…")


def test_progress_cut_inside_a_code_block_keeps_it_closed() -> None:
    partial = "```py\n" + "\n".join(f"line_{i} = {i}" for i in range(1000))
    text = progress_message("Working", partial).content
    assert utf16(text) <= MESSAGE_LIMIT
    assert fence_lines(text) == 2
    assert text.endswith("\n```\n…")


def test_progress_status_is_one_short_line() -> None:
    text = progress_message("a\nb " + "x" * 500).content
    assert "\n" not in text and utf16(text) <= 200 and text.endswith("…")
