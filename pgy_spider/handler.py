"""A download handler that adds the token at the moment of sending, and nowhere else.

Requests travel through Scrapy (scheduler, logs, fingerprints, JOBDIR, HTTP cache)
without the token; for an API request this handler adds the token to the URL it sends
through its HTTP client (``PGY_INNER_DOWNLOAD_HANDLER``) and hands back a response whose URL
is the tokenless one. Every other request goes to the handler the project had for the
scheme (Scrapy's own unless set otherwise), untouched. Exceptions are scrubbed
too: some transport errors quote the URL. It also reserves one unit of the run's budget
and one place in flight (:mod:`pgy_spider.flight`) for every call it sends. The token
vault, the budget and the places are the run's (:mod:`pgy_spider.runtime`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.exceptions import NotSupported
from scrapy.utils.defer import ensure_awaitable
from scrapy.utils.misc import build_from_crawler, load_object

from pgy_spider import default_settings, meta, reasons
from pgy_spider.api import mask_secrets, with_token
from pgy_spider.apiclient import ApiHttpDownloadHandler
from pgy_spider.budget import BudgetStateError, spent_message
from pgy_spider.runtime import runtime_of
from pgy_spider.vault import NoTokenLeft

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class TokenDownloadHandler(BaseDownloadHandler):
    lazy = False
    scheme = "http"  # the scheme whose previous handler takes the requests not for the API

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        runtime = runtime_of(crawler)
        config = runtime.config
        inner_path = (
            config.inner_download_handler if config else default_settings.PGY_INNER_DOWNLOAD_HANDLER
        )
        self._inner: BaseDownloadHandler = build_from_crawler(load_object(inner_path), crawler)
        settings = crawler.settings
        self._fallback_path = settings.get(f"PGY_FALLBACK_{self.scheme.upper()}_HANDLER") or (
            settings.getwithbase("DOWNLOAD_HANDLERS_BASE").get(self.scheme)
        )
        self._fallback: BaseDownloadHandler | None = None  # built for the first such request
        pool = getattr(self._inner, "_pool", None)
        if pool is not None and hasattr(pool, "retryAutomatically"):
            # Twisted's pool silently re-sends a GET when a kept-alive connection was reset:
            # a paid call the crawl never sees or counts. Every retry is ours to decide.
            pool.retryAutomatically = False
        self._vault = runtime.vault
        self._runtime = runtime
        self._budget = runtime.budget
        self._in_flight = runtime.in_flight
        self._stats = crawler.stats
        # Our own client takes the URL to send apart from the request: no copies of the
        # request and the response per call (see _send).
        self._takes_url = isinstance(self._inner, ApiHttpDownloadHandler)

    async def download_request(self, request: Request) -> Response:
        if not request.meta.get(meta.API):
            return await self._fallback_handler().download_request(request)
        try:
            state = self._vault.current()
        except NoTokenLeft:
            raise meta.PendingRequest("no usable token left") from None
        await self._in_flight.take(request.meta)
        await self._reserve(request.meta)
        request.meta[meta.TOKEN_FP] = state.fingerprint
        self._stats.inc_value("pgy/requests_sent")  # counted where it really leaves
        try:
            return await self._send(request, with_token(request.url, state.token))
        except Exception as exc:
            scrub_exception(exc, self._vault.secrets)
            raise

    def _fallback_handler(self) -> BaseDownloadHandler:
        if self._fallback is None:
            if not self._fallback_path:
                raise NotSupported(f"no download handler for {self.scheme} requests")
            handler_cls = load_object(self._fallback_path)
            self._fallback = build_from_crawler(handler_cls, self.crawler)
        return self._fallback

    async def _reserve(self, request_meta: dict[str, Any]) -> None:
        """One unit of the budget, taken last before sending: a check any earlier would
        let every request Scrapy dispatches at once through. Refused: the note stays
        pending, and a spent budget stops the crawl."""
        runtime = self._runtime
        try:
            reserved = await self._budget.reserve()
        except BudgetStateError as exc:
            self._in_flight.give_back(request_meta)
            runtime.output_failed(exc.path, exc.cause)
            raise meta.PendingRequest("the budget state cannot be written") from None
        if reserved and not runtime.stopping:
            return
        if reserved:  # a stop came while it waited (for a place or a unit)
            self._budget.settle(billable=False)
        elif self._budget.exhausted and not runtime.stopping:
            resumable = bool(runtime.config and (runtime.config.jobdir or runtime.config.queue))
            runtime.stop(reasons.BUDGET_EXHAUSTED, spent_message(self._budget, resumable=resumable))
        self._in_flight.give_back(request_meta)
        raise meta.PendingRequest("the budget is spent" if not reserved else "stopping")

    async def _send(self, request: Request, url: str) -> Response:
        if self._takes_url:
            inner = cast("ApiHttpDownloadHandler", self._inner)
            return await inner.download_request(request, url=url)
        # Any other Scrapy handler: a private tokened copy, and a tokenless response URL.
        response = await self._inner.download_request(request.replace(url=url))
        return response.replace(url=request.url)

    async def close(self) -> None:
        await self._inner.close()
        if self._fallback is not None:
            await _close(self._fallback)


class TokenHttpDownloadHandler(TokenDownloadHandler):
    scheme = "http"


class TokenHttpsDownloadHandler(TokenDownloadHandler):
    scheme = "https"


async def _close(handler: BaseDownloadHandler) -> None:
    await ensure_awaitable(handler.close())


def scrub_exception(exc: BaseException, secrets: tuple[str, ...]) -> None:
    """Mask secrets in an exception's args, down its cause/context chain, in place."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(
            mask_secrets(a, secrets) if isinstance(a, str) else a for a in current.args
        )
        current = current.__cause__ or current.__context__
