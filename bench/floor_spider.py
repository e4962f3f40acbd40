"""Benchmark (f): Scrapy's own floor, what any spider on Scrapy's engine costs per call.

Run with ``scrapy runspider bench/floor_spider.py -a ids_file=IDS -a base_url=URL -a token=T
-O out.jsonl`` from a directory without ``scrapy.cfg``. It does the raw client's work and no
more (one GET per note ID, the body parsed with orjson, the ``data`` object of every ``code ==
0`` answer written as one JSON line with the project's orjson exporter), inside Scrapy, with
every per-request setting this project found cheaper (its lean middleware, extension and
spider-middleware lists, its in-memory scheduler and stats collector, ``CONCURRENT_ITEMS = 1``,
the garbage collector's threshold, ``verbatim_url``; uvloop, which Scrapy reads before a
spider's settings, comes from the command line) and the least a download handler
can do with aiohttp (no size limits, no proxies, no signals, no token handling). None of the
project's own work runs: no validation, no accounting, no retries by code.

Where a target for (c) lies below this spider's CPU per note, no spider running on Scrapy's
engine can meet it on that machine: the rest of (c)'s cost is what the project itself does.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import orjson
import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Request, Response, TextResponse

from pgy_spider import settings as project

API_PATH = "/api/xiaohongshu-pgy/api/solar/note/noteId/detail/v1"


class MinimalAiohttpHandler:
    """One aiohttp GET, the whole body, a ``TextResponse``: nothing else a handler must do."""

    lazy = False

    def __init__(self) -> None:
        self._session: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MinimalAiohttpHandler:
        return cls()

    async def download_request(self, request: Request) -> Response:
        import aiohttp  # as the raw client and the project's handler: only when a call is made
        from yarl import URL

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
            )
        async with self._session.get(URL(request.url, encoded=True)) as answer:
            body = await answer.read()
        return TextResponse(
            request.url, status=answer.status, body=body, encoding="utf-8", request=request
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class GcThreshold:
    """The project's garbage-collector threshold (its ``GcTuning`` needs the project's run)."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.saved = gc.get_threshold()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GcThreshold:
        extension = cls(crawler.settings.getint("PGY_GC_THRESHOLD"))
        crawler.signals.connect(extension.engine_started, signals.engine_started)
        crawler.signals.connect(extension.engine_stopped, signals.engine_stopped)
        return extension

    def engine_started(self) -> None:
        gc.set_threshold(self.threshold, *self.saved[1:])

    def engine_stopped(self) -> None:
        gc.set_threshold(*self.saved)


_SETTINGS = {
    name: getattr(project, name)
    for name in (
        "ROBOTSTXT_OBEY",
        "COOKIES_ENABLED",
        "TELNETCONSOLE_ENABLED",
        "REMOTE_CONTROL_ENABLED",
        "DOWNLOADER_MIDDLEWARES_BASE",
        "SPIDER_MIDDLEWARES_BASE",
        "EXTENSIONS_BASE",
        "CONCURRENT_ITEMS",
        "STATS_CLASS",
        "LOG_FORMATTER",
        "DUPEFILTER_CLASS",
        "SCHEDULER",
        "PGY_GC_THRESHOLD",
        "FEED_EXPORT_ENCODING",
    )
}


class FloorNoteSpider(scrapy.Spider):
    name = "floor_note"
    custom_settings = {
        **_SETTINGS,
        "DOWNLOAD_HANDLERS": {"http": f"{__name__}.MinimalAiohttpHandler", "https": None},
        "EXTENSIONS": {f"{__name__}.GcThreshold": 120},
        "FEED_EXPORTERS": {"jsonl": "pgy_spider.exporters.OrjsonLinesItemExporter"},
    }

    def __init__(self, ids_file: str, base_url: str, token: str, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.ids_file = ids_file
        self.prefix = f"{base_url.rstrip('/')}{API_PATH}?token={token}&noteId="

    async def start(self) -> AsyncIterator[scrapy.Request]:
        meta = {"verbatim_url": True}
        with open(self.ids_file, encoding="utf-8") as f:
            for line in f:
                note_id = line.strip()
                if note_id:
                    yield scrapy.Request(
                        self.prefix + note_id, callback=self.parse, meta=meta, dont_filter=True
                    )

    def parse(self, response: Response) -> dict[str, Any] | None:
        body = orjson.loads(response.body)
        if body.get("code") == 0 and isinstance(body.get("data"), dict):
            data: dict[str, Any] = body["data"]
            return data
        return None
