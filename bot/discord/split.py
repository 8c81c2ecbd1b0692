"""Discord Markdown cut to a message's 2,000 characters.

Discord draws the Markdown a model writes (bold, italics, code, headings ``#`` to ``###``,
lists, quotes, masked links) but not pipe tables, so tables become aligned text in code
blocks (:mod:`bot.text_layout`). An answer is then split into message contents on paragraph,
sentence, line or word boundaries, never inside a code block or a table; one longer than a
message is cut on its lines into complete blocks, each opened again.

Lengths are counted in UTF-16 code units (as a JavaScript client counts them), never fewer
than code points, so a part fits however Discord counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from bot.text_layout import grid_lines, joins_previous, table_rows

__all__ = [
    "FENCE",
    "MESSAGE_LIMIT",
    "ZWSP",
    "defuse_mentions",
    "size",
    "split_markdown",
    "truncate",
]

MESSAGE_LIMIT = 2000
"""Most characters in one message's content."""
FENCE = "```"
ZWSP = "\u200b"
"""The zero-width space that breaks a mention so it is shown as text."""

_MIN_LIMIT = 16  # room for a reopened code block and a few characters of it
_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
# Finding code blocks and tables needs block structure only; inline parsing is most of the
# cost (the placeholder is redrawn every second), so only a table's own lines get it.
_BLOCK_PARSER = (
    MarkdownIt("commonmark", {"html": False}).enable("table").disable(["inline", "text_join"])
)

_PARAGRAPH, _SENTENCE, _LINE, _SPACE, _HARD = range(5)
"""Boundary strengths, strongest first: a cut prefers the strongest in reach."""


class _Token(NamedTuple):
    sep: str  # what joins it to the token before; dropped when a part starts here
    text: str
    level: int  # the strength of the boundary before it
    lead: str = ""  # what a part starting here opens with: the quote markers of its line


@dataclass(frozen=True)
class _Fenced:
    """A code block, or a table drawn as one: cut on its lines into complete blocks."""

    opener: str
    lines: tuple[str, ...]
    closer: str
    head: int = 0  # leading lines (a table's header and rule) repeated atop every piece

    def render(self, lines: Sequence[str]) -> str:
        return "\n".join([self.opener, *lines, self.closer])


