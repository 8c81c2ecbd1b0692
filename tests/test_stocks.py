"""The stock tools on small Yahoo-style CSV files written here, and the cache in front.

The provider contract runs against :class:`CsvQuoteProvider` and the same provider behind
:class:`CachedQuoteProvider`. Yahoo Finance itself is never called (no network in tests);
one test reads the real Yahoo CSVs in ``/work/shared/data`` when that folder exists.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tools.base import Tool, ToolContext, ToolError, ToolOutput
from tools.stocks import (
    Bar,
    CachedQuoteProvider,
    CsvQuoteProvider,
    InMemoryTTLCache,
    Interval,
    Quote,
    QuoteProvider,
    make_stock_tools,
    summarize,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
SHARED_STOCKS = Path("/work/shared/data/stock_mplfinance/examples/data")
SHARED_REPAIR_CASES = Path("/work/shared/data/stock_yfinance_repair_cases/tests/data")
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"

# Ten trading days over two ISO weeks (Mon 29 Jan - Fri 9 Feb 2024) and two months.
TEN_DAYS_CLOSES = [10.0, 12.0, 11.0, 13.0, 14.0, 9.0, 15.0, 16.0, 14.0, 17.0]


def weekdays(start: dt.date, count: int) -> list[dt.date]:
    days: list[dt.date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def make_bars(start: dt.date, closes: Sequence[float]) -> list[Bar]:
    """Bars on consecutive weekdays: open close-0.5, high close+1, low close-1, volume 100*n."""
    return [
        Bar(day, close - 0.5, close + 1, close - 1, close, close, 100 * (index + 1))
        for index, (day, close) in enumerate(zip(weekdays(start, len(closes)), closes, strict=True))
    ]


def write_csv(folder: Path, name: str, bars: Iterable[Bar]) -> Path:
    lines = [HEADER] + [
        f"{b.date},{b.open},{b.high},{b.low},{b.close},{b.adj_close},{b.volume}" for b in bars
    ]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """ACME: the ten days above. LONG: 520 weekdays from 2022-01-03 to 2023-12-29."""
    write_csv(tmp_path, "ACME.csv", make_bars(dt.date(2024, 1, 29), TEN_DAYS_CLOSES))
    long_closes = [100 + (i % 7) for i in range(520)]
    write_csv(tmp_path, "LONG.csv", make_bars(dt.date(2022, 1, 3), long_closes))
    return tmp_path


@pytest.fixture(params=["csv", "cached"])
def provider(request: pytest.FixtureRequest, folder: Path) -> QuoteProvider:
    csv_provider = CsvQuoteProvider(folder)
    if request.param == "csv":
        return csv_provider
    return CachedQuoteProvider(csv_provider, InMemoryTTLCache(), ttl=60)


class TestQuoteProviderContract:
    """What every QuoteProvider must do, run against each implementation we can run here."""

    async def test_quote_is_the_last_close_against_the_one_before(
        self, provider: QuoteProvider
    ) -> None:
        quote = await provider.quote("ACME")
        assert quote.ticker == "ACME"
        assert quote.price == 17.0
        assert quote.previous_close == 14.0
        assert quote.change == pytest.approx(3.0)
        assert quote.change_pct == pytest.approx(3 / 14 * 100)
        assert quote.as_of == dt.date(2024, 2, 9)

    async def test_history_keeps_both_ends_of_the_range(self, provider: QuoteProvider) -> None:
        bars = await provider.history("ACME", dt.date(2024, 1, 30), dt.date(2024, 2, 6))
        assert [bar.date for bar in bars] == [
            dt.date(2024, 1, 30),
            dt.date(2024, 1, 31),
            dt.date(2024, 2, 1),
            dt.date(2024, 2, 2),
            dt.date(2024, 2, 5),
            dt.date(2024, 2, 6),
        ]
        assert [bar.close for bar in bars] == TEN_DAYS_CLOSES[1:7]

    async def test_weekly_bars_aggregate_each_iso_week(self, provider: QuoteProvider) -> None:
        bars = await provider.history("ACME", dt.date(2024, 1, 1), dt.date(2024, 2, 29), "1wk")
        assert bars == [
            Bar(dt.date(2024, 1, 29), 9.5, 15.0, 9.0, 14.0, 14.0, 1500),
            Bar(dt.date(2024, 2, 5), 8.5, 18.0, 8.0, 17.0, 17.0, 4000),
        ]

    async def test_monthly_bars_aggregate_each_month(self, provider: QuoteProvider) -> None:
        bars = await provider.history("ACME", dt.date(2024, 1, 1), dt.date(2024, 2, 29), "1mo")
        assert bars == [
            Bar(dt.date(2024, 1, 29), 9.5, 13.0, 9.0, 11.0, 11.0, 600),
            Bar(dt.date(2024, 2, 1), 12.5, 18.0, 8.0, 17.0, 17.0, 4900),
        ]

    async def test_unknown_ticker_lists_what_exists(self, provider: QuoteProvider) -> None:
        with pytest.raises(ToolError, match=r"unknown ticker 'MSFT'; available: ACME, LONG$"):
            await provider.quote("MSFT")

    async def test_range_without_data_says_what_is_covered(self, provider: QuoteProvider) -> None:
        with pytest.raises(ToolError, match="covers 2024-01-29 to 2024-02-09"):
            await provider.history("ACME", dt.date(2030, 1, 1), dt.date(2030, 12, 31))


# --- reading CSV files ------------------------------------------------------------------


async def test_reads_a_yfinance_export_newest_first_with_a_null_row(tmp_path: Path) -> None:
    (tmp_path / "XYZ.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume,Dividends,Stock Splits\n"
        "2024-01-05 00:00:00-05:00,12.0,12.5,11.8,12.2,12.1,1500,0.0,0.0\n"
        "2024-01-04 00:00:00-05:00,null,null,null,null,null,null,0.0,0.0\n"
        "2024-01-03 00:00:00-05:00,11.0,11.4,10.9,11.3,11.2,1200,0.0,0.0\n"
        "\n"
        "2024-01-02 00:00:00-05:00,10.0,10.5,9.5,10.2,10.1,1000,0.0,0.0\n"
    )
    bars = await CsvQuoteProvider(tmp_path).history(
        "XYZ", dt.date(2024, 1, 1), dt.date(2024, 1, 31)
    )
    assert bars == [
        Bar(dt.date(2024, 1, 2), 10.0, 10.5, 9.5, 10.2, 10.1, 1000),
        Bar(dt.date(2024, 1, 3), 11.0, 11.4, 10.9, 11.3, 11.2, 1200),
        Bar(dt.date(2024, 1, 5), 12.0, 12.5, 11.8, 12.2, 12.1, 1500),
    ]


async def test_lenient_file_name_dates_and_missing_adj_close(tmp_path: Path) -> None:
    (tmp_path / "spx.CSV").write_text(
        "date,open,high,low,close,volume\n"
        "11/4/2019,3078.96,3085.2,3074.87,3078.27,524848878\n"
        "11/1/2019,3050.72,3066.95,3050.72,3066.91,510301237\n"
        "11/5/2019,,,,,\n"
    )
    quote = await CsvQuoteProvider(tmp_path).quote("SpX")
    assert (quote.ticker, quote.as_of, quote.currency, quote.source) == (
        "SPX",
        dt.date(2019, 11, 4),
        None,
        "csv",
    )
    assert (quote.price, quote.previous_close) == (3078.27, 3066.91)
    assert quote.change == pytest.approx(11.36)
    assert quote.change_pct == pytest.approx(11.36 / 3066.91 * 100)
    bars = await CsvQuoteProvider(tmp_path).history(
        "SPX", dt.date(2019, 1, 1), dt.date(2019, 12, 31)
    )
    assert [bar.adj_close for bar in bars] == [3066.91, 3078.27]


async def test_intraday_rows_are_merged_into_one_day(tmp_path: Path) -> None:
    (tmp_path / "HOURLY.csv").write_text(
        "Datetime,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-10-21 11:00:00+01:00,69.5,70,68.25,68.25,68.25,10\n"
        "2024-10-21 10:00:00+01:00,69,72,67,69.5,69.5,30\n"
    )
    bars = await CsvQuoteProvider(tmp_path).history(
        "HOURLY", dt.date(2024, 10, 21), dt.date(2024, 10, 21)
    )
    assert bars == [Bar(dt.date(2024, 10, 21), 69.0, 72.0, 67.0, 68.25, 68.25, 40)]


async def test_a_changed_file_is_read_again(folder: Path) -> None:
    provider = CsvQuoteProvider(folder)
    assert (await provider.quote("ACME")).price == 17.0
    path = write_csv(folder, "ACME.csv", make_bars(dt.date(2024, 1, 29), [*TEN_DAYS_CLOSES, 18.5]))
    later = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(later, later))
    assert (await provider.quote("ACME")).price == 18.5


async def test_a_file_without_a_close_column_is_refused(tmp_path: Path) -> None:
    (tmp_path / "BAD.csv").write_text("Date,Open,High,Low\n2024-01-02,1,2,0.5\n")
    with pytest.raises(ToolError, match="lacks the column"):
        await CsvQuoteProvider(tmp_path).quote("BAD")


async def test_at_most_twenty_tickers_are_listed(tmp_path: Path) -> None:
    for number in range(25):
        write_csv(tmp_path, f"T{number:02d}.csv", make_bars(dt.date(2024, 1, 1), [1.0]))
    with pytest.raises(ToolError) as raised:
        await CsvQuoteProvider(tmp_path).quote("NOPE")
    message = str(raised.value)
    assert "T00, T01" in message
    assert "T19 and 5 more" in message
    assert "T20" not in message


# --- summary figures --------------------------------------------------------------------


def test_summary_figures_match_a_hand_computation() -> None:
    bars = make_bars(dt.date(2024, 1, 1), [100.0, 110.0, 99.0, 105.0])
    summary = summarize(bars)
    returns = [math.log(110 / 100), math.log(99 / 110), math.log(105 / 99)]
    mean = sum(returns) / 3
    sample_sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert summary["change"] == 5.0
    assert summary["change_pct"] == 5.0
    assert (summary["high"], summary["high_date"]) == (111.0, "2024-01-02")
    assert (summary["low"], summary["low_date"]) == (98.0, "2024-01-03")
    assert summary["volatility_annualized_pct"] == pytest.approx(
        sample_sd * math.sqrt(252) * 100, abs=0.005
    )
    assert summary["average_volume"] == 250
    assert summary["sma_20"] is None
    assert summary["sma_50"] is None
    assert (summary["first_date"], summary["last_date"], summary["bar_count"]) == (
        "2024-01-01",
        "2024-01-04",
        4,
    )


def test_moving_averages_use_the_latest_closes() -> None:
    assert summarize(make_bars(dt.date(2024, 1, 1), [float(n) for n in range(1, 26)]))[
        "sma_20"
    ] == pytest.approx(15.5)
    fifty = summarize(make_bars(dt.date(2024, 1, 1), [float(n) for n in range(1, 51)]))
    assert fifty["sma_20"] == pytest.approx(40.5)
    assert fifty["sma_50"] == pytest.approx(25.5)


def test_volatility_scales_with_periods_per_year() -> None:
    bars = make_bars(dt.date(2024, 1, 1), [100.0, 110.0, 99.0, 105.0])
    daily = summarize(bars)["volatility_annualized_pct"]
    weekly = summarize(bars, periods_per_year=52)["volatility_annualized_pct"]
    assert weekly == pytest.approx(daily * math.sqrt(52 / 252), abs=0.01)


# --- the cache --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingProvider:
    """A QuoteProvider that counts calls and knows only the ticker ACME."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def quote(self, ticker: str) -> Quote:
        self.calls.append(("quote", ticker))
        if ticker != "ACME":
            raise ToolError(f"unknown ticker {ticker!r}")
        return Quote("ACME", 17.0, 14.0, 3.0, 21.43, dt.date(2024, 2, 9), "USD", "counting")

    async def history(
        self, ticker: str, start: dt.date, end: dt.date, interval: Interval = "1d"
    ) -> list[Bar]:
        self.calls.append(("history", ticker, start, end, interval))
        return [bar for bar in make_bars(start, [1.0, 2.0, 3.0]) if bar.date <= end]


