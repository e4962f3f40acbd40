"""``ids_url``: a seed file fetched over HTTP(S) through Scrapy's own downloader.

A Scrapyd host does not have the user's files. The body is saved to a local file
(in JOBDIR when there is one, so a resumed job reads the same seeds) and then read
like any seed file, in the format its name says.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
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
        _give_up(crawler, f"ids_url {url} could not be fetched ({type(exc).__name__}: {exc})")
        return None
    if response.status != 200:
        _give_up(crawler, f"ids_url {url} answered HTTP {response.status}")
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    # A partial file of its own: concurrent jobs (Scrapyd) fetching the same URL into
    # the same directory never truncate or rename each other's half-written copy.
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(response.body)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    logger.info("Seeds fetched from %s (%s bytes)", url, len(response.body))
    return str(target)


def _give_up(crawler: Crawler, message: str) -> None:
    logger.error("%s: check the URL and that the host can reach it", message)
    assert crawler.engine is not None
    _schedule_coro(crawler.engine.close_spider_async(reason=CLOSE_SEED_ERROR))
