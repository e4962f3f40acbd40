"""Resume: a job stopped by quota continues where it stopped and pays for no note twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.support.crawl import run_crawl
from tests.support.simulator import SimulatorClient, make_note_id


def write_seeds(path: Path, ids: list[str]) -> None:
    path.write_text("\n".join(ids) + "\n", encoding="utf-8")


def test_quota_stop_then_resume_gives_exactly_the_uninterrupted_notes(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    ids = [make_note_id(i) for i in range(40)]
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
    assert s1["balanced"] is True
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
    assert s2["balanced"] is True

    # The feed holds exactly the notes of an uninterrupted run (appended, not replaced).
    notes = Counter(n["noteId"] for n in second.notes)
    assert notes == Counter(ids)
    # Each note was paid for exactly once across the two sessions.
    stats = sim.stats()
    assert stats["success_by_note"] == dict.fromkeys(ids, 1)
    assert calls_before_resume.get("303", 0) >= 1

    # Running the finished job again costs nothing.
    third = run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    assert third.returncode == 0, third
    assert sim.stats()["calls"] == stats["calls"]
