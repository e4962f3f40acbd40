"""End-to-end: ``PGY_MAX_BILLED_CALLS`` against the simulator's own count of billable answers.

Real ``scrapy crawl`` processes at ``CONCURRENT_REQUESTS=64`` with latency and jitter (answers
come back out of order) and fault mixes: 301s (not billed: their units come back), 201s
(billed), and timeouts (``slow`` answers past ``DOWNLOAD_TIMEOUT``: the simulator still bills
them when it answers, so the crawl must count them as spent). The simulator's ``billed``
never exceeds the budget, in one run and over a JOBDIR job killed with SIGKILL and resumed.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.accounting import assert_accounted
from tests.support.crawl import CrawlResult, finish_crawl, run_crawl, start_crawl
from tests.support.ids import make_note_id, not_found_id
from tests.support.simulator import SimulatorClient

CONCURRENCY = 64
SLOW_SECONDS = 0.8  # a slow answer comes this long after its call ...
TIMEOUT = 0.4  # ... which the crawl gave up on long before
STOP_LINE = "The budget is spent"


def _seeds(path: Path, valid: int, not_found: int) -> set[str]:
    """Valid notes and notes the API does not know (201, billed), with a few duplicates."""
    notes = [make_note_id(i) for i in range(valid)]
    lines = [*notes, *(not_found_id(50_000 + i) for i in range(not_found)), *notes[:5]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return set(notes)


def _faults(sim: SimulatorClient) -> None:
    sim.configure(
        latency_ms=20,
        latency_jitter_ms=40,
        rate_301=0.1,
        slow=0.03,
        slow_seconds=SLOW_SECONDS,
    )


def _settings(budget: int, **extra: Any) -> dict[str, Any]:
    return {
        "CONCURRENT_REQUESTS": CONCURRENCY,
        "PGY_MAX_BILLED_CALLS": budget,
        "DOWNLOAD_TIMEOUT": TIMEOUT,
        "PGY_RETRY_TIMES": 10,
        **extra,
    }


def _billed_by_the_api(sim: SimulatorClient) -> int:
    """The simulator's count once the slow answers of the calls the crawl gave up on (or
    of a killed process) have come in too."""
    time.sleep(SLOW_SECONDS + 0.3)
    billed: int = sim.stats()["billed"]
    return billed


def _stopped_by_the_budget(result: CrawlResult, budget: int) -> dict[str, Any]:
    assert result.returncode == 3, result
    s = assert_accounted(result)
    assert s["finish_reason"] == "pgy_budget_exhausted" and s["exit_code"] == 3
    assert s["billed"] == budget and s["budget"] == budget  # spent to the unit, no further
    assert result.stats["pgy/billed"] == budget and result.stats["pgy/budget"] == budget
    assert s["pending"] > 0  # undone notes are pending, not failed
    assert set(s["failed_by_reason"]) <= {"not_found"}
    stop_lines = [line for line in result.stderr.splitlines() if STOP_LINE in line]
    assert len(stop_lines) == 1 and "Traceback" not in result.stderr, result
    return s


def test_one_run_never_receives_more_billable_answers_than_its_budget(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    _seeds(tmp_path / "seeds.txt", 500, not_found=40)
    _faults(sim)
    result = run_crawl(
        tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=_settings(150)
    )
    s = _stopped_by_the_budget(result, 150)
    assert "not resumable" in next(line for line in result.stderr.splitlines() if STOP_LINE in line)
    billed = _billed_by_the_api(sim)
    assert billed <= 150, billed
    assert s["possibly_billed"] > 0  # timeouts happened, and were counted as spent
    assert sim.stats()["by_code"].get("301", 0) > 0


def test_a_killed_job_never_overshoots_and_resumes_with_a_larger_budget(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    notes = _seeds(tmp_path / "seeds.txt", 420, not_found=20)
    args = ("-a", "ids_file=seeds.txt")
    _faults(sim)
    budget = 260
    settings = _settings(budget, JOBDIR="job")
    proc = start_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    deadline = time.monotonic() + 120
    while sim.stats()["billed"] < 110:
        assert proc.poll() is None, "the crawl ended before the kill"
        assert time.monotonic() < deadline, "the crawl never got there"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert finish_crawl(proc, tmp_path).returncode == -signal.SIGKILL
    assert _billed_by_the_api(sim) <= budget

    # The same command: the killed session's last block counts as spent; the job goes on
    # to the budget, never past it.
    second = run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    s = _stopped_by_the_budget(second, budget)
    assert s["resumed"] is True and s["sessions"] == 2
    billed = _billed_by_the_api(sim)
    assert billed <= budget, billed

    # Again with the same budget: stopped at once, one line, no call.
    calls = sim.stats()["calls"]
    third = run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    _stopped_by_the_budget(third, budget)
    assert sim.stats()["calls"] == calls

    # A larger budget: the job resumes and finishes, every note once.
    sim.configure(rate_301=0, slow=0)
    final = run_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings(5000, JOBDIR="job"))
    assert final.returncode == 0, final
    s = assert_accounted(final)
    assert s["finish_reason"] == "finished" and s["pending"] == 0 and s["sessions"] == 4
    assert Counter(n["noteId"] for n in final.notes) == Counter(notes)
    assert s["failed_by_reason"] == {"not_found": 20}
    billed = _billed_by_the_api(sim)
    # The job's count is never below what the API billed (the killed block counts whole).
    assert billed <= s["billed"] <= 5000, (billed, s["billed"])


def test_a_budget_that_is_just_enough_finishes_the_run(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    notes = _seeds(tmp_path / "seeds.txt", 40, not_found=0)
    sim.configure(latency_ms=10, latency_jitter_ms=30)
    result = run_crawl(
        tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=_settings(40)
    )
    assert result.returncode == 0, result
    s = assert_accounted(result)
    assert s["finish_reason"] == "finished" and s["billed"] == 40 and s["budget"] == 40
    assert {n["noteId"] for n in result.notes} == notes
    assert sim.stats()["billed"] == 40


def test_cached_answers_are_not_spent(tmp_path: Path, sim: SimulatorClient) -> None:
    _seeds(tmp_path / "seeds.txt", 12, not_found=0)
    cache = {"HTTPCACHE_ENABLED": True, "HTTPCACHE_DIR": str(tmp_path / "cache")}
    args = ("-a", "ids_file=seeds.txt")
    first = run_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings(0, **cache))
    assert first.returncode == 0 and first.summary["billed"] == 12, first
    assert first.summary["budget"] == 0
    again = run_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings(3, **cache))
    assert again.returncode == 0, again
    s = assert_accounted(again)
    assert s["notes_written"] == 12 and s["billed"] == 0
    assert sim.stats()["calls"] == 12  # the second run made none