async def test_a_cache_hit_does_not_ask_the_provider() -> None:
    counting = CountingProvider()
    cached = CachedQuoteProvider(counting, InMemoryTTLCache(), ttl=60)
    first = await cached.quote("ACME")
    assert await cached.quote("ACME") == first
    start, end = dt.date(2024, 1, 1), dt.date(2024, 1, 31)
    bars = await cached.history("ACME", start, end, "1d")
    assert await cached.history("ACME", start, end, "1d") == bars
    assert len(counting.calls) == 2
    await cached.history("ACME", start, end, "1wk")
    assert len(counting.calls) == 3


async def test_cached_results_expire_after_the_ttl() -> None:
    clock, counting = Clock(), CountingProvider()
    cached = CachedQuoteProvider(counting, InMemoryTTLCache(clock=clock), ttl=60)
    await cached.quote("ACME")
    clock.now += 59
    await cached.quote("ACME")
    assert len(counting.calls) == 1
    clock.now += 2
    await cached.quote("ACME")
    assert len(counting.calls) == 2


async def test_errors_are_not_cached() -> None:
    counting = CountingProvider()
    cached = CachedQuoteProvider(counting, InMemoryTTLCache(), ttl=60)
    for _ in range(2):
        with pytest.raises(ToolError):
            await cached.quote("NOPE")
    assert len(counting.calls) == 2


