"""Markdown, as language models write it, turned into Slack mrkdwn.

Slack's ``mrkdwn`` is not Markdown: ``*bold*``, ``_italic_``, ``~strike~``, ``<url|text>``
links, no headings and no tables, and ``&``, ``<``, ``>`` must be sent as ``&amp;``,
``&lt;``, ``&gt;`` everywhere, code included.

Model output is parsed with markdown-it (CommonMark plus GFM tables and strikethrough,
raw HTML off), so anything the model writes in angle brackets (``<!channel>``,
``<@U123>``) reaches Slack escaped, as text, never as a mention.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from bot.text_layout import grid_lines, grid_width, plain_inline, table_rows

__all__ = ["FENCE", "TABLE_WIDTH", "ZWSP", "escape", "link", "to_mrkdwn", "unescape"]

TABLE_WIDTH = 60
"""Widest table (in display columns) still drawn as a grid; wider ones become row groups."""
FENCE = "```"
ZWSP = "\u200b"
"""The zero-width space that lets Slack see a formatting marker inside a word."""

_BULLETS = ("•", "◦", "▪")
_INDENT = "    "
# Slack has no escape for "|" inside link text; a look-alike keeps the label intact.
_PIPE_LOOKALIKE = "∣"
_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_MARKERS = {"strong": "*", "em": "_", "s": "~"}


# --- escaping ---------------------------------------------------------------------------


def escape(text: str) -> str:
    """``text`` with ``&``, ``<`` and ``>`` as the entities Slack requires everywhere."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """The inverse of :func:`escape`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def link(url: str, label: str = "") -> str:
    """A ``<url|label>`` link; the URL loses what would end it early, the label is escaped."""
    for raw, encoded in (("|", "%7C"), ("<", "%3C"), (">", "%3E"), (" ", "%20")):
        url = url.replace(raw, encoded)
    url = url.replace("&", "&amp;")
    label = escape(" ".join(label.split())).replace("|", _PIPE_LOOKALIKE)
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
    return escape(node.content)


def _code_block(content: str) -> str:
    body = escape(content.rstrip("\n")) or " "
    return f"{FENCE}\n{body}\n{FENCE}"


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
        if text.startswith(FENCE):
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
        yield f"`{escape(node.content)}`", "text"
    elif kind == "link":
        yield link(str(node.attrs["href"]), plain_inline(node)), "text"
    elif kind == "image":
        yield link(str(node.attrs["src"]), plain_inline(node)), "text"
    elif kind in ("softbreak", "hardbreak"):
        yield "\n", "text"
    else:
        yield escape(node.content), "text"


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
            out.append(ZWSP)
        out.append(text)
        if kind == "close" and text and after.isalnum():
            out.append(ZWSP)
        previous = text[-1:] or previous
    return "".join(out)


def _next_chars(pieces: list[tuple[str, str]]) -> list[str]:
    """For each piece, the first character of the text after it."""
    following, after = [], ""
    for text, _ in reversed(pieces):
        following.append(after)
        after = text[:1] or after
    return following[::-1]


# --- tables -----------------------------------------------------------------------------


def _table(node: SyntaxTreeNode, table_width: int) -> str:
    texts, aligns = table_rows(node)
    if grid_width(texts) > table_width:
        return _table_as_records([row.children for part in node.children for row in part.children])
    lines = grid_lines(texts, aligns)
    return f"{FENCE}\n" + "\n".join(escape(line) for line in lines) + f"\n{FENCE}"


def _table_as_records(cells: list[list[SyntaxTreeNode]]) -> str:
    header = [" ".join(plain_inline(cell).split()) for cell in cells[0]]
    groups = []
    for row in cells[1:]:
        lines = [
            f"*{escape(name)}:* {value}" if name else value
            for name, cell in zip(header, row, strict=False)
            if (value := _inline_of(cell).strip())
        ]
        groups.append("\n".join(lines))
    return "\n\n".join(group for group in groups if group)
