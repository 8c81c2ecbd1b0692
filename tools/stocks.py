"""Stock quotes and price history for the agent, with the figures worked out in code.

Data sources sit behind one Protocol, :class:`QuoteProvider`:

- :class:`YFinanceQuoteProvider` asks Yahoo Finance through ``yfinance`` (online);
- :class:`CsvQuoteProvider` reads a folder of Yahoo-style CSV files, one per ticker (offline);
- :class:`CachedQuoteProvider` wraps either and keeps results in a bytes :class:`Cache`
  (the bot's shared cache, or :class:`InMemoryTTLCache`).

:func:`make_stock_tools` turns a provider into the ``get_stock_quote`` and
``get_stock_history`` tools. The model reads figures, it never computes them: :func:`summarize`
works out change, range, moving averages, volatility and average volume.

Errors are those of :mod:`tools.base`: a :class:`~tools.base.ToolError` for what the model can
fix (unknown ticker, bad date, empty range) and a :class:`~tools.base.FatalToolError` when the
data source cannot be reached.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import importlib
import itertools
import json
import math
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from tools.base import FatalToolError, Tool, ToolError, ToolOutput

__all__ = [
    "Bar",
    "Cache",
    "CachedQuoteProvider",
    "CsvQuoteProvider",
    "InMemoryTTLCache",
    "Interval",
    "Quote",
    "QuoteProvider",
    "YFinanceQuoteProvider",
    "make_stock_tools",
    "summarize",
]

Interval = Literal["1d", "1wk", "1mo"]

_PERIODS_PER_YEAR: dict[str, int] = {"1d": 252, "1wk": 52, "1mo": 12}
_TICKER = re.compile(r"^[A-Za-z0-9.\-^=]{1,15}$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
_NULLS = frozenset({"", "null", "nan", "none", "n/a", "-"})
_MAX_BARS_RETURNED = 60
_MAX_TABLE_ROWS = 10
_MAX_TICKERS_LISTED = 20


@dataclass(frozen=True)
class Quote:
    """The latest price of one ticker and its move since the previous close."""

    ticker: str
    price: float
    previous_close: float | None
    change: float | None
    change_pct: float | None
    as_of: dt.date
    currency: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``as_of`` as an ISO date)."""
        return {**asdict(self), "as_of": self.as_of.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quote:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "as_of": dt.date.fromisoformat(data["as_of"])})


