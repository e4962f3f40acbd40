"""Resume: a job stopped by quota continues where it stopped and pays for no note twice."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.accounting import assert_balanced
from tests.support.crawl import finish_crawl, run_crawl, start_crawl
from tests.support.ids import make_note_ids
from tests.support.simulator import SimulatorClient


def write_seeds(path: Path, ids: list[str]) -> None:
    path.write_text("\n".join(ids) + "\n", encoding="utf-8")


def test_quota_stop_then_resume_gives_exactly_the_uninterrupted_notes(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    ids = make_note_ids(40)
    # A duplicate late in the file: after the resume it must still count as a duplicate.
    write_seeds(tmp_path / "seeds.txt", [*ids, ids[0]])
    args = ("-a", "ids_file=seeds.txt")
    settings = {"JOBDIR": "job", "CONCURRENT_REQUESTS": 4}
    sim.configure(quota=15)

    first = run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    assert first.returncode == 3, first
    s1 = first.summary
    assert s1["finish_reason"] == "pgy_quota_exceeded"
    assert s1["notes_written"] == 15
    assert s1["pending"] > 0 and s1["failed"] == 0  # stopped notes are pending, not failed
    assert_balanced(s1)
    calls_before_resume = sim.stats()["by_code"]

    sim.configure(quota=10_000)  # the next day: a fresh quota
    second = run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    assert second.returncode == 0, second
    s2 = second.summary
    assert s2["resumed"] is True and s2["sessions"] == 2
    assert s2["finish_reason"] == "finished"
    # Cumulative accounting over both sessions: every seed counted once.
    assert s2["seeds_read"] == 41
    assert s2["notes_written"] == 40 and s2["duplicates"] == 1 and s2["pending"] == 0
    assert_balanced(s2)

    # The feed holds exactly the notes of an uninterrupted run (appended, not replaced).
    notes = Counter(n["noteId"] for n in second.notes)
    assert notes == Counter(ids)
    # Each note was paid for exactly once across the two sessions.
    stats = sim.stats()
    assert stats["success_by_note"] == dict.fromkeys(ids, 1)
    assert calls_before_resume.get("303", 0) >= 1

    # Running the finished job again costs nothing, and it stays finished: every later
    # run says so, with the counts of the job and its input read to the end.
    for _ in range(2):
        again = run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
        assert again.returncode == 0, again
        assert "This job already finished" in again.stderr
        assert again.summary["all_seeds_read"] is True
        assert again.summary["notes_written"] == 40
        assert_balanced(again.summary)
    assert sim.stats()["calls"] == stats["calls"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_resume_completes(
    tmp_path: Path, sim: SimulatorClient, signum: int
) -> None:
    ids = make_note_ids(120)
    write_seeds(tmp_path / "seeds.txt", ids)
    args = ("-a", "ids_file=seeds.txt")
    settings = {"JOBDIR": "job", "CONCURRENT_REQUESTS": 4}
    sim.configure(latency_ms=100)

    proc = start_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    deadline = time.monotonic() + 60
    while sim.stats()["success_by_note"].__len__() < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    first = finish_crawl(proc, tmp_path)
    assert first.returncode == 4, first
    s1 = first.summary
    assert s1["finish_reason"] == "shutdown"
    assert_balanced(s1)
    assert 0 < s1["notes_written"] < len(ids)
    # In-flight calls were allowed to finish and were written: nothing paid was lost.
    assert s1["notes_written"] == len(sim.stats()["success_by_note"])
    # Every feed line is whole (the feed was flushed and closed, not truncated).
    assert len(first.notes) == s1["notes_written"]

    sim.configure(latency_ms=0)
    second = run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    assert second.returncode == 0, second
    assert Counter(n["noteId"] for n in second.notes) == Counter(ids)
    assert sim.stats()["success_by_note"] == dict.fromkeys(ids, 1)
    assert second.summary["seeds_read"] == len(ids)
    assert_balanced(second.summary)


def test_a_state_of_another_format_is_refused_before_any_file_is_touched(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    from pgy_spider import jobstate

    ids = make_note_ids(3)
    write_seeds(tmp_path / "seeds.txt", ids)
    job = tmp_path / "job"
    job.mkdir()
    (job / jobstate.STATE_FILE).write_text('{"format": 1}', encoding="utf-8")
    output = tmp_path / "output"
    output.mkdir()
    (output / "failed.jsonl").write_text('{"kept": true}\n', encoding="utf-8")
    (output / "notes.jsonl").write_text('{"kept": true}\n', encoding="utf-8")
    result = run_crawl(
        tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url, settings={"JOBDIR": "job"}
    )
    assert result.returncode == 2, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "format 1" in lines[0] and f"formats 2 and {jobstate.FORMAT}" in lines[0]
    assert "Traceback" not in result.stderr
    # Neither half a resume nor a fresh start: nothing was written, nothing was called.
    assert (output / "failed.jsonl").read_text(encoding="utf-8") == '{"kept": true}\n'
    assert (output / "notes.jsonl").read_text(encoding="utf-8") == '{"kept": true}\n'
    assert sim.stats()["calls"] == 0
