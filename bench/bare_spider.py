"""Benchmark (b): the bare Scrapy spider a user would write for the API, no project code.

Run with ``scrapy runspider bench/bare_spider.py -a ids_file=IDS -a base_url=URL -a token=T
-O out.jsonl`` from a directory without ``scrapy.cfg`` (Scrapy's default settings). It reads one
note ID per line, sends ``GET {base}{API_PATH}?token=...&noteId=...`` as the API's documentation
shows and writes the ``data`` object of every ``code == 0`` answer as one JSON line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response

API_PATH = "/api/xiaohongshu-pgy/api/solar/note/noteId/detail/v1"


class BareNoteSpider(scrapy.Spider):
    name = "bare_note"

    def __init__(self, ids_file: str, base_url: str, token: str, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.ids_file = ids_file
        self.base_url = base_url.rstrip("/")
        self.token = token

    async def start(self) -> AsyncIterator[scrapy.Request]:
        with open(self.ids_file, encoding="utf-8") as f:
            for line in f:
                note_id = line.strip()
                if note_id:
                    url = f"{self.base_url}{API_PATH}?token={self.token}&noteId={note_id}"
                    yield scrapy.Request(url, callback=self.parse)

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        body = response.json()  # type: ignore[attr-defined]
        if body.get("code") == 0 and isinstance(body.get("data"), dict):
            yield body["data"]
