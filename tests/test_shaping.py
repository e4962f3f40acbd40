"""In-process tests of how the spider shapes Scrapy's settings."""

from __future__ import annotations

from scrapy.settings import Settings

from pgy_spider.shaping import shape


def _shaped(**values: object) -> Settings:
    settings = Settings()
    settings.setdict({"CONCURRENT_REQUESTS": 64, **values}, priority="project")
    shape(settings)
    return settings


def test_the_api_host_gets_all_of_concurrent_requests() -> None:
    settings = Settings()
    settings.set("CONCURRENT_REQUESTS", 64, priority="cmdline")
    shape(settings)
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 64


def test_a_per_domain_limit_in_the_projects_settings_is_kept() -> None:
    assert _shaped(CONCURRENT_REQUESTS_PER_DOMAIN=4).getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 4


def test_a_per_domain_limit_on_the_command_line_is_kept() -> None:
    settings = Settings()
    settings.set("CONCURRENT_REQUESTS", 64, priority="cmdline")
    settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", 2, priority="cmdline")
    shape(settings)
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 2


def test_the_default_feed_is_written_when_no_feed_is_given() -> None:
    feeds = _shaped(PGY_FEED_URI="out/notes.jsonl").getdict("FEEDS")
    assert feeds == {
        "out/notes.jsonl": {"format": "jsonlines", "encoding": "utf-8", "overwrite": True}
    }
    given = _shaped(FEEDS={"mine.csv": {"format": "csv"}}).getdict("FEEDS")
    assert list(given) == ["mine.csv"]
