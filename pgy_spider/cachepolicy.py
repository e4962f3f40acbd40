"""An HTTP-cache policy that never caches an API failure.

With ``HTTPCACHE_ENABLED`` (handy while developing: a cached note costs nothing),
Scrapy's default policy would store a 301, 302 or 303 answer and replay it to the
retry, the rate-limit retry and the call repeated with another token. Only
answers that settle a note — code 0 and 201 — are worth keeping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.extensions.httpcache import DummyPolicy

from pgy_spider import meta
from pgy_spider.api import BILLED_CODES, parse_envelope

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response


class ApiCachePolicy(DummyPolicy):
    def should_cache_response(self, response: Response, request: Request) -> bool:
        if not request.meta.get(meta.API):
            return bool(super().should_cache_response(response, request))
        envelope = parse_envelope(response.body)
        return envelope is not None and envelope.code in BILLED_CODES
