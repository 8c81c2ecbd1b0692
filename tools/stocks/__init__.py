"""Stock quotes and price history for the agent, with the figures worked out in code.

Data sources sit behind one Protocol, :class:`QuoteProvider`:

- :class:`YFinanceQuoteProvider` asks Yahoo Finance through ``yfinance`` (online);
- :class:`CsvQuoteProvider` reads a folder of Yahoo-style CSV files, one per ticker (offline);
- :class:`CachedQuoteProvider` wraps either and keeps results in a bytes :class:`Cache`
  (the bot's shared cache, or :class:`InMemoryTTLCache`).

:func:`make_stock_tools` turns a provider into the ``get_stock_quote`` and
``get_stock_history`` tools. The model reads figures, it never computes them: :func:`summarize`
works out change, range, moving averages, volatility and average volume.

Errors come from :mod:`tools.errors`: a :class:`~tools.errors.ToolError` for what the model
can fix (unknown ticker, bad date, empty range) and a
:class:`~tools.errors.QuotesUnavailableError` (a :class:`~tools.errors.FatalToolError`) when
the data source cannot be reached.

Modules: :mod:`~tools.stocks.quotes` (types and Protocols), :mod:`~tools.stocks.providers`
(CSV and Yahoo), :mod:`~tools.stocks.csv_bars` (CSV parsing and resampling),
:mod:`~tools.stocks.cache`, :mod:`~tools.stocks.figures`, :mod:`~tools.stocks.tool`.
"""

from tools.stocks.cache import CachedQuoteProvider, InMemoryTTLCache
from tools.stocks.figures import summarize
from tools.stocks.providers import CsvQuoteProvider, YFinanceQuoteProvider
from tools.stocks.quotes import Bar, Cache, Interval, Quote, QuoteProvider
from tools.stocks.tool import make_stock_tools

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
