"""End-to-end: a JOBDIR job killed with SIGKILL at any moment, then run to the end with the
same command, pays once for every note and loses none.

Each test kills a real ``scrapy crawl`` process (SIGKILL: no handler runs, nothing is
flushed), reruns the same command, and checks against the simulator's own counts: billable
answers <= distinct notes + the calls in flight at each kill (at most CONCURRENT_REQUESTS),
every note exactly once in the feed and every line whole, one failed record per failed
seed, a balanced summary over the whole job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.accounting import assert_accounted, assert_balanced
from tests.support.crawl import CrawlResult, finish_crawl, run_crawl, start_crawl
from tests.support.ids import make_note_id, make_note_ids, not_found_id
from tests.support.simulator import SimulatorClient

CONCURRENCY = 8
KILLER = '{"jsonlines": "tests.support.killing_exporter.KillMidLineExporter"}'


def _seed_file(path: Path, valid: int, *, not_found: int = 0, junk: int = 0) -> dict[str, int]:
    """A seed file with valid IDs, IDs the API does not know (201), rejected lines and
    duplicates, mixed; returns what a complete job must count."""
    lines = []
    for i in range(valid):
        lines.append(make_note_id(i))
        if i % 50 == 7:
            lines.append(make_note_id(i // 2))  # a duplicate of an earlier seed
        if junk and i % (valid // junk or 1) == 3:
            lines.append(f"http://xhslink.com/{i}")  # rejected: a short link
    lines += [not_found_id(10_000 + i) for i in range(not_found)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejected = sum(1 for line in lines if "xhslink" in line)
    return {
        "seeds": len(lines),
        "notes": valid,
        "not_found": not_found,
        "rejected": rejected,
        "duplicates": len(lines) - valid - not_found - rejected,
    }


def _settings(**extra: Any) -> dict[str, Any]:
    return {"JOBDIR": "job", "CONCURRENT_REQUESTS": CONCURRENCY, **extra}


def _wait_for(sim: SimulatorClient, done: Callable[[dict[str, Any]], bool], proc: Any) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the crawl ended before the kill: {proc.returncode}")
        if done(sim.stats()):
            return
        time.sleep(0.01)
    raise AssertionError("the crawl never got there")


def _kill(proc: subprocess.Popen[str], workdir: Path) -> CrawlResult:
    proc.send_signal(signal.SIGKILL)
    result = finish_crawl(proc, workdir)
    assert result.returncode == -signal.SIGKILL, result
    return result


def _feed_lines(workdir: Path) -> list[dict[str, Any]]:
    raw = (workdir / "output" / "notes.jsonl").read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "a torn last line"
    return [json.loads(line) for line in raw.split(b"\n") if line]


def _check_job(
    result: CrawlResult, sim: SimulatorClient, expected: dict[str, int], kills: int
) -> None:
    """The whole job, after its last (complete) session."""
    assert result.returncode == 0, result
    s = assert_accounted(result)
    assert s["finish_reason"] == "finished" and s["resumed"] is True
    assert s["sessions"] == kills + 1
    assert s["seeds_read"] == expected["seeds"]
    assert s["notes_written"] == expected["notes"] and s["pending"] == 0
    assert s["duplicates"] == expected["duplicates"]
    assert s["rejected"] == expected["rejected"]
    assert s["failed_by_reason"] == (
        {"not_found": expected["not_found"]} if expected["not_found"] else {}
    )
    notes = Counter(n["noteId"] for n in _feed_lines(result.workdir))
    assert set(notes) == {make_note_id(i) for i in range(expected["notes"])}
    assert max(notes.values()) == 1, [n for n, c in notes.items() if c > 1]
    failed = [r for r in result.failed if "seed" not in r]
    assert len({r["noteId"] for r in failed}) == len(failed) == expected["not_found"]
    assert len([r for r in result.failed if "seed" in r]) == expected["rejected"]
    stats = sim.stats()
    distinct = expected["notes"] + expected["not_found"]
    assert stats["billed"] <= distinct + kills * CONCURRENCY, stats["billed"]
    assert set(stats["success_by_note"]) == set(notes)


def test_killed_while_reading_seeds_and_mid_crawl_three_times(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    expected = _seed_file(tmp_path / "seeds.txt", 700, not_found=20, junk=30)
    args = ("-a", "ids_file=seeds.txt")
    sim.configure(latency_ms=20)
    for threshold in (60, 250, 500):
        proc = start_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings())
        _wait_for(sim, lambda s, n=threshold: s["calls"] >= n, proc)
        _kill(proc, tmp_path)
        _feed_lines(tmp_path)  # a line may be torn here; the rerun repairs it
    sim.configure(latency_ms=0)
    final = run_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings())
    _check_job(final, sim, expected, kills=3)


def test_killed_with_retries_waiting_for_their_backoff(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    expected = _seed_file(tmp_path / "seeds.txt", 120, not_found=5)
    args = ("-a", "ids_file=seeds.txt")
    sim.configure(fail_first={"301": 1}, latency_ms=10)
    settings = _settings(PGY_RETRY_BACKOFF=1)  # every note waits ~1 s before its retry
    proc = start_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    _wait_for(sim, lambda s: s["by_code"].get("0", 0) >= 30, proc)
    _kill(proc, tmp_path)
    final = run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    _check_job(final, sim, expected, kills=1)


@pytest.mark.parametrize("kill_at", [1, 37])
def test_killed_in_the_middle_of_a_feed_line(
    tmp_path: Path, sim: SimulatorClient, kill_at: int
) -> None:
    expected = _seed_file(tmp_path / "seeds.txt", 80, not_found=3, junk=4)
    args = ("-a", "ids_file=seeds.txt")
    proc = start_crawl(
        tmp_path,
        *args,
        sim_url=sim.url,
        settings=_settings(FEED_EXPORTERS=KILLER, PGY_CHECKPOINT_SECONDS=0.05),
        env={"PGY_TEST_KILL_AT": str(kill_at)},
    )
    killed = finish_crawl(proc, tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed
    torn = (tmp_path / "output" / "notes.jsonl").read_bytes()
    assert not torn.endswith(b"\n")  # the kill did tear a line
    final = run_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings())
    assert "a torn last line" in final.stderr
    _check_job(final, sim, expected, kills=1)


def test_killed_right_after_the_last_answer(tmp_path: Path, sim: SimulatorClient) -> None:
    expected = _seed_file(tmp_path / "seeds.txt", 150, not_found=4, junk=5)
    args = ("-a", "ids_file=seeds.txt")
    total = expected["notes"] + expected["not_found"]
    proc = start_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings())
    _wait_for(sim, lambda s: s["calls"] >= total, proc)
    _kill(proc, tmp_path)
    final = run_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings())
    _check_job(final, sim, expected, kills=1)


def test_a_rerun_of_the_killed_job_after_it_finished_makes_no_call(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    expected = _seed_file(tmp_path / "seeds.txt", 40)
    args = ("-a", "ids_file=seeds.txt")
    sim.configure(latency_ms=20)
    proc = start_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings())
    _wait_for(sim, lambda s: s["calls"] >= 10, proc)
    _kill(proc, tmp_path)
    final = run_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings())
    _check_job(final, sim, expected, kills=1)
    calls = sim.stats()["calls"]
    again = run_crawl(tmp_path, *args, sim_url=sim.url, settings=_settings())
    assert again.returncode == 0 and sim.stats()["calls"] == calls
    assert os.path.getsize(tmp_path / "output" / "notes.jsonl") > 0


# -- what a resumable job refuses, before any call ------------------------------------------


def _refused(result: CrawlResult, sim: SimulatorClient, *words: str) -> None:
    assert result.returncode == 2, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    assert sim.stats()["calls"] == 0


def test_overwriting_the_feed_of_a_job_with_state_is_refused(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    _seed_file(tmp_path / "seeds.txt", 5)
    args = ("-a", "ids_file=seeds.txt")
    first = run_crawl(tmp_path, *args, "-O", "notes.jsonl", sim_url=sim.url, settings=_settings())
    assert first.returncode == 0, first  # a new job may start with -O
    sim.reset()
    again = run_crawl(tmp_path, *args, "-O", "notes.jsonl", sim_url=sim.url, settings=_settings())
    _refused(again, sim, "-O notes.jsonl", "-o")
    assert len(_jsonl(tmp_path / "notes.jsonl")) == 5  # untouched
    appended = run_crawl(
        tmp_path, *args, "-o", "notes.jsonl", sim_url=sim.url, settings=_settings()
    )
    assert appended.returncode == 0 and sim.stats()["calls"] == 0


@pytest.mark.parametrize("feed", ["-:jsonlines", "notes.json", "notes.xml", "notes.jsonl.gz"])
def test_feeds_a_kill_would_lose_are_refused_with_jobdir(
    tmp_path: Path, sim: SimulatorClient, feed: str
) -> None:
    options = ["-O", feed]
    settings = _settings()
    if feed.endswith(".gz"):
        options = []
        settings["FEEDS"] = json.dumps(
            {
                feed: {
                    "format": "jsonlines",
                    "postprocessing": ["scrapy.extensions.postprocessing.GzipPlugin"],
                }
            }
        )
    result = run_crawl(
        tmp_path, "-a", f"ids={make_note_id(1)}", *options, sim_url=sim.url, settings=settings
    )
    _refused(result, sim, "only stored when the run ends", "JOBDIR")


def test_session_placeholders_in_a_resumable_feed_are_refused(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids={make_note_id(1)}",
        sim_url=sim.url,
        settings=_settings(PGY_FEED_URI="out/%(time)s.jsonl"),
    )
    _refused(result, sim, "%(time)s", "fixed path")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


# -- outputs that cannot be written: exit 5, nothing counted that is not on disk -------------


def _output_error(result: CrawlResult, path: str) -> dict[str, Any]:
    assert result.returncode == 5, result
    s = result.summary
    assert s["finish_reason"] == "pgy_output_error" and s["exit_code"] == 5
    assert s["output_error"]["path"] == path and "space" in s["output_error"]["error"]
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr
    assert_balanced(s)
    return s


def test_a_feed_on_a_full_disk_stops_the_run(tmp_path: Path, sim: SimulatorClient) -> None:
    _seed_file(tmp_path / "seeds.txt", 30)
    result = run_crawl(
        tmp_path,
        "-a",
        "ids_file=seeds.txt",
        sim_url=sim.url,
        settings=_settings(PGY_FEED_URI="/dev/full"),
    )
    s = _output_error(result, "/dev/full")
    assert s["notes_written"] == 0  # none reached the disk, none is counted
    assert s["pending"] >= 1


def test_a_failed_file_on_a_full_disk_stops_the_run(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = [not_found_id(1), *make_note_ids(20)]
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        settings={"PGY_FAILED_PATH": "/dev/full", "CONCURRENT_REQUESTS": 1},
    )
    s = _output_error(result, "/dev/full")
    assert s["failed"] == 0  # the not-found record could not be written: not counted


def test_a_state_that_cannot_be_written_stops_the_run(tmp_path: Path, sim: SimulatorClient) -> None:
    _seed_file(tmp_path / "seeds.txt", 3000)
    job = tmp_path / "job"
    job.mkdir()
    (job / "pgy-seen.bin").symlink_to("/dev/full")
    sim.configure(latency_ms=5)
    result = run_crawl(
        tmp_path,
        "-a",
        "ids_file=seeds.txt",
        sim_url=sim.url,
        settings=_settings(PGY_CHECKPOINT_SECONDS=0.05, CONCURRENT_REQUESTS=64),
    )
    _output_error(result, str(Path("job") / "pgy-state.json"))


# -- a job paused by the previous version resumes -------------------------------------------


def test_a_job_paused_in_the_previous_format_resumes(tmp_path: Path, sim: SimulatorClient) -> None:
    import pickle

    from pgy_spider.ledger import Ledger
    from pgy_spider.noteid import note_id_to_int

    ids = make_note_ids(20)
    (tmp_path / "seeds.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    # What the previous version left after a quota stop: 8 notes written, 2 pending, the
    # cursor on the 10th seed, its dedup set in the pickle.
    ledger = Ledger(seeds_read=10, notes_written=8, sessions=1)
    ledger.outstanding = {8: ids[8], 9: ids[9]}
    ledger.cursor = (0, 25 * 9, 9)
    for note_id in ids[:10]:
        ledger.seen.add(note_id_to_int(note_id))
    job = tmp_path / "job"
    job.mkdir()
    (job / "pgy-state.pickle").write_bytes(pickle.dumps({"version": 2, "ledger": ledger}))
    output = tmp_path / "output"
    output.mkdir()
    (output / "notes.jsonl").write_text(
        "".join(json.dumps({"noteId": n}) + "\n" for n in ids[:8]), encoding="utf-8"
    )
    (output / "failed.jsonl").write_text("", encoding="utf-8")
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=_settings())
    assert result.returncode == 0, result
    s = assert_accounted(result)
    assert s["resumed"] is True and s["sessions"] == 2
    assert s["notes_written"] == 20 and s["seeds_read"] == 20
    assert Counter(n["noteId"] for n in _feed_lines(tmp_path)) == Counter(ids)
    assert set(sim.stats()["by_note"]) == set(ids[8:])  # nothing paid again
    assert not (job / "pgy-state.pickle").exists() and (job / "pgy-state.json").exists()


def test_a_run_without_jobdir_says_at_start_that_it_cannot_resume(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    result = run_crawl(tmp_path, "-a", f"ids={make_note_id(1)}", sim_url=sim.url)
    assert result.returncode == 0, result
    line = next(line for line in result.stderr.splitlines() if "not resumable" in line)
    assert "-s JOBDIR=" in line
    assert result.stderr.index("not resumable") < result.stderr.index("Spider opened")


# -- MongoDB as the durable truth (no local feed that survives a kill) ------------------------


@pytest.mark.mongo
def test_with_mongodb_as_the_truth_a_kill_costs_no_second_payment(
    tmp_path: Path, sim: SimulatorClient, mongo_db: Any, mongo_database: Any
) -> None:
    expected = _seed_file(tmp_path / "seeds.txt", 200, not_found=4)
    args = ("-a", "ids_file=seeds.txt", "-o", "notes.xml")  # not line by line: no truth
    settings = _settings(
        MONGO_URI=mongo_db.uri,
        MONGO_DATABASE=mongo_db.name,
        PGY_REFRESH_HOURS=0,  # no freshness shortcut: the resume alone must avoid re-paying
        PGY_MONGO_FLUSH_SECONDS=0.2,
    )
    sim.configure(latency_ms=20)
    proc = start_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    _wait_for(sim, lambda s: s["calls"] >= 90, proc)
    _kill(proc, tmp_path)
    stored_before = mongo_database["notes"].count_documents({})
    assert stored_before > 0
    sim.configure(latency_ms=0)
    final = run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)
    assert final.returncode == 0, final
    s = final.summary
    assert s["balanced"] is True and s["resumed"] is True and s["pending"] == 0
    assert s["notes_written"] == expected["notes"] and s["seeds_read"] == expected["seeds"]
    stored = {d["_id"] for d in mongo_database["notes"].find({}, {"_id": 1})}
    assert stored == {make_note_id(i) for i in range(expected["notes"])}
    stats = sim.stats()
    distinct = expected["notes"] + expected["not_found"]
    assert stats["billed"] <= distinct + CONCURRENCY, stats["billed"]
    assert (tmp_path / "job" / "pgy-stored.jsonl").stat().st_size > 0
