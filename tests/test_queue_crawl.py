"""End-to-end: one run across several real ``scrapy crawl`` processes, one Redis, the simulator.

Every host runs the same command; a process without seed arguments joins as a worker. The
checks are run-wide and come from what the processes wrote, what Redis holds
(``scrapy pgy_status``) and the simulator's own call log: every valid note billed once (plus
at most ``CONCURRENT_REQUESTS`` per kill), every seed accounted for once (``balanced``), every
note in exactly one feed (again, but for the calls in flight at a kill).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from pgy_spider.queue.keys import GROUP, RunKeys
from tests.support.accounting import assert_accounted
from tests.support.crawl import (
    REPO,
    CrawlResult,
    crawl_env,
    finish_crawl,
    read_jsonl,
    run_crawl,
)
from tests.support.ids import make_note_id
from tests.support.mongo import MongoServer, MongoTestDB
from tests.support.queue_crawl import (
    CONCURRENCY,
    _no_crawl_left_running,
    check_calls,
    check_run,
    copy_seeds,
    feed_notes,
    held_by,
    pgy_status,
    queue_settings,
    seed_file,
    start,
    wait_for,
    worker_of,
)
from tests.support.redis import RedisServer
from tests.support.simulator import SimulatorClient

__all__ = ["_no_crawl_left_running"]  # every crawl a test started is ended after it

# -- a run of several processes ----------------------------------------------------------------


def test_a_reader_and_two_joiners_share_one_run(
    tmp_path: Path, sim: SimulatorClient, redis_url: str, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 500, not_found=12)
    settings = queue_settings(redis_url, run_name, CONCURRENT_REQUESTS=4)
    sim.configure(latency_ms=40)
    reader = start(tmp_path / "a", "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=settings)
    joiners = [start(tmp_path / name, sim_url=sim.url, settings=settings) for name in ("b", "c")]
    wait_for(lambda: sim.stats()["calls"] >= 60, reader, *joiners)
    sim.configure(latency_ms=1500)  # the run cannot end while pgy_status looks at it
    code, during, stderr = pgy_status(tmp_path / "status", redis_url, run_name)
    sim.configure(latency_ms=40)
    assert code == 0, stderr
    assert during["state"] in ("reading", "running") and during["balanced"] is True
    assert during["seeds_read"] > 0 and during["notes_written"] > 0
    assert any(w["state"] == "alive" for w in during["workers"])
    results = [
        finish_crawl(p, tmp_path / name) for p, name in zip([reader, *joiners], "abc", strict=True)
    ]
    for result in results:
        assert result.returncode == 0, result
        summary = assert_accounted(result)
        assert summary["finish_reason"] == "finished" and summary["run"] == run_name
        assert summary["notes_written"] > 0, "every process took part"
    # Every note in exactly one feed; every valid note billed once.
    notes = feed_notes(results)
    assert set(notes) == expected["notes"] and max(notes.values()) == 1
    stats = check_calls(sim, expected, kills=0)
    code, after, stderr = pgy_status(tmp_path / "status", redis_url, run_name)
    assert code == 0, stderr
    check_run(after, expected)
    summaries = [r.summary for r in results]
    assert after["requests_sent"] == sum(s["requests_sent"] for s in summaries) == stats["calls"]
    assert after["calls_by_code"] == {"0": len(expected["notes"]), "201": 12}
    assert {w["worker"] for w in after["workers"]} == {s["worker"] for s in summaries}
    assert {w["state"] for w in after["workers"]} == {"closed"}
    # What the reader settled at once is in its own summary and failed file only.
    first = summaries[0]
    assert first["rejected"] == expected["rejected"]
    assert first["duplicates"] == expected["duplicates"]
    assert sum(s["seeds_read"] for s in summaries) == expected["seeds"]


def test_the_reader_killed_is_taken_over_from_its_cursor(
    tmp_path: Path, sim: SimulatorClient, redis_server: RedisServer, run_name: str
) -> None:
    expected = seed_file(tmp_path / "seeds.txt", 1200, not_found=10)
    copy_seeds(tmp_path / "seeds.txt", tmp_path / "a", tmp_path / "b")
    # A small queue: reading goes on only as notes settle, so the kill comes mid-read.
    settings = queue_settings(redis_server.url, run_name, PGY_QUEUE_MAX_UNSETTLED=40)
    sim.configure(latency_ms=20)
    first = start(tmp_path / "a", "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=settings)
    wait_for(lambda: sim.stats()["calls"] >= 100, first)
    second = start(tmp_path / "b", "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=settings)
    with redis_server.client() as client:
        keys = RunKeys(run_name)
        wait_for(lambda: client.hlen(keys.info) == 2, first, second)
        reader = client.get(keys.reader)
        assert reader is not None and reader.decode() == worker_of(client, run_name, first.pid)
        name = worker_of(client, run_name, first.pid)

        def held() -> int:  # the stream entries the reader has taken and not settled
            consumers = client.xpending(keys.stream, GROUP)["consumers"]
            return sum(c["pending"] for c in consumers if c["name"].decode() == name)

        # Killed while it holds entries: between two batches of answers both workers can
        # have settled everything taken (nothing pending), and then nothing is redelivered.
        wait_for(lambda: sim.stats()["calls"] >= 300 and held() >= 5, first, second)
        read_at_kill = int(client.hget(keys.counts, "seeds_read") or 0)
        first.send_signal(signal.SIGKILL)
        killed = finish_crawl(first, tmp_path / "a")
        assert killed.returncode == -signal.SIGKILL
        assert read_at_kill < expected["seeds"], "the reader was killed while reading"
        held_at_kill = held()  # a dead worker's pending entries stay as they were
    taken_over = finish_crawl(second, tmp_path / "b")
    assert taken_over.returncode == 0, taken_over
    assert "(taken over)" in taken_over.stderr
    assert_accounted(taken_over)
    code, status, stderr = pgy_status(tmp_path / "status", redis_server.url, run_name)
    assert code == 0, stderr
    check_run(status, expected, redeliveries=None)
    # What the dead reader held was claimed, and nothing else.
    assert status["redeliveries"] == held_at_kill > 0
    check_calls(sim, expected, kills=1)
    # Every note in a feed; in two only if its call was in flight at the kill.
    notes = feed_notes([killed, taken_over])
    assert set(notes) == expected["notes"]
    assert sum(1 for c in notes.values() if c > 1) <= CONCURRENCY
    # Every rejected seed recorded in one of the failed files.
    rejects = Counter(r["seed"] for r in [*killed.failed, *taken_over.failed] if "seed" in r)
    assert len(rejects) == expected["rejected"]


def test_a_worker_killed_has_its_notes_claimed(
    tmp_path: Path, sim: SimulatorClient, redis_server: RedisServer, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 700, not_found=6)
    settings = queue_settings(redis_server.url, run_name)
    sim.configure(latency_ms=30)
    reader = start(tmp_path / "a", "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=settings)
    worker = start(tmp_path / "b", sim_url=sim.url, settings=settings)
    with redis_server.client() as client:
        wait_for(lambda: client.hlen(RunKeys(run_name).info) == 2, reader, worker)
        name = worker_of(client, run_name, worker.pid)
        wait_for(
            lambda: sim.stats()["calls"] >= 150 and held_by(client, run_name, name) > 0,
            reader,
            worker,
        )
        worker.send_signal(signal.SIGKILL)
        killed = finish_crawl(worker, tmp_path / "b")
        assert killed.returncode == -signal.SIGKILL
    survivor = finish_crawl(reader, tmp_path / "a")
    assert survivor.returncode == 0, survivor
    assert "Took over" in survivor.stderr
    assert_accounted(survivor)
    code, status, stderr = pgy_status(tmp_path / "status", redis_server.url, run_name)
    assert code == 0, stderr
    check_run(status, expected, redeliveries=None)
    assert status["redeliveries"] > 0
    dead = next(w for w in status["workers"] if w["worker"] == name)
    assert dead["state"] == "silent" and dead["finish_reason"] is None
    check_calls(sim, expected, kills=1)
    notes = feed_notes([killed, survivor])
    assert set(notes) == expected["notes"]
    assert sum(1 for c in notes.values() if c > 1) <= CONCURRENCY


def test_a_worker_stopped_with_ctrl_c_hands_its_notes_back_at_once(
    tmp_path: Path, sim: SimulatorClient, redis_server: RedisServer, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 400)
    # A claim time longer than the run: only a hand-back lets the others have the notes.
    settings = queue_settings(redis_server.url, run_name, PGY_QUEUE_CLAIM_SECONDS=600)
    sim.configure(latency_ms=30)
    reader = start(tmp_path / "a", "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=settings)
    worker = start(tmp_path / "b", sim_url=sim.url, settings=settings)
    with redis_server.client() as client:
        wait_for(lambda: client.hlen(RunKeys(run_name).info) == 2, reader, worker)
        name = worker_of(client, run_name, worker.pid)
        wait_for(
            lambda: sim.stats()["calls"] >= 100 and held_by(client, run_name, name) > 0,
            reader,
            worker,
        )
        worker.send_signal(signal.SIGINT)
        stopped = finish_crawl(worker, tmp_path / "b")
        assert held_by(client, run_name, name) == 0, stopped
    assert stopped.returncode == 4, stopped
    summary = assert_accounted(stopped)
    assert summary["finish_reason"] == "shutdown" and summary["pending"] > 0
    survivor = finish_crawl(reader, tmp_path / "a")
    assert survivor.returncode == 0, survivor
    code, status, stderr = pgy_status(tmp_path / "status", redis_server.url, run_name)
    assert code == 0, stderr
    check_run(status, expected, redeliveries=0)
    # Its pending notes and those it had taken but not requested yet went back at once.
    assert status["handed_back"] >= summary["pending"]
    notes = feed_notes([stopped, survivor])
    assert set(notes) == expected["notes"] and max(notes.values()) == 1


def test_a_slow_live_worker_is_not_robbed(
    tmp_path: Path, sim: SimulatorClient, redis_url: str, run_name: str
) -> None:
    """Every note waits a backoff longer than the claim time before its retry: its live
    owner keeps it (re-claims it with every heartbeat), no one else requests it."""
    expected = seed_file(tmp_path / "a" / "seeds.txt", 60)
    settings = queue_settings(redis_url, run_name, PGY_QUEUE_CLAIM_SECONDS=1.5, PGY_RETRY_BACKOFF=4)
    sim.configure(fail_first={"301": 1})
    reader = start(tmp_path / "a", "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=settings)
    worker = start(tmp_path / "b", sim_url=sim.url, settings=settings)
    results = [finish_crawl(reader, tmp_path / "a"), finish_crawl(worker, tmp_path / "b")]
    for result in results:
        assert result.returncode == 0, result
        assert_accounted(result)
    code, status, stderr = pgy_status(tmp_path / "status", redis_url, run_name)
    assert code == 0, stderr
    check_run(status, expected, redeliveries=0)
    stats = check_calls(sim, expected, kills=0)
    assert set(stats["by_note"].values()) == {2}  # one 301, one success: no one else's call
    assert max(r.summary["retries"] for r in results) > 0


def test_two_overlapping_seed_files_and_two_workers_in_one_directory(
    tmp_path: Path, sim: SimulatorClient, redis_url: str, run_name: str
) -> None:
    first = [make_note_id(i) for i in range(200)]
    second = [make_note_id(i) for i in range(100, 300)]
    (tmp_path / "a.txt").write_text("\n".join(first) + "\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("noteId\n" + "\n".join(second) + "\n", encoding="utf-8")
    paths = {
        "PGY_FEED_URI": "output/%(run)s-%(worker)s-notes.jsonl",
        "PGY_FAILED_PATH": "output/%(run)s-%(worker)s-failed.jsonl",
        "PGY_SUMMARY_PATH": "output/%(run)s-%(worker)s-summary.json",
    }
    settings = queue_settings(redis_url, run_name, **paths)
    sim.configure(latency_ms=10)
    args = ("-a", "ids_file=a.txt,b.csv")
    procs = [start(tmp_path, *args, sim_url=sim.url, settings=settings) for _ in range(2)]
    results = [finish_crawl(p, tmp_path) for p in procs]
    assert [r.returncode for r in results] == [0, 0], results
    summaries = [orjson.loads(p.read_bytes()) for p in (tmp_path / "output").glob("*summary.json")]
    assert len(summaries) == 2
    workers = {s["worker"] for s in summaries}
    assert len(workers) == 2 and {s["run"] for s in summaries} == {run_name}
    notes = Counter()
    for worker in workers:
        feed = read_jsonl(tmp_path / "output" / f"{run_name}-{worker}-notes.jsonl")
        notes.update(n["noteId"] for n in feed)
        summary = next(s for s in summaries if s["worker"] == worker)
        assert summary["notes_written"] == len(feed) and summary["balanced"] is True
    assert set(notes) == set(first) | set(second) and max(notes.values()) == 1
    code, status, stderr = pgy_status(tmp_path / "status", redis_url, run_name)
    assert code == 0, stderr
    check_run(
        status,
        {
            "seeds": 400,
            "notes": set(first) | set(second),
            "duplicates": 100,
            "rejected": 0,
            "not_found": 0,
        },
    )
    assert sim.stats()["billed"] == 300


def test_seeds_from_an_ids_url_are_read_once_for_the_run(
    tmp_path: Path, sim: SimulatorClient, redis_url: str, run_name: str
) -> None:
    name = f"{run_name}.txt"
    expected = seed_file(sim.seeds_dir / name, 150, not_found=3)
    settings = queue_settings(redis_url, run_name)
    sim.configure(latency_ms=10)
    args = ("-a", f"ids_url={sim.url}/seeds/{name}")
    procs = [start(tmp_path / w, *args, sim_url=sim.url, settings=settings) for w in ("a", "b")]
    results = [finish_crawl(p, tmp_path / w) for p, w in zip(procs, ("a", "b"), strict=True)]
    for result in results:
        assert result.returncode == 0, result
        assert_accounted(result)
    notes = feed_notes(results)
    assert set(notes) == expected["notes"] and max(notes.values()) == 1
    check_calls(sim, expected, kills=0)
    code, status, stderr = pgy_status(tmp_path / "status", redis_url, run_name)
    assert code == 0, stderr
    check_run(status, expected)


@pytest.mark.mongo
def test_all_workers_share_mongodb_for_freshness_and_storage(
    tmp_path: Path,
    sim: SimulatorClient,
    redis_url: str,
    run_name: str,
    mongo_server: MongoServer,
    mongo_db: MongoTestDB,
) -> None:
    mongo = {"MONGO_URI": mongo_db.uri, "MONGO_DATABASE": mongo_db.name}
    stored = [make_note_id(i) for i in range(60)]
    (tmp_path / "first" / "seeds.txt").parent.mkdir(parents=True)
    (tmp_path / "first" / "seeds.txt").write_text("\n".join(stored) + "\n", encoding="utf-8")
    first = run_crawl(
        tmp_path / "first", "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=mongo
    )
    assert first.returncode == 0, first
    sim.reset()
    seeds = [make_note_id(i) for i in range(0, 180)]  # 60 fresh in MongoDB, 120 new
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "seeds.txt").write_text("\n".join(seeds) + "\n", encoding="utf-8")
    settings = queue_settings(redis_url, run_name, **mongo)
    sim.configure(latency_ms=10)
    procs = [
        start(tmp_path / "a", "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=settings),
        start(tmp_path / "b", sim_url=sim.url, settings=settings),
    ]
    results = [finish_crawl(p, tmp_path / w) for p, w in zip(procs, ("a", "b"), strict=True)]
    for result in results:
        assert result.returncode == 0, result
        assert_accounted(result)
    code, status, stderr = pgy_status(tmp_path / "status", redis_url, run_name)
    assert code == 0, stderr
    assert status["skipped_fresh"] == 60 and status["notes_written"] == 120
    assert status["balanced"] is True and status["state"] == "finished"
    assert set(sim.stats()["by_note"]) == set(seeds[60:])  # no call for a fresh note
    with mongo_server.client() as client:
        assert client[mongo_db.name]["notes"].count_documents({}) == 180


# -- what is refused before any call ------------------------------------------------------------


def _refused(result: CrawlResult, sim: SimulatorClient, *words: str) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    assert sim.stats()["calls"] == 0
    return errors[0]


def test_mistakes_are_refused_before_any_call(
    tmp_path: Path, sim: SimulatorClient, redis_url: str, run_name: str
) -> None:
    ids = ("-a", f"ids={make_note_id(1)}")
    no_run = run_crawl(tmp_path / "1", *ids, sim_url=sim.url, settings={"PGY_QUEUE_URL": redis_url})
    _refused(no_run, sim, "PGY_RUN")
    with_jobdir = run_crawl(
        tmp_path / "2",
        *ids,
        sim_url=sim.url,
        settings=queue_settings(redis_url, run_name, JOBDIR="j"),
    )
    _refused(with_jobdir, sim, "JOBDIR", "PGY_QUEUE_URL")
    down = "redis://:not-this-secret@127.0.0.1:1/0"
    unreachable = run_crawl(
        tmp_path / "3", *ids, sim_url=sim.url, settings=queue_settings(down, run_name)
    )
    line = _refused(unreachable, sim, "cannot use the queue", "redis://:***@127.0.0.1:1/0")
    assert "not-this-secret" not in unreachable.stderr + unreachable.stdout, line
    # A run started with some seeds refuses a process with other seeds.
    (tmp_path / "4").mkdir()
    (tmp_path / "4" / "seeds.txt").write_text(make_note_id(2) + "\n", encoding="utf-8")
    started = run_crawl(
        tmp_path / "4", "-a", "ids_file=seeds.txt", sim_url=sim.url,
        settings=queue_settings(redis_url, run_name),
    )  # fmt: skip
    assert started.returncode == 0, started
    sim.reset()
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "seeds.txt").write_text(make_note_id(3) + "\n", encoding="utf-8")
    other = run_crawl(
        tmp_path / "5", "-a", "ids_file=seeds.txt", sim_url=sim.url,
        settings=queue_settings(redis_url, run_name),
    )  # fmt: skip
    _refused(other, sim, "differ", run_name, "PGY_RUN")
    # A worker without seeds for a run that never starts: it waits, then exit 2, no call.
    lonely = run_crawl(
        tmp_path / "6", sim_url=sim.url,
        settings=queue_settings(redis_url, run_name + "-never", PGY_QUEUE_WAIT_SECONDS=1),
    )  # fmt: skip
    assert lonely.returncode == 2, lonely
    assert "does not exist" in lonely.stderr and "PGY_QUEUE_WAIT_SECONDS" in lonely.stderr
    assert "Traceback" not in lonely.stderr and sim.stats()["calls"] == 0
    # pgy_status: an unknown run and a Redis that is down are exit 2, one line.
    for url, run, words in (
        (redis_url, run_name + "-never", "does not exist"),
        (down, run_name, "cannot use the queue"),
    ):
        code, body, stderr = pgy_status(tmp_path / "status", url, run)
        assert code == 2 and body is None, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], stderr
        assert "not-this-secret" not in stderr


def test_the_queue_password_is_written_nowhere(
    tmp_path: Path, sim: SimulatorClient, secured_redis: RedisServer, run_name: str
) -> None:
    password = secured_redis.password
    assert password is not None
    expected = seed_file(tmp_path / "a" / "seeds.txt", 80, not_found=2)
    settings = queue_settings(secured_redis.url, run_name, LOG_LEVEL="DEBUG", LOG_FILE="crawl.log")
    reader = start(tmp_path / "a", "-a", "ids_file=seeds.txt", sim_url=sim.url, settings=settings)
    worker = start(tmp_path / "b", sim_url=sim.url, settings=settings)
    results = [finish_crawl(reader, tmp_path / "a"), finish_crawl(worker, tmp_path / "b")]
    assert [r.returncode for r in results] == [0, 0], results
    code, status, stderr = pgy_status(tmp_path / "status", secured_redis.url, run_name)
    assert code == 0, stderr
    check_run(status, expected)
    wrong = secured_redis.url.replace(secured_redis.url.split("@")[0], "redis://:wrong-pass")
    code, _, wrong_stderr = pgy_status(tmp_path / "status", wrong, run_name)
    assert code == 2 and "redis://:***@" in wrong_stderr
    texts = [json.dumps(status), stderr, wrong_stderr]
    texts += [r.stderr + r.stdout for r in results]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "crawl.log" for p in files)
    forms = {password, redis_quote(password)}
    for form in forms:
        assert not [t for t in texts if form in t]
        assert not [p for p in files if form.encode() in p.read_bytes()], form
    # And in Redis: nothing holds it either.
    with secured_redis.client() as client:
        for key in client.scan_iter(match=RunKeys(run_name).prefix.replace("{", "\\{") + "*"):
            assert password.encode() not in (client.dump(key) or b"")


def redis_quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_pgy_status_needs_the_queue_settings(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "pgy_status"],
        cwd=REPO,
        env=crawl_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "PGY_QUEUE_URL" in proc.stderr and not proc.stdout
