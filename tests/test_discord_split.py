"""Discord Markdown split to a message's limit: boundaries, code blocks, tables, mentions."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from bot.discord.split import MESSAGE_LIMIT, split_markdown

pytestmark = pytest.mark.unit

FENCE = "```"
ZWSP = "\u200b"


def utf16(text: str) -> int:
    """Length as Discord's JavaScript clients count it, computed independently."""
    return len(text.encode("utf-16-le")) // 2


def display_width(text: str) -> int:
    return sum(
        2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        for char in text
        if not unicodedata.combining(char) and char != ZWSP
    )


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block."""
    return re.findall(r"```(\w*)\n(.*?)\n```", text, re.DOTALL)


def fence_lines(part: str) -> int:
    return sum(1 for line in part.split("\n") if line.lstrip(" >").startswith(FENCE))


def content(*texts: str) -> str:
    """What splitting must keep: text without whitespace, fence lines and zero-width spaces."""
    kept = [
        line
        for text in texts
        for line in text.split("\n")
        if not line.lstrip(" >").startswith(FENCE)
    ]
    return re.sub(rf"\s|{ZWSP}", "", "".join(kept))


def assert_parts_fit(parts: list[str], limit: int) -> None:
    for part in parts:
        assert part.strip()
        assert len(part) <= utf16(part) <= limit
        assert fence_lines(part) % 2 == 0, part


# --- split_markdown: boundaries ---------------------------------------------------------


def test_short_text_is_one_part_and_blank_text_none() -> None:
    assert split_markdown("hello\n\nworld") == ["hello\n\nworld"]
    assert split_markdown("") == []
    assert split_markdown(" \n\n ") == []


def test_limit_too_small_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least"):
        split_markdown("text", limit=10)


def test_prefers_a_paragraph_break() -> None:
    first, second = "First one. " + "a" * 50 + ". More words here", "b" * 40
    assert split_markdown(f"{first}\n\n{second}", limit=100) == [first, second]


def test_then_a_sentence_end_english_and_korean() -> None:
    text = "The first sentence ends here. The second one goes on and on without end"
    assert split_markdown(text, limit=50) == [
        "The first sentence ends here.",
        "The second one goes on and on without end",
    ]
    korean = "첫 번째 문장은 여기서 끝납니다. 두 번째 문장이에요. 세 번째는 계속 이어지고 있고"
    assert split_markdown(korean, limit=40) == [
        "첫 번째 문장은 여기서 끝납니다. 두 번째 문장이에요.",
        "세 번째는 계속 이어지고 있고",
    ]


def test_cjk_full_stop_ends_a_sentence_without_a_space() -> None:
    text = "これは最初の文です。" * 3 + "二番目の文はとても長く続きます"
    parts = split_markdown(text, limit=35)
    assert parts[0] == "これは最初の文です。" * 3
    assert "".join(parts) == text


def test_a_numbered_item_or_abbreviation_is_not_a_sentence_end() -> None:
    text = "Follow these steps in order:\n1. Open the portal and sign in on p. 3 e.g. today"
    parts = split_markdown(text, limit=60)
    assert parts[0] == "Follow these steps in order:"
    assert parts[1].startswith("1. Open")


def test_then_a_line_end_then_a_space() -> None:
    assert split_markdown("x" * 40 + " tail\n" + "y" * 50, limit=60) == [
        "x" * 40 + " tail",
        "y" * 50,
    ]
    parts = split_markdown("word " * 40, limit=50)
    assert all(part.split(" ") == ["word"] * len(part.split(" ")) for part in parts)


def test_a_break_in_the_first_quarter_is_passed_over() -> None:
    text = "Short.\n\n" + " ".join(["words"] * 40)
    parts = split_markdown(text, limit=100)
    assert parts[0].startswith("Short.\n\nwords words")
    assert len(parts[0]) > 90


def test_hard_cut_only_when_nothing_else_fits() -> None:
    assert split_markdown("x" * 250, limit=100) == ["x" * 100, "x" * 100, "x" * 50]


def test_never_cuts_a_masked_link_inline_code_or_bold_span() -> None:
    unit = "[the HR handbook page](https://hr.example.com/a) `make run all` **keep together**"
    text = " ".join(["lead"] + [unit] * 10)
    parts = split_markdown(text, limit=120)
    for part in parts:
        assert part.count("[") == part.count("](") == part.count(")")
        assert part.count("`") % 2 == 0
        assert part.count("**") % 2 == 0
    assert content(*parts) == content(text)


def test_never_splits_a_grapheme_and_counts_emoji_as_two() -> None:
    text = (
        "e\u0301" * 5 + "👍🏽" + "👨\u200d👩\u200d👧" + unicodedata.normalize("NFD", "한글")
    ) * 30
    for limit in range(16, 60):
        parts = split_markdown(text, limit=limit)
        assert "".join(parts) == text
        for part in parts:
            assert utf16(part) <= limit
            assert not unicodedata.combining(part[0])
            assert part[0] not in "\U0001f3fd\u200d" and part[-1] != "\u200d"
            assert not 0x1160 <= ord(part[0]) <= 0x11FF


def test_a_quote_cut_mid_line_stays_quoted() -> None:
    text = "> 주의: " + "반차는 오전만 됩니다. " * 10 + "\n>\n> > " + "nested " * 12
    parts = split_markdown(text, limit=60)
    assert len(parts) > 3
    assert all(part.startswith(">") for part in parts)
    assert parts[-1].startswith("> > nested")
    assert content(*parts).replace(">", "") == content(text).replace(">", "")


def test_a_cut_never_makes_a_word_open_a_quote_heading_or_list() -> None:
    text = " ".join(["cost"] * 8 + ["> 5", "# of", "- items", "+ more", "* stars"] * 6)
    parts = split_markdown(text, limit=40)
    assert len(parts) > 3
    assert all(part[0] not in ">#-+*" for part in parts)


def test_deep_headings_become_bold_and_shallow_ones_stay() -> None:
    assert split_markdown("### Kept\n#### Deep ##\n###### 깊은 제목") == [
        "### Kept\n**Deep**\n**깊은 제목**"
    ]


# --- split_markdown: code blocks --------------------------------------------------------


def test_code_block_that_fits_moves_whole_to_the_next_part() -> None:
    code = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(8)) + "\n```"
    intro = "Intro words that run on for a while and then some more words"
    parts = split_markdown(f"{intro}\n{code}\nAfter.", limit=110)
    assert parts == [intro, code + "\nAfter."]


def test_long_code_block_is_cut_on_lines_into_complete_blocks_with_its_language() -> None:
    rows = [f"row_{i} = compute({i})  # check" for i in range(200)]
    text = "Intro text.\n\n```python\n" + "\n".join(rows) + "\n```\n\nOutro text."
    parts = split_markdown(text)
    assert len(parts) >= 4
    assert_parts_fit(parts, MESSAGE_LIMIT)
    assert parts[0].startswith("Intro text.\n\n```python\nrow_0 ")
    assert parts[-1].endswith("# check\n```\n\nOutro text.")
    blocks = [block for part in parts for block in code_blocks(part)]
    assert all(language == "python" for language, _ in blocks)
    assert [line for _, body in blocks for line in body.split("\n")] == rows
    for part in parts[1:-1]:
        assert part.startswith("```python\nrow_") and part.endswith("# check\n```")


def test_a_code_line_longer_than_a_message_is_cut_inside_the_block() -> None:
    text = "```\n" + "z" * 5000 + "\n```"
    parts = split_markdown(text)
    assert_parts_fit(parts, MESSAGE_LIMIT)
    assert "".join(body for part in parts for _, body in code_blocks(part)) == "z" * 5000


def test_unclosed_code_block_is_closed() -> None:
    assert split_markdown("Look:\n```sh\nmake run\n\n") == ["Look:\n```sh\nmake run\n```"]


def test_tilde_and_long_fences_become_discord_fences() -> None:
    assert split_markdown("~~~js\nlet a\n~~~") == ["```js\nlet a\n```"]
    assert split_markdown("````\nx\n````") == ["```\nx\n```"]


def test_code_block_in_a_list_item_keeps_its_indentation_when_cut() -> None:
    code = "\n".join(f"   echo {i}" for i in range(40))
    text = f"1. Run this:\n   ```bash\n{code}\n   ```\n2. Done"
    parts = split_markdown(text, limit=200)
    assert_parts_fit(parts, 200)
    assert all(p.startswith("   ```bash\n   echo") for p in parts if "echo" in p)
    assert content(*parts) == content(text)


# --- split_markdown: tables -------------------------------------------------------------


def test_table_becomes_aligned_code_block() -> None:
    markdown = "| Name | Qty | Note |\n|:--|--:|:-:|\n| apple | 3 | **ok** |\n| kiwi | 12 | fresh |"
    ((language, block),) = code_blocks(split_markdown(markdown)[0])
    assert language == ""
    assert block.split("\n") == [
        "Name  | Qty | Note",
        "------+-----+------",
        "apple |   3 |  ok",
        "kiwi  |  12 | fresh",
    ]


def test_wide_korean_table_aligns_by_display_width() -> None:
    cell = "한국어와 영어로 답하는 팀 챗봇입니다"
    markdown = (
        "| 이름 | 부서 | 설명 | 내선 |\n|---|---|---|--:|\n"
        f"| 김철수 | 인사팀 | {cell} | 1234 |\n| Bob | IT | {cell} and more | 9 |"
    )
    (part,) = split_markdown(markdown)
    ((_, block),) = code_blocks(part)
    lines = block.split("\n")
    columns = [
        [display_width(line[: m.start()]) for m in re.finditer(r"[ -][|+][ -]", line)]
        for line in lines
    ]
    assert all(found == columns[0] for found in columns) and len(columns[0]) == 3
    assert display_width(lines[2]) == display_width(lines[3]) > 60
    assert lines[2].startswith("김철수 | 인사팀 | 한국어")


def test_table_longer_than_a_message_is_split_by_rows_with_the_header_repeated() -> None:
    rows = [f"| {i} | 직원 {i}번 | Department number {i} |" for i in range(150)]
    markdown = "Table:\n\n| 번호 | 이름 | Dept |\n|--:|---|---|\n" + "\n".join(rows) + "\n\nEnd."
    parts = split_markdown(markdown)
    assert_parts_fit(parts, MESSAGE_LIMIT)
    tables = [part for part in parts if part.startswith(FENCE)]
    assert len(tables) >= 3
    seen: list[int] = []
    for part in tables:
        ((_, block),) = code_blocks(part)
        header, rule, *body = block.split("\n")
        assert [display_width(name) for name in header.split(" | ")] == [4, 10, 4]
        assert header.replace(" ", "") == "번호|이름|Dept"
        assert set(rule) == {"-", "+"}
        seen.extend(int(line.split("|")[0]) for line in body)
    assert seen == list(range(150))
    assert parts[0] == "Table:" and parts[-1].endswith("\n```\n\nEnd.")


def test_table_wider_than_a_message_stays_code_cut_on_its_rows() -> None:
    markdown = "| 설명 | Note |\n|---|---|\n" + f"| {'가나다 ' * 400} | {'wide ' * 200} |\n" * 3
    parts = split_markdown(markdown)
    assert_parts_fit(parts, MESSAGE_LIMIT)
    assert all(part.startswith(FENCE) and part.endswith(FENCE) for part in parts)
    assert content(*parts) == content(split_markdown(markdown, limit=10**6)[0])


def test_table_in_a_quote_stays_quoted_and_cell_fences_cannot_end_the_block() -> None:
    (part,) = split_markdown("> | a | b |\n> |---|---|\n> | ``` | 2 |")
    assert part.split("\n")[0] == "> ```" and part.split("\n")[-1] == "> ```"
    assert fence_lines(part) == 2


# --- split_markdown: mentions -----------------------------------------------------------


def test_mentions_are_defused_in_text_but_code_is_left_alone() -> None:
    text = "Hi @everyone and @here, <@123> <@&456> <@!789>.\n\n```\n@everyone\n```"
    (part,) = split_markdown(text)
    prose, code = part.split("\n\n")
    assert "@everyone" not in prose and "@here" not in prose and "<@" not in prose
    assert prose.replace(ZWSP, "") == "Hi @everyone and @here, <@123> <@&456> <@!789>."
    assert code == "```\n@everyone\n```"


# --- split_markdown: property -----------------------------------------------------------

WORDS = ["deskbot", "answers", "the", "policy", "e.g.", "p.", "3.", "**bold text**", "`x = 1`"]
KOREAN = ["연차는", "입사일", "기준으로", "부여됩니다.", "확인해요.", "한국어", "e\u0301", "👍🏽"]
EXTRAS = ["@everyone", "<@42>", "[the handbook](https://ex.com/a)", "👨\u200d👩\u200d👧", "。"]


def random_paragraph(rng: random.Random) -> str:
    words = rng.choice([WORDS, KOREAN]) + EXTRAS
    count = rng.choice([3, 10, 40, 120])
    text = " ".join(rng.choice(words) for _ in range(count))
    if rng.random() < 0.1:
        text += " " + "https://ex.com/" + "p" * rng.randint(10, 2500)
    if rng.random() < 0.3:
        text = "\n".join(f"- {line}" for line in text.split(". "))
    return text


def random_code(rng: random.Random, *, closed: bool = True) -> str:
    language = rng.choice(["", "python", "sql"])
    lines = [
        rng.choice(
            ["x = 1", "SELECT * FROM t;", "# 주석 comment", "    return y" * rng.randint(1, 9)]
        )
        for _ in range(rng.choice([1, 5, 30, 150]))
    ]
    if rng.random() < 0.1:
        lines.append("q" * rng.randint(100, 3000))
    return f"```{language}\n" + "\n".join(lines) + ("\n```" if closed else "")


def random_table(rng: random.Random) -> str:
    columns = rng.randint(1, 5)
    header = "| " + " | ".join("Ⓗ" * rng.randint(1, 9) for _ in range(columns)) + " |"
    cells = ["김철수", "Bob", "인사팀 담당자", "1234", "a longer English cell", "e\u0301"]
    rows = [
        "| " + " | ".join(rng.choice(cells) for _ in range(columns)) + " |"
        for _ in range(rng.choice([1, 10, 40]))
    ]
    return "\n".join([header, "|" + "---|" * columns, *rows])


def random_document(rng: random.Random) -> str:
    makers = [random_paragraph] * 4 + [random_code, random_table]
    blocks = [rng.choice(makers)(rng) for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.1:  # an answer cut off inside a code block
        blocks.append(random_code(rng, closed=False))
    # A table runs on to the next blank line, so a table is always followed by one.
    ends = ["\n\n", "\n\n\n", "\n"]
    return "".join(block + rng.choice(ends[: 2 if "Ⓗ" in block else 3]) for block in blocks)


def without_headers(text: str) -> str:
    """Content without table headers and rules, which a split table repeats, and without the
    column bars (a header or rule wider than a message is cut over several lines)."""
    lines = [line for line in text.split("\n") if not re.fullmatch(r"[Ⓗ|\s]+|[-+]+", line)]
    return content(*lines).replace("|", "")


def outside_code(part: str) -> str:
    return re.sub(r"```.*?```", "", part, flags=re.DOTALL)


CASES = 300


def test_random_answers_split_within_limits_and_lose_nothing() -> None:
    rng = random.Random(13)
    checked = 0
    for _ in range(CASES):
        document = random_document(rng)
        limit = rng.choice([16, 40, 100, 500, MESSAGE_LIMIT, MESSAGE_LIMIT])
        parts = split_markdown(document, limit=limit)
        assert_parts_fit(parts, limit)
        for part in parts:
            assert "@everyone" not in outside_code(part) and "<@" not in outside_code(part)
            assert not unicodedata.combining(part[0]) and part[0] != "\U0001f3fd"
            assert "\u200d" not in (part[0], part[-1])
        whole = split_markdown(document, limit=10**6)
        assert len(whole) == 1
        assert without_headers("\n".join(parts)) == without_headers(whole[0])
        checked += 1
    assert checked == CASES


def test_text_outside_tables_reaches_discord_unchanged() -> None:
    rng = random.Random(5)
    for _ in range(100):
        document = "\n\n".join(random_paragraph(rng) for _ in range(3))
        (whole,) = split_markdown(document, limit=10**6)
        assert whole.replace(ZWSP, "") == document.strip()
