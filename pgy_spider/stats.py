"""The crawl's stats collector: Scrapy's in-memory one without its per-access shim.

Scrapy 2.19's ``StatsCollector`` defines ``__getattribute__`` to wrap its methods in a
deprecation check of their ``spider`` argument. Every attribute read on the collector goes
through it, including each ``self._stats`` inside ``inc_value``, and a read that is not yet
cached raises and catches an ``AttributeError`` first. Scrapy and this project update stats
about ten times per note, so the shim was the largest single cost among stats calls.
(py-spy, 0 ms latency: ~3 % of the crawl's CPU, more than the updates themselves.)

This collector keeps the behaviour: the same methods and values, ``spider_stats`` after
the close, and the same deprecation warning when a caller still passes ``spider``.
Selected by ``STATS_CLASS`` in this project's settings.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.statscollectors import MemoryStatsCollector

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.statscollectors import StatsT


def _warn_spider(method: str) -> None:
    warnings.warn(
        f"Passing a 'spider' argument to StatsCollector.{method}() is deprecated and "
        "the argument will be removed in a future Scrapy version.",
        category=ScrapyDeprecationWarning,
        stacklevel=3,
    )


class PgyStatsCollector(MemoryStatsCollector):
    # Plain attribute access: the methods below do the spider check themselves.
    __getattribute__ = object.__getattribute__

    def get_value(self, key: str, default: Any = None, spider: Spider | None = None) -> Any:
        if spider is not None:
            _warn_spider("get_value")
        return self._stats.get(key, default)

    def get_stats(self, spider: Spider | None = None) -> StatsT:
        if spider is not None:
            _warn_spider("get_stats")
        return self._stats

    def set_value(self, key: str, value: Any, spider: Spider | None = None) -> None:
        if spider is not None:
            _warn_spider("set_value")
        self._stats[key] = value

    def set_stats(self, stats: StatsT, spider: Spider | None = None) -> None:
        if spider is not None:
            _warn_spider("set_stats")
        self._stats = stats

    def inc_value(
        self, key: str, count: int = 1, start: int = 0, spider: Spider | None = None
    ) -> None:
        if spider is not None:
            _warn_spider("inc_value")
        stats = self._stats
        stats[key] = stats.get(key, start) + count

    def max_value(self, key: str, value: Any, spider: Spider | None = None) -> None:
        if spider is not None:
            _warn_spider("max_value")
        stats = self._stats
        stats[key] = max(stats.setdefault(key, value), value)

    def min_value(self, key: str, value: Any, spider: Spider | None = None) -> None:
        if spider is not None:
            _warn_spider("min_value")
        stats = self._stats
        stats[key] = min(stats.setdefault(key, value), value)

    def clear_stats(self, spider: Spider | None = None) -> None:
        if spider is not None:
            _warn_spider("clear_stats")
        self._stats.clear()

    def open_spider(self, spider: Spider | None = None) -> None:
        if spider is not None:
            _warn_spider("open_spider")

    def close_spider(self, spider: Spider | None = None, reason: str | None = None) -> None:
        if spider is not None:
            _warn_spider("close_spider")
        super().close_spider(reason=reason)
