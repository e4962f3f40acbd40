"""Helpers of the end-to-end runs across processes (tests/test_queue_crawl.py and
tests/test_queue_shared.py): seed files, the queue settings, pgy_status, the run-wide checks,
and crawl processes ended after each test (import ``_no_crawl_left_running`` into a test
module: an autouse fixture)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from pgy_spider.queue.keys import RunKeys
from tests.support.crawl import CrawlResult, crawl_env, start_crawl
from tests.support.ids import make_note_id, not_found_id
from tests.support.simulator import SimulatorClient

CONCURRENCY = 8
# Short for the tests' sake, long enough that a live process slowed down by a loaded machine
# never looks dead (a false death would pay twice).
CLAIM_SECONDS = 3.0


def seed_file(path: Path, valid: int, *, start: int = 0, not_found: int = 0) -> dict[str, Any]:
    """Valid IDs with duplicates, rejected lines and IDs the API does not know (201), mixed;
    returns what the whole run must count."""
    lines: list[str] = []
    for i in range(start, start + valid):
        lines.append(make_note_id(i))
        if i % 40 == 7:
            lines.append(make_note_id(i // 2 if i // 2 >= start else i))  # a duplicate
        if i % 97 == 3:
            lines.append(f"http://xhslink.com/{i}")  # rejected: a short link
    lines += [not_found_id(50_000 + i) for i in range(not_found)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejected = sum(1 for line in lines if "xhslink" in line)
    return {
        "seeds": len(lines),
        "notes": {make_note_id(i) for i in range(start, start + valid)},
        "not_found": not_found,
        "rejected": rejected,
        "duplicates": len(lines) - valid - not_found - rejected,
    }


def queue_settings(url: str, run: str, **extra: Any) -> dict[str, Any]:
    return {
        "PGY_QUEUE_URL": url,
        "PGY_RUN": run,
        "PGY_QUEUE_CLAIM_SECONDS": CLAIM_SECONDS,
        "CONCURRENT_REQUESTS": CONCURRENCY,
        **extra,
    }


def pgy_status(workdir: Path, url: str, run: str) -> tuple[int, Any, str]:
    """``scrapy pgy_status``: (exit status, the JSON or None, stderr)."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "pgy_status", "-s", f"PGY_QUEUE_URL={url}",
         "-s", f"PGY_RUN={run}", "-s", f"PGY_QUEUE_CLAIM_SECONDS={CLAIM_SECONDS}"],
        cwd=workdir,
        env=crawl_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )  # fmt: skip
    body = json.loads(proc.stdout) if proc.returncode == 0 else None
    return proc.returncode, body, proc.stderr


def wait_for(done: Callable[[], bool], *procs: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"a crawl ended too early: exit {proc.returncode}")
        if done():
            return
        time.sleep(0.02)
    raise AssertionError("never got there")


def worker_of(client: redis.Redis, run: str, pid: int) -> str:
    """The worker name of the process ``pid`` (from what it reports with its heartbeat)."""
    for name, info in client.hgetall(RunKeys(run).info).items():
        if orjson.loads(info)["pid"] == pid:
            return str(name.decode())
    raise AssertionError(f"process {pid} has not joined run {run}")


def held_by(client: redis.Redis, run: str, worker: str) -> int:
    keys = RunKeys(run)
    summary = client.xpending(keys.stream, "workers")
    return sum(int(c["pending"]) for c in summary["consumers"] if c["name"].decode() == worker)


def feed_notes(results: list[CrawlResult]) -> Counter[str]:
    return Counter(n["noteId"] for r in results for n in r.notes)


def check_run(
    status: dict[str, Any], expected: dict[str, Any], *, redeliveries: int | None = 0
) -> None:
    """The run-wide summary: every seed of the run in one place, once."""
    assert status["state"] == "finished" and status["finish_reason"] == "finished", status
    assert status["balanced"] is True and status["pending"] == 0
    assert status["seeds_read"] == expected["seeds"]
    assert status["notes_written"] == len(expected["notes"])
    assert status["duplicates"] == expected["duplicates"]
    assert status["rejected"] == expected["rejected"]
    assert status["failed_by_reason"] == (
        {"not_found": expected["not_found"]} if expected["not_found"] else {}
    )
    if redeliveries is not None:
        assert status["redeliveries"] == redeliveries


def check_calls(sim: SimulatorClient, expected: dict[str, Any], kills: int) -> dict[str, Any]:
    stats = sim.stats()
    distinct = len(expected["notes"]) + expected["not_found"]
    assert stats["billed"] <= distinct + kills * CONCURRENCY, (stats["billed"], distinct)
    assert set(stats["success_by_note"]) == expected["notes"]
    if kills == 0:
        assert stats["billed"] == distinct
        assert max(stats["success_by_note"].values()) == 1
    return stats


STARTED: list[subprocess.Popen[str]] = []


def start(workdir: Path, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """:func:`start_crawl`, and the process is ended after the test whatever happens."""
    proc = start_crawl(workdir, *args, **kwargs)
    STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _no_crawl_left_running() -> Iterator[None]:
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        if proc.stdout is not None and not proc.stdout.closed:
            proc.communicate(timeout=30)


def copy_seeds(source: Path, *workdirs: Path) -> None:
    for workdir in workdirs:
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, workdir / source.name)
