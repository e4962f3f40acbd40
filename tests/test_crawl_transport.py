"""End-to-end: transport-level failures (no JSON envelope, dropped connections, timeouts).

They are retried like 301/500; when the budget is spent the note fails with ``code: null``
and reason ``transport_error``. A call that may have reached the API (a timeout, a reset)
is counted as possibly billed; a refused connection surely was not.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.crawl import CrawlResult, run_crawl
from tests.support.simulator import SimulatorClient, make_note_id

# Which pgy/transport/<kind> stat each simulator fault shows up under.
FAULT_KIND = {
    "http502_html": "http_502",
    "malformed": "invalid_json",
    "truncated": "invalid_json",
}


def _crawl(tmp_path: Path, url: str, ids: list[str], **settings: Any) -> CrawlResult:
    return run_crawl(tmp_path, "-a", "ids=" + ",".join(ids), sim_url=url, settings=settings)


def _wait_for_calls(sim: SimulatorClient, expected: int, timeout: float = 15.0) -> int:
    """Slow answers are counted by the simulator when they finish, after the client gave up."""
    deadline = time.monotonic() + timeout
    calls = sim.stats()["calls"]
    while calls < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        calls = sim.stats()["calls"]
    return calls


@pytest.mark.parametrize("fault", ["http502_html", "malformed", "truncated", "reset"])
def test_occasional_fault_is_retried(tmp_path: Path, sim: SimulatorClient, fault: str) -> None:
    ids = [make_note_id(i) for i in range(6)]
    sim.configure(**{fault: 0.4, "seed": 7})
    # One call at a time keeps the draws (and which connection a reset hits) reproducible.
    result = _crawl(tmp_path, sim.url, ids, PGY_RETRY_TIMES=10, CONCURRENT_REQUESTS=1)
    assert result.returncode == 0, result
    assert sorted(n["noteId"] for n in result.notes) == sorted(ids)
    assert result.failed == []
    stats = sim.stats()
    faults = stats["by_code"].get(fault, 0)
    assert faults > 0, stats  # the fault really happened ...
    assert stats["by_code"]["0"] == len(ids)  # ... and each note was fetched once for good
    if fault == "reset":
        # The request reached the server before the connection dropped: maybe billed.
        retries = result.stats["pgy/retry/count"]
        assert retries > 0
        assert result.stats["pgy/possibly_billed"] == retries
        assert result.summary["possibly_billed"] == retries
    else:
        # Every call the API saw was one the crawler sent and accounted for.
        assert stats["calls"] == len(ids) + faults
        assert stats["calls"] == result.stats["pgy/requests_sent"]
        assert result.stats["pgy/retry/count"] == faults
        assert result.stats[f"pgy/transport/{FAULT_KIND[fault]}"] == faults
        assert result.summary["retries"] == faults
        assert result.summary["possibly_billed"] == 0


def test_reset_calls_are_all_accounted_for(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = [make_note_id(i) for i in range(6)]
    sim.configure(reset=0.4, seed=7)
    result = _crawl(tmp_path, sim.url, ids, PGY_RETRY_TIMES=10, CONCURRENT_REQUESTS=1)
    assert sorted(n["noteId"] for n in result.notes) == sorted(ids)
    stats = sim.stats()
    resets = stats["by_code"]["reset"]
    assert stats["by_code"]["0"] == len(ids)
    # Each reset call reached the API and may be billed: the crawler must know about it.
    assert stats["calls"] == result.stats["pgy/requests_sent"]
    assert result.stats["pgy/possibly_billed"] == resets
    assert result.stats["pgy/retry/count"] == resets


def test_no_retry_means_one_call_per_note(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = [make_note_id(i) for i in range(6)]
    sim.configure(reset=0.4, seed=7)
    result = _crawl(tmp_path, sim.url, ids, PGY_RETRY_TIMES=0, CONCURRENT_REQUESTS=1)
    assert result.returncode == 0, result
    by_note = sim.stats()["by_note"]
    assert set(by_note) == set(ids)
    assert max(by_note.values()) == 1, by_note


@pytest.mark.parametrize("fault", ["http502_html", "malformed", "truncated", "reset"])
def test_persistent_fault_fails_as_transport_error(
    tmp_path: Path, sim: SimulatorClient, fault: str
) -> None:
    ids = [make_note_id(i) for i in range(2)]
    sim.configure(**{fault: 1.0})
    result = _crawl(tmp_path, sim.url, ids, PGY_RETRY_TIMES=1)
    assert result.returncode == 0, result  # failed notes do not fail the run
    assert result.notes == []
    assert sim.stats()["by_note"] == dict.fromkeys(ids, 2)
    failed = {r["noteId"]: r for r in result.failed}
    assert set(failed) == set(ids)
    for record in failed.values():
        assert record["code"] is None
        assert record["reason"] == "transport_error"
        assert record["attempts"] == 2
        assert record["requestId"] is None
    summary = result.summary
    assert summary["failed_by_reason"] == {"transport_error": 2}
    assert summary["api_calls"] == 0  # no business answer was ever received
    assert summary["balanced"] is True
    assert result.stats["pgy/failed/transport_error"] == 2


def test_timeout_is_possibly_billed(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = [make_note_id(i) for i in range(2)]
    sim.configure(slow=1.0, slow_seconds=2.0)
    result = _crawl(
        tmp_path, sim.url, ids, PGY_RETRY_TIMES=0, DOWNLOAD_TIMEOUT=1, LOG_LEVEL="DEBUG"
    )
    # Let the simulator finish the slow answers so they don't count in the next test; it
    # answers (and bills) them after the client has given up.
    assert _wait_for_calls(sim, 2) == 2
    assert sim.stats()["billed"] == 2
    assert result.returncode == 0, result
    assert result.notes == []
    failed = {r["noteId"]: r for r in result.failed}
    assert set(failed) == set(ids)
    assert {(r["reason"], r["code"]) for r in failed.values()} == {("transport_error", None)}
    assert result.stats["pgy/possibly_billed"] == 2
    assert result.summary["possibly_billed"] == 2
    assert all("Timeout" in r["message"] for r in failed.values())
    # Scrapy's timeout error quotes the URL it fetched, which held the token.
    failed_text = (result.output / "failed.jsonl").read_text(encoding="utf-8")
    for text in (result.stdout, result.stderr, failed_text):
        assert "test-token" not in text


def test_occasional_timeout_is_retried(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = [make_note_id(i) for i in range(4)]
    sim.configure(slow=0.3, slow_seconds=1.5, seed=3)
    result = _crawl(tmp_path, sim.url, ids, PGY_RETRY_TIMES=10, DOWNLOAD_TIMEOUT=1)
    # Let the simulator finish the slow answers so they don't count in the next test.
    _wait_for_calls(sim, result.stats.get("pgy/requests_sent", 0))
    assert result.returncode == 0, result
    assert sorted(n["noteId"] for n in result.notes) == sorted(ids)
    assert result.failed == []
    timeouts = result.stats["pgy/retry/count"]
    assert timeouts > 0
    assert result.stats["pgy/possibly_billed"] == timeouts
    assert result.summary["possibly_billed"] == timeouts


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_connection_refused_is_not_billed(tmp_path: Path) -> None:
    ids = [make_note_id(i) for i in range(2)]
    result = _crawl(tmp_path, _closed_port_url(), ids, PGY_RETRY_TIMES=1)
    assert result.returncode == 0, result
    assert result.notes == []
    failed = {r["noteId"]: r for r in result.failed}
    assert set(failed) == set(ids)
    for record in failed.values():
        assert (record["reason"], record["code"], record["attempts"]) == (
            "transport_error",
            None,
            2,
        )
    # The connection was refused: the request never reached the API, so it cannot be billed.
    assert result.stats.get("pgy/possibly_billed", 0) == 0
    assert result.summary["possibly_billed"] == 0
