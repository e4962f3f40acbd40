"""End-to-end: the business-code policy over a whole crawl, checked against what the API saw.

Each code's decision (retry, pause, fail at once, retire a token, stop) is tested in process,
one synthetic answer per code, in tests/test_middleware_api.py. Here real crawls check what
needs the whole stack: the summary's counts agree with the simulator's code by code, a note
that failed at once was called no more after its failing answer and is in the failed file
with the API's request id, never in the feed; and with the HTTP statuses of the 2026 OpenAPI
definition (``http_status_mode: openapi``: 429, 500, 400 ...) no Scrapy component in the
chain acts on the status instead of the body's ``code``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.support.accounting import assert_accounted
from tests.support.crawl import CrawlResult, run_crawl
from tests.support.ids import make_note_ids
from tests.support.simulator import SimulatorClient

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def _crawl(tmp_path: Path, sim: SimulatorClient, ids: list[str], **settings: Any) -> CrawlResult:
    return run_crawl(tmp_path, "-a", "ids=" + ",".join(ids), sim_url=sim.url, settings=settings)


def _written(result: CrawlResult) -> list[str]:
    return sorted(n["noteId"] for n in result.notes)


def _failed_by_note(result: CrawlResult) -> dict[str, dict[str, Any]]:
    records = result.failed
    by_note = {r["noteId"]: r for r in records}
    assert len(by_note) == len(records), records  # one record per failed note
    return by_note


def test_summary_accounts_for_every_call(tmp_path: Path, sim: SimulatorClient) -> None:
    """calls_by_code and api_calls match what the API saw, code by code; the notes that
    fail at once are called no more after their failing answer."""
    missing, bad, odd, empty, invalid, *good = make_note_ids(8)
    sim.configure(
        fail_first={"301": 1},
        burst_302=2,
        not_found_ids=[missing],
        note_codes={bad: 400, odd: 999},
        empty_data_ids=[empty],
        invalid_data_ids=[invalid],
    )
    result = _crawl(tmp_path, sim, [missing, bad, odd, empty, invalid, *good])
    assert result.returncode == 0, result
    stats = sim.stats()
    summary = assert_accounted(result)
    assert summary["finish_reason"] == "finished"
    assert summary["calls_by_code"] == stats["by_code"]
    assert summary["api_calls"] == stats["calls"]
    assert summary["requests_sent"] == stats["calls"]
    billed = summary["calls_by_code"].get("0", 0) + summary["calls_by_code"].get("201", 0)
    assert billed == stats["billed"]
    assert _written(result) == sorted(good)
    assert summary["failed_by_reason"] == {
        "not_found": 1,
        "bad_request": 1,
        "api_error": 1,
        "empty_data": 1,
        "invalid_response": 1,
    }
    failed = _failed_by_note(result)
    assert {k: (v["reason"], v["code"]) for k, v in failed.items()} == {
        missing: ("not_found", 201),
        bad: ("bad_request", 400),
        odd: ("api_error", 999),
        empty: ("empty_data", 0),
        invalid: ("invalid_response", 0),
    }
    for note_id, record in failed.items():
        assert REQUEST_ID.match(record["requestId"]), record
        # The failing answer was the note's last call (a 201 was its only one).
        assert stats["by_note"][note_id] == record["attempts"], (note_id, stats["by_note"])
    assert stats["by_note"][missing] == 1
    assert stats["billed"] == len(good) + 3  # 201, and the empty and invalid code 0
    # Never a half-valid note in the feed.
    assert invalid not in (result.output / "notes.jsonl").read_text(encoding="utf-8")


# -- HTTP statuses of the 2026 OpenAPI definition ---------------------------------------------


def test_openapi_statuses_retryable_codes(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(3)
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
    bad, missing, err, good = make_note_ids(4)
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
