"""The memory runs: seed files of 1,000,000 and 10,000,000 lines (about 10 % duplicates, one
invalid line in 10,000).

Two kinds of figures, both peak RSS of the process from ``os.wait4``:

- ``crawl``: the real ``scrapy crawl note_detail`` (project settings, default pipelines,
  ``CONCURRENT_REQUESTS`` as in the main runs) against a second simulator (by default at the main
  runs' latency, so the downloader is as busy as against the real API), stopped by the bench
  extension ``bench.stopper.StopWhenSeedsRead`` (added to the project's extensions by
  ``bench.memory_settings``) as soon as the spider has read every seed
  (reading all 1,000,000 seeds is the point; making the 900,000 calls is not), or after a time
  bound. This is what a user's crawl of such a file holds, including whatever Scrapy keeps
  queued. A spider that reads its seeds only as fast as it calls the API will not have read them
  all by the bound: the result says how many it read (``complete`` is then false).
- ``seedpath``: ``python -m bench.seedpath``, the project's seed path (``pgy_spider.seeds``
  reading and validation, in-run dedup in ``pgy_spider.idset``) in a process that has loaded
  Scrapy and the spider, each request settled at once, no network: what the seed path itself
  costs, at any file size (the crawl cannot read 10,000,000 seeds without making the calls).

Every run's counts are checked against the seed file's (seeds read, duplicates, rejects).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import variants
from bench.ids import write_memory_seeds
from bench.measure import run_process
from bench.sim import Simulator
from bench.stopper import CLOSE_REASON, TIME_LIMIT_REASON

MEMORY_TIMEOUT_S = 1200.0


@dataclass
class MemoryResult:
    mode: str  # "crawl" or "seedpath"
    seeds: int
    ok: bool
    peak_rss_bytes: int
    cpu_s: float
    wall_s: float
    read_s: float | None  # time to read every seed, where known
    counts: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    complete: bool = True  # every seed was read before the run stopped
    baseline_rss_bytes: int | None = None  # seedpath: RSS once Scrapy and the spider are loaded

    @property
    def seeds_read(self) -> int:
        return int(self.counts.get("seeds_read") or 0)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def seed_file(work: Path, total: int) -> tuple[Path, dict[str, int]]:
    path = work / f"memory-seeds-{total}.txt"
    expected = write_memory_seeds(path, total)
    return path, expected


def crawl_run(
    seeds: Path,
    expected: dict[str, int],
    total: int,
    work: Path,
    concurrency: int,
    latency_ms: float,
    time_limit_s: float,
) -> MemoryResult:
    """The real spider on all seeds, stopped once it has read them all (or at the bound)."""
    env = variants.base_env()
    env["PYTHONPATH"] = str(variants.REPO_ROOT)
    sim = Simulator(latency_ms, work / "memory-sim.log", env)
    try:
        command = variants.project(
            seeds,
            sim.url,
            work,
            concurrency,
            name="memory",
            extra_settings=[
                f"BENCH_STOP_AFTER_SEEDS={total}",
                f"BENCH_STOP_AFTER_SECONDS={time_limit_s}",
            ],
        )
        command.env["SCRAPY_SETTINGS_MODULE"] = "bench.memory_settings"
        log = work / "memory-crawl.log"
        code, usage, wall = run_process(
            command.argv, env=command.env, cwd=command.cwd, log_path=log, timeout_s=MEMORY_TIMEOUT_S
        )
    finally:
        sim.stop()
    result = MemoryResult(
        "crawl", total, False, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, wall, None
    )
    text = log.read_text(errors="replace")
    if found := re.search(r"bench: (\d+) seeds read in ([\d.]+)s", text):
        result.read_s = float(found.group(2))
    try:
        summary = json.loads((work / "memory-summary.json").read_text())
    except (OSError, ValueError) as exc:
        result.problem = f"exit {code}, no summary ({exc}); log {log}"
        return result
    result.counts = {
        k: summary.get(k)
        for k in ("seeds_read", "duplicates", "rejected", "notes_written", "pending")
    }
    reason = summary.get("finish_reason")
    result.counts["finish_reason"] = reason
    result.complete = reason != TIME_LIMIT_REASON
    if reason not in (CLOSE_REASON, TIME_LIMIT_REASON, "finished"):
        result.problem = f"the crawl ended with {reason!r}; log {log}"
    elif result.complete:
        result.problem = _check_counts(result.counts, expected, total)
    result.ok = result.problem is None
    return result


def seedpath_run(seeds: Path, expected: dict[str, int], total: int, work: Path) -> MemoryResult:
    env = variants.base_env()
    env["PYTHONPATH"] = str(variants.REPO_ROOT)
    out = work / f"memory-seedpath-{total}"
    out.mkdir(exist_ok=True)
    log = work / f"memory-seedpath-{total}.log"
    argv = [sys.executable, "-m", "bench.seedpath", str(seeds), str(out)]
    code, usage, wall = run_process(
        argv, env=env, cwd=variants.REPO_ROOT, log_path=log, timeout_s=MEMORY_TIMEOUT_S
    )
    cpu = usage.ru_utime + usage.ru_stime
    result = MemoryResult("seedpath", total, False, usage.ru_maxrss * 1024, cpu, wall, None)
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        result.problem = f"exit {code}; log {log}"
        return result
    data = json.loads(lines[-1])
    result.read_s = data.get("seconds")
    result.baseline_rss_bytes = data.get("baseline_rss_bytes")
    result.counts = {k: data.get(k) for k in ("seeds_read", "duplicates", "rejected", "requests")}
    result.problem = _check_counts(result.counts, expected, total)
    result.ok = result.problem is None
    return result


def _check_counts(counts: dict[str, Any], expected: dict[str, int], total: int) -> str | None:
    want = {"seeds_read": total, "duplicates": expected["duplicates"]}
    want["rejected"] = expected["invalid"]
    wrong = {k: (counts.get(k), v) for k, v in want.items() if counts.get(k) != v}
    return None if not wrong else f"wrong counts (got, expected): {wrong}"
