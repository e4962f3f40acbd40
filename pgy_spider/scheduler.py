"""A scheduler that keeps requests in memory, even with JOBDIR, and costs little per request.

Resuming is done by the run's accounting (its resume state in JOBDIR): it re-issues the
notes left pending and continues the seed files from a cursor. Scrapy's disk queues would
re-issue the same requests a second time, so they are not used.

It serves requests in the order Scrapy's default scheduler does (higher ``priority`` first;
within one priority, requests made while crawling newest first, then start requests in the
order they came), without the priority-queue classes behind it. Those pick the download slot
with the fewest requests in flight, and build a queue object per priority and slot: work done
on every request that buys nothing for a crawl of one API host, and was ~4 % of a busy
crawl's CPU. It implements Scrapy's public ``BaseScheduler`` interface; the
``SCHEDULER_*_QUEUE`` settings do not apply. The dupefilter (``DUPEFILTER_CLASS``) and the
``scheduler/*`` stats are Scrapy's.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING

from scrapy.core.scheduler import BaseScheduler
from scrapy.utils.misc import build_from_crawler, load_object

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.dupefilters import BaseDupeFilter
    from scrapy.statscollectors import StatsCollector
    from twisted.internet.defer import Deferred


class _Level:
    """The requests of one priority: those made while crawling, and start requests."""

    __slots__ = ("later", "start")

    def __init__(self) -> None:
        self.later: deque[Request] = deque()  # popped newest first (Scrapy's LIFO default)
        self.start: deque[Request] = deque()  # popped oldest first (Scrapy's start FIFO)


class MemoryScheduler(BaseScheduler):
    def __init__(self, dupefilter: BaseDupeFilter, stats: StatsCollector) -> None:
        self.df = dupefilter
        self._stats = stats
        self._levels: dict[int, _Level] = {}
        self._order: list[int] = []  # a heap of -priority, one entry per level held
        self._count = 0
        self._spider: Spider | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        dupefilter_cls = load_object(crawler.settings["DUPEFILTER_CLASS"])
        assert crawler.stats is not None
        return cls(build_from_crawler(dupefilter_cls, crawler), crawler.stats)

    def open(self, spider: Spider) -> Deferred[None] | None:
        self._spider = spider
        return self.df.open()

    def close(self, reason: str) -> Deferred[None] | None:
        return self.df.close(reason)

    def has_pending_requests(self) -> bool:
        return self._count > 0

    def __len__(self) -> int:
        return self._count

    def enqueue_request(self, request: Request) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self._spider)  # type: ignore[arg-type]
            return False
        key = -request.priority
        level = self._levels.get(key)
        if level is None:
            level = self._levels[key] = _Level()
            heapq.heappush(self._order, key)
        if request.meta.get("is_start_request"):
            level.start.append(request)
        else:
            level.later.append(request)
        self._count += 1
        stats = self._stats
        stats.inc_value("scheduler/enqueued/memory")
        stats.inc_value("scheduler/enqueued")
        return True

    def next_request(self) -> Request | None:
        if not self._count:
            return None
        key = self._order[0]
        level = self._levels[key]
        request = level.later.pop() if level.later else level.start.popleft()
        if not level.later and not level.start:
            heapq.heappop(self._order)
            del self._levels[key]
        self._count -= 1
        stats = self._stats
        stats.inc_value("scheduler/dequeued/memory")
        stats.inc_value("scheduler/dequeued")
        return request
