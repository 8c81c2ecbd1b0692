"""Hermes-style ``<tool_call>`` blocks in generated text, read as OpenAI ``tool_calls``.

Qwen2.5's chat template (and every model trained on it here) writes each call as::

    <tool_call>
    {"name": "search_documents", "arguments": {"query": "hotel cap"}}
    </tool_call>

:func:`parse_assistant` turns a generated assistant turn into the text around such blocks
and a list of Chat Completions ``tool_calls`` entries (plain dicts: an id, ``"type":
"function"``, the name, and the arguments as a JSON *string*, as the wire format has them).
:class:`VisibleText` is the streaming side: it passes on text as it is generated and stops
at the first ``<tool_call>``, holding back anything that may be the start of one.

Errors (this package speaks the wire format without importing ``tools``; the application
maps :class:`LocalModelError` to its own backend error at the seam)::

    FinetuneError (finetune.errors)
    └── LocalModelError              the local model could not answer
        └── MalformedToolCallError   a <tool_call> block that is not a call: bad JSON, no
                                     name, arguments not an object, an unclosed or stray tag
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from finetune.errors import FinetuneError

__all__ = [
    "CALL_CLOSE",
    "CALL_OPEN",
    "LocalModelError",
    "MalformedToolCallError",
    "ParsedTurn",
    "VisibleText",
    "parse_assistant",
]

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
_BLOCK = re.compile(re.escape(CALL_OPEN) + r"(.*?)" + re.escape(CALL_CLOSE), re.DOTALL)
_SHOWN = 120  # characters of a bad call quoted in the error


class LocalModelError(FinetuneError):
    """The local model could not answer (not loadable, a request it cannot take, bad output)."""


class MalformedToolCallError(LocalModelError):
    """The model wrote a ``<tool_call>`` block that is not a well-formed call."""


@dataclass(frozen=True)
class ParsedTurn:
    """A generated assistant turn: its text and its tool calls in wire form."""

    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def parse_assistant(text: str) -> ParsedTurn:
    """Split generated ``text`` into plain content and OpenAI-shaped tool calls.

    Several calls in one turn are kept in order, each with a fresh ``call_...`` id. The
    content is the text outside the blocks, stripped (templates put a newline before each
    block), which is also what :class:`VisibleText` shows of a turn without calls.

    Raises:
        MalformedToolCallError: a block is not JSON, not an object, has no ``name`` or
            non-object ``arguments``; or a tag is left open or closes nothing.
    """
    calls = [_call(match.group(1)) for match in _BLOCK.finditer(text)]
    rest = _BLOCK.sub("", text)
    if CALL_OPEN in rest:
        tail = rest[rest.index(CALL_OPEN) :]
        raise MalformedToolCallError(f"the model left a tool call unclosed: {_quote(tail)}")
    if CALL_CLOSE in rest:
        raise MalformedToolCallError(
            f"the model closed a tool call it never opened: {_quote(rest)}"
        )
    return ParsedTurn(rest.strip(), calls)


def _call(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedToolCallError(
            f"the model's tool call is not JSON ({exc.msg} at {exc.pos}): {_quote(body)}"
        ) from None
    if not isinstance(value, dict):
        raise MalformedToolCallError(f"the model's tool call is not an object: {_quote(body)}")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise MalformedToolCallError(f"the model's tool call has no name: {_quote(body)}")
    arguments = _arguments(value.get("arguments", {}), body)
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name.strip(), "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


def _arguments(value: Any, body: str) -> dict[str, Any]:
    """The call's arguments as an object; a JSON string holding an object is accepted too."""
    if isinstance(value, str):  # some models double-encode, as the OpenAI wire form does
        with contextlib.suppress(json.JSONDecodeError):  # a plain string: refused below
            value = json.loads(value or "{}")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedToolCallError(
            f"the model's tool call arguments are not an object: {_quote(body)}"
        )
    return value


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _SHOWN else flat[:_SHOWN] + "…")


class VisibleText:
    """The part of a generated turn people may see while it streams.

    :meth:`feed` takes each new piece of decoded text and returns what can be shown now:
    text is held back while it may still be the start of ``<tool_call>``, and from the first
    tag on nothing more is shown (the call is not prose). Leading and trailing whitespace is
    held back too, so what was shown of a text-only turn equals its stripped text.
    :meth:`finish` returns what was held back when the turn ends without a call.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._started = False
        self.in_call = False

    def feed(self, piece: str) -> str:
        """What of ``piece`` (with anything held back before it) can be shown now."""
        if self.in_call:
            return ""
        text = self._pending + piece
        if CALL_OPEN in text:
            self.in_call = True
            self._pending = ""
            return self._shown(text[: text.index(CALL_OPEN)].rstrip())
        keep = _partial_tag(text)
        body, held = text[: len(text) - keep], text[len(text) - keep :]
        stripped = body.rstrip()
        self._pending = body[len(stripped) :] + held
        return self._shown(stripped)

    def finish(self) -> str:
        """What was held back, once the turn has ended (nothing if a call began)."""
        if self.in_call:
            return ""
        text, self._pending = self._pending.rstrip(), ""
        return self._shown(text)

    def _shown(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        return text


def _partial_tag(text: str) -> int:
    """How many characters at the end of ``text`` could begin ``<tool_call>``."""
    for size in range(min(len(CALL_OPEN) - 1, len(text)), 0, -1):
        if CALL_OPEN.startswith(text[-size:]):
            return size
    return 0
