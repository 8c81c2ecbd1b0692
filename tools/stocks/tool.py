"""The ``get_stock_quote`` and ``get_stock_history`` tools: arguments checked, figures shown."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tools.base import Tool, ToolOutput
from tools.errors import ToolError
from tools.stocks.figures import summarize
from tools.stocks.quotes import Bar, Interval, Quote, QuoteProvider

__all__ = ["make_stock_tools"]

_PERIODS_PER_YEAR: dict[str, int] = {"1d": 252, "1wk": 52, "1mo": 12}
_TICKER = re.compile(r"^[A-Za-z0-9.\-^=]{1,15}$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
_MAX_BARS_RETURNED = 60
_MAX_TABLE_ROWS = 10


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
