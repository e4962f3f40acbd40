"""End-to-end: the business-code policy, seen from the outputs of a real crawl.

301/500 are retried within ``PGY_RETRY_TIMES``; 302 pauses the crawl and has its own budget;
201/400/unknown codes fail the note at once (one paid call at most); code 0 with empty or
invalid data fails the note without writing it. The decision comes from the body's ``code``
whatever the HTTP status (``http_status_mode: openapi``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.crawl import CrawlResult, run_crawl
from tests.support.simulator import SimulatorClient, make_note_id

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def _ids(n: int, start: int = 0) -> list[str]:
    return [make_note_id(i) for i in range(start, start + n)]


def _crawl(tmp_path: Path, sim: SimulatorClient, ids: list[str], **settings: Any) -> CrawlResult:
    return run_crawl(tmp_path, "-a", "ids=" + ",".join(ids), sim_url=sim.url, settings=settings)


def _written(result: CrawlResult) -> list[str]:
    return sorted(n["noteId"] for n in result.notes)


def _failed_by_note(result: CrawlResult) -> dict[str, dict[str, Any]]:
    records = result.failed
    by_note = {r["noteId"]: r for r in records}
    assert len(by_note) == len(records), records  # one record per failed note
    return by_note


# -- retried codes -------------------------------------------------------------------------


def test_301_retried_until_success(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = _ids(2)
    sim.configure(fail_first={"301": 2})
    result = _crawl(tmp_path, sim, ids)
    assert result.returncode == 0, result
    assert _written(result) == sorted(ids)
    stats = sim.stats()
    assert stats["by_note"] == dict.fromkeys(ids, 3)
    assert stats["by_code"] == {"301": 4, "0": 2}
    assert result.stats["pgy/retry/count"] == 4
    assert result.stats["pgy/code/301"] == 4
    assert result.summary["retries"] == 4
    assert result.failed == []


@pytest.mark.parametrize("code", [301, 500])
def test_retries_exhausted(tmp_path: Path, sim: SimulatorClient, code: int) -> None:
    bad, good = _ids(2)
    sim.configure(note_codes={bad: code})
    result = _crawl(tmp_path, sim, [bad, good], PGY_RETRY_TIMES=1)
    assert result.returncode == 0, result
    assert _written(result) == [good]
    assert sim.stats()["by_note"] == {bad: 2, good: 1}  # 1 try + 1 retry, no more
    record = _failed_by_note(result)[bad]
    assert record["reason"] == "retries_exhausted"
    assert record["code"] == code
    assert record["attempts"] == 2
    assert REQUEST_ID.match(record["requestId"])
    assert result.stats["pgy/failed/retries_exhausted"] == 1
    assert result.stats["pgy/retry/max_reached"] == 1
    summary = result.summary
    assert summary["failed_by_reason"] == {"retries_exhausted": 1}
    assert summary["balanced"] is True


def test_retry_budget_from_fail_first(tmp_path: Path, sim: SimulatorClient) -> None:
    (note,) = _ids(1)
    sim.configure(fail_first={"500": 5})
    result = _crawl(tmp_path, sim, [note], PGY_RETRY_TIMES=1)
    assert result.notes == []
    assert sim.stats()["calls"] == 2
    (record,) = result.failed
    assert (record["noteId"], record["code"], record["reason"], record["attempts"]) == (
        note,
        500,
        "retries_exhausted",
        2,
    )


# -- codes that fail at once ---------------------------------------------------------------


def test_400_fails_at_once(tmp_path: Path, sim: SimulatorClient) -> None:
    bad, good = _ids(2)
    sim.configure(note_codes={bad: 400})
    result = _crawl(tmp_path, sim, [bad, good])
    assert result.returncode == 0, result
    assert _written(result) == [good]
    assert sim.stats()["by_note"] == {bad: 1, good: 1}
    record = _failed_by_note(result)[bad]
    assert (record["reason"], record["code"], record["attempts"]) == ("bad_request", 400, 1)
    assert REQUEST_ID.match(record["requestId"])
    assert result.stats.get("pgy/retry/count", 0) == 0


def test_not_found_fails_at_once(tmp_path: Path, sim: SimulatorClient) -> None:
    missing, good = _ids(2)
    sim.configure(not_found_ids=[missing])
    result = _crawl(tmp_path, sim, [missing, good])
    assert result.returncode == 0, result
    assert _written(result) == [good]
    stats = sim.stats()
    assert stats["by_note"] == {missing: 1, good: 1}
    assert stats["billed"] == 2  # 201 is billed: never asked twice
    record = _failed_by_note(result)[missing]
    assert (record["reason"], record["code"], record["attempts"]) == ("not_found", 201, 1)
    assert REQUEST_ID.match(record["requestId"])
    assert result.stats["pgy/failed/not_found"] == 1
    assert result.summary["failed_by_reason"] == {"not_found": 1}


def test_empty_data_fails(tmp_path: Path, sim: SimulatorClient) -> None:
    empty, good = _ids(2)
    sim.configure(empty_data_ids=[empty])
    result = _crawl(tmp_path, sim, [empty, good])
    assert result.returncode == 0, result
    assert _written(result) == [good]
    assert sim.stats()["by_note"] == {empty: 1, good: 1}
    record = _failed_by_note(result)[empty]
    assert (record["reason"], record["code"]) == ("empty_data", 0)
    assert REQUEST_ID.match(record["requestId"])
    assert result.summary["failed_by_reason"] == {"empty_data": 1}


def test_invalid_data_is_not_written(tmp_path: Path, sim: SimulatorClient) -> None:
    invalid, good = _ids(2)
    sim.configure(invalid_data_ids=[invalid])
    result = _crawl(tmp_path, sim, [invalid, good])
    assert result.returncode == 0, result
    assert _written(result) == [good]  # never a half-valid note in the feed
    raw = (result.output / "notes.jsonl").read_text(encoding="utf-8")
    assert invalid not in raw
    assert sim.stats()["by_note"] == {invalid: 1, good: 1}
    record = _failed_by_note(result)[invalid]
    assert (record["reason"], record["code"], record["attempts"]) == ("invalid_response", 0, 1)
    assert REQUEST_ID.match(record["requestId"])
    assert result.stats["pgy/failed/invalid_response"] == 1
    summary = result.summary
    assert summary["notes_written"] == 1
    assert summary["failed_by_reason"] == {"invalid_response": 1}
    assert summary["balanced"] is True


def test_unknown_code_fails_that_note_only(tmp_path: Path, sim: SimulatorClient) -> None:
    odd, *good = _ids(4)
    sim.configure(note_codes={odd: 999})
    result = _crawl(tmp_path, sim, [odd, *good])
    assert result.returncode == 0, result
    assert _written(result) == sorted(good)
    assert sim.stats()["by_note"][odd] == 1  # not retried, not fatal
    record = _failed_by_note(result)[odd]
    assert record["code"] == 999
    assert record["reason"] == "api_error"
    assert record["attempts"] == 1
    assert result.stats["pgy/code/999"] == 1
    assert result.summary["finish_reason"] == "finished"


# -- HTTP statuses of the 2026 OpenAPI definition ---------------------------------------------


def test_openapi_statuses_retryable_codes(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = _ids(3)
    # 302 -> HTTP 429, 301 -> HTTP 500: retried by code, never a note lost.
    sim.configure(http_status_mode="openapi", burst_302=2, fail_first={"301": 1})
    result = _crawl(tmp_path, sim, ids, PGY_RETRY_TIMES=1)
    assert result.returncode == 0, result
    assert _written(result) == sorted(ids)
    assert result.failed == []
    assert result.stats["pgy/code/302"] == 2
    assert result.stats["pgy/code/301"] == 3
    assert result.stats["pgy/http_status/429"] == 2
    assert result.stats["pgy/http_status/500"] == 3


def test_openapi_statuses_failing_codes(tmp_path: Path, sim: SimulatorClient) -> None:
    bad, missing, err, good = _ids(4)
    sim.configure(
        http_status_mode="openapi",
        note_codes={bad: 400, err: 500},
        not_found_ids=[missing],
    )
    result = _crawl(tmp_path, sim, [bad, missing, err, good], PGY_RETRY_TIMES=2)
    assert result.returncode == 0, result
    assert _written(result) == [good]
    assert sim.stats()["by_note"] == {bad: 1, missing: 1, err: 3, good: 1}
    failed = _failed_by_note(result)
    assert {k: (v["reason"], v["code"]) for k, v in failed.items()} == {
        bad: ("bad_request", 400),
        missing: ("not_found", 201),
        err: ("retries_exhausted", 500),
    }
    for record in failed.values():
        assert REQUEST_ID.match(record["requestId"])


def test_openapi_401_token_is_fatal(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = _ids(3)
    sim.configure(http_status_mode="openapi")
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        token="not-a-known-token",
        settings={"CONCURRENT_REQUESTS": 1},
    )
    assert result.returncode == 3, result
    assert result.summary["finish_reason"] == "pgy_invalid_token"
    assert sim.stats()["calls"] == 1
    assert result.stats["pgy/http_status/401"] == 1
    assert result.notes == []
    assert result.failed == []


def test_openapi_429_with_303_is_quota_not_rate_limit(tmp_path: Path, sim: SimulatorClient) -> None:
    """HTTP 429 is also used for the daily quota: the body's code decides (no retry loop)."""
    ids = _ids(3)
    sim.configure(http_status_mode="openapi", token_codes={"test-token": 303})
    result = _crawl(tmp_path, sim, ids, CONCURRENT_REQUESTS=1)
    assert result.returncode == 3, result
    assert result.summary["finish_reason"] == "pgy_quota_exceeded"
    assert sim.stats()["calls"] == 1
    assert result.stats.get("pgy/rate_limit_pauses", 0) == 0


def test_summary_accounts_for_every_call(tmp_path: Path, sim: SimulatorClient) -> None:
    """calls_by_code and api_calls match what the API saw, code by code."""
    ids = _ids(6)
    sim.configure(
        fail_first={"301": 1},
        burst_302=2,
        not_found_ids=[ids[0]],
        note_codes={ids[1]: 400, ids[2]: 999},
    )
    result = _crawl(tmp_path, sim, ids)
    assert result.returncode == 0, result
    stats = sim.stats()
    summary = result.summary
    assert summary["calls_by_code"] == stats["by_code"]
    assert summary["api_calls"] == stats["calls"]
    assert summary["requests_sent"] == stats["calls"]
    billed = summary["calls_by_code"].get("0", 0) + summary["calls_by_code"].get("201", 0)
    assert billed == stats["billed"]
    assert summary["notes_written"] == 3
    assert summary["failed_by_reason"] == {"api_error": 1, "bad_request": 1, "not_found": 1}
    assert summary["balanced"] is True
