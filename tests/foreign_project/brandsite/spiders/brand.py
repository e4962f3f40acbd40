"""Crawls a brand page (through a redirect) and the PGY notes it mentions.

Arguments: ``page`` (a URL), ``notes`` (IDs whose note is the item), ``notes_cb`` (IDs
handled by a callback), ``report`` (a file the spider describes its crawler in, at the
end, so the test can see what the add-on left as it was).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import scrapy

from pgy_spider import note_request


class BrandSpider(scrapy.Spider):
    name = "brand"

    def __init__(
        self, page: str, notes: str = "", notes_cb: str = "", report: str = "", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.page = page
        self.notes = [n for n in notes.split(",") if n]
        self.notes_cb = [n for n in notes_cb.split(",") if n]
        self.report = report

    async def start(self):  # type: ignore[no-untyped-def]
        yield scrapy.Request(self.page, callback=self.parse_page)
        for note_id in self.notes:
            yield note_request(note_id)
        for note_id in self.notes_cb:
            yield note_request(
                note_id, callback=self.parse_note, errback=self.note_failed, meta={"mine": 7}
            )

    def parse_page(self, response: scrapy.http.Response) -> Any:
        yield {
            "page": response.url,
            "title": response.css("title::text").get(),
            "redirected_from": response.meta.get("redirect_urls"),
        }

    def parse_note(self, response: scrapy.http.Response) -> Any:
        note = response.meta["pgy_note"]
        yield {
            "fromCallback": note["noteId"],
            "title": note["title"],
            "mine": response.meta["mine"],
        }

    def note_failed(self, failure: Any) -> Any:
        yield {"failedInErrback": failure.request.meta["pgy_note_id"]}

    def closed(self, reason: str) -> None:
        if not self.report:
            return
        crawler = self.crawler
        settings = crawler.settings
        downloader = crawler.engine.downloader
        root = logging.getLogger()
        report = {
            "reason": reason,
            "settings": {
                name: settings.get(name)
                for name in (
                    "CONCURRENT_ITEMS",
                    "CONCURRENT_REQUESTS",
                    "CONCURRENT_REQUESTS_PER_DOMAIN",
                    "SCHEDULER",
                    "DUPEFILTER_CLASS",
                    "LOG_LEVEL",
                    "LOG_FORMATTER",
                    "COOKIES_ENABLED",
                    "ROBOTSTXT_OBEY",
                )
            },
            "downloader_middlewares": [_path(m) for m in downloader.middleware.middlewares],
            "spider_middlewares": [_path(m) for m in crawler.engine.scraper.spidermw.middlewares],
            "pipelines": [_path(m) for m in crawler.engine.scraper.itemproc.middlewares],
            "fallback_handlers": {
                scheme: settings.get(f"PGY_FALLBACK_{scheme.upper()}_HANDLER")
                for scheme in ("http", "https")
            },
            "root_filters": [_path(f) for h in root.handlers for f in h.filters],
            "logger_levels": {
                name: logging.getLogger(name).level
                for name in ("scrapy.core.engine", "scrapy.core.scraper")
            },
        }
        with open(self.report, "w", encoding="utf-8") as fh:
            json.dump(report, fh)


def _path(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
