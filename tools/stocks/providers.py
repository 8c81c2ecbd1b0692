"""Where quotes come from: Yahoo-style CSV files offline, or Yahoo Finance online.

Both raise :class:`~tools.errors.ToolError` for an unknown ticker or a range with no data,
and :class:`~tools.errors.QuotesUnavailableError` when the source cannot be reached or read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.errors import QuotesUnavailableError, ToolError
from tools.stocks.csv_bars import read_csv, resample
from tools.stocks.quotes import Bar, Interval, Quote

__all__ = ["CsvQuoteProvider", "YFinanceQuoteProvider"]

_MAX_TICKERS_LISTED = 20


class CsvQuoteProvider:
    """Yahoo-style CSV files in ``folder``, one per ticker (``AAPL.csv``), read offline.

    Columns ``Date,Open,High,Low,Close,Adj Close,Volume`` (any case, extra columns ignored;
    ``Adj Close`` and ``Volume`` optional). Rows with blank or ``null`` prices are skipped,
    rows come out sorted by date, and several rows on one day (intraday data) are merged
    into one daily bar. Parsed files are kept in memory until they change on disk.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = f"csv:{folder}"
        self._parsed: dict[Path, tuple[tuple[int, int], list[Bar]]] = {}

    async def quote(self, ticker: str) -> Quote:
        """The last bar's close, against the bar before it."""
        bars = await asyncio.to_thread(self._daily_bars, ticker)
        return _quote_from_bars(ticker.upper(), bars, currency=None, source="csv")

    async def history(
        self, ticker: str, start: dt.date, end: dt.date, interval: Interval = "1d"
    ) -> list[Bar]:
        """Bars from ``start`` to ``end`` (inclusive); weeks and months built from days."""
        bars = await asyncio.to_thread(self._daily_bars, ticker)
        in_range = [bar for bar in bars if start <= bar.date <= end]
        if not in_range:
            raise ToolError(
                f"no data for {ticker.upper()} between {start} and {end}; "
                f"it covers {bars[0].date} to {bars[-1].date}"
            )
        return resample(in_range, interval)

    def _daily_bars(self, ticker: str) -> list[Bar]:
        path = self._find(ticker)
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        bars = read_csv(path)
        if not bars:
            raise ToolError(f"the data file for {ticker.upper()} has no usable rows")
        self._parsed[path] = (version, bars)
        return bars

    def _find(self, ticker: str) -> Path:
        if not self.folder.is_dir():
            raise QuotesUnavailableError("the stock data folder does not exist")
        files = {
            path.stem.upper(): path
            for path in self.folder.iterdir()
            if path.suffix.lower() == ".csv" and path.is_file()
        }
        path = files.get(ticker.upper())
        if path is None:
            raise ToolError(_unknown_ticker(ticker, sorted(files)))
        return path


class YFinanceQuoteProvider:
    """Yahoo Finance through ``yfinance`` (online); each request runs in a worker thread."""

    name = "yfinance"

    async def quote(self, ticker: str) -> Quote:
        """The latest daily close against the one before it, with the listing's currency."""
        return await asyncio.to_thread(self._quote, ticker)

    async def history(
        self, ticker: str, start: dt.date, end: dt.date, interval: Interval = "1d"
    ) -> list[Bar]:
        """Bars from ``start`` to ``end`` (inclusive), as Yahoo builds them."""
        return await asyncio.to_thread(self._history, ticker, start, end, interval)

    def _quote(self, ticker: str) -> Quote:
        handle = _yf_ticker(ticker)
        bars = _yf_bars(handle, ticker, period="5d", interval="1d")
        currency = handle.history_metadata.get("currency")
        return _quote_from_bars(
            ticker, bars, currency=str(currency) if currency else None, source=self.name
        )

    def _history(self, ticker: str, start: dt.date, end: dt.date, interval: str) -> list[Bar]:
        handle = _yf_ticker(ticker)
        # yfinance's end is exclusive; ours is inclusive.
        stop = end + dt.timedelta(days=1)
        return _yf_bars(
            handle, ticker, start=start.isoformat(), end=stop.isoformat(), interval=interval
        )


def _yf_ticker(ticker: str) -> Any:
    # Imported here so that importing tools stays fast; through import_module, because
    # yfinance ships no type information (everything from it is Any).
    yf: Any = importlib.import_module("yfinance")
    # By default yfinance logs failures and returns an empty frame, which makes "network
    # down" look like "unknown ticker"; raising lets the two be told apart.
    yf.config.debug.hide_exceptions = False
    return yf.Ticker(ticker)


def _yf_bars(handle: Any, ticker: str, **query: Any) -> list[Bar]:
    errors: Any = importlib.import_module("yfinance.exceptions")
    try:
        frame = handle.history(auto_adjust=False, actions=False, **query)
    except errors.YFTickerMissingError:
        raise ToolError(f"unknown ticker {ticker!r}, or no data for that range") from None
    except Exception as exc:  # the edge: HTTP libraries raise many types
        raise QuotesUnavailableError(f"stock data provider unreachable: {exc}") from exc
    bars = []
    for stamp, row in frame.iterrows():
        open_, high, low, close, adj_close, volume = (
            float(row[name]) for name in ("Open", "High", "Low", "Close", "Adj Close", "Volume")
        )
        if all(math.isfinite(price) for price in (open_, high, low, close, adj_close)):
            shares = int(volume) if math.isfinite(volume) else 0
            bars.append(Bar(stamp.date(), open_, high, low, close, adj_close, shares))
    if not bars:
        raise ToolError(f"unknown ticker {ticker!r}, or no data for that range")
    return bars


def _unknown_ticker(ticker: str, available: Sequence[str]) -> str:
    if not available:
        return f"unknown ticker {ticker!r}: no tickers are available"
    shown = ", ".join(available[:_MAX_TICKERS_LISTED])
    more = len(available) - _MAX_TICKERS_LISTED
    suffix = f" and {more} more" if more > 0 else ""
    return f"unknown ticker {ticker!r}; available: {shown}{suffix}"


def _quote_from_bars(
    ticker: str, bars: Sequence[Bar], *, currency: str | None, source: str
) -> Quote:
    last = bars[-1]
    previous = bars[-2].close if len(bars) > 1 else None
    change = last.close - previous if previous is not None else None
    change_pct = change / previous * 100 if change is not None and previous else None
    return Quote(ticker, last.close, previous, change, change_pct, last.date, currency, source)
