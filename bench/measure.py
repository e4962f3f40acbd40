"""One measured run: a child process, its own CPU time and peak RSS, and the crawl window the
simulator saw.

CPU and peak RSS come from ``os.wait4`` on the child (user+sys of that process alone; the
simulator and the database server are separate processes and are not counted). The *crawl
window* runs from the moment the first API request reached the simulator (its peak-concurrency
counter leaves 0) to the moment it had answered the N-th call (interpolated between two polls of
``GET /_sim/stats``): Python start-up, imports and shutdown are outside it. The process wall time
(spawn to exit) is kept as well.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.sim import Simulator

START_POLL_S = 0.005  # until the first request arrives: the stats are tiny then
RUN_POLL_S = 0.05  # afterwards; the end is interpolated between polls


class RunFailed(RuntimeError):
    """A measured run did not do what it had to (exit status, output count, call count)."""


@dataclass
class RunResult:
    variant: str
    round: int
    notes: int  # notes the run had to write, and did (checked)
    exit_code: int
    process_wall_s: float  # spawn to exit
    crawl_wall_s: float  # first request at the simulator to the N-th answer
    startup_s: float  # spawn to the first request at the simulator
    cpu_user_s: float
    cpu_sys_s: float
    peak_rss_bytes: int
    sim_calls: int
    sim_peak_concurrency: int
    sim_cpu_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s

    @property
    def notes_per_s(self) -> float:
        return self.notes / self.crawl_wall_s if self.crawl_wall_s > 0 else 0.0

    @property
    def notes_per_s_process(self) -> float:
        return self.notes / self.process_wall_s if self.process_wall_s > 0 else 0.0

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_s / self.notes * 1000 if self.notes else 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            cpu_s=self.cpu_s,
            notes_per_s=self.notes_per_s,
            notes_per_s_process=self.notes_per_s_process,
            cpu_per_1k_notes_s=self.cpu_per_1k,
        )
        return data


def _interpolate(t0: float, c0: int, t1: float, c1: int, target: int) -> float:
    if c1 <= c0:
        return t1
    return t0 + (t1 - t0) * (target - c0) / (c1 - c0)


def run_measured(
    variant: str,
    round_no: int,
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    sim: Simulator,
    expected_calls: int,
    timeout_s: float,
    count_output: Callable[[], int],
) -> RunResult:
    """Run ``argv`` once against a freshly reset simulator; raise RunFailed unless it exits 0
    having made exactly ``expected_calls`` successful calls and written as many notes."""
    sim.reset()
    sim_cpu_before = sim.cpu_seconds()
    with log_path.open("wb") as log:
        spawned = time.monotonic()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        status, usage, first_request, done_at = _watch(proc, sim, expected_calls, timeout_s)
        exited = time.monotonic()
    exit_code = os.waitstatus_to_exitcode(status)
    stats = sim.stats()
    sim_cpu = sim.cpu_seconds() - sim_cpu_before
    tail = _tail(log_path)
    if exit_code != 0:
        raise RunFailed(f"{variant} exited with {exit_code}; log {log_path}:\n{tail}")
    calls, ok = int(stats["calls"]), int(stats["by_code"].get("0", 0))
    if calls != expected_calls or ok != expected_calls:
        raise RunFailed(
            f"{variant}: the simulator saw {calls} calls ({ok} successful), expected "
            f"{expected_calls}; by code {stats['by_code']}; log {log_path}"
        )
    written = count_output()
    if written != expected_calls:
        raise RunFailed(f"{variant} wrote {written} notes, expected {expected_calls}: {log_path}")
    if first_request is None or done_at is None:
        raise RunFailed(f"{variant}: no crawl window observed at the simulator")
    return RunResult(
        variant=variant,
        round=round_no,
        notes=written,
        exit_code=exit_code,
        process_wall_s=exited - spawned,
        crawl_wall_s=done_at - first_request,
        startup_s=first_request - spawned,
        cpu_user_s=usage.ru_utime,
        cpu_sys_s=usage.ru_stime,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # Linux: KiB
        sim_calls=calls,
        sim_peak_concurrency=int(stats["max_concurrency"]),
        sim_cpu_s=sim_cpu,
    )


def run_process(
    argv: Sequence[str], *, env: dict[str, str], cwd: Path, log_path: Path, timeout_s: float
) -> tuple[int, Any, float]:
    """Run ``argv`` with stdout+stderr to ``log_path``: (exit code, its rusage, wall seconds)."""
    with log_path.open("wb") as log:
        spawned = time.monotonic()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        status, usage, _, _ = _watch(proc, None, 0, timeout_s)
        wall = time.monotonic() - spawned
    return os.waitstatus_to_exitcode(status), usage, wall


def _watch(
    proc: subprocess.Popen[bytes], sim: Simulator | None, expected: int, timeout_s: float
) -> tuple[int, Any, float | None, float | None]:
    """Poll the simulator while the child runs; reap the child with wait4 (its own rusage)."""
    deadline = time.monotonic() + timeout_s
    first_request: float | None = None
    done_at: float | None = None
    last_poll = time.monotonic()
    last_calls = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
            if sim is not None and done_at is None and first_request is not None:
                # It answered the last calls and exited between two polls: extrapolate the
                # end from the rate so far, never past the exit.
                exited = time.monotonic()
                if int(sim.stats()["calls"]) >= expected:
                    done_at = exited
                    if last_calls > 0 and last_poll > first_request:
                        rate = last_calls / (last_poll - first_request)
                        done_at = min(exited, last_poll + (expected - last_calls) / rate)
            return status, usage, first_request, done_at
        now = time.monotonic()
        if now > deadline:
            proc.send_signal(signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            raise RunFailed(f"run timed out after {timeout_s:.0f}s (killed)")
        if sim is not None and done_at is None:
            stats = sim.stats()
            polled = time.monotonic()
            calls = int(stats["calls"])
            if first_request is None and int(stats["max_concurrency"]) > 0:
                first_request = (last_poll + polled) / 2  # it arrived between the two polls
            if calls >= expected:
                done_at = _interpolate(last_poll, last_calls, polled, calls, expected)
            last_poll, last_calls = polled, calls
        time.sleep(START_POLL_S if sim is not None and first_request is None else RUN_POLL_S)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def count_lines(path: Path) -> Callable[[], int]:
    def count() -> int:
        try:
            with path.open("rb") as f:
                return sum(1 for line in f if line.strip())
        except FileNotFoundError:
            return 0

    return count
