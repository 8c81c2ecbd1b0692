"""The data types of the stock tools and the two seams they sit behind.

:class:`QuoteProvider` is where quotes and bars come from; :class:`Cache` is where a
:class:`~tools.stocks.cache.CachedQuoteProvider` keeps them (the bot's shared cache has this
shape).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["Bar", "Cache", "Interval", "Quote", "QuoteProvider"]

Interval = Literal["1d", "1wk", "1mo"]


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

    Both methods raise :class:`~tools.errors.ToolError` for an unknown ticker or a range with
    no data, and :class:`~tools.errors.QuotesUnavailableError` when the source cannot be
    reached.
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
