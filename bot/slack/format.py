"""Markdown, as language models write it, turned into Slack messages.

Slack's ``mrkdwn`` is not Markdown: ``*bold*``, ``_italic_``, ``~strike~``, ``<url|text>``
links, no headings and no tables, and ``&``, ``<``, ``>`` must be sent as ``&amp;``,
``&lt;``, ``&gt;`` everywhere, code included. Block Kit adds limits: 3,000 characters per
section text, 50 blocks per message, 10 elements per context block.

Model output is parsed with markdown-it (CommonMark plus GFM tables and strikethrough,
raw HTML off), so anything the model writes in angle brackets (``<!channel>``,
``<@U123>``) reaches Slack escaped, as text, never as a mention.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = [
    "SECTION_LIMIT",
    "SlackMessage",
    "SourceLink",
    "answer_messages",
    "plain_text",
    "progress_message",
    "split_text",
    "to_mrkdwn",
]

SECTION_LIMIT = 3000
"""Most characters Slack accepts in one section block's text."""
MAX_BLOCKS = 50
MAX_CONTEXT_ELEMENTS = 10
FALLBACK_LIMIT = 3000
FEEDBACK_BLOCK_ID = "deskbot_feedback"
TABLE_WIDTH = 60
"""Widest table (in display columns) still drawn as a grid; wider ones become row groups."""

_FENCE = "```"
_BULLETS = ("•", "◦", "▪")
_INDENT = "    "
_ZWSP = "\u200b"
# Slack has no escape for "|" inside link text; a look-alike keeps the label intact.
_PIPE_LOOKALIKE = "∣"
_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_MARKERS = {"strong": "*", "em": "_", "s": "~"}


@dataclass(frozen=True)
class SourceLink:
    """One numbered source cited by an answer."""

    number: int
    title: str
    url: str | None
    page: int | None = None
    section: str | None = None


@dataclass(frozen=True)
class SlackMessage:
    """One Slack message: Block Kit ``blocks`` and the notification ``text`` fallback."""

    text: str
    blocks: list[dict[str, Any]]


# --- escaping ---------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _link(url: str, label: str = "") -> str:
    """A ``<url|label>`` link; the URL loses what would end it early, the label is escaped."""
    for raw, encoded in (("|", "%7C"), ("<", "%3C"), (">", "%3E"), (" ", "%20")):
        url = url.replace(raw, encoded)
    url = url.replace("&", "&amp;")
    label = _escape(" ".join(label.split())).replace("|", _PIPE_LOOKALIKE)
    return f"<{url}|{label}>" if label and label != url else f"<{url}>"


# --- Markdown -> mrkdwn -----------------------------------------------------------------


def to_mrkdwn(markdown: str, *, table_width: int = TABLE_WIDTH) -> str:
    """Convert Markdown to Slack mrkdwn.

    Args:
        markdown: Markdown as a language model writes it (CommonMark + GFM tables).
        table_width: Tables wider than this many display columns (Hangul counts two) are
            written as one "*Header:* value" group per row instead of an aligned grid.

    Returns:
        Text for a mrkdwn text object, with ``&``, ``<`` and ``>`` escaped.
    """
    tree = SyntaxTreeNode(_PARSER.parse(markdown))
    return _join_blocks(tree.children, _Context(table_width)).strip("\n")


@dataclass(frozen=True)
class _Context:
    table_width: int
    depth: int = 0


def _join_blocks(nodes: Sequence[SyntaxTreeNode], ctx: _Context) -> str:
    """Blocks separated by a blank line, except that a heading's body follows on the next line
    and bullet lists that only differ in their marker (``-``, ``*``, ``+``) read as one."""
    out, previous = "", ""
    for node in nodes:
        text = _block(node, ctx)
        if not text:
            continue
        tight = previous == "heading" or previous == node.type == "bullet_list"
        if out:
            out += "\n" if tight else "\n\n"
        out += text
        previous = node.type
    return out


