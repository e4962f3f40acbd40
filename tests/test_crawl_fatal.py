"""End-to-end: codes that mean "this token can make no more calls" stop the crawl cleanly.

A fatal code retires the token; with no token left the crawl closes with a named reason,
exits 3, makes no further call, and leaves the undone notes *pending* (to be resumed), not
failed. Tokens never appear in any output. Several tokens, retired one after another:
tests/test_reliability_tokens.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgy_spider.api import token_fingerprint
from tests.support.accounting import assert_accounted
from tests.support.crawl import CrawlResult, run_crawl
from tests.support.ids import make_note_ids
from tests.support.simulator import SimulatorClient

IDS = make_note_ids(5)


def _crawl(
    tmp_path: Path,
    sim: SimulatorClient,
    ids: list[str] = IDS,
    token: str = "test-token",
    **settings: Any,
) -> CrawlResult:
    merged = {"CONCURRENT_REQUESTS": 1, **settings}
    return run_crawl(
        tmp_path, "-a", "ids=" + ",".join(ids), sim_url=sim.url, token=token, settings=merged
    )


def _outputs_text(result: CrawlResult) -> str:
    parts = [result.stdout, result.stderr]
    for path in result.output.rglob("*"):
        if path.is_file():
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


# Both with the HTTP statuses of the 2026 OpenAPI definition (401 and 429, where a 429 is
# also a rate limit): the body's code decides. Every fatal code's reason, retirement and
# exit status, in process: test_middleware_api.py
# (test_the_last_refused_token_stops_the_crawl_with_the_named_reason) and test_exitcodes.py.
@pytest.mark.parametrize(
    ("config", "token", "reason", "successes", "status"),
    [
        pytest.param({}, "unknown-token", "pgy_invalid_token", 0, 401, id="100-unknown-token"),
        pytest.param({"quota": 2}, "test-token", "pgy_quota_exceeded", 2, 429, id="303-quota"),
    ],
)
def test_fatal_code_stops_the_crawl(
    tmp_path: Path,
    sim: SimulatorClient,
    config: dict[str, Any],
    token: str,
    reason: str,
    successes: int,
    status: int,
) -> None:
    sim.configure(http_status_mode="openapi", **config)
    result = _crawl(tmp_path, sim, token=token)
    assert result.returncode == 3, result
    assert result.stats["finish_reason"] == reason
    assert result.stats["pgy/exit_code"] == 3
    assert result.stats[f"pgy/tokens_retired/{reason}"] == 1
    assert result.stats[f"pgy/http_status/{status}"] == 1
    assert result.stats.get("pgy/rate_limit_pauses", 0) == 0
    # One request at a time: exactly the successes, then the one refused call, then nothing.
    stats = sim.stats()
    assert stats["calls"] == successes + 1
    assert len(result.notes) == successes
    assert result.failed == []  # the undone notes are not failures
    summary = assert_accounted(result)
    assert summary["finish_reason"] == reason
    assert summary["exit_code"] == 3
    assert summary["notes_written"] == successes
    assert summary["failed"] == 0
    # The refused note and every issued-but-unsent one stay pending, to be resumed.
    assert summary["pending"] == summary["seeds_read"] - successes
    assert summary["pending"] >= 1
    fp = token_fingerprint(token)
    assert summary["tokens"] == {fp: {"calls": successes + 1, "retired": reason}}
    assert token not in _outputs_text(result)


def test_stop_makes_no_new_call_beyond_in_flight(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(100)  # more than the reader reads ahead (32 at least)
    sim.configure(latency_ms=150)
    result = _crawl(tmp_path, sim, ids, token="unknown-token", CONCURRENT_REQUESTS=4)
    assert result.returncode == 3, result
    assert result.summary["finish_reason"] == "pgy_invalid_token"
    # At most the first wave (already in flight when the first 100 came back) was sent.
    assert sim.stats()["calls"] <= 4
    assert result.summary["pending"] == result.summary["seeds_read"]
    # The reader stopped at the stop: the seeds it never read are in no count, and say so.
    assert result.summary["seeds_read"] < len(ids)
    assert result.summary["all_seeds_read"] is False
    assert "(the seeds not read yet are in no count)" in result.stderr
    assert result.failed == []


def test_successes_in_flight_at_the_stop_are_written(tmp_path: Path, sim: SimulatorClient) -> None:
    """Calls already sent when the stop comes are paid for: their notes must not be lost."""
    ids = make_note_ids(30)
    sim.configure(balance=5, latency_ms=150)
    result = _crawl(tmp_path, sim, ids, CONCURRENT_REQUESTS=8)
    assert result.returncode == 3, result
    stats = sim.stats()
    assert stats["by_code"]["0"] == 5
    # The first wave, plus at most one follow-up per success answered before the refusal.
    assert stats["calls"] <= 8 + 5
    assert len(result.notes) == 5  # every billed success is in the feed
    assert sorted(n["noteId"] for n in result.notes) == sorted(stats["success_by_note"])
    summary = assert_accounted(result)
    assert summary["finish_reason"] == "pgy_insufficient_balance"
    assert summary["notes_written"] == 5
    assert summary["pending"] == summary["seeds_read"] - 5
    assert result.failed == []


def test_fatal_stop_with_rejected_and_failed_seeds(tmp_path: Path, sim: SimulatorClient) -> None:
    """Failures and rejections earlier in the run do not change the stop's reason or status."""
    missing, a, b, c = make_note_ids(4)
    sim.configure(not_found_ids=[missing], balance=1)
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids=not-a-note,{missing},{a},{b},{c}",
        sim_url=sim.url,
        settings={"CONCURRENT_REQUESTS": 1},
    )
    assert result.returncode == 3, result
    summary = assert_accounted(result)
    assert summary["finish_reason"] == "pgy_insufficient_balance"
    assert summary["exit_code"] == 3
    assert result.stats["pgy/exit_code"] == 3
    # The balance covers one success: the 201, then a, then b is refused.
    assert sim.stats()["by_code"] == {"201": 1, "0": 1, "601": 1}
    assert [n["noteId"] for n in result.notes] == [a]
    assert {(f["noteId"], f["reason"]) for f in result.failed} == {
        (None, "invalid_id"),
        (missing, "not_found"),
    }
    assert summary["rejected"] == 1
    assert summary["failed"] == 1
    assert summary["pending"] == 2  # b (refused) and c (never sent)
