"""A Scrapy extension for the memory run only: close the crawl once the spider has read every
seed of the seed file, so that 1,000,000 seeds need not become 900,000 API calls.

Enabled by ``SCRAPY_SETTINGS_MODULE=bench.memory_settings`` and ``-s BENCH_STOP_AFTER_SEEDS=N``
(and optionally ``-s BENCH_STOP_AFTER_SECONDS=T``, a bound for a spider that reads its seeds only
as fast as it calls the API). It reads how many seeds the run has read from the project's run
bookkeeping (``seeds_read``; see ``seeds_read()``, the one place that knows where it lives); it
changes nothing in the crawl until it stops it (reason ``bench_seeds_read`` or
``bench_time_limit``). At that moment it records in the stats how long reading took and the
process's peak RSS so far.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)
CLOSE_REASON = "bench_seeds_read"
TIME_LIMIT_REASON = "bench_time_limit"


def seeds_read(crawler: Crawler) -> int:
    """Seeds read so far, from the run's accounting (the one place that counts them)."""
    from pgy_spider.extensions.accounting import RunAccounting

    accounting = crawler.get_extension(RunAccounting)
    return int(accounting.counts()["seeds_read"]) if accounting is not None else 0


class StopWhenSeedsRead:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.target = crawler.settings.getint("BENCH_STOP_AFTER_SEEDS", 0)
        if self.target <= 0:
            raise NotConfigured("BENCH_STOP_AFTER_SEEDS is not set")
        self.time_limit = crawler.settings.getfloat("BENCH_STOP_AFTER_SECONDS", 0.0)
        self._task: asyncio.Future[Any] | None = None
        self._closing: asyncio.Future[Any] | None = None
        crawler.signals.connect(self._opened, signal=signals.spider_opened)
        crawler.signals.connect(self._closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _opened(self) -> None:
        self._task = asyncio.ensure_future(self._watch())

    def _closed(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        started = time.monotonic()
        stats = self.crawler.stats
        assert stats is not None
        reason = CLOSE_REASON
        while True:
            await asyncio.sleep(0.1)
            read = seeds_read(self.crawler)
            if read >= self.target:
                break
            if self.time_limit and time.monotonic() - started > self.time_limit:
                reason = TIME_LIMIT_REASON
                break
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stats.set_value("bench/seeds_read", read)
        stats.set_value("bench/read_seconds", round(time.monotonic() - started, 3))
        stats.set_value("bench/peak_rss_at_stop_bytes", peak_kib * 1024)
        logger.info(
            "bench: %s seeds read in %.1fs; closing (%s)", read, time.monotonic() - started, reason
        )
        engine = self.crawler.engine
        assert engine is not None
        # Not awaited here: spider_closed cancels this task, which must not cancel the close.
        self._task = None
        self._closing = asyncio.ensure_future(engine.close_spider_async(reason=reason))
