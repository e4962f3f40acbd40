"""CPython's garbage collector, tuned for hundreds of calls in flight (``PGY_GC_THRESHOLD``).

Every call keeps a few hundred container objects alive until its answer is in: the request
and its meta, Deferreds, coroutines and futures, the HTTP client's buffers and timers. The
collector's default first threshold (700 new objects) makes it look at them long before
that, so with hundreds of calls in flight nearly all of them survive, are promoted, are
scanned again by every older collection, and fill the oldest generation, whose full
collections then scan everything in flight. At 500 ms latency and 512 calls in flight that
was about 40 % of the crawl's CPU, the one cost that grew with the calls in flight. With a
first threshold above the objects a call lives through, most of them are freed by their
reference counts before any collection sees them; the collector still runs, only less
often.

The threshold is set when the engine starts (after imports and set-up) and Python's own
is put back when it stops, so a process that runs other work keeps its own.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from pgy_spider.runtime import runtime_of

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler


class GcTuning:
    def __init__(self, crawler: Crawler) -> None:
        config = runtime_of(crawler).config
        if config is None or not config.gc_threshold:
            raise NotConfigured  # 0: Python's collector as it is
        self.threshold = config.gc_threshold
        self._saved: tuple[int, int, int] | None = None
        crawler.signals.connect(self.engine_started, signal=signals.engine_started)
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def engine_started(self) -> None:
        self._saved = gc.get_threshold()
        _, older, oldest = self._saved
        gc.set_threshold(self.threshold, older, oldest)

    def engine_stopped(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
