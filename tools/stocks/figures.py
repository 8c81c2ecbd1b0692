"""Figures worked out in code from a run of bars, so the model never does arithmetic."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Any

from tools.stocks.quotes import Bar

__all__ = ["summarize"]


def summarize(bars: Sequence[Bar], *, periods_per_year: int = 252) -> dict[str, Any]:
    """Figures for a run of bars (oldest first), so the model never does arithmetic.

    Change is from the first bar's close to the last's. High and low are the highest high
    and lowest low, with the date of their first occurrence. ``sma_20``/``sma_50`` are the
    simple moving averages of the last 20/50 closes (None with fewer bars). Volatility is the
    sample standard deviation of log returns between closes, times
    ``sqrt(periods_per_year)``, in percent (None with fewer than 3 bars).

    Raises:
        ValueError: ``bars`` is empty.
    """
    if not bars:
        raise ValueError("summarize needs at least one bar")
    first, last = bars[0], bars[-1]
    highest = max(bars, key=lambda bar: bar.high)
    lowest = min(bars, key=lambda bar: bar.low)
    closes = [bar.close for bar in bars]
    change = last.close - first.close
    return {
        "first_date": first.date.isoformat(),
        "last_date": last.date.isoformat(),
        "bar_count": len(bars),
        "first_close": round(first.close, 4),
        "last_close": round(last.close, 4),
        "change": round(change, 4),
        "change_pct": round(change / first.close * 100, 2) if first.close else None,
        "high": round(highest.high, 4),
        "high_date": highest.date.isoformat(),
        "low": round(lowest.low, 4),
        "low_date": lowest.date.isoformat(),
        "sma_20": _moving_average(closes, 20),
        "sma_50": _moving_average(closes, 50),
        "volatility_annualized_pct": _volatility(closes, periods_per_year),
        "average_volume": round(statistics.fmean(bar.volume for bar in bars)),
    }


def _moving_average(closes: Sequence[float], window: int) -> float | None:
    return round(statistics.fmean(closes[-window:]), 4) if len(closes) >= window else None


def _volatility(closes: Sequence[float], periods_per_year: int) -> float | None:
    if len(closes) < 3 or min(closes) <= 0:
        return None
    returns = [math.log(now / before) for before, now in itertools.pairwise(closes)]
    return round(statistics.stdev(returns) * math.sqrt(periods_per_year) * 100, 2)
