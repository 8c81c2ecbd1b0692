"""Reading Yahoo-style CSV files into daily bars, and building weeks and months from days."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from tools.errors import ToolError
from tools.stocks.quotes import Bar, Interval

__all__ = ["read_csv", "resample"]

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
_NULLS = frozenset({"", "null", "nan", "none", "n/a", "-"})

_REQUIRED = ("open", "high", "low", "close")


def read_csv(path: Path) -> list[Bar]:
    """Daily bars from one Yahoo-style file, oldest first."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = csv.reader(handle)
        columns = _columns(next(rows, []), path.name)
        parsed = [item for row in rows if (item := _parse_row(row, columns)) is not None]
    parsed.sort(key=lambda item: (item[1].date, item[0]))
    days = itertools.groupby((bar for _, bar in parsed), key=lambda bar: bar.date)
    return [_aggregate(list(group)) for _, group in days]


def _columns(header: Sequence[str], filename: str) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    columns = {name: index for index, name in enumerate(names)}
    if "date" not in columns and "datetime" in columns:
        columns["date"] = columns["datetime"]
    missing = [name for name in ("date", *_REQUIRED) if name not in columns]
    if missing:
        raise ToolError(f"{filename} lacks the column(s) {', '.join(missing)}")
    return columns


def _parse_row(row: Sequence[str], columns: Mapping[str, int]) -> tuple[str, Bar] | None:
    """(raw timestamp, bar), or None for a blank, ``null`` or malformed row."""

    def cell(name: str) -> str | None:
        index = columns.get(name)
        if index is None or index >= len(row) or row[index].strip().lower() in _NULLS:
            return None
        return row[index].strip()

    stamp = cell("date")
    day = _parse_day_cell(stamp) if stamp else None
    try:
        open_, high, low, close = (float(cell(name) or "nan") for name in _REQUIRED)
        adj_close = float(cell("adj close") or close)  # Yahoo's way when nothing is adjusted
        volume = float(cell("volume") or 0)
    except ValueError:
        return None
    prices = (open_, high, low, close, adj_close)
    if stamp is None or day is None or not all(math.isfinite(value) for value in prices):
        return None
    shares = int(volume) if math.isfinite(volume) else 0
    return stamp, Bar(day, open_, high, low, close, adj_close, shares)


def _parse_day_cell(text: str) -> dt.date | None:
    """``2024-01-31``, ``2024-01-31 00:00:00+09:00`` (the local date) or ``1/31/2024``."""
    try:
        if _ISO_DAY.match(text):
            return dt.date.fromisoformat(text[:10])
        return dt.datetime.strptime(text, "%m/%d/%Y").date()
    except ValueError:
        return None


def _aggregate(group: Sequence[Bar]) -> Bar:
    """One bar from consecutive ones: first open, highest high, lowest low, last close."""
    return Bar(
        date=group[0].date,
        open=group[0].open,
        high=max(bar.high for bar in group),
        low=min(bar.low for bar in group),
        close=group[-1].close,
        adj_close=group[-1].adj_close,
        volume=sum(bar.volume for bar in group),
    )


def resample(bars: Sequence[Bar], interval: Interval) -> list[Bar]:
    """Daily bars as weeks (ISO, Monday to Sunday) or calendar months."""
    if interval == "1d":
        return list(bars)

    def period(bar: Bar) -> tuple[int, int]:
        if interval == "1wk":
            year, week, _ = bar.date.isocalendar()
            return year, week
        return bar.date.year, bar.date.month

    return [_aggregate(list(group)) for _, group in itertools.groupby(bars, key=period)]