async def test_in_memory_cache_drops_the_oldest_entry_when_full() -> None:
    cache = InMemoryTTLCache(max_entries=2)
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode(), ttl=60)
    assert [await cache.get(key) for key in ("a", "b", "c")] == [None, b"b", b"c"]
    await cache.delete("b")
    assert await cache.get("b") is None


# --- the tools --------------------------------------------------------------------------


@pytest.fixture
def tools(folder: Path) -> dict[str, Tool]:
    return {tool.name: tool for tool in make_stock_tools(CsvQuoteProvider(folder))}


def test_tool_schemas(tools: dict[str, Tool]) -> None:
    assert sorted(tools) == ["get_stock_history", "get_stock_quote"]
    quote = tools["get_stock_quote"].schema()["function"]
    assert quote["parameters"]["required"] == ["ticker"]
    assert "Latest price" in quote["description"]
    history = tools["get_stock_history"].schema()["function"]["parameters"]
    assert history["required"] == ["ticker"]
    assert history["properties"]["interval"]["enum"] == ["1d", "1wk", "1mo"]
    assert history["properties"]["interval"]["default"] == "1d"
    assert "YYYY-MM-DD" in history["properties"]["start"]["description"]


async def test_quote_tool(tools: dict[str, Tool]) -> None:
    output = await tools["get_stock_quote"].call(ToolContext(), {"ticker": "acme"})
    assert isinstance(output, ToolOutput)
    assert output.data["ticker"] == "ACME"
    assert output.data["price"] == 17.0
    assert output.data["as_of"] == "2024-02-09"
    assert output.markdown is not None
    assert "**ACME** 17.00 (+3.00, +21.43%) as of 2024-02-09" in output.markdown


