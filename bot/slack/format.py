"""Slack messages for an answer: Block Kit sections, sources, feedback buttons, progress.

Block Kit's limits are named here: 3,000 characters per section text, 50 blocks per
message, 10 elements per context block, and a budget for the text of a whole message:
Slack refuses a message whose blocks hold more than about 12,000 characters in all
(``msg_blocks_too_long``, a limit it does not document), so a message carries at most
:data:`MESSAGE_TEXT_LIMIT`. The answer's Markdown becomes mrkdwn
(:mod:`bot.slack.mrkdwn`), cut to those limits (:mod:`bot.slack.split`); its sources are the
platform-neutral :class:`bot.rendering.Source` drawn as mrkdwn links.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.rendering import SEPARATOR, Source, source_details
from bot.slack.mrkdwn import FENCE, escape, link, to_mrkdwn
from bot.slack.split import SECTION_LIMIT, plain_text, split_text, truncate

__all__ = [
    "MESSAGE_TEXT_LIMIT",
    "SECTION_LIMIT",
    "SlackMessage",
    "answer_messages",
    "plain_text",
    "progress_message",
    "split_text",
    "to_mrkdwn",
]

MAX_BLOCKS = 50
MESSAGE_TEXT_LIMIT = 10_000
"""Characters of block text per message: under Slack's ~12,000, with room for containers."""
MAX_CONTEXT_ELEMENTS = 10
FALLBACK_LIMIT = 3000
FEEDBACK_BLOCK_ID = "deskbot_feedback"


@dataclass(frozen=True)
class SlackMessage:
    """One Slack message: Block Kit ``blocks`` and the notification ``text`` fallback."""

    text: str
    blocks: list[dict[str, Any]]


def answer_messages(
    markdown: str,
    sources: Sequence[Source],
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
        One message, or several when the blocks pass Slack's 50 per message or
        :data:`MESSAGE_TEXT_LIMIT` characters; buttons are on the last, and sources too
        unless they hold more than half that budget (then they follow the answer over as
        many messages as they need).

    Raises:
        ValueError: ``run_id`` is empty or longer than a button value may be (2,000).
    """
    head: list[dict[str, Any]] = []
    if notice:
        head.append(_context([truncate(to_mrkdwn(notice), SECTION_LIMIT)]))
    head.extend(_section(chunk) for chunk in split_text(to_mrkdwn(markdown)))
    tail = _source_blocks(sources)[: MAX_BLOCKS - 1]
    if sum(map(_text_size, tail)) > MESSAGE_TEXT_LIMIT // 2:  # long links: sources may spread
        head, tail = head + tail, []
    if run_id is not None:
        tail.append(_feedback_block(run_id))
    return [SlackMessage(text=_fallback(blocks), blocks=blocks) for blocks in _pages(head, tail)]


def _pages(head: list[dict[str, Any]], tail: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``head`` cut into messages within the block and text limits, ``tail`` on the last."""
    pages: list[list[dict[str, Any]]] = []
    page: list[dict[str, Any]] = []
    size = 0
    for block in head:
        grown = size + _text_size(block)
        if page and (len(page) == MAX_BLOCKS or grown > MESSAGE_TEXT_LIMIT):
            pages.append(page)
            page, grown = [], _text_size(block)
        page.append(block)
        size = grown
    tail_size = sum(map(_text_size, tail))
    if page and (len(page) + len(tail) > MAX_BLOCKS or size + tail_size > MESSAGE_TEXT_LIMIT):
        pages.append(page)
        page = []
    pages.append(page + tail)
    return pages


def _text_size(node: Any) -> int:
    """Characters of text a block holds, everywhere in it (as Slack counts them)."""
    if isinstance(node, dict):
        text = node.get("text")
        own = len(text) if isinstance(text, str) else 0
        return own + sum(_text_size(v) for k, v in node.items() if k != "text" or not own)
    if isinstance(node, list):
        return sum(_text_size(item) for item in node)
    return 0


def progress_message(status: str, partial_markdown: str = "") -> SlackMessage:
    """The message shown while an answer is being prepared.

    Args:
        status: A short status line, e.g. ":mag: Searching documents…".
        partial_markdown: The answer so far; cut to one section with a trailing "…".
    """
    blocks = [_context([truncate(escape(status), SECTION_LIMIT)])]
    text = to_mrkdwn(partial_markdown) if partial_markdown.strip() else ""
    if len(text) > SECTION_LIMIT:
        text = split_text(text, limit=SECTION_LIMIT - 2)[0]
        text += "\n…" if text.endswith(FENCE) else "…"
    if text:
        blocks.append(_section(text))
    return SlackMessage(text=_fallback(blocks), blocks=blocks)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(texts: Sequence[str]) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}


def _source_blocks(sources: Sequence[Source]) -> list[dict[str, Any]]:
    """Context blocks of up to 10 source lines and a quarter of a message's text budget."""
    groups: list[list[str]] = []
    size = 0
    for line in map(_source_line, sources):
        full = bool(groups) and len(groups[-1]) == MAX_CONTEXT_ELEMENTS
        if not groups or full or size + len(line) > MESSAGE_TEXT_LIMIT // 4:
            groups.append([])
            size = 0
        groups[-1].append(line)
        size += len(line)
    return [_context(group) for group in groups]


def _source_line(source: Source) -> str:
    """``[1] <url|Title> · p. 3 · Section``; the title alone when there is no usable URL.

    The link is where the source lives, so its location is not repeated beside it.
    """
    title = " ".join(source.title.split()) or source.url or "source"
    linked = link(source.url, truncate(title, 200)) if source.url else ""
    head = linked if 0 < len(linked) <= 2000 else escape(truncate(title, 200))
    details = [escape(truncate(" ".join(d.split()), 200)) for d in source_details(source)]
    return truncate(SEPARATOR.join([f"[{source.number}] {head}", *details]), SECTION_LIMIT)


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
    return truncate(escape(text), FALLBACK_LIMIT)
