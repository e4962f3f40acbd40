"""One measured run: child processes, their own CPU time and peak RSS, and the crawl window the
simulator saw.

CPU and peak RSS come from ``os.wait4`` on each child (user+sys of that process alone; the
simulator and the database server are separate processes and are not counted). The *crawl
window* runs from the moment the first API request reached the simulator (its peak-concurrency
counter leaves 0) to the moment it had answered the N-th call (interpolated between two polls of
``GET /_sim/totals``): Python start-up, imports and shutdown are outside it. The process wall time
(spawn to exit) is kept as well. The simulator's own CPU over the run comes from ``/proc``.

The machine may be shared: ``background_cores`` is the CPU that every other process used during
the run (the whole machine's busy time from ``/proc/stat`` minus the run's processes, the
simulator and the benchmark itself), in cores; a figure measured beside a busy neighbour says so.

A run is usually one process. It may be several started together (``argvs``: workers of one
job sharing the simulator); their CPU is then summed, their peak RSS is the largest, and every
one must exit 0. With ``others_ready`` the others are started first and the first process
(the reader of a run across processes) only once each of them has logged that text (a worker
waiting for its run): their start-up is then outside the crawl window, as one process's is.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.sim import Simulator

START_POLL_S = 0.005  # until the first request arrives: the totals are tiny
RUN_POLL_S = 0.05  # afterwards; the end is interpolated between polls
EXIT_POLL_S = 0.002  # after the N-th answer, only the exit is awaited: the wall time is exact


class RunFailed(RuntimeError):
    """A measured run did not do what it had to (exit status, output count, call count)."""


@dataclass
class RunResult:
    variant: str
    round: int
    notes: int  # notes the run had to write, and did (checked)
    exit_code: int
    process_wall_s: float  # spawn to exit (of the last process)
    crawl_wall_s: float  # first request at the simulator to the N-th answer
    startup_s: float  # spawn to the first request at the simulator
    cpu_user_s: float
    cpu_sys_s: float
    peak_rss_bytes: int
    sim_calls: int
    sim_billed: int
    sim_peak_concurrency: int
    sim_cpu_s: float
    background_cores: float = 0.0
    # Over the crawl window alone (sampled from /proc when it opened and when it closed): the
    # run's own CPU (no start-up, no shutdown) and the whole machine's busy cores.
    window_cpu_s: float | None = None
    window_busy_cores: float | None = None
    regime: str = ""
    latency_ms: float = 0.0
    concurrency: int = 0
    processes: int = 1
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

    @property
    def window_cpu_ms_per_note(self) -> float | None:
        if self.window_cpu_s is None or not self.notes:
            return None
        return self.window_cpu_s / self.notes * 1000

    @property
    def sim_cpu_share(self) -> float:
        """The simulator's CPU over the crawl window, in cores (1.0 = one core busy)."""
        return self.sim_cpu_s / self.crawl_wall_s if self.crawl_wall_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            cpu_s=self.cpu_s,
            notes_per_s=self.notes_per_s,
            notes_per_s_process=self.notes_per_s_process,
            cpu_per_1k_notes_s=self.cpu_per_1k,
            sim_cpu_share=self.sim_cpu_share,
        )
        return data


@dataclass
class _Usage:
    """The rusage figures of a group of processes that a run reports."""

    user: float = 0.0
    sys: float = 0.0
    maxrss_kib: int = 0
    exit_codes: list[int] = field(default_factory=list)
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    # The crawl window's samples: (machine busy seconds, the run's CPU seconds) at its start
    # and at its end.
    window: list[tuple[float, float]] = field(default_factory=list)

    def add(self, pid: int, status: int, usage: Any) -> None:
        self.cpu_by_pid[pid] = usage.ru_utime + usage.ru_stime
        self.user += usage.ru_utime
        self.sys += usage.ru_stime
        self.maxrss_kib = max(self.maxrss_kib, usage.ru_maxrss)
        self.exit_codes.append(os.waitstatus_to_exitcode(status))


def _interpolate(t0: float, c0: int, t1: float, c1: int, target: int) -> float:
    if c1 <= c0:
        return t1
    return t0 + (t1 - t0) * (target - c0) / (c1 - c0)


