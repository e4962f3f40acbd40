"""The project's scheduler (pgy_spider/scheduler.py): Scrapy's request order, in memory."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request
from scrapy.core.scheduler import BaseScheduler, Scheduler
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy.utils.test import get_crawler

from pgy_spider import settings as project_settings
from pgy_spider.scheduler import MemoryScheduler
from pgy_spider.spiders.note_detail import NoteDetailSpider


def _scheduler(cls: type[BaseScheduler], **settings: Any) -> tuple[BaseScheduler, Any]:
    crawler = get_crawler(
        NoteDetailSpider,
        {
            "SCHEDULER": f"{cls.__module__}.{cls.__name__}",
            # Scrapy's default picks among download slots through the engine's downloader,
            # which an engine-less crawler lacks; for the one host here it is this order.
            "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.ScrapyPriorityQueue",
            **settings,
        },
    )
    crawler.spider = NoteDetailSpider.from_crawler(crawler, ids="0" * 24)
    scheduler = build_from_crawler(load_object(crawler.settings["SCHEDULER"]), crawler)
    scheduler.open(crawler.spider)
    return scheduler, crawler


def _request(n: int, priority: int, start: bool) -> Request:
    meta = {"n": n, "is_start_request": True} if start else {"n": n}
    return Request(f"https://api.example/x?n={n}", priority=priority, meta=meta, dont_filter=True)


def _run(cls: type[BaseScheduler], script: list[tuple[str, int, bool]]) -> list[int | None]:
    scheduler, _ = _scheduler(cls)
    served: list[int | None] = []
    for n, (op, priority, start) in enumerate(script):
        if op == "push":
            assert scheduler.enqueue_request(_request(n, priority, start))
        else:
            request = scheduler.next_request()
            served.append(None if request is None else request.meta["n"])
            assert scheduler.has_pending_requests() == (len(scheduler) > 0)  # type: ignore[arg-type]
    while scheduler.has_pending_requests():
        request = scheduler.next_request()
        assert request is not None
        served.append(request.meta["n"])
    assert scheduler.next_request() is None
    return served


def test_the_project_schedules_with_it() -> None:
    assert project_settings.SCHEDULER == "pgy_spider.scheduler.MemoryScheduler"


@pytest.mark.parametrize("seed", range(20))
def test_serves_requests_in_scrapys_order(seed: int) -> None:
    # Pushes (retries at priority -1, start requests, requests made while crawling) and pops
    # interleaved at random: the same order as Scrapy's own scheduler, Nones included.
    rnd = random.Random(seed)
    script = [
        ("push" if rnd.random() < 0.6 else "pop", rnd.choice((-1, 0, 0, 1)), rnd.random() < 0.5)
        for _ in range(300)
    ]
    ours = _run(MemoryScheduler, script)
    assert ours == _run(Scheduler, script)
    assert sorted(n for n in ours if n is not None) == [
        n for n, (op, _, _) in enumerate(script) if op == "push"
    ]


def test_higher_priority_first_then_newest_then_start_requests_oldest_first() -> None:
    script = [
        ("push", 0, True),  # 0
        ("push", 0, True),  # 1
        ("push", 0, False),  # 2
        ("push", 0, False),  # 3
        ("push", -1, False),  # 4: a retry
        ("push", 5, True),  # 5
    ]
    assert _run(MemoryScheduler, script) == [5, 3, 2, 0, 1, 4]


def test_keeps_scrapys_stats() -> None:
    counts = []
    for cls in (MemoryScheduler, Scheduler):
        scheduler, crawler = _scheduler(cls)
        for n in range(3):
            scheduler.enqueue_request(_request(n, 0, n == 0))
        scheduler.next_request()
        scheduler.next_request()
        counts.append(
            {k: v for k, v in crawler.stats.get_stats().items() if k.startswith("scheduler/")}
        )
    assert (
        counts[0]
        == counts[1]
        == {
            "scheduler/enqueued/memory": 3,
            "scheduler/enqueued": 3,
            "scheduler/dequeued/memory": 2,
            "scheduler/dequeued": 2,
        }
    )


def test_drops_what_the_dupefilter_has_seen() -> None:
    scheduler, crawler = _scheduler(
        MemoryScheduler, DUPEFILTER_CLASS="scrapy.dupefilters.RFPDupeFilter"
    )
    assert scheduler.enqueue_request(Request("https://site.example/seeds.txt"))
    assert not scheduler.enqueue_request(Request("https://site.example/seeds.txt"))
    assert scheduler.enqueue_request(Request("https://site.example/seeds.txt", dont_filter=True))
    assert len(scheduler) == 2  # type: ignore[arg-type]
    assert crawler.stats.get_value("dupefilter/filtered") == 1


def test_writes_no_request_queue_to_jobdir(tmp_path: Path) -> None:
    # The run's accounting resumes a job; a disk queue would re-issue its requests twice.
    scheduler, _ = _scheduler(MemoryScheduler, JOBDIR=str(tmp_path))
    for n in range(5):
        scheduler.enqueue_request(_request(n, 0, True))
    scheduler.close("shutdown")
    assert not (tmp_path / "requests.queue").exists()
    assert len(scheduler) == 5  # type: ignore[arg-type]
