"""The crawl's stats collector (pgy_spider/stats.py): Scrapy's values, without the shim."""

from __future__ import annotations

import pytest
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.statscollectors import MemoryStatsCollector, StatsCollector
from scrapy.utils.test import get_crawler

from pgy_spider import settings as project_settings
from pgy_spider.spiders.note_detail import NoteDetailSpider
from pgy_spider.stats import PgyStatsCollector


def _project() -> dict[str, object]:
    return {k: getattr(project_settings, k) for k in dir(project_settings) if k.isupper()}


def _collector(cls: type[StatsCollector]) -> StatsCollector:
    crawler = get_crawler(NoteDetailSpider, {"STATS_CLASS": f"{cls.__module__}.{cls.__name__}"})
    assert type(crawler.stats) is cls
    return crawler.stats


def _exercise(stats: StatsCollector) -> dict[str, object]:
    stats.open_spider()
    stats.inc_value("a")
    stats.inc_value("a", 2)
    stats.inc_value("b", start=10)
    stats.set_value("c", "x")
    stats.max_value("m", 3)
    stats.max_value("m", 1)
    stats.max_value("m", 7)
    stats.min_value("n", 3)
    stats.min_value("n", 5)
    stats.min_value("n", 2)
    assert stats.get_value("missing", "dflt") == "dflt"
    return dict(stats.get_stats())


def test_the_project_collects_stats_with_it() -> None:
    crawler = get_crawler(NoteDetailSpider, _project())
    assert type(crawler.stats) is PgyStatsCollector
    assert isinstance(crawler.stats, MemoryStatsCollector)


def test_same_values_as_scrapys_collector() -> None:
    ours = _exercise(_collector(PgyStatsCollector))
    scrapys = _exercise(_collector(MemoryStatsCollector))
    assert ours == scrapys == {"a": 3, "b": 11, "c": "x", "m": 7, "n": 2}


def test_set_and_clear_stats() -> None:
    stats = _collector(PgyStatsCollector)
    stats.set_stats({"k": 1})
    assert stats.get_stats() == {"k": 1}
    stats.clear_stats()
    assert stats.get_stats() == {}


def test_stats_are_kept_by_spider_name_after_the_close() -> None:
    crawler = get_crawler(NoteDetailSpider, {"STATS_CLASS": "pgy_spider.stats.PgyStatsCollector"})
    crawler.spider = NoteDetailSpider(ids="a" * 24)
    stats = crawler.stats
    assert isinstance(stats, PgyStatsCollector)
    stats.inc_value("pgy/x")
    stats.close_spider(reason="finished")
    assert stats.spider_stats == {"note_detail": {"pgy/x": 1}}


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("get_value", ("k",)),
        ("get_stats", ()),
        ("set_value", ("k", 1)),
        ("set_stats", ({},)),
        ("inc_value", ("k",)),
        ("max_value", ("k", 1)),
        ("min_value", ("k", 1)),
        ("clear_stats", ()),
        ("open_spider", ()),
    ],
)
def test_a_spider_argument_warns_as_scrapy_does(method: str, args: tuple[object, ...]) -> None:
    stats = _collector(PgyStatsCollector)
    with pytest.warns(ScrapyDeprecationWarning, match=f"spider' argument to .*{method}"):
        getattr(stats, method)(*args, spider=object())
