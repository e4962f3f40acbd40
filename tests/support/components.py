"""In-process component tests: a crawler with the project's settings, no process, no reactor run.

``project_crawler()`` gives a ``scrapy.utils.test.get_crawler`` crawler configured like
``scrapy crawl note_detail`` (the project's settings module, a test token), marked as
crawling, with a spider and a recording engine so that components which close the crawl
can be checked. ``api_answer()`` builds the answer the API would give.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from pgy_spider import meta
from pgy_spider import settings as project_settings
from pgy_spider.noterequest import api_request
from pgy_spider.runtime import PgyRuntime, runtime_of

BASE_URL = "http://127.0.0.1:9"  # never contacted by the in-process tests
TOKENS = "test-token"
T = TypeVar("T")


class RecordingEngine:
    """Stands in for the engine where a component closes the crawl: records the reasons."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    async def close_spider_async(self, reason: str = "cancelled") -> None:
        self.closed.append(reason)


class _TestSpider(Spider):
    name = "component_test"


def settings_dict(**overrides: Any) -> dict[str, Any]:
    values = {k: getattr(project_settings, k) for k in dir(project_settings) if k.isupper()}
    values.update(PGY_TOKEN=TOKENS, PGY_BASE_URL=BASE_URL, PGY_RETRY_BACKOFF=0)
    values.update(overrides)
    return values


def project_crawler(spidercls: type[Spider] = _TestSpider, **settings: Any) -> Crawler:
    crawler = get_crawler(spidercls, settings_dict(**settings))
    crawler.spider = spidercls(name=spidercls.name)
    crawler.spider.crawler = crawler
    crawler.engine = RecordingEngine()  # type: ignore[assignment]
    crawler.crawling = True
    return crawler


def runtime(crawler: Crawler) -> PgyRuntime:
    return runtime_of(crawler)


def note_request(note_id: str, seq: int = 0, **extra_meta: Any) -> Request:
    return api_request(
        BASE_URL, note_id, callback=None, errback=None, extra_meta={meta.SEQ: seq, **extra_meta}
    )


def api_answer(
    request: Request,
    code: int | None = 0,
    *,
    data: Any = None,
    status: int = 200,
    body: bytes | None = None,
    flags: list[str] | None = None,
) -> Response:
    """The answer to ``request``: a JSON envelope with ``code`` (or a raw ``body``)."""
    if body is None:
        body = orjson.dumps({"code": code, "message": None, "data": data, "requestId": "r" * 32})
    return Response(request.url, status=status, body=body, request=request, flags=flags)


async def awaited(result: T | Awaitable[T]) -> T:
    """The value of a component method that may return a coroutine, inside an event loop."""
    if inspect.isawaitable(result):
        return await result
    return result


def resolve(result: T | Awaitable[T]) -> T:
    """The value of a component method that may return a coroutine (run it to the end)."""
    if inspect.isawaitable(result):
        return asyncio.run(awaited(result))
    return result
