"""In-process tests of the budget where it is enforced: the token download handler reserves a
unit at the moment of sending, the API middleware settles it. Real calls to the simulator
on loopback; no crawl process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.exceptions import DownloadTimeoutError

from pgy_spider import meta
from pgy_spider.budget import BUDGET_FILE
from pgy_spider.failures import NoteFailed
from pgy_spider.handler import TokenDownloadHandler
from pgy_spider.middlewares.api import PgyApiMiddleware
from pgy_spider.noterequest import api_request
from tests.support.components import api_answer, note_request, project_crawler, runtime
from tests.support.ids import make_note_id
from tests.support.simulator import SimulatorClient


def _parts(sim: SimulatorClient, **settings: Any) -> tuple[Any, TokenDownloadHandler, Any]:
    crawler = project_crawler(PGY_BASE_URL=sim.url, **settings)
    handler = TokenDownloadHandler.from_crawler(crawler)
    return crawler, handler, PgyApiMiddleware.from_crawler(crawler)


def _request(sim: SimulatorClient, i: int) -> Request:
    return api_request(sim.url, make_note_id(i), callback=None, errback=None)


def _call_all(handler: TokenDownloadHandler, mw: PgyApiMiddleware, requests: list[Request]) -> list:
    """Send every request at once, as Scrapy's downloader does, and let the middleware
    settle each answer; the outcome per request: an answer code or the exception."""

    async def one(request: Request) -> Any:
        try:
            response = await handler.download_request(request)
        except Exception as exc:
            with contextlib.suppress(NoteFailed):  # a give-up: the call was settled first
                mw.process_exception(request, exc)
            return exc
        try:
            mw.process_response(request, response)
        except NoteFailed as exc:  # a give-up: the answer was settled first
            return exc
        return request.meta[meta.LAST_CODE]

    async def main() -> list[Any]:
        try:
            return await asyncio.gather(*(one(r) for r in requests))
        finally:
            await handler.close()

    return asyncio.run(main())


def test_requests_dispatched_all_at_once_never_pass_the_cap(sim: SimulatorClient) -> None:
    sim.configure(latency_ms=50, latency_jitter_ms=50)
    crawler, handler, mw = _parts(sim, PGY_MAX_BILLED_CALLS=5, CONCURRENT_REQUESTS=64)
    outcomes = _call_all(handler, mw, [_request(sim, i) for i in range(40)])
    assert outcomes.count(0) == 5
    refused = [o for o in outcomes if isinstance(o, meta.PendingRequest)]
    assert len(refused) == 35  # not sent, not failed: the notes stay pending
    assert sim.stats()["calls"] == 5 and sim.stats()["billed"] == 5
    assert runtime(crawler).budget.spent == 5
    assert crawler.engine.closed == ["pgy_budget_exhausted"]
    assert runtime(crawler).stop_reason == "pgy_budget_exhausted"


def test_units_answered_without_billing_go_to_the_calls_waiting(sim: SimulatorClient) -> None:
    # Half the notes are answered 301 (not billed): their units are given back and used
    # by the calls waiting for one, so the budget ends exactly spent on billable answers.
    codes = {make_note_id(i): 301 for i in range(0, 30, 2)}
    sim.configure(latency_ms=20, latency_jitter_ms=60, note_codes=codes)
    crawler, handler, mw = _parts(sim, PGY_MAX_BILLED_CALLS=8, PGY_RETRY_TIMES=0)
    outcomes = _call_all(handler, mw, [_request(sim, i) for i in range(30)])
    stats = sim.stats()
    assert stats["billed"] == 8 and outcomes.count(0) == 8
    assert stats["by_code"]["301"] >= 4  # the first eight sent held four 301s
    assert runtime(crawler).budget.spent == 8


def test_a_timed_out_call_counts_as_spent(sim: SimulatorClient) -> None:
    sim.configure(slow=1.0, slow_seconds=1.0)
    crawler, handler, mw = _parts(sim, PGY_MAX_BILLED_CALLS=2, PGY_RETRY_TIMES=0)
    requests = [_request(sim, i) for i in range(4)]
    for request in requests:
        request.meta["download_timeout"] = 0.2
    outcomes = _call_all(handler, mw, requests)
    assert sum(isinstance(o, DownloadTimeoutError) for o in outcomes) == 2
    assert sum(isinstance(o, meta.PendingRequest) for o in outcomes) == 2
    assert runtime(crawler).budget.spent == 2  # possibly billed: the cap is reached
    # The simulator answers (and bills) them once their slow second is over.
    deadline = time.monotonic() + 5
    while sim.stats()["calls"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.stats()["billed"] == 2


def test_a_stop_while_waiting_for_a_unit_sends_nothing(sim: SimulatorClient) -> None:
    sim.configure(latency_ms=200, note_codes={make_note_id(0): 301})
    crawler, handler, mw = _parts(sim, PGY_MAX_BILLED_CALLS=1)
    rt = runtime(crawler)

    async def main() -> list[Any]:
        first_request, second_request = _request(sim, 0), _request(sim, 1)
        first = asyncio.ensure_future(handler.download_request(first_request))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(handler.download_request(second_request))
        await asyncio.sleep(0.05)
        assert not second.done()  # it waits for the only unit
        rt.stop("shutdown")  # e.g. Ctrl-C meanwhile
        mw.process_response(first_request, await first)  # 301: the unit comes back
        results = await asyncio.gather(second, return_exceptions=True)
        await handler.close()
        return results

    (result,) = asyncio.run(main())
    assert isinstance(result, meta.PendingRequest)
    assert sim.stats()["calls"] == 1
    assert rt.budget.spent == 0 and rt.budget.held == 0


def test_cached_answers_spend_nothing() -> None:
    crawler = project_crawler(PGY_MAX_BILLED_CALLS=1)
    mw = PgyApiMiddleware.from_crawler(crawler)
    for i in range(3):  # HTTPCACHE_ENABLED: answered from the cache, never sent
        request = note_request(make_note_id(i), seq=i)
        answer = api_answer(request, 0, data={"noteId": make_note_id(i)}, flags=["cached"])
        assert mw.process_response(request, answer) is answer
    assert runtime(crawler).budget.spent == 0 and not runtime(crawler).budget.exhausted


def test_a_budget_state_that_cannot_be_written_stops_before_the_call(
    sim: SimulatorClient, tmp_path: Path
) -> None:
    jobdir = tmp_path / "job"
    (jobdir / BUDGET_FILE).mkdir(parents=True)
    crawler, handler, mw = _parts(sim, JOBDIR=str(jobdir), PGY_MAX_BILLED_CALLS=10)
    (outcome,) = _call_all(handler, mw, [_request(sim, 1)])
    assert isinstance(outcome, meta.PendingRequest)
    assert sim.stats()["calls"] == 0
    assert crawler.engine.closed == ["pgy_output_error"]
    assert runtime(crawler).output_error is not None
    assert runtime(crawler).output_error[0] == str(jobdir / BUDGET_FILE)
