"""Downloader middleware: the API's business codes decide what happens to a call.

Decisions come from the JSON body's ``code`` whatever the HTTP status; the HTTP
status is used only when there is no JSON body. Retries are Scrapy's own
``get_retry_request()`` with our own budget; backoff and rate-limit pauses are
waits before the *next* send, so no call is made sooner than it may be. A success is
validated and normalised here (``response.meta["pgy_note"]``): a note that fails
validation never reaches a callback or an output. The token vault and the rate-limit
pause are the run's (:mod:`pgy_spider.runtime`): this middleware and the download
handler share them without importing each other.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    IgnoreRequest,
    NotConfigured,
    StopDownload,
    UnsupportedURLSchemeError,
)
from twisted.internet.error import ConnectionRefusedError, DNSLookupError

from pgy_spider import api, meta, reasons
from pgy_spider.api import (
    BILLED_CODES,
    FATAL_REASONS,
    RATE_LIMIT_CODE,
    Action,
    Envelope,
    action_for,
    failure_reason,
    parse_envelope,
)
from pgy_spider.failures import FailureRecord, NoteFailed
from pgy_spider.noterequest import note_item
from pgy_spider.notes import InvalidNote, normalize_note
from pgy_spider.runtime import runtime_of

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

# Errors after which the request surely never reached the API (so it cannot be billed).
NEVER_SENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionRefusedError,
    DNSLookupError,
    CannotResolveHostError,
    DownloadConnectionRefusedError,  # also a proxy that refused the tunnel
    UnsupportedURLSchemeError,  # e.g. a socks5:// proxy: nothing was sent
)
# The answer came and was too large (DOWNLOAD_MAXSIZE): it may have been billed, and it
# would be as large again, so the note fails at once instead of paying for retries.
NOT_RETRIED_ERRORS: tuple[type[BaseException], ...] = (DownloadCancelledError,)


_DEFAULT_BASE = api.REGIONS[api.DEFAULT_REGION]


class PgyApiMiddleware:
    """Business-code policy, retries with backoff, rate-limit pauses and fatal stops."""

    def __init__(self, crawler: Crawler):
        runtime = runtime_of(crawler)
        config = runtime.config
        if config is None:
            raise NotConfigured  # the runtime closes the crawl and says why
        self.crawler = crawler
        self.stats = crawler.stats
        self.runtime = runtime
        self.vault = runtime.vault
        self.pause = runtime.pause
        self.budget = runtime.budget
        self.in_flight = runtime.in_flight
        self.base_url = config.base_url
        self._rebase = config.base_url != _DEFAULT_BASE
        self.retry_times = config.retry_times
        self.backoff = config.retry_backoff
        self.backoff_max = config.retry_backoff_max
        self.rate_limit_retries = config.rate_limit_retries

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    # -- before sending -------------------------------------------------------------

    def process_request(self, request: Request) -> Coroutine[Any, Any, None] | Request | None:
        request_meta = request.meta
        if not request_meta.get(meta.API):
            return None
        self._check_may_send()
        if self._rebase and request.url.startswith(_DEFAULT_BASE):
            # Built by note_request() for the default region: this run calls another base.
            return request.replace(url=self.base_url + request.url[len(_DEFAULT_BASE) :])
        if self._send_at(request_meta) > time.monotonic():
            return self._wait_then_check(request_meta)
        return None

    def _send_at(self, request_meta: dict[str, Any]) -> float:
        return max(self.pause.paused_until(), request_meta.get(meta.NOT_BEFORE, 0.0))

    def _check_may_send(self) -> None:
        if self.runtime.stopping:
            raise meta.PendingRequest("the crawl is stopping")

    async def _wait_then_check(self, request_meta: dict[str, Any]) -> None:
        # Sleep in short steps so that a stop (fatal code, Ctrl-C) is noticed quickly, and a
        # pause that starts meanwhile (a 302 here or at another worker) is waited for too.
        while (left := self._send_at(request_meta) - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.25))
            self._check_may_send()

    # -- after an answer ----------------------------------------------------------------

    def process_response(
        self, request: Request, response: Response
    ) -> Request | Response | Coroutine[Any, Any, Request]:
        request_meta = request.meta
        if not request_meta.get(meta.API):
            return response
        fingerprint = request_meta.get(meta.TOKEN_FP)
        self.stats.inc_value(f"pgy/http_status/{response.status}")
        envelope = parse_envelope(response.body)
        attempts = request_meta.get(meta.ATTEMPTS, 0) + 1
        request_meta[meta.ATTEMPTS] = attempts
        cached = "cached" in response.flags
        if envelope is None:
            # No JSON envelope: an HTML error page, a truncated or malformed body.
            self.in_flight.give_back(request_meta)
            if not cached:
                self.budget.settle(billable=False)
            kind = f"http_{response.status}" if response.status >= 400 else "invalid_json"
            self.stats.inc_value(f"pgy/transport/{kind}")
            return self._retry_or_fail(request, None, kind, attempts, None)
        code = envelope.code
        if code not in BILLED_CODES:
            # Not paid for: nothing to lose at a kill, the place is free (a retry waiting
            # for its backoff holds none). A billed answer keeps it until it is settled.
            self.in_flight.give_back(request_meta)
        if cached:
            self.stats.inc_value("pgy/cache_hits")  # HTTPCACHE_ENABLED: no call was made
        else:
            self.budget.settle(billable=code in BILLED_CODES)
            self.stats.inc_value("pgy/api_calls")
            self.stats.inc_value(f"pgy/code/{code}")
            if fingerprint:
                self.vault.count_call(fingerprint)
        request_meta[meta.LAST_CODE] = code
        request_meta[meta.REQUEST_ID] = envelope.request_id
        action = action_for(code)
        if action is Action.SUCCESS:
            self.pause.succeeded()
            request_meta[meta.ENVELOPE] = envelope
            self._validate(request, envelope, attempts)
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
        raise self._report(
            request, _give_up(request, code, attempts, envelope.request_id, envelope.message)
        )

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if not request.meta.get(meta.API) or isinstance(exception, IgnoreRequest | StopDownload):
            return None  # StopDownload: someone's signal handler stopped it on purpose
        attempts = request.meta.get(meta.ATTEMPTS, 0) + 1
        request.meta[meta.ATTEMPTS] = attempts
        self.in_flight.give_back(request.meta)
        kind = type(exception).__name__
        self.stats.inc_value(f"pgy/transport/{kind}")
        sent = not isinstance(exception, NEVER_SENT_ERRORS)
        if sent:
            # A timeout or a dropped connection may still have been billed upstream.
            self.stats.inc_value("pgy/possibly_billed")
        self.budget.settle(billable=sent)
        if isinstance(exception, NOT_RETRIED_ERRORS):
            raise self._report(request, _give_up(request, None, attempts, None, str(exception)))
        return self._retry_or_fail(request, None, kind, attempts, None)

    def _validate(self, request: Request, envelope: Envelope, attempts: int) -> None:
        """The success's note, validated and normalised, in ``meta["pgy_note"]``."""
        request_meta = request.meta
        note_id = request_meta.get(meta.NOTE_ID)
        if note_id is None:
            return  # an API call not built as a note request: the answer goes on as it is
        data = api.note_data(envelope)
        if data is None:
            raise self._give_up(request, reasons.EMPTY_DATA, envelope, attempts, None)
        try:
            request_meta[meta.NOTE] = normalize_note(
                data, requested_id=note_id, fetched_at=datetime.now(UTC)
            )
        except InvalidNote as exc:
            raise self._give_up(
                request, reasons.INVALID_RESPONSE, envelope, attempts, str(exc)
            ) from None
        if request_meta.get(meta.AS_ITEM):
            # note_request() without a callback: the note is the item. Set now, once the
            # answer is here (a queued request must stay plain data for disk queues).
            request.callback = note_item

    def _give_up(
        self,
        request: Request,
        reason: str,
        envelope: Envelope,
        attempts: int,
        message: str | None,
    ) -> NoteFailed:
        return self._report(
            request,
            NoteFailed(
                FailureRecord(
                    request.meta[meta.NOTE_ID],
                    envelope.code,
                    reason,
                    attempts,
                    envelope.request_id,
                    message=message,
                )
            ),
        )

    def _report(self, request: Request, failed: NoteFailed) -> NoteFailed:
        """A note given up on: the run's accounting records its own (``note_detail``);
        another spider's is reported here, then goes to its errback if it has one."""
        if meta.SEQ not in request.meta:
            self.runtime.failed_notes.report(failed.record)
        return failed

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
            raise self._report(request, _give_up(request, code, attempts, request_id, reason))
        retry.meta.pop(meta.ENVELOPE, None)
        retry.meta[meta.NOT_BEFORE] = time.monotonic() + self._backoff(retry.meta["retry_times"])
        return retry

    def _backoff(self, retry_number: int) -> float:
        if self.backoff <= 0:
            return 0.0
        delay = min(self.backoff * 2 ** (retry_number - 1), self.backoff_max)
        return delay * random.uniform(0.8, 1.2)  # jitter: don't retry in lockstep

    async def _rate_limited(
        self, request: Request, attempts: int, request_id: str | None
    ) -> Request:
        pause = await self.pause.rate_limited()
        if pause is not None:
            self.stats.inc_value("pgy/rate_limit_pauses")
            logger.warning("Rate limited by the API (code 302): pausing API calls for %.1fs", pause)
        limited = request.meta.get(meta.RATE_LIMITED, 0) + 1
        if limited > self.rate_limit_retries:
            message = f"still rate limited after {limited - 1} tries"
            raise self._report(
                request, _give_up(request, RATE_LIMIT_CODE, attempts, request_id, message)
            )
        # 302 has its own budget: it must not use up the retries meant for 301/500.
        retry = request.replace(dont_filter=True)
        retry.meta[meta.RATE_LIMITED] = limited
        retry.meta.pop(meta.ENVELOPE, None)
        return retry

    async def _token_refused(self, request: Request, code: int, fingerprint: str | None) -> Request:
        reason = FATAL_REASONS[code]
        if fingerprint and await self.vault.retire(fingerprint, reason):
            self.stats.inc_value(f"pgy/tokens_retired/{reason}")
            logger.error("Token %s retired: the API answered %s (%s)", fingerprint, code, reason)
        if not self.vault.exhausted:
            # Another token may still work: send the same call again with it.
            retry = request.replace(dont_filter=True)
            retry.meta.pop(meta.ENVELOPE, None)
            return retry
        self.runtime.stop(reason, f"Stopping the crawl: {reason} (no further API calls)")
        raise meta.PendingRequest(f"stopped: {reason}")


def _give_up(
    request: Request, code: int | None, attempts: int, request_id: str | None, message: str | None
) -> NoteFailed:
    """The failure that settles a note given up on (the spider's errback records it)."""
    return NoteFailed(
        FailureRecord(
            note_id=request.meta.get(meta.NOTE_ID),
            code=code,
            reason=failure_reason(code),
            attempts=attempts,
            request_id=request_id,
            message=message,
        )
    )