async def test_history_tool_weekly_with_summary(tools: dict[str, Tool]) -> None:
    arguments = {"ticker": "ACME", "start": "2024-01-01", "end": "2024-02-29", "interval": "1wk"}
    output = await tools["get_stock_history"].call(ToolContext(), arguments)
    data = output.data
    assert (data["ticker"], data["interval"], data["start"], data["end"]) == (
        "ACME",
        "1wk",
        "2024-01-01",
        "2024-02-29",
    )
    assert data["bars"] == [
        {"date": "2024-01-29", "open": 9.5, "high": 15.0, "low": 9.0, "close": 14.0,
         "adj_close": 14.0, "volume": 1500},
        {"date": "2024-02-05", "open": 8.5, "high": 18.0, "low": 8.0, "close": 17.0,
         "adj_close": 17.0, "volume": 4000},
    ]  # fmt: skip
    assert data["bars_truncated"] is False
    assert data["summary"]["change_pct"] == pytest.approx(21.43)
    assert "| 2024-02-05 | 8.50 | 18.00 | 8.00 | 17.00 | 4,000 |" in output.markdown


async def test_history_defaults_to_the_year_before_the_latest_data(
    tools: dict[str, Tool],
) -> None:
    output = await tools["get_stock_history"].call(ToolContext(), {"ticker": "LONG"})
    data = output.data
    assert (data["start"], data["end"]) == ("2022-12-29", "2023-12-29")
    expected_days = [
        day for day in weekdays(dt.date(2022, 12, 29), 300) if day <= dt.date(2023, 12, 29)
    ]
    assert data["bar_count"] == len(expected_days)
    assert data["bars_returned"] == 60
    assert data["bars_truncated"] is True
    assert data["bars"][-1]["date"] == "2023-12-29"
    assert data["bars"][0]["date"] == expected_days[-60].isoformat()
    assert data["summary"]["bar_count"] == len(expected_days)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"ticker": "ACME", "start": "2024-02-09", "end": "2024-01-01"}, "is after end"),
        ({"ticker": "ACME", "start": "2031-01-01"}, "after the latest day with data"),
        ({"ticker": "ACME", "start": "2030-01-01", "end": "2030-02-01"}, "no data for ACME"),
        ({"ticker": "ACME", "start": "2024-13-01"}, "start must be a date like"),
        ({"ticker": "ACME", "end": "02/09/2024"}, "end must be a date like"),
        ({"ticker": "ACME", "start": "yesterday"}, "start must be a date like"),
        ({"ticker": "ACME", "interval": "1h"}, "interval"),
        ({"ticker": "../ACME"}, "invalid ticker"),
        ({"ticker": "ACME; DROP TABLE"}, "invalid ticker"),
        ({"ticker": "A" * 16}, "invalid ticker"),
        ({"ticker": ""}, "invalid ticker"),
        ({"ticker": "MSFT"}, "available: ACME, LONG"),
    ],
)
async def test_history_tool_refuses_bad_arguments(
    tools: dict[str, Tool], arguments: dict[str, str], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        await tools["get_stock_history"].call(ToolContext(), arguments)


async def test_quote_tool_refuses_a_bad_ticker(tools: dict[str, Tool]) -> None:
    with pytest.raises(ToolError, match="invalid ticker"):
        await tools["get_stock_quote"].call(ToolContext(), {"ticker": "AAPL/../x"})


def test_importing_the_tools_does_not_import_yfinance() -> None:
    code = "import sys, tools.stocks; assert 'yfinance' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- real Yahoo files, when the shared data folder is present ---------------------------


@pytest.fixture
def yahoo_folder(tmp_path: Path) -> dict[str, list[str]]:
    """Real Yahoo files copied under ticker names; each repair case with its distinct days."""
    if not SHARED_STOCKS.is_dir():
        pytest.skip("shared stock data not present")
    shutil.copy(SHARED_STOCKS / "yahoofinance-AAPL-20040819-20180120.csv", tmp_path / "AAPL.csv")
    cases: dict[str, list[str]] = {}
    for case in sorted(SHARED_REPAIR_CASES.glob("*.csv")):
        shutil.copy(case, tmp_path / case.name)
        with case.open(newline="") as handle:
            cases[case.stem] = sorted({row[0][:10] for row in list(csv.reader(handle))[1:] if row})
    return cases


async def test_real_yahoo_files(tmp_path: Path, yahoo_folder: dict[str, list[str]]) -> None:
    provider = CsvQuoteProvider(tmp_path)
    quote = await provider.quote("AAPL")
    assert (quote.price, quote.previous_close, quote.as_of) == (
        178.460007,
        179.259995,
        dt.date(2018, 1, 19),
    )
    year = await provider.history("AAPL", dt.date(2017, 1, 1), dt.date(2017, 12, 31))
    assert len(year) == 251
    assert len(yahoo_folder) == 24
    for name, days in yahoo_folder.items():
        bars = await provider.history(name, dt.date(1990, 1, 1), dt.date(2030, 1, 1))
        assert [bar.date.isoformat() for bar in bars] == days, name
