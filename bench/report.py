"""Medians, ratios against the issue's targets, and the Markdown the README's Performance
section takes as is."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import RunResult
from bench.memory import MemoryResult
from bench.variants import LABELS

MB = 1_000_000


@dataclass
class Summary:
    variant: str
    runs: int
    notes: int
    nps: float  # median notes/s over the crawl window
    nps_min: float
    nps_max: float
    nps_process: float  # median notes/s over the whole process
    cpu_per_1k: float  # median CPU s per 1,000 notes, whole process
    cpu_per_1k_marginal: float | None  # start-up CPU taken out
    peak_rss: float  # median, bytes
    peak_concurrency: int  # the most calls in flight at the simulator, any round
    sim_cpu_per_1k: float

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarise(results: Sequence[RunResult], startup_cpu: dict[str, float]) -> dict[str, Summary]:
    by_variant: dict[str, list[RunResult]] = {}
    for result in results:
        by_variant.setdefault(result.variant, []).append(result)
    out: dict[str, Summary] = {}
    for variant, runs in by_variant.items():
        nps = [r.notes_per_s for r in runs]
        notes = runs[0].notes
        cpu = statistics.median(r.cpu_s for r in runs)
        marginal = None
        if variant in startup_cpu and notes > 1:
            marginal = max(cpu - startup_cpu[variant], 0.0) / (notes - 1) * 1000
        out[variant] = Summary(
            variant=variant,
            runs=len(runs),
            notes=notes,
            nps=statistics.median(nps),
            nps_min=min(nps),
            nps_max=max(nps),
            nps_process=statistics.median(r.notes_per_s_process for r in runs),
            cpu_per_1k=statistics.median(r.cpu_per_1k for r in runs),
            cpu_per_1k_marginal=marginal,
            peak_rss=statistics.median(r.peak_rss_bytes for r in runs),
            peak_concurrency=max(r.sim_peak_concurrency for r in runs),
            sim_cpu_per_1k=statistics.median(r.sim_cpu_s / r.notes * 1000 for r in runs),
        )
    return out


@dataclass
class Target:
    name: str
    measured: float | None
    shown: str
    goal: str
    passed: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def _ratio(
    s: dict[str, Summary], num: str, den: str, field: Callable[[Summary], float]
) -> float | None:
    if num not in s or den not in s or field(s[den]) <= 0:
        return None
    return field(s[num]) / field(s[den])


def memory_figure(memory: Sequence[MemoryResult]) -> tuple[MemoryResult | None, str]:
    """The memory run the target is judged on: the real crawl when it read every seed, else
    the seed path alone (the crawl then stopped at its time bound, having read fewer)."""
    by_mode = {m.mode: m for m in memory if m.ok}
    crawl = by_mode.get("crawl")
    if crawl is not None and crawl.complete:
        return crawl, "real crawl"
    if "seedpath" in by_mode:
        return by_mode["seedpath"], "seed path; the crawl did not read every seed"
    return None, ""


def targets(s: dict[str, Summary], memory: Sequence[MemoryResult]) -> list[Target]:
    def nps(x: Summary) -> float:
        return x.nps

    def cpu(x: Summary) -> float:
        return x.cpu_per_1k

    found: list[Target] = []

    def add(name: str, value: float | None, fmt: str, goal: str, ok: Callable[[float], bool]):
        shown = "not measured" if value is None else fmt.format(value)
        found.append(Target(name, value, shown, goal, None if value is None else ok(value)))

    add("c/b notes/s", _ratio(s, "c", "b", nps), "{:.2f}×", "≥ 1.5×", lambda v: v >= 1.5)
    add("c/b CPU per note", _ratio(s, "c", "b", cpu), "{:.2f}×", "≤ 0.6×", lambda v: v <= 0.6)
    add("c/a notes/s", _ratio(s, "c", "a", nps), "{:.1f}×", "≥ 20×", lambda v: v >= 20)
    judged, which = memory_figure(memory)
    mem = judged.peak_rss_bytes / MB if judged is not None else None
    seeds = f"{judged.seeds:,}" if judged is not None else "1,000,000"
    name = f"peak RSS, {seeds} seeds" + (f" ({which})" if which else "")
    add(name, mem, "{:.0f} MB", "≤ 200 MB", lambda v: v <= 200)
    base = "cs" if "cs" in s else "c"
    cm = _ratio(s, "cm", base, nps)
    add(
        f"c+MongoDB / c notes/s ({s[base].notes if base in s else '?'} notes each)",
        cm,
        "{:.2f}×",
        "≥ 0.90×",
        lambda v: v >= 0.9,
    )
    return found


def machine_facts() -> dict[str, Any]:
    import scrapy

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    repo = Path(__file__).resolve().parents[1]
    commit = _git(repo, "rev-parse", "--short", "HEAD")
    dirty = bool(_git(repo, "status", "--porcelain", "--", "pgy_spider"))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "scrapy": scrapy.__version__,
        "platform": platform.platform(),
        "commit": commit + (" (pgy_spider/ modified)" if dirty else ""),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def _git(repo: Path, *args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip()


def markdown(
    facts: dict[str, Any],
    command: str,
    config: dict[str, Any],
    s: dict[str, Summary],
    found: list[Target],
    memory: list[MemoryResult],
    mongo_kind: str | None,
) -> str:
    c = config["concurrency"]
    lines = [
        f"`{command}` — {facts['date']}, {facts['cpu']} ({facts['cores']} cores, shared), "
        f"Python {facts['python']}, Scrapy {facts['scrapy']}, commit {facts['commit']}, "
        f"load average at start {facts['loadavg_start'][0]}.",
        "",
        f"Simulator latency {config['latency_ms']:g} ms, no faults; {config['notes']} notes per "
        f"run ((a): {config['naive_notes']}, +MongoDB: {config['mongo_notes']}), the same IDs "
        "for every run (a prefix of them for smaller N); "
        f"{config['rounds']} rounds, variants in rotating order; "
        "medians (notes/s: min–max over the rounds). "
        f"(b) and (c) both run with `CONCURRENT_REQUESTS={c}` "
        f"(and `CONCURRENT_REQUESTS_PER_DOMAIN={c}`; (c) sets that itself).",
        "",
        "| run | notes/s | notes/s, whole process | CPU s / 1k notes | CPU s / 1k, "
        "without start-up | peak RSS | calls in flight (max) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in ("a", "b", "c", "cs", "cm"):
        if variant not in s:
            continue
        x = s[variant]
        label = LABELS[variant]
        if variant == "cm" and mongo_kind:
            label += f" ({mongo_kind})"
        if variant in ("cs", "cm"):
            label += f", {x.notes} notes"
        marginal = "—" if x.cpu_per_1k_marginal is None else f"{x.cpu_per_1k_marginal:.2f}"
        lines.append(
            f"| {label} | {x.nps:.1f} ({x.nps_min:.1f}–{x.nps_max:.1f}) | {x.nps_process:.1f} | "
            f"{x.cpu_per_1k:.2f} | {marginal} | {x.peak_rss / MB:.0f} MB | {x.peak_concurrency} |"
        )
    if memory:
        lines += ["", "| memory run | seeds read | peak RSS | CPU s | time to read them |"]
        lines.append("|---|---:|---:|---:|---:|")
        for m in memory:
            what = {
                "crawl": "`scrapy crawl note_detail` "
                f"({config['memory_latency_ms']:g} ms latency), stopped once every seed is read",
                "seedpath": "the spider's seed path alone (`bench.seedpath`, no network)",
            }[m.mode]
            read = "—" if m.read_s is None else f"{m.read_s:.1f} s"
            if not m.complete:
                read += f" (stopped at the {config['memory_time_limit_s']:g} s bound)"
            rss = f"{m.peak_rss_bytes / MB:.0f} MB" if m.ok else f"failed: {m.problem}"
            lines.append(
                f"| {what} | {m.seeds_read:,} of {m.seeds:,} | {rss} | {m.cpu_s:.1f} | {read} |"
            )
    lines += ["", "| target | measured | goal | |", "|---|---:|---:|---|"]
    for t in found:
        lines.append(f"| {t.name} | {t.shown} | {t.goal} | {t.verdict} |")
    lines += [
        "",
        "notes/s = notes written / crawl window, from the first API request the simulator "
        "received to its N-th answer (Python start-up, imports and shutdown excluded); "
        '"whole process" divides by spawn-to-exit instead. CPU = user+sys of the crawling '
        'process alone (`os.wait4`), start-up included; "without start-up" subtracts a 1-note '
        "run of the same command. Peak RSS = `ru_maxrss` of that process. Every run is checked: "
        "exit status 0, N successful calls at the simulator, N lines in the feed (and N documents "
        "in MongoDB).",
    ]
    return "\n".join(lines)