def run_measured(
    variant: str,
    round_no: int,
    argvs: Sequence[Sequence[str]],
    *,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    sim: Simulator,
    expected_calls: int,
    timeout_s: float,
    count_output: Callable[[], int],
    others_ready: str | None = None,
) -> RunResult:
    """Run ``argvs`` (one process each, started together) once against a freshly reset
    simulator; raise RunFailed unless every one exits 0 and together they made exactly
    ``expected_calls`` calls, all successful and billed, and wrote as many notes."""
    sim.reset()
    sim_cpu_before = sim.cpu_seconds()
    machine_before, own_before = machine_busy_seconds(), _own_cpu()
    with ExitStack() as stack:
        logs = [stack.enter_context(_log_file(log_path, i, len(argvs))) for i in range(len(argvs))]
        spawned = time.monotonic()

        def spawn(index: int) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                list(argvs[index]),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logs[index],
                stderr=logs[index],
            )

        if others_ready is not None and len(argvs) > 1:
            others = [spawn(i) for i in range(1, len(argvs))]
            paths = [_log_path(log_path, i, len(argvs)) for i in range(1, len(argvs))]
            _wait_ready(others, paths, others_ready.encode(), timeout_s)
            procs = [spawn(0), *others]
        else:
            procs = [spawn(i) for i in range(len(argvs))]
        usage, first_request, done_at = _watch(procs, sim, expected_calls, timeout_s)
        exited = time.monotonic()
    totals = sim.totals()
    sim_cpu = sim.cpu_seconds() - sim_cpu_before
    others = machine_busy_seconds() - machine_before - (_own_cpu() - own_before)
    others -= usage.user + usage.sys + sim_cpu
    bad = [(i, code) for i, code in enumerate(usage.exit_codes) if code != 0]
    if bad:
        i, code = bad[0]
        path = _log_path(log_path, i, len(argvs))
        raise RunFailed(f"{variant} exited with {code}; log {path}:\n{_tail(path)}")
    calls, ok, billed = int(totals["calls"]), int(totals["by_code"].get("0", 0)), totals["billed"]
    if not calls == ok == billed == expected_calls:
        raise RunFailed(
            f"{variant}: the simulator saw {calls} calls ({ok} successful, {billed} billed), "
            f"expected {expected_calls}; by code {totals['by_code']}; log {log_path}"
        )
    written = count_output()
    if written != expected_calls:
        raise RunFailed(f"{variant} wrote {written} notes, expected {expected_calls}: {log_path}")
    if first_request is None or done_at is None:
        raise RunFailed(f"{variant}: no crawl window observed at the simulator")
    window_cpu = window_busy = None
    if len(usage.window) == 2 and done_at > first_request:
        (busy0, cpu0), (busy1, cpu1) = usage.window
        window_cpu = cpu1 - cpu0
        window_busy = (busy1 - busy0) / (done_at - first_request)
    return RunResult(
        variant=variant,
        round=round_no,
        notes=written,
        exit_code=0,
        process_wall_s=exited - spawned,
        crawl_wall_s=done_at - first_request,
        startup_s=first_request - spawned,
        cpu_user_s=usage.user,
        cpu_sys_s=usage.sys,
        peak_rss_bytes=usage.maxrss_kib * 1024,  # Linux: KiB
        sim_calls=calls,
        sim_billed=int(billed),
        sim_peak_concurrency=int(totals["max_concurrency"]),
        sim_cpu_s=sim_cpu,
        background_cores=max(others, 0.0) / (exited - spawned),
        window_cpu_s=window_cpu,
        window_busy_cores=window_busy,
        latency_ms=sim.latency_ms,
        processes=len(argvs),
    )


