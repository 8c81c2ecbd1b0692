"""The demo stock prices: Yahoo-style daily CSV files of synthetic prices."""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

DEMO_STOCK_END = date(2026, 11, 27)
"""The last trading day in the demo stock files (a Friday)."""


@dataclass(frozen=True)
class _Ticker:
    """A synthetic stock: starting price, daily drift and volatility, typical volume."""

    symbol: str
    name: str
    seed: int
    start: float
    drift: float
    volatility: float
    volume: int


_TICKERS = [
    _Ticker("HNBT", "Hanbit Robotics (fictional)", 1001, 52.40, 0.0007, 0.021, 850_000),
    _Ticker("DSKB", "Deskbot Systems (fictional)", 1002, 18.75, 0.0002, 0.032, 2_400_000),
    _Ticker("KRBT", "Korea Robot Parts (fictional)", 1003, 7.30, -0.0003, 0.027, 5_100_000),
    _Ticker("DEMO-IDX", "Demo robotics index (fictional)", 1004, 1000.00, 0.0003, 0.009, 0),
]
_STOCK_HEADER = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
_STOCK_README = """\
Synthetic demo data: these prices are NOT real market data.

Every ticker here belongs to a fictional company or index made up for the deskbot demo.
The daily prices are a seeded geometric random walk over business days (Monday to Friday,
holidays ignored) from {first} to {last}; Adj Close equals Close (no dividends or splits).

{tickers}
"""


def write_demo_stocks(folder: Path) -> list[Path]:
    """Write Yahoo-style daily price files ``TICKER.csv`` and a README.txt into ``folder``.

    Each CSV has the header ``Date,Open,High,Low,Close,Adj Close,Volume`` and one row per
    business day for two years ending on :data:`DEMO_STOCK_END`.

    Args:
        folder: Where to write; created if missing.

    Returns:
        The CSV files, one per ticker, then the README.
    """
    folder.mkdir(parents=True, exist_ok=True)
    days = _business_days(DEMO_STOCK_END.replace(year=DEMO_STOCK_END.year - 2), DEMO_STOCK_END)
    paths = [_write_ticker(folder, ticker, days) for ticker in _TICKERS]
    readme = folder / "README.txt"
    tickers = "\n".join(f"{ticker.symbol}: {ticker.name}" for ticker in _TICKERS)
    text = _STOCK_README.format(first=days[0], last=days[-1], tickers=tickers)
    readme.write_bytes(text.encode("utf-8"))
    return [*paths, readme]


def _business_days(after: date, last: date) -> list[date]:
    """Monday-to-Friday dates in ``(after, last]``."""
    days = [after + timedelta(days=offset) for offset in range(1, (last - after).days + 1)]
    return [day for day in days if day.weekday() < 5]


def _write_ticker(folder: Path, ticker: _Ticker, days: list[date]) -> Path:
    path = folder / f"{ticker.symbol}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(_STOCK_HEADER)
        writer.writerows(_price_rows(ticker, days))
    return path


def _price_rows(ticker: _Ticker, days: list[date]) -> Iterator[list[str]]:
    rng = random.Random(ticker.seed)  # noqa: S311 - reproducible sample data, not secrets
    close = ticker.start
    for day in days:
        open_ = _cents(close * math.exp(rng.gauss(0.0, ticker.volatility * 0.3)))
        move = rng.gauss(ticker.drift, ticker.volatility)
        close = _cents(open_ * math.exp(move))
        high = _cents(max(open_, close) * (1 + abs(rng.gauss(0.0, ticker.volatility * 0.5))))
        low = _cents(min(open_, close) * (1 - abs(rng.gauss(0.0, ticker.volatility * 0.5))))
        # Rounding may not move high below, or low above, the open and close.
        high, low = max(high, open_, close), max(0.01, min(low, open_, close))
        volume = round(ticker.volume * (1 + 12 * abs(move)) * math.exp(rng.gauss(0.0, 0.3)))
        cells = [f"{value:.2f}" for value in (open_, high, low, close, close)]
        yield [day.isoformat(), *cells, str(volume)]


def _cents(value: float) -> float:
    return max(0.01, round(value, 2))