def _block(node: SyntaxTreeNode, ctx: _Context) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline_of(node)
    if kind == "heading":
        text = _inline_of(node, bold=False).strip()
        return f"*{text}*" if text else ""
    if kind in ("fence", "code_block"):
        return _code_block(node.content)
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, ctx)
    if kind == "blockquote":
        body = _join_blocks(node.children, ctx)
        return "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))
    if kind == "table":
        return _table(node, ctx.table_width)
    if kind == "hr":
        return "───────"
    return _escape(node.content)


def _code_block(content: str) -> str:
    body = _escape(content.rstrip("\n")) or " "
    return f"{_FENCE}\n{body}\n{_FENCE}"


def _list(node: SyntaxTreeNode, ctx: _Context) -> str:
    number = int(node.attrs.get("start", 1))
    items = []
    for item in node.children:
        if node.type == "ordered_list":
            marker, number = f"{number}.", number + 1
        else:
            marker = _BULLETS[min(ctx.depth, len(_BULLETS) - 1)]
        items.append(_list_item(item, marker, ctx))
    return "\n".join(items)


def _list_item(item: SyntaxTreeNode, marker: str, ctx: _Context) -> str:
    indent = _INDENT * ctx.depth
    hang = indent + " " * (len(marker) + 1)
    lines: list[str] = []
    for child in item.children:
        if child.type in ("bullet_list", "ordered_list"):
            lines.append(_list(child, _Context(ctx.table_width, ctx.depth + 1)))
            continue
        text = _block(child, ctx)
        if text.startswith(_FENCE):
            lines.append(text)  # indenting a code block would indent its content too
            continue
        first, *rest = text.split("\n")
        lines.append((hang if lines else f"{indent}{marker} ") + first)
        lines.extend(hang + line if line else "" for line in rest)
    return "\n".join(lines) if lines else f"{indent}{marker}"


# --- inline -----------------------------------------------------------------------------


def _inline_of(block: SyntaxTreeNode, *, bold: bool = True) -> str:
    """The mrkdwn of a block's inline content (a paragraph, heading or table cell)."""
    pieces: list[tuple[str, str]] = []
    for inline in block.children:
        for child in inline.children:
            pieces.extend(_inline(child, bold=bold))
    return _join_inline(pieces)


def _inline(node: SyntaxTreeNode, *, bold: bool) -> Iterator[tuple[str, str]]:
    """Pieces as (text, kind); kind "open"/"close" marks formatting markers."""
    kind = node.type
    if kind in _MARKERS:
        marker = _MARKERS[kind] if bold or kind != "strong" else ""
        yield marker, "open"
        for child in node.children:
            yield from _inline(child, bold=bold and kind != "strong")
        yield marker, "close"
    elif kind == "code_inline":
        yield f"`{_escape(node.content)}`", "text"
    elif kind == "link":
        yield _link(str(node.attrs["href"]), _plain_inline(node)), "text"
    elif kind == "image":
        yield _link(str(node.attrs["src"]), _plain_inline(node)), "text"
    elif kind in ("softbreak", "hardbreak"):
        yield "\n", "text"
    else:
        yield _escape(node.content), "text"


def _join_inline(pieces: list[tuple[str, str]]) -> str:
    """Join pieces, adding a zero-width space where Slack would not see a marker.

    Slack only honours ``*`` ``_`` ``~`` at a word boundary, so ``**중요**합니다`` needs an
    invisible break between the closing ``*`` and ``합``.
    """
    following = _next_chars(pieces)
    out: list[str] = []
    previous = ""
    for (text, kind), after in zip(pieces, following, strict=True):
        if kind == "open" and text and previous.isalnum():
            out.append(_ZWSP)
        out.append(text)
        if kind == "close" and text and after.isalnum():
            out.append(_ZWSP)
        previous = text[-1:] or previous
    return "".join(out)


def _next_chars(pieces: list[tuple[str, str]]) -> list[str]:
    """For each piece, the first character of the text after it."""
    following, after = [], ""
    for text, _ in reversed(pieces):
        following.append(after)
        after = text[:1] or after
    return following[::-1]


