"""Quotes and bars kept in a bytes cache, in front of any provider."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from tools.stocks.quotes import Bar, Cache, Interval, Quote, QuoteProvider

__all__ = ["CachedQuoteProvider", "InMemoryTTLCache"]


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
