"""In-process tests of the token download handler against the simulator on loopback.

The token is added only to the URL that is sent, never to the request Scrapy keeps or the
response it gets back; it is masked in transport errors; a budget is reserved per call. The
errors of the real HTTP client (a reset, a refused connection) are judged by the business-code
middleware as they would be in a crawl: maybe billed or surely not.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from scrapy import Request
from scrapy.exceptions import DownloadConnectionRefusedError, DownloadFailedError

from pgy_spider import meta
from pgy_spider.failures import NoteFailed
from pgy_spider.handler import TokenDownloadHandler
from pgy_spider.middlewares.api import PgyApiMiddleware
from pgy_spider.noterequest import api_request
from tests.support.components import project_crawler, runtime
from tests.support.ids import make_note_id
from tests.support.simulator import SimulatorClient


def _fetch(handler: TokenDownloadHandler, *requests: Request) -> list[Any]:
    async def main() -> list[Any]:
        try:
            return await asyncio.gather(
                *(handler.download_request(r) for r in requests), return_exceptions=True
            )
        finally:
            await handler.close()

    return asyncio.run(main())


def test_the_token_travels_only_in_the_sent_url(sim: SimulatorClient) -> None:
    crawler = project_crawler(PGY_BASE_URL=sim.url, PGY_TOKEN="test-token")
    handler = TokenDownloadHandler.from_crawler(crawler)
    note = make_note_id(1)
    request = api_request(sim.url, note, callback=None, errback=None)
    (response,) = _fetch(handler, request)
    assert response.status == 200 and b'"code":0' in response.body
    assert "token" not in response.url and "token" not in request.url
    assert response.url == request.url
    fingerprint = runtime(crawler).vault.current().fingerprint
    assert request.meta[meta.TOKEN_FP] == fingerprint
    assert crawler.stats.get_value("pgy/requests_sent") == 1
    assert sim.stats()["by_token"] == {"test-token": 1}


def test_non_api_requests_go_out_without_a_token(sim: SimulatorClient) -> None:
    crawler = project_crawler(PGY_BASE_URL=sim.url)
    handler = TokenDownloadHandler.from_crawler(crawler)
    url = f"{sim.api_url}?noteId={make_note_id(2)}"
    (response,) = _fetch(handler, Request(url))
    assert b'"code":100' in response.body  # the API refuses a call without a token
    assert crawler.stats.get_value("pgy/requests_sent") is None


def test_no_token_left_means_nothing_is_sent(sim: SimulatorClient) -> None:
    crawler = project_crawler(PGY_BASE_URL=sim.url)
    vault = runtime(crawler).vault
    asyncio.run(vault.retire(vault.current().fingerprint, "pgy_invalid_token"))
    handler = TokenDownloadHandler.from_crawler(crawler)
    (result,) = _fetch(handler, api_request(sim.url, make_note_id(3), callback=None, errback=None))
    assert isinstance(result, meta.PendingRequest)
    assert sim.stats()["calls"] == 0


def test_transport_errors_never_quote_the_token() -> None:
    # A closed port on loopback: the error message quotes the URL it could not reach.
    crawler = project_crawler(PGY_BASE_URL="http://127.0.0.1:9", PGY_TOKEN="s3cret-token")
    handler = TokenDownloadHandler.from_crawler(crawler)
    request = api_request("http://127.0.0.1:9", make_note_id(4), callback=None, errback=None)
    (error,) = _fetch(handler, request)
    assert isinstance(error, Exception)
    chain = [error, error.__cause__, error.__context__]
    assert "s3cret-token" not in " ".join(f"{e!r} {e}" for e in chain if e is not None)
    assert "127.0.0.1:9" in str(error)  # the message is still useful


# -- the real client's errors, as the middleware judges them -----------------------------------


def _judge(crawler: Any, request: Request, error: Exception) -> Any:
    """The business-code middleware's decision on a download error of the handler."""
    mw = PgyApiMiddleware.from_crawler(crawler)
    with pytest.raises(NoteFailed) as info:
        mw.process_exception(request, error)
    return info.value.record.to_json()


def test_a_reset_after_the_request_arrived_may_have_been_billed(sim: SimulatorClient) -> None:
    sim.configure(reset=1.0)  # the simulator reads the request, then drops the connection
    crawler = project_crawler(PGY_BASE_URL=sim.url, PGY_RETRY_TIMES=0)
    handler = TokenDownloadHandler.from_crawler(crawler)
    request = api_request(sim.url, make_note_id(5), callback=None, errback=None)
    (error,) = _fetch(handler, request)
    assert isinstance(error, DownloadFailedError), error
    record = _judge(crawler, request, error)
    assert (record["reason"], record["code"], record["attempts"]) == ("transport_error", None, 1)
    assert crawler.stats.get_value("pgy/possibly_billed") == 1
    assert sim.stats()["by_code"] == {"reset": 1}  # it did reach the API


def test_a_refused_connection_was_never_sent_and_is_not_billed() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        crawler = project_crawler(PGY_BASE_URL=url, PGY_RETRY_TIMES=0)
        handler = TokenDownloadHandler.from_crawler(crawler)
        request = api_request(url, make_note_id(6), callback=None, errback=None)
        (error,) = _fetch(handler, request)
    assert isinstance(error, DownloadConnectionRefusedError), error
    record = _judge(crawler, request, error)
    assert (record["reason"], record["code"], record["attempts"]) == ("transport_error", None, 1)
    assert crawler.stats.get_value("pgy/possibly_billed") is None
    assert runtime(crawler).budget.spent == 0
