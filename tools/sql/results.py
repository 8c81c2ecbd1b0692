"""What comes back from the database, made fit for the model and for people.

Database values become JSON (long text and bytes shortened), rows become a Markdown table,
and driver errors become one line the model can act on.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

__all__ = [
    "db_message",
    "first_line",
    "json_safe",
    "markdown_table",
    "pg_message",
    "short",
    "timed_out",
]

_MAX_CELL_CHARS = 1_000
_MAX_MARKDOWN_ROWS = 30


def json_safe(value: Any) -> Any:
    """A JSON-serialisable version of a database value."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return short(value, _MAX_CELL_CHARS)
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return f"<{len(data)} bytes: {data[:16].hex()}{'...' if len(data) > 16 else ''}>"
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return short(str(value), _MAX_CELL_CHARS)


def markdown_table(columns: list[str], rows: list[list[Any]], *, truncated: bool) -> str:
    if not columns:
        return "_The query returned no columns._"

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return short(text.replace("\n", " ").replace("|", "\\|"), 60)

    lines = [
        "| " + " | ".join(cell(c) for c in columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows[:_MAX_MARKDOWN_ROWS]),
    ]
    shown = min(len(rows), _MAX_MARKDOWN_ROWS)
    note = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    if shown < len(rows):
        note += f", first {shown} shown"
    if truncated:
        note += " (row limit reached: more rows exist)"
    return "\n".join(lines) + f"\n\n_{note}_"


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def pg_message(exc: Any) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    hint = getattr(diag, "message_hint", None)
    message = str(primary) if primary else first_line(exc)
    return f"{message} (hint: {first_line(Exception(hint))})" if hint else message


def db_message(exc: sa.exc.DBAPIError) -> str:
    return first_line(exc.orig) if exc.orig is not None else first_line(exc)


def timed_out(timeout: float) -> str:
    return f"the query ran longer than {timeout:g} s and was cancelled; add filters or a LIMIT"