@dataclass(frozen=True)
class Bar:
    """One period of prices: the trading day, or the first trading day of a week or month."""

    date: dt.date
    open: float
    high: float
    low: float
    close: float
    adj_close: float
    volume: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``date`` as an ISO date)."""
        return {**asdict(self), "date": self.date.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bar:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "date": dt.date.fromisoformat(data["date"])})


@runtime_checkable
class QuoteProvider(Protocol):
    """A source of quotes and daily, weekly or monthly bars.

    Both methods raise :class:`~tools.base.ToolError` for an unknown ticker or a range with
    no data, and :class:`~tools.base.FatalToolError` when the source cannot be reached.
    ``name`` identifies the source in cache keys.
    """

    name: str

    async def quote(self, ticker: str) -> Quote:
        """The latest price of ``ticker``."""
        ...

    async def history(
        self, ticker: str, start: dt.date, end: dt.date, interval: Interval = "1d"
    ) -> list[Bar]:
        """Bars from ``start`` to ``end`` (both inclusive), oldest first."""
        ...


@runtime_checkable
class Cache(Protocol):
    """Bytes by key, each with a time to live (the shape of the bot's shared cache)."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None if absent or expired."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        ...


class InMemoryTTLCache:
    """A small in-process :class:`Cache`, for the CLI and tests; oldest entries go first."""

    def __init__(
        self, *, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._items: dict[str, tuple[bytes, float]] = {}

    async def get(self, key: str) -> bytes | None:
        """The value, or None if absent or expired."""
        item = self._items.get(key)
        if item is None or item[1] <= self._clock():
            self._items.pop(key, None)
            return None
        return item[0]

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        self._items.pop(key, None)
        self._items[key] = (value, self._clock() + ttl)
        while len(self._items) > self.max_entries:
            del self._items[next(iter(self._items))]

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._items.pop(key, None)


class CachedQuoteProvider:
    """Another provider's results, kept as JSON in a :class:`Cache` for ``ttl`` seconds.

    Errors are not cached: a typo'd ticker is asked again next time.
    """

    def __init__(self, provider: QuoteProvider, cache: Cache, *, ttl: float = 300.0) -> None:
        self.provider = provider
        self.cache = cache
        self.ttl = ttl
        self.name = provider.name

    async def quote(self, ticker: str) -> Quote:
        """The latest price of ``ticker``, from the cache when fresh."""
        key = f"stocks:{self.name}:quote:{ticker}"
        cached = await self._load(key)
        if isinstance(cached, dict):
            return Quote.from_dict(cached)
        quote = await self.provider.quote(ticker)
        await self._store(key, quote.to_dict())
        return quote

    async def history(
        self, ticker: str, start: dt.date, end: dt.date, interval: Interval = "1d"
    ) -> list[Bar]:
        """Bars from ``start`` to ``end``, from the cache when fresh."""
        key = f"stocks:{self.name}:history:{ticker}:{start}:{end}:{interval}"
        cached = await self._load(key)
        if isinstance(cached, list):
            return [Bar.from_dict(item) for item in cached]
        bars = await self.provider.history(ticker, start, end, interval)
        await self._store(key, [bar.to_dict() for bar in bars])
        return bars

    async def _load(self, key: str) -> Any:
        raw = await self.cache.get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:  # written by another version, or damaged: fetch again
            return None

    async def _store(self, key: str, value: Any) -> None:
        await self.cache.set(key, json.dumps(value).encode(), ttl=self.ttl)


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
        return _resample(in_range, interval)

    def _daily_bars(self, ticker: str) -> list[Bar]:
        path = self._find(ticker)
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        bars = _read_csv(path)
        if not bars:
            raise ToolError(f"the data file for {ticker.upper()} has no usable rows")
        self._parsed[path] = (version, bars)
        return bars

    def _find(self, ticker: str) -> Path:
        if not self.folder.is_dir():
            raise FatalToolError("the stock data folder does not exist")
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
        raise FatalToolError(f"stock data provider unreachable: {exc}") from exc
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


# --- CSV reading ------------------------------------------------------------------------

_REQUIRED = ("open", "high", "low", "close")


def _read_csv(path: Path) -> list[Bar]:
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


def _resample(bars: Sequence[Bar], interval: Interval) -> list[Bar]:
    """Daily bars as weeks (ISO, Monday to Sunday) or calendar months."""
    if interval == "1d":
        return list(bars)

    def period(bar: Bar) -> tuple[int, int]:
        if interval == "1wk":
            year, week, _ = bar.date.isocalendar()
            return year, week
        return bar.date.year, bar.date.month

    return [_aggregate(list(group)) for _, group in itertools.groupby(bars, key=period)]


# --- figures ----------------------------------------------------------------------------


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


# --- tools ------------------------------------------------------------------------------


def make_stock_tools(provider: QuoteProvider) -> list[Tool]:
    """The ``get_stock_quote`` and ``get_stock_history`` tools, reading from ``provider``."""

    async def get_stock_quote(ticker: str) -> ToolOutput:
        """Latest price of a stock, ETF or index, with its change since the previous close.

        Args:
            ticker: Yahoo Finance symbol, e.g. AAPL, BRK-B, ^GSPC, 005930.KS.
        """
        quote = await provider.quote(_check_ticker(ticker))
        return ToolOutput(data=quote.to_dict(), markdown=_quote_markdown(quote))

    async def get_stock_history(
        ticker: str,
        start: str | None = None,
        end: str | None = None,
        interval: Interval = "1d",
    ) -> ToolOutput:
        """Price history of a stock, ETF or index, with figures already computed.

        Returns change %, high and low with dates, 20- and 50-bar moving averages,
        annualized volatility and average volume, plus the most recent bars.

        Args:
            ticker: Yahoo Finance symbol, e.g. AAPL, BRK-B, ^GSPC, 005930.KS.
            start: First day, YYYY-MM-DD. Default: one year before end.
            end: Last day, YYYY-MM-DD. Default: the latest day with data.
            interval: Bar size: 1d (daily), 1wk (weekly) or 1mo (monthly).
        """
        symbol = _check_ticker(ticker)
        first, last = _parse_date("start", start), _parse_date("end", end)
        if first is not None and last is not None and first > last:
            raise ToolError(f"start {first} is after end {last}")
        if last is None:
            last = (await provider.quote(symbol)).as_of
            if first is not None and first > last:
                raise ToolError(f"start {first} is after the latest day with data, {last}")
        if first is None:
            first = last - dt.timedelta(days=365)
        bars = await provider.history(symbol, first, last, interval)
        if not bars:
            raise ToolError(f"no data for {symbol} between {first} and {last}")
        return _history_output(symbol, first, last, interval, bars)

    return [Tool.from_function(get_stock_quote), Tool.from_function(get_stock_history)]


def _check_ticker(ticker: str) -> str:
    symbol = ticker.strip()
    if not _TICKER.match(symbol):
        raise ToolError(
            f"invalid ticker {ticker!r}: use a Yahoo Finance symbol of 1-15 letters, "
            "digits and . - ^ = (e.g. AAPL, BRK-B, ^GSPC)"
        )
    return symbol.upper()


def _parse_date(label: str, text: str | None) -> dt.date | None:
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        if len(value) == 10 and _ISO_DAY.match(value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise ToolError(f"{label} must be a date like 2024-01-31 (YYYY-MM-DD), got {text!r}")


def _history_output(
    ticker: str, start: dt.date, end: dt.date, interval: Interval, bars: Sequence[Bar]
) -> ToolOutput:
    summary = summarize(bars, periods_per_year=_PERIODS_PER_YEAR[interval])
    shown = bars[-_MAX_BARS_RETURNED:]
    data = {
        "ticker": ticker,
        "interval": interval,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "summary": summary,
        "bar_count": len(bars),
        "bars_returned": len(shown),
        "bars_truncated": len(shown) < len(bars),
        "bars": [_rounded(bar.to_dict()) for bar in shown],
    }
    return ToolOutput(data=data, markdown=_history_markdown(ticker, interval, summary, shown))


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def _signed(value: float | None, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:+,.2f}{suffix}"


def _quote_markdown(quote: Quote) -> str:
    currency = f" {quote.currency}" if quote.currency else ""
    return (
        f"**{quote.ticker}** {quote.price:,.2f}{currency} "
        f"({_signed(quote.change)}, {_signed(quote.change_pct, '%')}) "
        f"as of {quote.as_of.isoformat()} · source: {quote.source}"
    )


def _history_markdown(
    ticker: str, interval: str, summary: Mapping[str, Any], bars: Sequence[Bar]
) -> str:
    def figure(value: float | None, suffix: str = "") -> str:
        return "n/a" if value is None else f"{value:,.2f}{suffix}"

    lines = [
        f"**{ticker}** {summary['first_date']} to {summary['last_date']} "
        f"({summary['bar_count']} bars, {interval})",
        f"- Close {figure(summary['last_close'])} ({_signed(summary['change_pct'], '%')})",
        f"- High {figure(summary['high'])} on {summary['high_date']}; "
        f"low {figure(summary['low'])} on {summary['low_date']}",
        f"- SMA 20: {figure(summary['sma_20'])}; SMA 50: {figure(summary['sma_50'])}",
        f"- Volatility (annualized): {figure(summary['volatility_annualized_pct'], '%')}; "
        f"average volume {summary['average_volume']:,}",
        "",
        "| Date | Open | High | Low | Close | Volume |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {bar.date} | {bar.open:,.2f} | {bar.high:,.2f} | {bar.low:,.2f} "
        f"| {bar.close:,.2f} | {bar.volume:,} |"
        for bar in bars[-_MAX_TABLE_ROWS:]
    ]
    return "\n".join(lines)
