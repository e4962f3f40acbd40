"""In-process tests of the run's shared state: one per crawler, stops, stores, paths."""

from __future__ import annotations

import asyncio

from scrapy import Spider, signals

from pgy_spider.runtime import feed_uri_params, runtime_of
from pgy_spider.storage import StorageOutcome
from tests.support.components import project_crawler


class _Store:
    def __init__(self, refresh: bool) -> None:
        self.refresh_enabled = refresh

    async def find_fresh(self, note_ids: list[str]) -> set[str]:
        return set(note_ids[:1])

    def outcome(self) -> StorageOutcome:
        return StorageOutcome("test", lost=1)


def test_one_runtime_per_crawler() -> None:
    crawler = project_crawler()
    assert runtime_of(crawler) is runtime_of(crawler)
    assert runtime_of(project_crawler()) is not runtime_of(crawler)


def test_the_first_stop_wins() -> None:
    crawler = project_crawler()
    runtime = runtime_of(crawler)
    assert not runtime.stopping

    async def stop_twice() -> None:
        runtime.stop("pgy_seed_error", "the seed file changed")
        runtime.stop("pgy_quota_exceeded")

    asyncio.run(stop_twice())
    assert runtime.stop_reason == "pgy_seed_error" and runtime.stopping
    assert crawler.engine.closed == ["pgy_seed_error"]


def test_freshness_comes_from_a_store_that_refreshes() -> None:
    runtime = runtime_of(project_crawler())
    assert runtime.freshness() is None
    off, on = _Store(False), _Store(True)
    runtime.register_store(off)
    assert runtime.freshness() is None
    runtime.register_store(on)
    assert runtime.freshness() is on
    assert [o.lost for o in runtime.storage_outcomes()] == [1, 1]


def test_a_misconfigured_crawl_closes_at_once() -> None:
    crawler = project_crawler(PGY_REGION="mars")
    runtime = runtime_of(crawler)
    assert runtime.config is None and "PGY_REGION='mars'" in str(runtime.problem)

    async def open_spider() -> None:
        crawler.signals.send_catch_log(signals.spider_opened, spider=crawler.spider)

    asyncio.run(open_spider())
    assert crawler.engine.closed == ["pgy_config_error"]


def test_paths_are_computed_once_with_the_job_id() -> None:
    class JobSpider(Spider):
        name = "note_detail"
        _job = "abc123"  # Scrapyd gives its job id as the spider argument _job

    crawler = project_crawler(
        JobSpider,
        PGY_FAILED_PATH="out/%(name)s-%(job)s-%(time)s-failed.jsonl",
        PGY_SUMMARY_PATH="out/%(name)s-%(job)s-%(time)s-summary.json",
    )
    runtime = runtime_of(crawler)
    paths = runtime.paths
    assert paths is runtime.paths
    stamp = paths.params["time"]
    assert paths.failed == f"out/note_detail-abc123-{stamp}-failed.jsonl"
    assert paths.summary == f"out/note_detail-abc123-{stamp}-summary.json"
    assert ":" not in stamp
    assert crawler.spider is not None
    params = feed_uri_params({"batch_id": 1}, crawler.spider)
    assert params["job"] == "abc123" and params["time"] == stamp and params["batch_id"] == 1
