"""Private names of Scrapy and aiohttp the project relies on, pinned.

Each is used because no public API does the job (the reason is at the place of use). If an
upgrade renames or drops one, this test fails loudly instead of the behaviour silently
changing.
"""

from __future__ import annotations

import inspect

import aiohttp
from scrapy.utils import ssl as scrapy_ssl


def test_scrapy_builds_its_ssl_context_from_settings() -> None:
    # pgy_spider.apiclient: the same TLS settings (DOWNLOAD_VERIFY_CERTIFICATES, ...) as
    # Scrapy's own handlers.
    assert callable(scrapy_ssl._make_ssl_context)
    assert list(inspect.signature(scrapy_ssl._make_ssl_context).parameters) == ["settings"]


def test_aiohttp_session_can_be_told_not_to_resend() -> None:
    # pgy_spider.apiclient: aiohttp re-sends an idempotent request once when a kept-alive
    # connection turns out to be closed (a second paid call nobody counts) unless this
    # attribute is False.
    source = inspect.getsource(aiohttp.ClientSession)
    assert "_retry_connection" in source