def _plain_inline(node: SyntaxTreeNode) -> str:
    if node.type in ("softbreak", "hardbreak"):
        return " "
    if node.type in ("text", "code_inline"):
        return node.content
    return "".join(_plain_inline(child) for child in node.children)


# --- tables -----------------------------------------------------------------------------


def _display_width(text: str) -> int:
    """Columns a monospace font gives ``text``: wide (Hangul, CJK) 2, combining marks 0."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _pad(text: str, width: int, align: str) -> str:
    gap = width - _display_width(text)
    if align == "right":
        return " " * gap + text
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


def _table(node: SyntaxTreeNode, table_width: int) -> str:
    rows = [row for section in node.children for row in section.children]
    cells = [row.children for row in rows]
    texts = [[" ".join(_plain_inline(cell).split()) for cell in row] for row in cells]
    count = max(len(row) for row in texts)
    widths = [
        max((_display_width(r[i]) for r in texts if i < len(r)), default=0) for i in range(count)
    ]
    if sum(widths) + 3 * (count - 1) > table_width:
        return _table_as_records(cells)
    aligns = [str(cell.attrs.get("style", "")).removeprefix("text-align:") for cell in cells[0]]
    lines = [
        " | ".join(_pad(t, w, a) for t, w, a in zip(r, widths, aligns, strict=False)) for r in texts
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return f"{_FENCE}\n" + "\n".join(_escape(line.rstrip()) for line in lines) + f"\n{_FENCE}"


def _table_as_records(cells: list[list[SyntaxTreeNode]]) -> str:
    header = [" ".join(_plain_inline(cell).split()) for cell in cells[0]]
    groups = []
    for row in cells[1:]:
        lines = [
            f"*{_escape(name)}:* {value}" if name else value
            for name, cell in zip(header, row, strict=False)
            if (value := _inline_of(cell).strip())
        ]
        groups.append("\n".join(lines))
    return "\n\n".join(group for group in groups if group)


# --- plain text -------------------------------------------------------------------------

_LINK_RE = re.compile(r"<([^<>|\n]*)(?:\|([^<>\n]*))?>")
_CODE_RE = re.compile(r"```\n?(.*?)\n?```|`([^`\n]+)`", re.DOTALL)
_EMPHASIS_RES = [
    re.compile(rf"(?<![\w{m}])[{m}](?=\S)(.+?)(?<=\S)[{m}](?![\w{m}])") for m in ("*", "_", "~")
]


def plain_text(mrkdwn: str) -> str:
    """Strip mrkdwn markup: for notification fallbacks and logs.

    Links become their label, formatting markers and code fences go, entities are decoded.
    """
    out, last = [], 0
    for match in _CODE_RE.finditer(mrkdwn):
        out.append(_plain_segment(mrkdwn[last : match.start()]))
        out.append(_unescape(match.group(1) if match.group(1) is not None else match.group(2)))
        last = match.end()
    out.append(_plain_segment(mrkdwn[last:]))
    return "".join(out).strip()


def _plain_segment(text: str) -> str:
    text = _LINK_RE.sub(lambda m: m.group(2) or m.group(1), text)
    for _ in range(3):  # nested markers, e.g. *_both_*
        for pattern in _EMPHASIS_RES:
            text = pattern.sub(r"\1", text)
    text = re.sub(r"^>[ ]?", "", text, flags=re.MULTILINE)
    return _unescape(text.replace(_ZWSP, ""))


# --- splitting --------------------------------------------------------------------------

_ATOMIC_RE = re.compile(r"<[^<>\n]*>|&(?:amp|lt|gt);|```")
_BREAKS = [
    re.compile(r"(?P<sep>\n\n+)"),
    re.compile(r"(?P<sep>\n)"),
    re.compile(r"[.!?。！？…][\"')\]]?(?P<sep> +)"),
    re.compile(r"(?P<sep> +)"),
]
_REOPEN = _FENCE + "\n"
_LOOKAHEAD = 4000  # how far past a cut a link or span may end and still be seen whole
_MIN_LIMIT = 16


def split_text(text: str, *, limit: int = SECTION_LIMIT) -> list[str]:
    """Split mrkdwn into chunks of at most ``limit`` characters.

    Cuts prefer a paragraph break, then a line break, then a sentence end, then a space
    (none in the first quarter of a chunk), and only then a hard cut. No cut falls inside a
    ``<url|text>`` link, an entity, a code fence marker, a one-line ``*bold*`` (``_``, ``~``)
    span, or between a character and the combining marks or joiners that follow it; only a
    hard cut through an unbreakable stretch longer than the chunk may. The separator at a
    cut is dropped. A chunk that ends inside a code block closes it, and the next chunk
    reopens it.

    Raises:
        ValueError: ``limit`` is too small to hold a reopened code block.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"limit must be at least {_MIN_LIMIT}, got {limit}")
    chunks: list[str] = []
    rest = text.strip("\n")
    while len(rest) > limit:
        cut, skip = _find_cut(rest, limit)
        if _inside_fence(rest, cut):
            cut, skip = _find_cut(rest, limit - len(_REOPEN))
        chunk, rest = rest[:cut], rest[cut + skip :]
        if _inside_fence(chunk, cut):
            chunk += "\n" + _FENCE
            closer_next = rest.startswith(_FENCE)
            rest = rest.removeprefix(_FENCE).lstrip("\n") if closer_next else _REOPEN + rest
        chunks.append(chunk)
    chunks.append(rest)
    return [chunk for chunk in chunks if chunk.strip()]


