"""Downloader middleware: the API's business codes decide what happens to a call.

Decisions come from the JSON body's ``code`` whatever the HTTP status; the HTTP
status is used only when there is no JSON body. Retries are Scrapy's own
``get_retry_request()`` with our own budget; backoff and rate-limit pauses are
waits before the *next* send, so no call is made sooner than it may be.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import _schedule_coro
from twisted.internet.error import ConnectionRefusedError, DNSLookupError

from pgy_spider import logmask
from pgy_spider.api import (
    FATAL_REASONS,
    Action,
    action_for,
    failure_reason,
    parse_envelope,
)
from pgy_spider.failures import FailureRecord, NoteFailed
from pgy_spider.handler import META_API, META_TOKEN_FP, PendingRequest
from pgy_spider.tokens import TokenPool, load_tokens

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

META_NOT_BEFORE = "pgy_not_before"
META_RATE_LIMITED = "pgy_rate_limited"
META_ENVELOPE = "pgy_envelope"
META_ATTEMPTS = "pgy_attempts"
META_LAST_CODE = "pgy_last_code"
META_REQUEST_ID = "pgy_request_id"

# Errors after which the request surely never reached the API (so it cannot be billed).
NEVER_SENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionRefusedError, DNSLookupError)
try:  # Scrapy 2.19 wraps transport errors in its own types
    from scrapy.exceptions import CannotResolveHostError, DownloadConnectionRefusedError

    NEVER_SENT_ERRORS += (CannotResolveHostError, DownloadConnectionRefusedError)
except ImportError:  # pragma: no cover
    pass


class PgyApiMiddleware:
    """Business-code policy, retries with backoff, rate-limit pauses and fatal stops."""

    def __init__(self, crawler: Crawler):
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.tokens = TokenPool.of(
            load_tokens(settings.get("PGY_TOKEN"), settings.get("PGY_TOKEN_FILE"))
        )
        logmask.install(self.tokens.secrets)
        _quiet_per_call_debug_logs(settings.get("LOG_LEVEL"))
        self.retry_times = settings.getint("PGY_RETRY_TIMES", 5)
        self.backoff = settings.getfloat("PGY_RETRY_BACKOFF", 1.0)
        self.backoff_max = settings.getfloat("PGY_RETRY_BACKOFF_MAX", 60.0)
        self.rate_limit_delay = settings.getfloat("PGY_RATE_LIMIT_DELAY", 5.0)
        self.rate_limit_max_delay = settings.getfloat("PGY_RATE_LIMIT_MAX_DELAY", 60.0)
        self.rate_limit_retries = settings.getint("PGY_RATE_LIMIT_RETRIES", 30)
        self.stop_reason: str | None = None
        self._paused_until = 0.0
        self._rate_level = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    # -- before sending -------------------------------------------------------------

    def process_request(self, request: Request) -> Coroutine[Any, Any, None] | None:
        if not request.meta.get(META_API):
            return None
        self._check_may_send()
        wait = max(self._paused_until, request.meta.get(META_NOT_BEFORE, 0.0)) - time.monotonic()
        if wait > 0:
            return self._wait_then_check(wait)
        return None

    def _check_may_send(self) -> None:
        if self.stop_reason is not None or not self.crawler.crawling:
            raise PendingRequest("the crawl is stopping")

    async def _wait_then_check(self, wait: float) -> None:
        # Sleep in short steps so that a stop (fatal code, Ctrl-C) is noticed quickly.
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.25))
            self._check_may_send()

    # -- after an answer ----------------------------------------------------------------

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if not request.meta.get(META_API):
            return response
        fingerprint = request.meta.get(META_TOKEN_FP)
        self.stats.inc_value(f"pgy/http_status/{response.status}")
        envelope = parse_envelope(response.body)
        attempts = request.meta.get(META_ATTEMPTS, 0) + 1
        request.meta[META_ATTEMPTS] = attempts
        if envelope is None:
            # No JSON envelope: an HTML error page, a truncated or malformed body.
            kind = f"http_{response.status}" if response.status >= 400 else "invalid_json"
            self.stats.inc_value(f"pgy/transport/{kind}")
            return self._retry_or_fail(request, None, kind, attempts, None)
        code = envelope.code
        if "cached" in response.flags:
            self.stats.inc_value("pgy/cache_hits")  # HTTPCACHE_ENABLED: no call was made
        else:
            self.stats.inc_value("pgy/api_calls")
            self.stats.inc_value(f"pgy/code/{code}")
            if fingerprint:
                self.tokens.count_call(fingerprint)
        request.meta[META_LAST_CODE] = code
        request.meta[META_REQUEST_ID] = envelope.request_id
        action = action_for(code)
        if action is Action.SUCCESS:
            self._rate_level = 0
            request.meta[META_ENVELOPE] = envelope
            return response
        if action is Action.RETRY:
            return self._retry_or_fail(
                request, code, f"pgy_code_{code}", attempts, envelope.request_id
            )
        if action is Action.RATE_LIMITED:
            return self._rate_limited(request, attempts, envelope.request_id)
        if action is Action.TOKEN_FATAL:
            return self._token_refused(request, code, fingerprint)
        # NOT_FOUND and FAIL: give up on this note at once, no retry.
        raise _give_up(request, code, attempts, envelope.request_id, envelope.message)

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if not request.meta.get(META_API) or isinstance(exception, IgnoreRequest):
            return None
        attempts = request.meta.get(META_ATTEMPTS, 0) + 1
        request.meta[META_ATTEMPTS] = attempts
        kind = type(exception).__name__
        self.stats.inc_value(f"pgy/transport/{kind}")
        if not isinstance(exception, NEVER_SENT_ERRORS):
            # A timeout or a dropped connection may still have been billed upstream.
            self.stats.inc_value("pgy/possibly_billed")
        return self._retry_or_fail(request, None, kind, attempts, None)

    # -- decisions ------------------------------------------------------------------------

    def _retry_or_fail(
        self,
        request: Request,
        code: int | None,
        reason: str,
        attempts: int,
        request_id: str | None,
    ) -> Request:
        spider = self.crawler.spider
        assert spider is not None
        retry = get_retry_request(
            request,
            spider=spider,
            reason=reason,
            max_retry_times=self.retry_times,
            stats_base_key="pgy/retry",
            logger=logger,
        )
        if retry is None:
            raise _give_up(request, code, attempts, request_id, reason)
        retry.meta.pop(META_ENVELOPE, None)
        retry.meta[META_NOT_BEFORE] = time.monotonic() + self._backoff(retry.meta["retry_times"])
        return retry

    def _backoff(self, retry_number: int) -> float:
        if self.backoff <= 0:
            return 0.0
        delay = min(self.backoff * 2 ** (retry_number - 1), self.backoff_max)
        return delay * random.uniform(0.8, 1.2)  # jitter: don't retry in lockstep

    def _rate_limited(self, request: Request, attempts: int, request_id: str | None) -> Request:
        now = time.monotonic()
        if now >= self._paused_until:
            # A new burst of 302s (not a straggler of the current pause): back off harder.
            self._rate_level += 1
            pause = min(
                self.rate_limit_delay * 2 ** (self._rate_level - 1), self.rate_limit_max_delay
            )
            self._paused_until = now + pause
            self.stats.inc_value("pgy/rate_limit_pauses")
            logger.warning("Rate limited by the API (code 302): pausing API calls for %.1fs", pause)
        limited = request.meta.get(META_RATE_LIMITED, 0) + 1
        if limited > self.rate_limit_retries:
            message = f"still rate limited after {limited - 1} tries"
            raise _give_up(request, 302, attempts, request_id, message)
        # 302 has its own budget: it must not use up the retries meant for 301/500.
        retry = request.replace(dont_filter=True)
        retry.meta[META_RATE_LIMITED] = limited
        retry.meta.pop(META_ENVELOPE, None)
        return retry

    def _token_refused(self, request: Request, code: int, fingerprint: str | None) -> Request:
        reason = FATAL_REASONS[code]
        if fingerprint and self.tokens.retire(fingerprint, reason):
            self.stats.inc_value(f"pgy/tokens_retired/{reason}")
            logger.error("Token %s retired: the API answered %s (%s)", fingerprint, code, reason)
        if not self.tokens.exhausted:
            # Another token may still work: send the same call again with it.
            retry = request.replace(dont_filter=True)
            retry.meta.pop(META_ENVELOPE, None)
            return retry
        self.stop(reason)
        raise PendingRequest(f"stopped: {reason}")

    def stop(self, reason: str) -> None:
        """Stop the crawl gracefully with a named reason; no further calls are made."""
        if self.stop_reason is None:
            self.stop_reason = reason
            logger.error("Stopping the crawl: %s (no further API calls)", reason)
            _schedule_coro(self.crawler.engine.close_spider_async(reason=reason))


def _give_up(
    request: Request, code: int | None, attempts: int, request_id: str | None, message: str | None
) -> NoteFailed:
    """The failure that settles a note given up on (the spider's errback records it)."""
    return NoteFailed(
        FailureRecord(
            note_id=request.meta.get("pgy_note_id"),
            code=code,
            reason=failure_reason(code),
            attempts=attempts,
            request_id=request_id,
            message=message,
        )
    )


def _quiet_per_call_debug_logs(log_level: object) -> None:
    """Scrapy filters by level in its handler, after building a record for each "Crawled"
    and "Scraped from" DEBUG line: two records per note, for nothing, unless LOG_LEVEL is
    DEBUG. Raise those loggers' own level so the records are never built."""
    level = logging.getLevelName(str(log_level)) if log_level else logging.DEBUG
    if isinstance(level, int) and level > logging.DEBUG:
        for name in ("scrapy.core.engine", "scrapy.core.scraper"):
            logging.getLogger(name).setLevel(level)
