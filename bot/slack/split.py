"""Slack mrkdwn cut to Block Kit's limits, and read back as plain text.

A section block holds at most 3,000 characters, and a cut must not break what Slack
parses as a unit (a ``<url|text>`` link, an entity, a code fence, a one-line ``*bold*``
span, a character and its combining marks). Plain text is for notification fallbacks
and logs.
"""

from __future__ import annotations

import re

from bot.slack.mrkdwn import FENCE, ZWSP, unescape
from bot.text_layout import joins_previous

__all__ = ["SECTION_LIMIT", "plain_text", "split_text", "truncate"]

SECTION_LIMIT = 3000
"""Most characters Slack accepts in one section block's text."""

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
        out.append(unescape(match.group(1) if match.group(1) is not None else match.group(2)))
        last = match.end()
    out.append(_plain_segment(mrkdwn[last:]))
    return "".join(out).strip()


def _plain_segment(text: str) -> str:
    text = _LINK_RE.sub(lambda m: m.group(2) or m.group(1), text)
    for _ in range(3):  # nested markers, e.g. *_both_*
        for pattern in _EMPHASIS_RES:
            text = pattern.sub(r"\1", text)
    text = re.sub(r"^>[ ]?", "", text, flags=re.MULTILINE)
    return unescape(text.replace(ZWSP, ""))


# --- splitting --------------------------------------------------------------------------

_ATOMIC_RE = re.compile(r"<[^<>\n]*>|&(?:amp|lt|gt);|```")
_BREAKS = [
    re.compile(r"(?P<sep>\n\n+)"),
    re.compile(r"(?P<sep>\n)"),
    re.compile(r"[.!?。！？…][\"')\]]?(?P<sep> +)"),
    re.compile(r"(?P<sep> +)"),
]
_REOPEN = FENCE + "\n"
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
            chunk += "\n" + FENCE
            closer_next = rest.startswith(FENCE)
            rest = rest.removeprefix(FENCE).lstrip("\n") if closer_next else _REOPEN + rest
        chunks.append(chunk)
    chunks.append(rest)
    return [chunk for chunk in chunks if chunk.strip()]


def _inside_fence(text: str, cut: int) -> bool:
    return text.count(FENCE, 0, cut) % 2 == 1


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
        if joins_previous(text[index]) or text[index - 1] == "\u200d":
            blocked.add(index)
    return blocked


def _hard_cut(budget: int, blocked: set[int], floor: int) -> int:
    cut = budget
    while cut > floor and cut in blocked:
        cut -= 1
    return budget if cut in blocked or cut <= floor else cut


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters with a trailing "…", never inside an entity or link."""
    if len(text) <= limit:
        return text
    cut = _hard_cut(limit - 1, _blocked_positions(text, limit - 1), 0)
    return text[:cut].rstrip() + "…"
