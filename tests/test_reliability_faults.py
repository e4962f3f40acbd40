"""Reliability: every injected fault, real crawls against the simulator — nothing lost.

For each fault the same two questions: with a retry budget big enough, does every note
arrive exactly once (once in the feed, paid for once at the simulator)? With a budget too
small, is every note the crawl gave up on in the failed file with its reason, and does the
run's accounting still add up:

    seeds_read == rejected + duplicates + skipped_fresh + notes_written + failed + pending

The identity is computed from the summary (not only read from ``balanced``) and
cross-checked against the feed and the failed file, and the crawl's own numbers are
checked against the simulator's call counts.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.accounting import assert_accounted
from tests.support.crawl import CrawlResult, run_crawl
from tests.support.ids import make_note_ids, not_found_id
from tests.support.simulator import SimulatorClient

N = 30  # notes per single-fault run
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
NOTE_FAILURE_REASONS = {"retries_exhausted", "transport_error", "rate_limited", "not_found"}


def _crawl(tmp_path: Path, sim: SimulatorClient, seeds: list[str], **settings: Any) -> CrawlResult:
    (tmp_path / "seeds.txt").write_text("\n".join(seeds) + "\n", encoding="utf-8")
    return run_crawl(tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=settings)


def _wait_for_calls(sim: SimulatorClient, expected: int, timeout: float = 15.0) -> dict[str, Any]:
    """Slow answers are counted when the simulator finishes them, after the client gave up.

    Waiting for them also keeps them from landing in the next test's (reset) counters.
    """
    deadline = time.monotonic() + timeout
    stats = sim.stats()
    while stats["calls"] < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        stats = sim.stats()
    return stats


# fault -> (simulator config with a moderate rate, with a high rate, failure reason, code)
FAULTS: dict[str, tuple[dict[str, Any], dict[str, Any], str, int | None]] = {
    "rate_301": ({"rate_301": 0.3}, {"rate_301": 0.8}, "retries_exhausted", 301),
    "rate_500": ({"rate_500": 0.3}, {"rate_500": 0.8}, "retries_exhausted", 500),
    "http502_html": ({"http502_html": 0.3}, {"http502_html": 0.8}, "transport_error", None),
    "truncated": ({"truncated": 0.3}, {"truncated": 0.8}, "transport_error", None),
    "malformed": ({"malformed": 0.3}, {"malformed": 0.8}, "transport_error", None),
    "reset": ({"reset": 0.3}, {"reset": 0.8}, "transport_error", None),
}
# Where each fault shows in the simulator's by_code counts.
SIM_KEY = {"rate_301": "301", "rate_500": "500"}
# Which pgy/transport/<kind> stat counts each transport fault.
TRANSPORT_KIND = {
    "http502_html": "http_502",
    "truncated": "invalid_json",
    "malformed": "invalid_json",
    "reset": "DownloadFailedError",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_with_enough_retries_every_note_arrives_once(
    tmp_path: Path, sim: SimulatorClient, fault: str
) -> None:
    ids = make_note_ids(N)
    sim.configure(seed=20240205, **FAULTS[fault][0])
    result = _crawl(tmp_path, sim, ids, PGY_RETRY_TIMES=15)
    assert result.returncode == 0, result
    s = assert_accounted(result)
    assert s["finish_reason"] == "finished"
    assert Counter(n["noteId"] for n in result.notes) == Counter(ids)
    assert result.failed == []
    assert (s["seeds_read"], s["notes_written"], s["failed"], s["pending"]) == (N, N, 0, 0)

    stats = sim.stats()
    injected = stats["by_code"].get(SIM_KEY.get(fault, fault), 0)
    assert injected > 0, stats  # the fault really happened
    # Each note paid for exactly once, and nothing else billed.
    assert stats["success_by_note"] == dict.fromkeys(ids, 1)
    assert stats["billed"] == N
    assert stats["by_code"]["0"] == N
    assert s["retries"] == result.stats["pgy/retry/count"] == injected
    # Every call that reached the API is one the crawl sent and counted.
    assert stats["calls"] == s["requests_sent"] == N + injected
    # A reset call reached the API and may have been billed there; the others did not.
    assert s["possibly_billed"] == (injected if fault == "reset" else 0)
    assert result.stats.get("pgy/possibly_billed", 0) == s["possibly_billed"]
    if fault in TRANSPORT_KIND:
        assert result.stats[f"pgy/transport/{TRANSPORT_KIND[fault]}"] == injected
    if fault in SIM_KEY:
        assert s["calls_by_code"] == {"0": N, SIM_KEY[fault]: injected}
        assert s["api_calls"] == stats["calls"]
    else:
        # No business answer for a transport fault: only the successes are API calls.
        assert s["api_calls"] == N
        assert s["calls_by_code"] == {"0": N}


@pytest.mark.parametrize(
    ("fault", "retry_times"), [(fault, i % 2) for i, fault in enumerate(FAULTS)]
)
def test_fault_with_too_few_retries_fails_notes_with_their_reason(
    tmp_path: Path, sim: SimulatorClient, fault: str, retry_times: int
) -> None:
    ids = make_note_ids(N)
    _, config, reason, code = FAULTS[fault]
    sim.configure(seed=7, **config)
    result = _crawl(tmp_path, sim, ids, PGY_RETRY_TIMES=retry_times)
    assert result.returncode == 0, result  # failed notes do not fail the run
    s = assert_accounted(result)
    assert s["finish_reason"] == "finished"
    assert s["seeds_read"] == N and s["pending"] == 0
    assert s["notes_written"] + s["failed"] == N

    stats = sim.stats()
    fetched = set(stats["success_by_note"])
    # Exactly the notes that never got a success are failed; the others are written once.
    failed = {r["noteId"]: r for r in result.failed}
    assert set(failed) == set(ids) - fetched
    assert {n["noteId"] for n in result.notes} == fetched
    assert stats["success_by_note"] == dict.fromkeys(fetched, 1)
    assert failed, "a high fault rate with a small budget must fail some notes"
    assert s["failed_by_reason"] == {reason: len(failed)}
    assert result.stats[f"pgy/failed/{reason}"] == len(failed)
    for note_id, record in failed.items():
        assert record["reason"] == reason
        assert record["code"] == code
        assert record["attempts"] == retry_times + 1
        if code is not None:
            assert REQUEST_ID.fullmatch(record["requestId"])  # the API's, for support
        else:
            assert record["requestId"] is None  # no answer from the API, no request id
        assert stats["by_note"][note_id] == retry_times + 1
    assert stats["calls"] == s["requests_sent"]
    if code is None:  # a transport fault is no business answer: only the successes are
        assert s["api_calls"] == s["notes_written"]


def test_302_bursts_with_enough_budget(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(N)
    sim.configure(burst_302=45)
    result = _crawl(tmp_path, sim, ids, PGY_RETRY_TIMES=0, PGY_RATE_LIMIT_MAX_DELAY=0.2)
    assert result.returncode == 0, result
    s = assert_accounted(result)
    assert Counter(n["noteId"] for n in result.notes) == Counter(ids)
    assert result.failed == []
    stats = sim.stats()
    assert stats["by_code"] == {"302": 45, "0": N}
    assert stats["success_by_note"] == dict.fromkeys(ids, 1)
    assert stats["calls"] == s["requests_sent"] == N + 45
    # 302 has its own budget: PGY_RETRY_TIMES=0 did not fail a single note.
    assert s["retries"] == 0
    assert result.stats["pgy/rate_limit_pauses"] >= 1
    assert result.stats["pgy/code/302"] == 45
    assert s["calls_by_code"] == {"0": N, "302": 45}


def test_302_bursts_with_too_small_budget(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(N)
    sim.configure(burst_302=10_000)
    result = _crawl(tmp_path, sim, ids, PGY_RATE_LIMIT_RETRIES=1, PGY_RATE_LIMIT_MAX_DELAY=0.2)
    assert result.returncode == 0, result
    s = assert_accounted(result)
    # Never given up silently: every note is in the failed file as rate_limited.
    assert result.notes == []
    assert s["failed_by_reason"] == {"rate_limited": N}
    failed = {r["noteId"]: r for r in result.failed}
    assert set(failed) == set(ids)
    assert {(r["reason"], r["code"], r["attempts"]) for r in failed.values()} == {
        ("rate_limited", 302, 2)
    }
    stats = sim.stats()
    assert stats["by_note"] == dict.fromkeys(ids, 2)
    assert stats["billed"] == 0


def test_slow_answers_with_enough_retries(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(8)
    sim.configure(slow=0.3, slow_seconds=1.5, seed=3)
    result = _crawl(tmp_path, sim, ids, PGY_RETRY_TIMES=12, DOWNLOAD_TIMEOUT=1)
    assert result.returncode == 0, result
    s = assert_accounted(result)
    stats = _wait_for_calls(sim, s["requests_sent"])
    assert Counter(n["noteId"] for n in result.notes) == Counter(ids)
    assert result.failed == []
    timeouts = result.stats["pgy/transport/DownloadTimeoutError"]
    assert timeouts > 0
    assert s["retries"] == timeouts
    # A timed-out call may still have been billed: the crawl says so ...
    assert s["possibly_billed"] == timeouts
    # ... and indeed the simulator finished (and billed) each one after the client gave up.
    assert stats["calls"] == s["requests_sent"] == len(ids) + timeouts
    assert sum(stats["success_by_note"].values()) == len(ids) + timeouts
    assert set(stats["success_by_note"]) == set(ids)


def test_slow_answers_with_no_retry(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(6)
    sim.configure(slow=1.0, slow_seconds=1.5)
    result = _crawl(tmp_path, sim, ids, PGY_RETRY_TIMES=0, DOWNLOAD_TIMEOUT=1)
    assert result.returncode == 0, result
    s = assert_accounted(result)
    stats = _wait_for_calls(sim, len(ids))
    assert result.notes == []
    failed = {r["noteId"]: r for r in result.failed}
    assert set(failed) == set(ids)
    assert {(r["reason"], r["code"], r["attempts"]) for r in failed.values()} == {
        ("transport_error", None, 1)
    }
    assert all("Timeout" in r["message"] for r in failed.values()), failed
    assert s["failed_by_reason"] == {"transport_error": len(ids)}
    assert s["possibly_billed"] == len(ids)
    assert stats["calls"] == len(ids)


def _mixed_seeds() -> tuple[list[str], list[str], list[str], dict[str, str]]:
    """~60 seeds: valid IDs in several shapes, duplicates, not-found IDs and rejects.

    Returns (seed lines, distinct fetchable IDs, not-found IDs, rejected seed -> reason).
    """
    ids = make_note_ids(47)
    missing = [not_found_id(100 + i) for i in range(3)]  # answered 201
    rejects = {
        "65c0b3fc000000002c037a4": "invalid_id",  # 23 hex digits
        "not a note id": "invalid_id",
        "https://www.xiaohongshu.com/user/profile/5f1c2d3e000000000101abcd": "invalid_id",
        "00000000000000000000abcd": "invalid_id",  # created before Xiaohongshu existed
        "http://xhslink.com/a/AbCdEf": "short_link",
        "https://xhslink.cn/b/XyZ123": "short_link",
    }
    lines = [*ids[:20], *missing]
    lines += [f"https://www.xiaohongshu.com/explore/{i}?xsec_token=AB1=" for i in ids[20:30]]
    lines += list(rejects)
    lines += ids[30:]
    # Duplicates in other shapes: upper case, a link to an ID already seen, a repeat.
    lines += [ids[0].upper(), f"https://www.rednote.com/explore/{ids[5]}", ids[33], missing[0]]
    return lines, ids, missing, rejects


@pytest.mark.parametrize("generous", [True, False], ids=["enough-retries", "too-few-retries"])
def test_mixed_faults_account_for_every_seed(
    tmp_path: Path, sim: SimulatorClient, generous: bool
) -> None:
    lines, ids, missing, rejects = _mixed_seeds()
    assert len(lines) == 60
    sim.configure(
        seed=60,
        rate_301=0.1,
        rate_500=0.1,
        http502_html=0.05,
        truncated=0.05,
        malformed=0.05,
        reset=0.05,
        burst_302=6,
    )
    budget = (
        {"PGY_RETRY_TIMES": 20, "PGY_RATE_LIMIT_RETRIES": 30}
        if generous
        else {"PGY_RETRY_TIMES": 0, "PGY_RATE_LIMIT_RETRIES": 0}
    )
    result = _crawl(tmp_path, sim, lines, PGY_RATE_LIMIT_MAX_DELAY=0.2, **budget)
    assert result.returncode == 0, result
    s = assert_accounted(result)
    assert s["finish_reason"] == "finished"
    assert s["seeds_read"] == 60
    assert s["rejected_by_reason"] == {"invalid_id": 4, "short_link": 2}
    assert s["duplicates"] == 4
    assert s["pending"] == 0
    distinct = len(ids) + len(missing)
    assert s["notes_written"] + s["failed"] == distinct

    # Every rejected seed is reported with its raw text and reason, and never sent.
    reported = {r["seed"]: r["reason"] for r in result.failed if "seed" in r}
    assert reported == rejects
    stats = sim.stats()
    assert set(stats["by_note"]) <= set(ids) | set(missing)
    assert stats["calls"] == s["requests_sent"]  # no call the crawl did not send and count
    # Every distinct ID ended in exactly one place: the feed or the failed file.
    written = {n["noteId"] for n in result.notes}
    failed = {r["noteId"]: r for r in result.failed if "seed" not in r}
    assert written | set(failed) == set(ids) | set(missing)
    # A not-found ID is answered 201 unless an HTTP fault hides the answer.
    assert {failed[m]["reason"] for m in missing} <= {"not_found", "transport_error"}
    assert {r["reason"] for r in failed.values()} <= NOTE_FAILURE_REASONS
    # What was written was paid for once; nothing was paid for twice.
    assert stats["success_by_note"] == dict.fromkeys(written, 1)
    if generous:
        assert written == set(ids)
        assert s["failed_by_reason"] == {"not_found": len(missing)}
        assert stats["billed"] == len(ids) + len(missing)
    else:
        assert s["failed"] > len(missing)  # the faults did cost notes


def test_reset_makes_no_call_the_crawl_does_not_count(tmp_path: Path, sim: SimulatorClient) -> None:
    """Regression: Twisted's pool used to re-send a GET whose kept-alive connection was reset
    (retryAutomatically): a possibly billed call beyond PGY_RETRY_TIMES, counted nowhere."""
    ids = make_note_ids(20)
    sim.configure(reset=0.5, seed=1)
    result = _crawl(tmp_path, sim, ids, PGY_RETRY_TIMES=0, CONCURRENT_REQUESTS=1)
    assert result.returncode == 0, result
    s = assert_accounted(result)
    stats = sim.stats()
    # PGY_RETRY_TIMES=0: one call per note, each one counted by the crawl.
    assert max(stats["by_note"].values()) == 1, stats["by_note"]
    assert stats["calls"] == s["requests_sent"] == len(ids)


def test_http_cache_does_not_replay_failures_to_retries(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    ids = make_note_ids(20)
    sim.configure(rate_301=0.3, seed=1)
    result = _crawl(
        tmp_path,
        sim,
        ids,
        PGY_RETRY_TIMES=10,
        HTTPCACHE_ENABLED=True,
        HTTPCACHE_DIR=str(tmp_path / "httpcache"),
    )
    assert result.returncode == 0, result
    s = assert_accounted(result)
    assert result.stats.get("httpcache/store", 0) > 0  # the cache was really on
    assert result.failed == []
    assert Counter(n["noteId"] for n in result.notes) == Counter(ids)
    assert sim.stats()["calls"] == s["requests_sent"]