def split_markdown(text: str, *, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split an answer's Markdown into Discord message contents of at most ``limit``.

    Tables become aligned code blocks; ``####``-and-deeper headings, which Discord does not
    draw, become bold lines; ``@everyone``, ``@here`` and ``<@…>`` mentions get a zero-width
    space so they neither ping nor look like a ping. Cuts prefer a paragraph break, then a
    sentence end, then a line end, then a space (none in a part's first quarter), never inside
    a masked link, inline code or a one-line emphasis span, and only then cut a word, never
    before a combining mark or joiner. A code block is never cut unless it alone is longer
    than a message: then it is cut on its lines into complete blocks, each opened again with
    its language (a table's repeating its header).

    Raises:
        ValueError: ``limit`` is too small to hold a code block.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"limit must be at least {_MIN_LIMIT}, got {limit}")
    tokens = [token for gap, block in _blocks(text) for token in _tokens(gap, block, limit)]
    return [part for part in _pack(tokens, limit) if part.strip()]


def _blocks(text: str) -> Iterator[tuple[str, str | _Fenced]]:
    """The text's paragraphs and code blocks, each with the line break(s) before it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    fenced = dict(_fenced_blocks(text, lines))
    paragraph: list[str] = []
    gap, index = "", 0
    while index < len(lines):
        if index in fenced or not lines[index].strip():
            if paragraph:
                yield gap, "\n".join(paragraph).rstrip()
                paragraph, gap = [], "\n"
            if index in fenced:
                end, block = fenced[index]
                yield gap, block
                gap, index = "\n", end
                continue
            gap = "\n\n" if gap else ""
        else:
            paragraph.append(lines[index])
        index += 1
    if paragraph:
        yield gap, "\n".join(paragraph).rstrip()


def _fenced_blocks(text: str, lines: list[str]) -> Iterator[tuple[int, tuple[int, _Fenced]]]:
    """Fenced code blocks and tables, at any depth: (first line, (line after, block))."""
    for token in _BLOCK_PARSER.parse(text):
        if token.map is None or token.type not in ("fence", "table_open"):
            continue
        start, end = token.map
        if token.type == "fence":
            yield start, (end, _fence(token, lines[start:end]))
        else:
            yield start, (end, _table(lines[start:end]))


def _prefix(line: str) -> str:
    """What nests a block (indentation, ``>`` quote markers), marker characters as spaces."""
    found = re.match(r"[\s>]*(?:(?:[-*+]|\d+[.)])\s+)?[\s>]*", line)
    return re.sub(r"[^\s>]", " ", found.group() if found else "")


def _fence(node: Token, lines: list[str]) -> _Fenced:
    opener = lines[0]
    prefix = opener[: opener.index(node.markup)] if node.markup in opener else ""
    body = lines[1:]
    closing = re.escape(node.markup[0]) + "{" + str(len(node.markup)) + ",}"
    if body and re.fullmatch(rf"[\s>]*{closing}\s*", body[-1]):
        body = body[:-1]
    else:  # never closed (a cut-off answer): trailing blank lines are not code
        while body and not body[-1].strip():
            body.pop()
    language = node.info.split()[0] if node.info.strip() else ""
    code = tuple(_unfenced(line) for line in body)
    return _Fenced(_prefix(prefix) + FENCE + language, code, _prefix(prefix) + FENCE)


def _unfenced(text: str) -> str:
    """``text`` with fence markers broken up: in a code block Discord would end it there."""
    return text.replace(FENCE, f"`{ZWSP}`{ZWSP}`")


def _table(lines: list[str]) -> _Fenced:
    nesting = re.match(r"[ \t>]*", lines[0])
    inner = [line.removeprefix(nesting.group() if nesting else "") for line in lines]
    tree = SyntaxTreeNode(_PARSER.parse("\n".join(inner)))
    table = next((node for node in tree.walk() if node.type == "table"), None)
    if table is None:  # a table the lines alone do not make (lazy quote lines): shown as is
        return _Fenced(FENCE, tuple(_unfenced(line) for line in lines), FENCE)
    rows, aligns = table_rows(table)
    rows = [[_unfenced(cell) for cell in row] for row in rows]
    prefix = _prefix(lines[0].split("|", 1)[0])
    grid = tuple(prefix + line for line in grid_lines(rows, aligns))
    return _Fenced(prefix + FENCE, grid, prefix + FENCE, head=2)


def _tokens(gap: str, block: str | _Fenced, limit: int) -> Iterator[_Token]:
    level = _PARAGRAPH if gap == "\n\n" else _LINE
    if isinstance(block, _Fenced):
        for index, piece in enumerate(_fenced_pieces(block, limit)):
            yield _Token(gap if index == 0 else "\n", piece, level if index == 0 else _PARAGRAPH)
    else:
        yield from _prose_tokens(gap, level, _prose(block), limit)


_HEADING_RE = re.compile(r"^([ \t>]*)#{4,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_MENTION_RE = re.compile(r"@(everyone|here)\b|<@")
# Where a paragraph may be cut: a line break, spaces between words (not before what would
# open a quote, heading or list at the start of a message), after CJK sentence ends.
_BREAK_RE = re.compile(r"[ \t]*\n|(?<=\S)[ \t]+(?=[^\s>#*+-])|(?<=[。！？])(?=[^\s。！？」』）])")
_SENTENCE_END_RE = re.compile(
    r"(?:[!?。！？…]|(?:[^\W\d_]{2,}|[가-힣]|\[\d+\])[\"'”’)\]]*\.)[\"'”’)\]]*$"
)
_QUOTE_RE = re.compile(r"[ \t]*>(?:[ \t]*>)*")
# Spans a cut may not fall in: quote and list markers and what follows, masked links, inline
# code, one-line emphasis and spoilers.
_SPAN_RES = [
    re.compile(r"^[ \t]*>[ \t>]*\S", re.MULTILINE),
    re.compile(r"^[ \t>]*(?:[-*+]|\d+[.)])[ \t]+\S", re.MULTILINE),
    re.compile(r"\[[^\[\]\n]*\]\([^()\s]*\)"),
    re.compile(r"`[^`\n]+`"),
    *(
        re.compile(rf"(?<![\w{m[0]}]){re.escape(m)}(?=\S)[^\n]+?(?<=\S){re.escape(m)}")
        for m in ("**", "__", "~~", "||", "*", "_")
    ),
]


def _prose(text: str) -> str:
    """A paragraph as Discord should get it: deep headings bold, mentions defused."""
    text = _HEADING_RE.sub(r"\1**\2**", text)
    return defuse_mentions(text)


def defuse_mentions(text: str) -> str:
    """``text`` with mentions broken by a zero-width space, so they look like plain text."""
    return _MENTION_RE.sub(lambda m: f"@{ZWSP}{m.group(1)}" if m.group(1) else f"<{ZWSP}@", text)


def _prose_tokens(gap: str, level: int, text: str, limit: int) -> Iterator[_Token]:
    """A paragraph as words (or sentences' ends, or lines) with the boundary before each."""
    blocked = {
        index
        for pattern in _SPAN_RES
        for span in pattern.finditer(text)
        for index in range(span.start() + 1, span.end())
    }
    start, sep, lead, quote = 0, gap, "", _quote_of(text, 0)
    for match in _BREAK_RE.finditer(text):
        if match.start() in blocked or match.start() == 0:
            continue
        word = _Token(sep, text[start : match.start()], level, lead)
        yield from _word_tokens(word, quote, limit)
        sep, start = match.group(), match.end()
        ended = _SENTENCE_END_RE.search(text, max(0, match.start() - 40), match.start())
        level = _SENTENCE if ended else _LINE if "\n" in sep else _SPACE
        quote = _quote_of(text, start) if "\n" in sep else quote
        lead = "" if "\n" in sep else quote  # a line's own markers open it
    yield from _word_tokens(_Token(sep, text[start:], level, lead), quote, limit)


def _quote_of(text: str, line_start: int) -> str:
    """The quote markers (``> ``, ``> > ``) the line starting at ``line_start`` opens with."""
    found = _QUOTE_RE.match(text, line_start)
    return found.group().strip() + " " if found else ""


def _word_tokens(word: _Token, quote: str, limit: int) -> Iterator[_Token]:
    """``word``, cut when longer than a part; a part starting inside a quoted line is quoted."""
    for index, piece in enumerate(_hard_pieces(word.text, limit - size(quote))):
        yield word._replace(text=piece) if index == 0 else _Token("", piece, _HARD, quote)


def _fenced_pieces(block: _Fenced, limit: int) -> list[str]:
    """The block whole when it fits, else complete blocks of its lines, each within ``limit``."""
    whole = block.render(block.lines)
    if size(whole) <= limit:
        return [whole]
    head, body = block.lines[: block.head], block.lines[block.head :]
    if _room(block, head, limit) < limit // 2:  # a header too wide to repeat is shown once
        head, body = (), block.lines
    if _room(block, head, limit) < 8:  # a long language tag or deep nesting: plain fences
        block = _Fenced(FENCE, block.lines, FENCE)
    room = _room(block, head, limit)
    pieces: list[list[str]] = [[]]
    used = 0
    for line in (piece for whole in body for piece in _hard_pieces(whole, room - 1)):
        if pieces[-1] and used + size(line) + 1 > room:
            pieces.append([])
            used = 0
        pieces[-1].append(line)
        used += size(line) + 1
    return [block.render([*head, *lines]) for lines in pieces]


def _room(block: _Fenced, head: Sequence[str], limit: int) -> int:
    """Characters left for a piece's lines (each with its line break) inside the fences."""
    return limit - size(block.opener) - size(block.closer) - 1 - sum(size(h) + 1 for h in head)


def _pack(tokens: list[_Token], limit: int) -> Iterator[str]:
    """Join tokens into parts of at most ``limit``, each cut at the strongest boundary in reach
    past the part's first quarter (the last one that fits when none is)."""
    start = 0
    while start < len(tokens):
        first = tokens[start].lead + tokens[start].text
        reach, used = start + 1, size(first)
        lengths: dict[int, int] = {}  # a part's size if cut before the token at this index
        while reach < len(tokens):
            lengths[reach] = used
            used += size(tokens[reach].sep) + size(tokens[reach].text)
            if used > limit:
                break
            reach += 1
        cut = reach if reach == len(tokens) else _best_cut(tokens, lengths, limit // 4)
        yield "".join([first, *(t.sep + t.text for t in tokens[start + 1 : cut])])
        start = cut


def _best_cut(tokens: list[_Token], lengths: dict[int, int], floor: int) -> int:
    def rank(index: int) -> tuple[int, int]:
        return (tokens[index].level if lengths[index] >= floor else _HARD + 1, -index)

    return min(lengths, key=rank)


def _hard_pieces(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit``, cut between graphemes wherever one allows."""
    pieces = []
    while size(text) > limit:
        end = limit
        while size(text[:end]) > limit:  # each astral character takes one place more
            end -= 1
        cut = end
        while cut > 0 and (joins_previous(text[cut]) or text[cut - 1] == "\u200d"):
            cut -= 1
        pieces.append(text[: cut or end])
        text = text[cut or end :]
    return [*pieces, text]


def size(text: str) -> int:
    """Length in UTF-16 code units: an astral character (most emoji) counts two."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` with a trailing "…", between graphemes."""
    return text if size(text) <= limit else _hard_pieces(text, limit - 1)[0].rstrip() + "…"