def _wait_ready(
    procs: Sequence[subprocess.Popen[bytes]], logs: Sequence[Path], text: bytes, timeout_s: float
) -> None:
    """Until every process has logged ``text``; one that exits or a timeout fails the run."""
    deadline = time.monotonic() + timeout_s
    waiting = list(zip(procs, logs, strict=True))
    while waiting:
        waiting = [(p, log) for p, log in waiting if text not in log.read_bytes()]
        for proc, log in waiting:
            if proc.poll() is not None:
                _kill(procs)
                raise RunFailed(f"exited with {proc.returncode} before it was ready: {log}")
        if time.monotonic() > deadline:
            _kill(procs)
            raise RunFailed(f"not ready after {timeout_s:.0f}s: {[str(log) for _, log in waiting]}")
        time.sleep(START_POLL_S * 10)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (every core), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_process(
    argv: Sequence[str], *, env: dict[str, str], cwd: Path, log_path: Path, timeout_s: float
) -> tuple[int, Any, float]:
    """Run ``argv`` with stdout+stderr to ``log_path``: (exit code, its rusage, wall seconds)."""
    with log_path.open("wb") as log:
        spawned = time.monotonic()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        # A blocking wait4 gives the exit time exactly; a timer kills a child that hangs.
        timer = threading.Timer(timeout_s, proc.send_signal, (signal.SIGKILL,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - spawned
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
    if proc.returncode == -signal.SIGKILL and wall >= timeout_s:
        raise RunFailed(f"{argv[0]} timed out after {timeout_s:.0f}s (killed)")
    return proc.returncode, usage, wall


def _log_path(log_path: Path, index: int, count: int) -> Path:
    return log_path if count == 1 else log_path.with_name(f"{log_path.stem}-{index}.log")


def _log_file(log_path: Path, index: int, count: int) -> Any:
    return _log_path(log_path, index, count).open("wb")


def _process_cpu(pid: int) -> float | None:
    """User+sys CPU seconds of a live process so far, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sample(procs: Sequence[subprocess.Popen[bytes]], usage: _Usage) -> tuple[float, float]:
    """(machine busy seconds, the run's CPU seconds so far): live processes from /proc, the
    ones already reaped from their rusage."""
    total = 0.0
    for proc in procs:
        cpu = usage.cpu_by_pid.get(proc.pid)
        if cpu is None:
            cpu = _process_cpu(proc.pid) or 0.0
        total += cpu
    return machine_busy_seconds(), total


def _kill(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            _, status, _ = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)


def _watch(
    procs: Sequence[subprocess.Popen[bytes]], sim: Simulator, expected: int, timeout_s: float
) -> tuple[_Usage, float | None, float | None]:
    """Poll the simulator while the children run; reap each with wait4 (its own rusage)."""
    deadline = time.monotonic() + timeout_s
    first_request: float | None = None
    done_at: float | None = None
    last_poll = time.monotonic()
    last_calls = 0
    usage = _Usage()
    running = list(procs)
    while True:
        for proc in list(running):
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it
                usage.add(pid, status, rusage)
                running.remove(proc)
        if not running:
            if done_at is None and first_request is not None:
                # It answered the last calls and exited between two polls: extrapolate the
                # end from the rate so far, never past the exit.
                exited = time.monotonic()
                if int(sim.totals()["calls"]) >= expected:
                    done_at = exited
                    if last_calls > 0 and last_poll > first_request:
                        rate = last_calls / (last_poll - first_request)
                        done_at = min(exited, last_poll + (expected - last_calls) / rate)
            return usage, first_request, done_at
        if time.monotonic() > deadline:
            _kill(running)
            raise RunFailed(f"run timed out after {timeout_s:.0f}s (killed)")
        if done_at is None:
            totals = sim.totals()
            polled = time.monotonic()
            calls = int(totals["calls"])
            if first_request is None and int(totals["max_concurrency"]) > 0:
                first_request = (last_poll + polled) / 2  # it arrived between the two polls
                usage.window.append(_sample(procs, usage))
            if calls >= expected:
                done_at = _interpolate(last_poll, last_calls, polled, calls, expected)
                if len(usage.window) == 1:
                    usage.window.append(_sample(procs, usage))
            last_poll, last_calls = polled, calls
        if done_at is not None:
            time.sleep(EXIT_POLL_S)
        else:
            time.sleep(START_POLL_S if first_request is None else RUN_POLL_S)


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