def _inside_fence(text: str, cut: int) -> bool:
    return text.count(_FENCE, 0, cut) % 2 == 1


def _find_cut(text: str, budget: int) -> tuple[int, int]:
    """Where a chunk of at most ``budget`` characters ends, and the separator length after it."""
    window = text[: budget + 1]
    blocked = _blocked_positions(text, budget)
    floor = max(budget // 4, len(_REOPEN) + 1)
    for pattern in _BREAKS:
        for match in reversed(list(pattern.finditer(window))):
            cut = match.start("sep")
            if cut < floor:
                break
            if cut <= budget and cut not in blocked:
                return cut, len(match.group("sep"))
    return _hard_cut(budget, blocked, floor), 0


def _blocked_positions(text: str, budget: int) -> set[int]:
    """Indices a chunk may not end at: inside links, entities, fences, one-line ``*bold*``
    (``_`` ``~``) spans and grapheme clusters."""
    blocked: set[int] = set()
    for pattern in (_ATOMIC_RE, *_EMPHASIS_RES):
        for match in pattern.finditer(text, 0, budget + _LOOKAHEAD):
            if match.start() >= budget:
                break
            blocked.update(range(match.start() + 1, match.end()))
    for index in range(1, min(len(text), budget + 1)):
        if _joins_previous(text[index]) or text[index - 1] == "\u200d":
            blocked.add(index)
    return blocked


def _joins_previous(char: str) -> bool:
    """Whether ``char`` belongs to the character before it (marks, joiners, selectors, jamo)."""
    code = ord(char)
    if code < 0x300:  # nothing below the combining diacritics joins
        return False
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or code == 0x200D  # zero-width joiner
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0x1160 <= code <= 0x11FF  # Hangul medial vowels and final consonants (NFD)
        or 0xDC00 <= code <= 0xDFFF  # a low surrogate, should one be present
    )


def _hard_cut(budget: int, blocked: set[int], floor: int) -> int:
    cut = budget
    while cut > floor and cut in blocked:
        cut -= 1
    return budget if cut in blocked or cut <= floor else cut


# --- messages ---------------------------------------------------------------------------


