"""In-process tests of the business-code middleware: one synthetic answer per code and fault.

No process and no server: each test builds the request the spider would send and the answer
the API would give, and checks what the middleware decides (retry, pause, fail, retire the
token, stop) and what it counts.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from scrapy import Request
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from twisted.internet.error import ConnectionRefusedError, DNSLookupError

from pgy_spider import meta
from pgy_spider.api import FATAL_REASONS
from pgy_spider.failures import NoteFailed
from pgy_spider.middlewares.api import PgyApiMiddleware
from pgy_spider.vault import LocalTokenVault
from tests.support.components import (
    api_answer,
    awaited,
    note_request,
    project_crawler,
    resolve,
    runtime,
)
from tests.support.ids import make_note_id
from tests.support.sample import load_sample_data

NOTE = make_note_id(1)


def _middleware(**settings: Any) -> tuple[PgyApiMiddleware, Any]:
    crawler = project_crawler(**settings)
    return PgyApiMiddleware.from_crawler(crawler), crawler


def _stat(crawler: Any, name: str) -> Any:
    return crawler.stats.get_value(name)


def _give_up(mw: PgyApiMiddleware, request: Any, response: Any) -> dict[str, Any]:
    with pytest.raises(NoteFailed) as info:
        resolve(mw.process_response(request, response))
    return info.value.record.to_json()


# -- success --------------------------------------------------------------------------------


def test_code_0_passes_the_answer_on_and_counts_the_call() -> None:
    mw, crawler = _middleware()
    request = note_request(NOTE)
    request.meta[meta.TOKEN_FP] = runtime(crawler).vault.current().fingerprint
    response = api_answer(request, 0, data={"noteId": NOTE})
    assert mw.process_response(request, response) is response
    assert request.meta[meta.ENVELOPE].data == {"noteId": NOTE}
    assert request.meta[meta.ATTEMPTS] == 1 and request.meta[meta.LAST_CODE] == 0
    assert _stat(crawler, "pgy/api_calls") == 1 and _stat(crawler, "pgy/code/0") == 1
    assert _stat(crawler, "pgy/http_status/200") == 1
    report = runtime(crawler).vault.report()
    assert [entry["calls"] for entry in report.values()] == [1]
    assert runtime(crawler).budget.spent == 1


def test_the_body_code_decides_whatever_the_http_status() -> None:
    mw, _ = _middleware()
    request = note_request(NOTE)
    ok = api_answer(request, 0, data={"noteId": NOTE}, status=500)
    assert mw.process_response(request, ok) is ok
    request = note_request(NOTE)
    retry = mw.process_response(request, api_answer(request, 301, status=200))
    assert retry is not request and retry.meta["retry_times"] == 1


def test_non_api_requests_are_left_alone() -> None:
    mw, crawler = _middleware()
    from scrapy.http import Response

    request = Request("https://example.com/page")
    response = Response(request.url, status=503, body=b"<html>", request=request)
    assert mw.process_request(request) is None
    assert mw.process_response(request, response) is response
    assert mw.process_exception(request, DownloadTimeoutError("t")) is None
    assert crawler.stats.get_stats().get("pgy/api_calls") is None


def test_cached_answers_are_not_api_calls() -> None:
    mw, crawler = _middleware()
    request = note_request(NOTE)
    response = api_answer(request, 0, data={"noteId": NOTE}, flags=["cached"])
    assert mw.process_response(request, response) is response
    assert _stat(crawler, "pgy/cache_hits") == 1
    assert _stat(crawler, "pgy/api_calls") is None and _stat(crawler, "pgy/code/0") is None


def test_code_0_with_a_valid_note_gives_the_normalised_note() -> None:
    mw, _ = _middleware()
    data = load_sample_data()
    request = note_request(data["noteId"])
    response = api_answer(request, 0, data=data)
    assert mw.process_response(request, response) is response
    note = request.meta[meta.NOTE]
    assert note["noteId"] == data["noteId"] and note["raw"] == data


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        pytest.param(None, "empty_data", None, id="empty"),
        pytest.param({}, "empty_data", None, id="empty-object"),
        pytest.param(
            {**load_sample_data(), "likeNum": "lots"}, "invalid_response", "likeNum", id="invalid"
        ),
        pytest.param([1, 2], "empty_data", None, id="not-an-object"),
    ],
)
def test_code_0_without_a_usable_note_fails_it_and_passes_nothing_on(
    data: Any, reason: str, message: str | None
) -> None:
    mw, crawler = _middleware()
    request = note_request(NOTE)
    record = _give_up(mw, request, api_answer(request, 0, data=data))
    assert (record["reason"], record["code"], record["attempts"]) == (reason, 0, 1)
    assert record["requestId"] == "r" * 32
    if message is None:
        assert "message" not in record
    else:
        assert message in record["message"]
    assert meta.NOTE not in request.meta  # never a half-valid note for a callback or a feed
    assert _stat(crawler, "pgy/retry/count") is None  # not retried: the API answered
    assert runtime(crawler).budget.spent == 1  # a code 0 is billed, usable or not


# The HTTP status the 2026 OpenAPI definition gives each code (the simulator's
# ``http_status_mode: openapi``): it must change no decision.
OPENAPI_STATUS = {0: 200, 201: 200, 100: 401, 301: 500, 302: 429, 303: 429, 400: 400, 500: 500}
OPENAPI_STATUS |= {600: 403, 601: 403, 602: 403}


def _decision(code: int, status: int) -> tuple[Any, ...]:
    """What the middleware does with one answer: passed on, sent again, failed or stopped."""
    mw, crawler = _middleware(PGY_TOKEN="first-token,second-token", PGY_RATE_LIMIT_DELAY=0)
    fingerprint = runtime(crawler).vault.current().fingerprint
    request = note_request(NOTE, **{meta.TOKEN_FP: fingerprint})
    data = load_sample_data() | {"noteId": NOTE} if code == 0 else None
    answer = api_answer(request, code, data=data, status=status)
    try:
        result = resolve(mw.process_response(request, answer))
    except NoteFailed as failed:
        return ("failed", failed.record.reason, failed.record.code)
    if isinstance(result, Request):
        retired = runtime(crawler).vault.report()[fingerprint]["retired"]
        return (
            "sent again",
            result.meta.get("retry_times"),
            result.meta.get(meta.RATE_LIMITED),
            retired,
        )
    assert result is answer
    return ("passed on", request.meta[meta.NOTE]["noteId"])


@pytest.mark.parametrize(("code", "status"), sorted(OPENAPI_STATUS.items()))
def test_the_openapi_http_status_changes_no_decision(code: int, status: int) -> None:
    assert _decision(code, status) == _decision(code, 200)


# -- retried codes ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 500])
def test_retryable_codes_are_retried_with_backoff_then_given_up(code: int) -> None:
    mw, crawler = _middleware(PGY_RETRY_TIMES=2, PGY_RETRY_BACKOFF=10)
    request = note_request(NOTE)
    before = time.monotonic()
    first = mw.process_response(request, api_answer(request, code))
    assert first.meta["retry_times"] == 1 and first.dont_filter
    # The retry waits its backoff (10 s ± 20 % jitter) before it is sent again.
    assert before + 7.9 < first.meta[meta.NOT_BEFORE] < time.monotonic() + 12.1
    second = mw.process_response(first, api_answer(first, code))
    assert second.meta["retry_times"] == 2
    assert before + 15.9 < second.meta[meta.NOT_BEFORE] < time.monotonic() + 24.1
    record = _give_up(mw, second, api_answer(second, code))
    assert record["reason"] == "retries_exhausted" and record["code"] == code
    assert record["attempts"] == 3 and record["requestId"] == "r" * 32
    assert _stat(crawler, "pgy/retry/count") == 2
    assert _stat(crawler, "pgy/retry/max_reached") == 1
    assert _stat(crawler, f"pgy/code/{code}") == 3
    assert runtime(crawler).budget.spent == 0  # not billed


def test_backoff_doubles_up_to_its_cap() -> None:
    mw, _ = _middleware(PGY_RETRY_BACKOFF=1, PGY_RETRY_BACKOFF_MAX=3)
    waits = [mw._backoff(n) for n in (1, 2, 3, 4)]
    assert 0.8 <= waits[0] <= 1.2 and 1.6 <= waits[1] <= 2.4
    assert 2.4 <= waits[2] <= 3.6 and 2.4 <= waits[3] <= 3.6


# -- codes that fail the note at once -----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "billed"),
    [(201, "not_found", 1), (400, "bad_request", 0), (777, "api_error", 0)],
)
def test_codes_that_fail_the_note_at_once(code: int, reason: str, billed: int) -> None:
    mw, crawler = _middleware()
    request = note_request(NOTE)
    record = _give_up(mw, request, api_answer(request, code))
    assert record == {
        "noteId": NOTE,
        "code": code,
        "reason": reason,
        "attempts": 1,
        "requestId": "r" * 32,
    }
    assert _stat(crawler, "pgy/retry/count") is None
    assert runtime(crawler).budget.spent == billed


# -- 302: the pause ------------------------------------------------------------------------


def test_302_pauses_every_call_and_retries_on_its_own_budget() -> None:
    mw, crawler = _middleware(PGY_RATE_LIMIT_DELAY=30, PGY_RETRY_TIMES=0)
    request = note_request(NOTE)
    retry = resolve(mw.process_response(request, api_answer(request, 302)))
    assert retry.meta[meta.RATE_LIMITED] == 1 and "retry_times" not in retry.meta
    assert _stat(crawler, "pgy/rate_limit_pauses") == 1
    until = runtime(crawler).pause.paused_until()
    assert until > time.monotonic() + 29
    # Any API call waits for the pause now (a coroutine that sleeps), even another note's.
    other = note_request(make_note_id(2), seq=1)
    waiting = mw.process_request(other)
    assert waiting is not None
    waiting.close()
    # A 302 of a call already in flight does not start or lengthen the pause.
    second = resolve(mw.process_response(other, api_answer(other, 302)))
    assert second.meta[meta.RATE_LIMITED] == 1
    assert runtime(crawler).pause.paused_until() == until
    assert _stat(crawler, "pgy/rate_limit_pauses") == 1


def test_a_call_of_another_note_waits_until_the_pause_ends() -> None:
    mw, crawler = _middleware(PGY_RATE_LIMIT_DELAY=0.3, PGY_RATE_LIMIT_MAX_DELAY=0.3)
    request = note_request(NOTE)
    resolve(mw.process_response(request, api_answer(request, 302)))
    until = runtime(crawler).pause.paused_until()
    waiting = mw.process_request(note_request(make_note_id(2), seq=1))
    assert waiting is not None
    resolve(waiting)  # the send goes ahead only once this returns
    assert time.monotonic() >= until
    assert mw.process_request(note_request(make_note_id(3), seq=2)) is None  # the pause is over


def test_a_call_already_waiting_also_waits_for_a_pause_that_starts_meanwhile() -> None:
    mw, crawler = _middleware(PGY_RATE_LIMIT_DELAY=0.6, PGY_RATE_LIMIT_MAX_DELAY=0.6)
    backoff_ends = time.monotonic() + 0.2
    retry = note_request(NOTE, **{meta.NOT_BEFORE: backoff_ends})
    limited = note_request(make_note_id(2), seq=1)

    async def scenario() -> float:
        waiting = asyncio.ensure_future(awaited(mw.process_request(retry)))
        await asyncio.sleep(0.05)  # the retry is waiting for its backoff
        await awaited(mw.process_response(limited, api_answer(limited, 302)))
        await waiting
        return time.monotonic()

    sent_at = asyncio.run(scenario())
    assert sent_at >= runtime(crawler).pause.paused_until() > backoff_ends + 0.3


def test_each_new_burst_of_302_pauses_twice_as_long_until_a_success() -> None:
    mw, crawler = _middleware(PGY_RATE_LIMIT_DELAY=5, PGY_RATE_LIMIT_MAX_DELAY=12)
    pause = runtime(crawler).pause
    now = [1000.0]
    pause._clock = lambda: now[0]  # the pause's own clock: no sleeping in a test

    def burst() -> float:
        now[0] = pause.paused_until() + 1  # past the previous pause: a new burst
        request = note_request(NOTE)
        resolve(mw.process_response(request, api_answer(request, 302)))
        return pause.paused_until() - now[0]

    assert [burst() for _ in range(4)] == [5, 10, 12, 12]
    request = note_request(NOTE)
    mw.process_response(request, api_answer(request, 0, data={"noteId": NOTE}))
    assert burst() == 5  # a success: back to the first delay
    assert _stat(crawler, "pgy/rate_limit_pauses") == 5


def test_302_beyond_its_budget_fails_the_note() -> None:
    mw, _ = _middleware(PGY_RATE_LIMIT_RETRIES=2, PGY_RATE_LIMIT_DELAY=0)
    request = note_request(NOTE)
    for _ in range(2):
        request = resolve(mw.process_response(request, api_answer(request, 302)))
    with pytest.raises(NoteFailed) as info:
        resolve(mw.process_response(request, api_answer(request, 302)))
    record = info.value.record
    assert record.reason == "rate_limited" and record.code == 302 and record.attempts == 3


def test_a_retry_waits_for_its_backoff_before_it_is_sent() -> None:
    mw, _ = _middleware()
    request = note_request(NOTE, **{meta.NOT_BEFORE: time.monotonic() + 60})
    waiting = mw.process_request(request)
    assert waiting is not None
    waiting.close()
    assert mw.process_request(note_request(NOTE)) is None


# -- token codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (100, "pgy_invalid_token"),
        (303, "pgy_quota_exceeded"),
        (600, "pgy_permission_denied"),
        (601, "pgy_insufficient_balance"),
        (602, "pgy_spending_cap"),
    ],
)
def test_a_refused_token_is_retired_and_the_call_repeated_with_the_next(
    code: int, reason: str
) -> None:
    mw, crawler = _middleware(PGY_TOKEN="first-token,second-token")
    vault = runtime(crawler).vault
    assert isinstance(vault, LocalTokenVault)
    first = vault.current()
    request = note_request(NOTE, **{meta.TOKEN_FP: first.fingerprint})
    again = resolve(mw.process_response(request, api_answer(request, code)))
    assert again.url == request.url and again.dont_filter
    assert vault.current().token == "second-token"
    assert vault.report()[first.fingerprint]["retired"] == reason
    assert _stat(crawler, f"pgy/tokens_retired/{reason}") == 1
    assert crawler.engine.closed == []  # the crawl goes on


@pytest.mark.parametrize(("code", "reason"), sorted(FATAL_REASONS.items()))
def test_the_last_refused_token_stops_the_crawl_with_the_named_reason(
    code: int, reason: str
) -> None:
    mw, crawler = _middleware()
    fingerprint = runtime(crawler).vault.current().fingerprint
    request = note_request(NOTE, **{meta.TOKEN_FP: fingerprint})
    with pytest.raises(meta.PendingRequest):
        resolve(mw.process_response(request, api_answer(request, code)))
    assert runtime(crawler).stop_reason == reason
    assert crawler.engine.closed == [reason]
    assert runtime(crawler).vault.report()[fingerprint]["retired"] == reason
    assert _stat(crawler, f"pgy/tokens_retired/{reason}") == 1
    assert runtime(crawler).budget.spent == 0  # a refused call is not billed
    # No further call is sent: the note stays pending.
    with pytest.raises(meta.PendingRequest):
        mw.process_request(note_request(make_note_id(2), seq=1))


def test_the_openapi_429_with_303_is_a_quota_not_a_rate_limit() -> None:
    mw, crawler = _middleware()
    fingerprint = runtime(crawler).vault.current().fingerprint
    request = note_request(NOTE, **{meta.TOKEN_FP: fingerprint})
    with pytest.raises(meta.PendingRequest):
        resolve(mw.process_response(request, api_answer(request, 303, status=429)))
    assert runtime(crawler).stop_reason == "pgy_quota_exceeded"
    assert _stat(crawler, "pgy/rate_limit_pauses") is None


# -- answers without a business code ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (502, b"<html><center><h1>502 Bad Gateway</h1></center></html>", "http_502"),
        (200, b'{"code": 0, "data": {"noteId": "6', "invalid_json"),
        (200, b"[1, 2]", "invalid_json"),
        (200, b'{"message": "no code"}', "invalid_json"),
    ],
)
def test_answers_without_an_envelope_are_retried_as_transport_faults(
    status: int, body: bytes, kind: str
) -> None:
    mw, crawler = _middleware(PGY_RETRY_TIMES=1)
    request = note_request(NOTE)
    retry = mw.process_response(request, api_answer(request, status=status, body=body))
    assert retry.meta["retry_times"] == 1
    assert _stat(crawler, f"pgy/transport/{kind}") == 1
    record = _give_up(mw, retry, api_answer(retry, status=status, body=body))
    assert record["reason"] == "transport_error" and record["code"] is None
    assert record["requestId"] is None and record["attempts"] == 2
    assert _stat(crawler, "pgy/api_calls") is None
    assert _stat(crawler, "pgy/possibly_billed") is None  # an answer came: it was not billed


def test_a_timeout_may_have_been_billed_a_refused_connection_not() -> None:
    mw, crawler = _middleware(PGY_RETRY_TIMES=1)
    request = note_request(NOTE)
    retry = mw.process_exception(request, DownloadTimeoutError("took too long"))
    assert retry is not None and retry.meta["retry_times"] == 1
    assert _stat(crawler, "pgy/possibly_billed") == 1
    assert _stat(crawler, "pgy/transport/DownloadTimeoutError") == 1
    refused = note_request(make_note_id(2), seq=1)
    assert mw.process_exception(refused, DownloadConnectionRefusedError("no")) is not None
    assert _stat(crawler, "pgy/possibly_billed") == 1
    assert runtime(crawler).budget.spent == 1  # the timeout counts as spent
    with pytest.raises(NoteFailed) as info:
        mw.process_exception(retry, DownloadTimeoutError("again"))
    assert info.value.record.reason == "transport_error" and info.value.record.attempts == 2


@pytest.mark.parametrize(
    ("error", "sent"),
    [
        (DownloadTimeoutError("took too long"), True),
        (DownloadFailedError("connection lost"), True),  # a reset after the request went out
        (ResponseDataLossError("cut short"), True),
        (DownloadConnectionRefusedError("refused"), False),
        (ConnectionRefusedError(), False),
        (DNSLookupError(), False),
        (CannotResolveHostError("no such host"), False),
        (UnsupportedURLSchemeError("socks5"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_a_transport_error_is_retried_then_fails_and_counts_as_maybe_billed_if_sent(
    error: Exception, sent: bool
) -> None:
    mw, crawler = _middleware(PGY_RETRY_TIMES=1)
    request = note_request(NOTE)
    retry = mw.process_exception(request, error)
    assert retry is not None and retry.meta["retry_times"] == 1
    with pytest.raises(NoteFailed) as info:
        mw.process_exception(retry, error)
    record = info.value.record.to_json()
    assert (record["reason"], record["code"], record["attempts"]) == ("transport_error", None, 2)
    assert record["requestId"] is None
    assert _stat(crawler, f"pgy/transport/{type(error).__name__}") == 2
    assert _stat(crawler, "pgy/possibly_billed") == (2 if sent else None)
    assert runtime(crawler).budget.spent == (2 if sent else 0)
    assert _stat(crawler, "pgy/api_calls") is None


def test_nothing_is_sent_once_the_crawl_is_stopping() -> None:
    mw, crawler = _middleware()
    crawler.crawling = False  # Ctrl-C / SIGTERM
    with pytest.raises(meta.PendingRequest):
        mw.process_request(note_request(NOTE))


def test_a_too_large_answer_fails_at_once_and_may_have_been_billed() -> None:
    from scrapy.exceptions import DownloadCancelledError

    mw, crawler = _middleware(PGY_RETRY_TIMES=5)
    request = note_request(NOTE)
    with pytest.raises(NoteFailed) as info:
        mw.process_exception(request, DownloadCancelledError("answer over DOWNLOAD_MAXSIZE"))
    assert info.value.record.reason == "transport_error"
    assert "DOWNLOAD_MAXSIZE" in (info.value.record.message or "")
    assert _stat(crawler, "pgy/possibly_billed") == 1
    assert _stat(crawler, "pgy/retry/count") is None  # no paid retry of an answer as large


def test_an_unsupported_proxy_scheme_was_never_sent() -> None:
    from scrapy.exceptions import UnsupportedURLSchemeError

    mw, crawler = _middleware(PGY_RETRY_TIMES=1)
    retry = mw.process_exception(note_request(NOTE), UnsupportedURLSchemeError("socks5"))
    assert retry is not None
    assert _stat(crawler, "pgy/possibly_billed") is None


def test_a_download_stopped_on_purpose_is_left_to_scrapy() -> None:
    from scrapy.exceptions import StopDownload

    mw, _ = _middleware()
    assert mw.process_exception(note_request(NOTE), StopDownload(fail=True)) is None
