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

from pgy_spider.files import write_atomic
from pgy_spider.seeds import SeedFileError, detect_format

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

SUFFIX = {"text": ".txt", "csv": ".csv", "jsonl": ".jsonl"}
_HINT = "check the URL and that the host can reach it"


def local_name(url: str) -> str:
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"seeds-url-{digest}{SUFFIX[detect_format(urlsplit(url).path)]}"


async def fetch_seed_url(crawler: Crawler, url: str, directory: str, *, reuse: bool) -> str:
    """Download ``url`` to ``directory`` and return the local path.

    Raises SeedFileError (one line saying what failed) when it cannot be fetched.
    """
    target = Path(directory, local_name(url))
    if reuse and target.exists():
        return str(target)  # a resumed job keeps the seeds it started with
    request = Request(url, dont_filter=True, meta={"handle_httpstatus_all": True})
    try:
        response = await crawler.engine.download_async(request)
    except Exception as exc:
        raise SeedFileError(
            f"ids_url {url} could not be fetched ({type(exc).__name__}: {exc}): {_HINT}"
        ) from None
    if response.status != 200:
        raise SeedFileError(f"ids_url {url} answered HTTP {response.status}: {_HINT}")
    write_atomic(target, response.body)
    logger.info("Seeds fetched from %s (%s bytes)", url, len(response.body))
    return str(target)
