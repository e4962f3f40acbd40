"""Progress in the log: every ``PGY_PROGRESS_INTERVAL`` seconds, how far the run is.

Modelled on Scrapy's ``LogStats``: a looping call started when the spider opens, reading
the run's accounting. ``PGY_PROGRESS_INTERVAL = 0`` switches it off.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from pgy_spider.extensions.accounting import accounting_of
from pgy_spider.runtime import runtime_of

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class ProgressLog:
    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self._task: Any = None
        self._last = (time.monotonic(), 0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = runtime_of(crawler).config
        if config is None or config.progress_interval <= 0:
            raise NotConfigured
        progress = cls(crawler, config.progress_interval)
        crawler.signals.connect(progress.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(progress.spider_closed, signal=signals.spider_closed)
        return progress

    def spider_opened(self) -> None:
        self._last = (time.monotonic(), 0)
        self._task = create_looping_call(self.log)
        self._task.start(self.interval, now=False)

    def spider_closed(self) -> None:
        if self._task is not None and self._task.running:
            self._task.stop()

    def log(self) -> None:
        accounting = accounting_of(self.crawler)
        counts = accounting.counts()
        settled = counts["seeds_read"] - counts["pending"]
        now = time.monotonic()
        then, settled_then = self._last
        rate = (settled - settled_then) / max(now - then, 1e-9) * 60
        self._last = (now, settled)
        logger.info(
            "Progress: %s/%s seeds read settled%s, %.0f seeds/min, %s written, %s failed, "
            "%s rejected, %s pending",
            settled,
            counts["seeds_read"],
            "" if accounting.reading_done else " (still reading)",
            rate,
            counts["notes_written"],
            counts["failed"],
            counts["rejected"],
            counts["pending"],
        )