def answer_messages(
    markdown: str,
    sources: Sequence[SourceLink],
    *,
    run_id: str | None,
    notice: str | None = None,
) -> list[SlackMessage]:
    """Build the Slack messages for a finished answer.

    Args:
        markdown: The answer as the model wrote it.
        sources: Cited sources, listed in context blocks after the answer.
        run_id: When given, 👍/👎 buttons carrying it as their value end the last message.
        notice: A short line shown above the answer, e.g. "Retrieval-only answer".

    Returns:
        One message, or several when the blocks exceed Slack's 50 per message; sources and
        buttons are always on the last.

    Raises:
        ValueError: ``run_id`` is empty or longer than a button value may be (2,000).
    """
    head: list[dict[str, Any]] = []
    if notice:
        head.append(_context([_truncate(to_mrkdwn(notice), SECTION_LIMIT)]))
    head.extend(_section(chunk) for chunk in split_text(to_mrkdwn(markdown)))
    tail = _source_blocks(sources)[: MAX_BLOCKS - 1]
    if run_id is not None:
        tail.append(_feedback_block(run_id))
    pages = []
    while len(head) + len(tail) > MAX_BLOCKS:
        pages.append(head[:MAX_BLOCKS])
        head = head[MAX_BLOCKS:]
    pages.append(head + tail)
    return [SlackMessage(text=_fallback(blocks), blocks=blocks) for blocks in pages]


def progress_message(status: str, partial_markdown: str = "") -> SlackMessage:
    """The message shown while an answer is being prepared.

    Args:
        status: A short status line, e.g. ":mag: Searching documents…".
        partial_markdown: The answer so far; cut to one section with a trailing "…".
    """
    blocks = [_context([_truncate(_escape(status), SECTION_LIMIT)])]
    text = to_mrkdwn(partial_markdown) if partial_markdown.strip() else ""
    if len(text) > SECTION_LIMIT:
        text = split_text(text, limit=SECTION_LIMIT - 2)[0]
        text += "\n…" if text.endswith(_FENCE) else "…"
    if text:
        blocks.append(_section(text))
    return SlackMessage(text=_fallback(blocks), blocks=blocks)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(texts: Sequence[str]) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}


def _source_blocks(sources: Sequence[SourceLink]) -> list[dict[str, Any]]:
    lines = [_source_line(source) for source in sources]
    step = MAX_CONTEXT_ELEMENTS
    return [_context(lines[i : i + step]) for i in range(0, len(lines), step)]


def _source_line(source: SourceLink) -> str:
    """``[1] <url|Title> · p. 3 · Section``; the title alone when there is no usable URL."""
    title = " ".join(source.title.split()) or source.url or "source"
    details = [f"p. {source.page}"] if source.page is not None else []
    if source.section:
        details.append(_escape(_truncate(" ".join(source.section.split()), 200)))
    linked = _link(source.url, _truncate(title, 200)) if source.url else ""
    head = linked if 0 < len(linked) <= 2000 else _escape(_truncate(title, 200))
    return _truncate(" · ".join([f"[{source.number}] {head}", *details]), SECTION_LIMIT)


def _feedback_block(run_id: str) -> dict[str, Any]:
    if not 0 < len(run_id) <= 2000:
        raise ValueError("run_id must be 1 to 2000 characters (a Slack button value)")

    def button(action_id: str, emoji: str, label: str) -> dict[str, Any]:
        return {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": emoji, "emoji": True},
            "value": run_id,
            "accessibility_label": label,
        }

    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK_ID,
        "elements": [
            button("deskbot_feedback_up", "👍", "Helpful"),
            button("deskbot_feedback_down", "👎", "Not helpful"),
        ],
    }


def _fallback(blocks: Sequence[dict[str, Any]]) -> str:
    """A plain-text rendering of the blocks for notifications, at most 3,000 characters."""
    parts = []
    for block in blocks:
        if block["type"] == "section":
            parts.append(plain_text(block["text"]["text"]))
        elif block["type"] == "context":
            parts.extend(plain_text(element["text"]) for element in block["elements"])
    text = "\n".join(part for part in parts if part) or "…"
    return _truncate(_escape(text), FALLBACK_LIMIT)


def _truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters with a trailing "…", never inside an entity or link."""
    if len(text) <= limit:
        return text
    cut = _hard_cut(limit - 1, _blocked_positions(text, limit - 1), 0)
    return text[:cut].rstrip() + "…"
