"""The built-in system prompt; ``DESKBOT_SYSTEM_PROMPT_FILE`` replaces it."""

from __future__ import annotations

from pathlib import Path

from bot.errors import ConfigError

__all__ = ["SYSTEM_PROMPT", "load_system_prompt"]

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
- Think through the problem step by step internally, but show only the answer.
"""


def load_system_prompt(path: Path | None) -> str:
    """The prompt in ``path``, or the built-in one; a clear error if it cannot be read."""
    if path is None:
        return SYSTEM_PROMPT
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"DESKBOT_SYSTEM_PROMPT_FILE: cannot read {path} ({exc})") from None
    if not text:
        raise ConfigError(f"DESKBOT_SYSTEM_PROMPT_FILE: {path} is empty")
    return text
