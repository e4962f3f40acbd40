"""``ids_url``: a seed file fetched over HTTP(S) through Scrapy's own downloader.

A Scrapyd host does not have the user's files. The body is saved to a local file
(in JOBDIR when there is one, so a resumed job reads the same seeds) and then read
like any seed file, in the format its name says.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.utils.defer import _schedule_coro

from pgy_spider.outputs import CLOSE_SEED_ERROR
from pgy_spider.seeds import detect_format

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

SUFFIX = {"text": ".txt", "csv": ".csv", "jsonl": ".jsonl"}


def local_name(url: str) -> str:
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"seeds-url-{digest}{SUFFIX[detect_format(urlsplit(url).path)]}"


async def fetch_seed_url(crawler: Crawler, url: str, directory: str, *, reuse: bool) -> str | None:
    """Download ``url`` to ``directory``; on failure log one clear line, stop, return None."""
    target = Path(directory, local_name(url))
    if reuse and target.exists():
        return str(target)  # a resumed job keeps the seeds it started with
    assert crawler.engine is not None
    request = Request(url, dont_filter=True, meta={"handle_httpstatus_all": True})
    try:
        response = await crawler.engine.download_async(request)
    except Exception as exc:
        return _give_up(
            crawler, f"ids_url {url} could not be fetched ({type(exc).__name__}: {exc})"
        )
    if response.status != 200:
        return _give_up(crawler, f"ids_url {url} answered HTTP {response.status}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    partial.write_bytes(response.body)
    partial.replace(target)
    logger.info("Seeds fetched from %s (%s bytes)", url, len(response.body))
    return str(target)


def _give_up(crawler: Crawler, message: str) -> None:
    logger.error("%s: check the URL and that the host can reach it", message)
    assert crawler.engine is not None
    _schedule_coro(crawler.engine.close_spider_async(reason=CLOSE_SEED_ERROR))
    return None
