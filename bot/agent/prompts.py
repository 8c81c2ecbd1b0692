"""The system prompt: built in, replaced or overridden per channel by a file.

``DESKBOT_SYSTEM_PROMPT_FILE`` is either plain text (the prompt for every conversation) or
YAML (``.yml``/``.yaml``) with an optional ``default`` and per-channel prompts::

    default: |
      You are the Hanbit Robotics help desk ...
    channels:
      C0123456: |
        You answer questions about the HR policies only ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError

__all__ = ["SYSTEM_PROMPT", "Prompts", "load_prompts"]

SYSTEM_PROMPT = """\
You are deskbot, the assistant employees ask in Slack, Discord and the terminal.

How to answer:
- Answer from tool results, not from memory. For questions about the company, its policies \
or its documents, call search_documents first; for figures in the company database, \
call run_sql; for share prices, call the stock tools.
- Cite the passages you used as [1], [2], using the citation numbers search_documents \
returned. Cite only passages you actually used; never invent a citation number.
- If the documents do not contain the answer, say so plainly and do not guess.
- Use the figures the tools computed (totals, changes, averages) as they are.
- If a tool returns an error you can fix (a wrong column, a bad date), fix the call and try \
again.
- Answer in the language of the question (Korean or English). Be brief: a few sentences or \
a short list, Markdown allowed.
- Think through the problem step by step internally, but show only the answer."""


@dataclass(frozen=True)
class Prompts:
    """The default system prompt and per-channel overrides."""

    default: str = SYSTEM_PROMPT
    channels: dict[str, str] = field(default_factory=dict)

    def for_channel(self, channel_id: str | None) -> str:
        """The prompt for conversations in ``channel_id``."""
        if channel_id is not None and channel_id in self.channels:
            return self.channels[channel_id]
        return self.default


def load_prompts(path: Path | None) -> Prompts:
    """The prompts in ``path`` (text or YAML), or the built-in one; one-line error if bad."""
    if path is None:
        return Prompts()
    where = f"DESKBOT_SYSTEM_PROMPT_FILE: {path}"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} cannot be read ({exc})") from None
    if not text:
        raise ConfigError(f"{where} is empty")
    if path.suffix.lower() not in {".yml", ".yaml"}:
        return Prompts(default=text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML ({str(exc).splitlines()[0]})") from None
    return _from_mapping(data, where)


def _from_mapping(data: Any, where: str) -> Prompts:
    if not isinstance(data, dict) or not set(data) <= {"default", "channels"}:
        raise ConfigError(f"{where} must be a mapping with 'default' and/or 'channels'")
    default = data.get("default", SYSTEM_PROMPT)
    channels = data.get("channels") or {}
    if not isinstance(default, str) or not default.strip():
        raise ConfigError(f"{where}: 'default' must be non-empty text")
    if not isinstance(channels, dict) or not all(
        isinstance(v, str) and v.strip() for v in channels.values()
    ):
        raise ConfigError(f"{where}: 'channels' must map channel ids to non-empty text")
    return Prompts(default.strip(), {str(k): v.strip() for k, v in channels.items()})
