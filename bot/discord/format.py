"""Discord messages for an answer: Markdown parts, a sources embed, feedback buttons, progress.

Discord caps one message at 2,000 characters of content and its embeds at 6,000 (a title
256, a description 4,096). The answer keeps its Markdown, cut to messages by
:mod:`bot.discord.split`; its sources are the platform-neutral :class:`bot.rendering.Source`
drawn as an embed, and 👍/👎 buttons carry the run. Everything here is plain data, the raw
JSON bodies of Discord's REST API, so a worker that speaks only REST sends them as they are.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.discord.split import (
    FENCE,
    MESSAGE_LIMIT,
    defuse_mentions,
    size,
    split_markdown,
    truncate,
)
from bot.language import in_language_of
from bot.rendering import SEPARATOR, Source, source_details

__all__ = [
    "EMBED_DESCRIPTION_LIMIT",
    "EMBED_TITLE_LIMIT",
    "EMBED_TOTAL_LIMIT",
    "FEEDBACK_PREFIX",
    "MESSAGE_LIMIT",
    "DiscordMessage",
    "answer_messages",
    "feedback_components",
    "parse_feedback",
    "progress_message",
    "sources_embed",
    "split_markdown",
]

EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_TOTAL_LIMIT = 6000
"""Most characters in all of one message's embeds together (titles, descriptions...)."""
FEEDBACK_PREFIX = "deskbot:feedback:"
SOURCES_TITLE = "Sources"

_VOTES = {"up": 1, "down": -1}
_STATUS_LIMIT = 200
_TITLE_CHARS = 200  # of a source's title in its line
_DETAIL_CHARS = 100  # of a page or section in a source's line
_URL_CHARS = 1000  # longer addresses are not linked
_ESCAPED_RE = re.compile(r"([\\*_~`|\[\]<>#])")


@dataclass(frozen=True)
class DiscordMessage:
    """One Discord message: Markdown ``content``, rich embeds and component rows."""

    content: str
    embeds: tuple[dict[str, Any], ...] = ()
    components: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The body for creating or editing a message, by channel or interaction webhook.

        ``embeds`` and ``components`` are always present, so an edit clears the old ones,
        and ``allowed_mentions`` is empty, so an answer never pings anyone.
        """
        return {
            "content": self.content,
            "embeds": list(self.embeds),
            "components": list(self.components),
            "allowed_mentions": {"parse": []},
        }


def answer_messages(
    markdown: str, sources: Sequence[Source], *, run_id: str | None
) -> list[DiscordMessage]:
    """Build the Discord messages for a finished answer.

    Args:
        markdown: The answer as the model wrote it.
        sources: Cited sources, drawn as an embed titled "Sources" ("출처" for a Korean answer).
        run_id: When given, 👍/👎 buttons carrying it end the last message.

    Returns:
        The answer split to :data:`MESSAGE_LIMIT` (at least one message, "…" when the answer
        is empty and nothing else would show); sources and buttons are on the last.

    Raises:
        ValueError: ``run_id`` is not a UUID.
    """
    parts = split_markdown(markdown) or [""]
    title = in_language_of(markdown, SOURCES_TITLE, "출처")
    embeds = (sources_embed(sources, title=title),) if sources else ()
    components = tuple(feedback_components(run_id)) if run_id is not None else ()
    last = parts[-1] or ("" if embeds or components else "…")
    return [DiscordMessage(part) for part in parts[:-1]] + [
        DiscordMessage(last, embeds, components)
    ]


def progress_message(status: str, partial_markdown: str = "") -> DiscordMessage:
    """The placeholder shown, and edited, while an answer is being prepared.

    Args:
        status: A short Markdown status line, e.g. "*Searching documents…*".
        partial_markdown: The answer so far: drawn as the final answer will be (an open code
            block closed), cut to what fits with a trailing "…".
    """
    head = truncate(defuse_mentions(" ".join(status.split())), _STATUS_LIMIT)
    budget = MESSAGE_LIMIT - size(head) - 2 - 2  # a blank line after it; a "\n…" at the end
    parts = split_markdown(partial_markdown, limit=budget) if partial_markdown.strip() else []
    if not parts:
        return DiscordMessage(head or "…")
    body = parts[0]
    if len(parts) > 1:
        body += "\n…" if body.endswith(FENCE) else "…"
    return DiscordMessage(f"{head}\n\n{body}" if head else body)


# --- sources and feedback ---------------------------------------------------------------


def sources_embed(sources: Sequence[Source], *, title: str = SOURCES_TITLE) -> dict[str, Any]:
    """A rich embed listing ``sources``, one line each: ``[n] [Title](url) · p. 3 · Section``.

    The title links only when the source has an http(s) address, and as on every surface the
    parts are :func:`bot.rendering.source_details`. Lines that do not fit the description's
    4,096 characters are left off, counted in a last "… +N" line.
    """
    lines = [_source_line(source) for source in sources]
    return {
        "title": truncate(title, EMBED_TITLE_LIMIT),
        "description": _fit_lines(lines, EMBED_DESCRIPTION_LIMIT),
    }


def _source_line(source: Source) -> str:
    title = _escape(truncate(" ".join(source.title.split()), _TITLE_CHARS)) or "source"
    url = (source.url or "").strip()
    if url.startswith(("http://", "https://")) and len(url) <= _URL_CHARS:
        for raw, encoded in (("(", "%28"), (")", "%29"), (" ", "%20"), ("<", "%3C"), (">", "%3E")):
            url = url.replace(raw, encoded)
        # Discord refuses a masked link whose text is itself an address: show the address.
        is_address = source.title.strip().startswith(("http://", "https://"))
        title = url if is_address else f"[{title}]({url})"
    details = [
        _escape(truncate(" ".join(d.split()), _DETAIL_CHARS)) for d in source_details(source)
    ]
    return SEPARATOR.join([f"[{source.number}] {title}", *details])


def _escape(text: str) -> str:
    """``text`` shown as written: Markdown markers backslash-escaped, mentions defused."""
    return defuse_mentions(_ESCAPED_RE.sub(r"\\\1", text))


def _fit_lines(lines: Sequence[str], limit: int) -> str:
    text = "\n".join(lines)
    if size(text) <= limit:
        return text
    kept: list[str] = []
    used = len(f"\n… +{len(lines)}")
    for line in lines:
        used += size(line) + 1
        if used > limit:
            break
        kept.append(line)
    return "\n".join([*kept, f"… +{len(lines) - len(kept)}"])


def feedback_components(run_id: str) -> list[dict[str, Any]]:
    """One action row of 👍/👎 buttons whose ids carry the run (see :func:`parse_feedback`).

    Raises:
        ValueError: ``run_id`` is not a UUID.
    """
    run = uuid.UUID(run_id)

    def button(vote: str, emoji: str) -> dict[str, Any]:
        custom_id = f"{FEEDBACK_PREFIX}{vote}:{run}"
        return {"type": 2, "style": 2, "emoji": {"name": emoji}, "custom_id": custom_id}

    return [{"type": 1, "components": [button("up", "👍"), button("down", "👎")]}]


def parse_feedback(custom_id: str) -> tuple[int, uuid.UUID] | None:
    """The vote (+1 or -1) and run of a feedback button's ``custom_id``; None if not one."""
    vote, _, run = custom_id.removeprefix(FEEDBACK_PREFIX).partition(":")
    if not custom_id.startswith(FEEDBACK_PREFIX) or vote not in _VOTES:
        return None
    try:
        return _VOTES[vote], uuid.UUID(run)
    except ValueError:
        return None
