"""No secret reaches a log line: a filter on deskbot's log handler masks them.

Two nets, both applied to every record the handler writes (its message with the arguments
filled in, its extras, its traceback and stack):

* the values of the secrets this process was configured with: the tokens, keys and signing
  secret in :class:`~bot.settings.Settings`, and the passwords inside ``DATABASE_URL``,
  ``REDIS_URL`` and ``DESKBOT_SQL_URL`` (values under 8 characters are left alone: they
  would match ordinary words);
* the shapes of well-known credentials, whatever brought them in (a library's debug line, an
  exception's text, a user who pasted a token into a question): Slack ``xox?-`` and
  ``xapp-`` tokens, OpenAI ``sk-`` keys, Discord bot tokens, ``Bearer``/``Bot`` header
  values and the password of any ``scheme://user:password@host`` URL.

A match becomes ``[redacted]`` (a URL keeps its user: ``postgresql://app:[redacted]@db``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from bot.settings import Settings

__all__ = ["MASK", "RedactSecrets", "configured_secrets"]

MASK = "[redacted]"
_MIN_LENGTH = 8

_SHAPES = re.compile(
    r"\bxox[abeoprs]-[A-Za-z0-9-]{8,}"  # Slack bot, user, refresh ... tokens
    r"|\bxapp-\d-[A-Za-z0-9-]{8,}"  # Slack app-level tokens
    r"|\bsk-[A-Za-z0-9_-]{20,}"  # OpenAI keys (sk-, sk-proj-, sk-svcacct-)
    r"|\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"  # Discord bot tokens
    r"|(?<=\bBearer )[A-Za-z0-9._~+/-]{16,}=*"  # Authorization header values
    r"|(?<=\bBot )[A-Za-z0-9._~+/-]{16,}=*"
    # The password of scheme://user:password@host (the user is kept).
    r"|(?<=://)(?P<user>[^\s:/@]*):[^\s/@]+(?=@)"
)

# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_TRACEBACKS = logging.Formatter()


def _mask(match: re.Match[str]) -> str:
    user = match.group("user")
    return MASK if user is None else f"{user}:{MASK}"


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value ``settings`` holds: tokens and keys, and the passwords in URLs."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not isinstance(value, SecretStr):
            continue
        secret = value.get_secret_value()
        if not name.endswith("_url"):
            found.append(secret)
            continue
        try:
            parts = urlsplit(secret)
            password = parts.password
        except ValueError:
            continue
        if password:
            found.append(password)
        found += parse_qs(parts.query).get("password", [])  # libpq's ?password=
    return found


class RedactSecrets(logging.Filter):
    """Masks secrets in every record that passes (it never drops one)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first: a secret that contains another is masked whole.
        self._values = sorted({s for s in secrets if len(s) >= _MIN_LENGTH}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every known secret value and credential shape masked."""
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return _SHAPES.sub(_mask, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging would print the raw arguments
            record.msg, record.args = self.redact(f"{record.msg!s} {record.args!r}"), None
        else:
            clean = self.redact(message)
            if clean != message:
                record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # Formatters use the cached text; formatting it here lets it be masked.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in _STANDARD_ATTRS or key.startswith("_") or _plain(value):
                continue
            shown = value if isinstance(value, str) else str(value)  # as formatters show it
            clean = self.redact(shown)
            if clean != shown or isinstance(value, str):
                setattr(record, key, clean)
        return True


def _plain(value: object) -> bool:
    """A value no secret can hide in: a number, a bool or None."""
    return value is None or isinstance(value, (bool, int, float))
