"""Medians, ratios against the targets, and the Markdown the README's Performance section takes
as is."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import RunResult
from bench.memory import MemoryResult
from bench.redisq import DedupMemory
from bench.regimes import Plan, Regime
from bench.variants import LABELS, QUEUE_VARIANTS, workers_of

MB = 1_000_000
STARTUP = "startup"  # the regime key of the 1-note runs
# The contenders a 1-note run stands for, when they have none of their own.
STARTUP_OF = {"cs": "c"}


@dataclass
class Summary:
    regime: str
    variant: str
    runs: int
    notes: int
    nps: float  # median notes/s over the crawl window
    nps_min: float
    nps_max: float
    nps_process: float  # median notes/s over the whole process
    cpu_per_1k: float  # median CPU s per 1,000 notes, whole process
    cpu_ms_per_note_steady: float | None  # the start-up (a 1-note run's CPU) taken out
    peak_rss: float  # median, bytes
    peak_concurrency: int  # the most calls in flight at the simulator, any round
    sim_us_per_call: float  # the simulator's CPU per call, median
    sim_share: float  # the simulator's CPU over the crawl window, in cores, median
    background_cores: float  # CPU of every other process on the machine meanwhile, median
    # Over the crawl window alone (no start-up, no shutdown), medians; None when not sampled.
    window_cpu_ms_per_note: float | None = None
    window_busy_cores: float | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Startup:
    """The 1-note runs at 0 ms latency (medians) and ``python -c "import scrapy"``."""

    runs: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    wall_s: dict[str, float] = field(default_factory=dict)
    import_scrapy_wall_s: float | None = None

    @classmethod
    def from_runs(cls, runs: Sequence[RunResult], import_walls: Sequence[float]) -> Startup:
        by_variant: dict[str, list[RunResult]] = {}
        for r in runs:
            by_variant.setdefault(r.variant, []).append(r)
        return cls(
            runs=max((len(v) for v in by_variant.values()), default=0),
            cpu_s={k: statistics.median(r.cpu_s for r in v) for k, v in by_variant.items()},
            wall_s={
                k: statistics.median(r.process_wall_s for r in v) for k, v in by_variant.items()
            },
            import_scrapy_wall_s=statistics.median(import_walls) if import_walls else None,
        )

    def cpu_of(self, variant: str) -> float | None:
        return self.cpu_s.get(STARTUP_OF.get(variant, variant))


Key = tuple[str, str]  # (regime, variant)


def summarise(results: Sequence[RunResult], startup: Startup) -> dict[Key, Summary]:
    grouped: dict[Key, list[RunResult]] = {}
    for result in results:
        grouped.setdefault((result.regime, result.variant), []).append(result)
    out: dict[Key, Summary] = {}
    for (regime, variant), runs in grouped.items():
        nps = [r.notes_per_s for r in runs]
        notes = runs[0].notes
        cpu = statistics.median(r.cpu_s for r in runs)
        steady = None
        base = startup.cpu_of(variant)
        if base is not None and notes > 1:
            steady = max(cpu - base, 0.0) / (notes - 1) * 1000
        out[(regime, variant)] = Summary(
            regime=regime,
            variant=variant,
            runs=len(runs),
            notes=notes,
            nps=statistics.median(nps),
            nps_min=min(nps),
            nps_max=max(nps),
            nps_process=statistics.median(r.notes_per_s_process for r in runs),
            cpu_per_1k=statistics.median(r.cpu_per_1k for r in runs),
            cpu_ms_per_note_steady=steady,
            peak_rss=statistics.median(r.peak_rss_bytes for r in runs),
            peak_concurrency=max(r.sim_peak_concurrency for r in runs),
            sim_us_per_call=statistics.median(r.sim_cpu_s / r.sim_calls * 1e6 for r in runs),
            sim_share=statistics.median(r.sim_cpu_share for r in runs),
            background_cores=statistics.median(r.background_cores for r in runs),
            window_cpu_ms_per_note=_median_or_none([r.window_cpu_ms_per_note for r in runs]),
            window_busy_cores=_median_or_none([r.window_busy_cores for r in runs]),
        )
    return out


def _median_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known and len(known) == len(values) else None


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


def memory_figure(memory: Sequence[MemoryResult], seeds: int) -> tuple[MemoryResult | None, str]:
    """The memory run a target at ``seeds`` is judged on: the real crawl when it read every
    seed, else the seed path alone (the crawl then stopped at its time bound, having read
    fewer)."""
    done = [m for m in memory if m.ok and m.seeds == seeds]
    crawl = next((m for m in done if m.mode == "crawl" and m.complete), None)
    if crawl is not None:
        return crawl, "real crawl"
    seedpath = next((m for m in done if m.mode == "seedpath"), None)
    if seedpath is not None:
        crawled = any(m.mode == "crawl" and m.seeds == seeds for m in memory)
        return seedpath, "seed path; the crawl did not read every seed" if crawled else "seed path"
    return None, ""


def _get(s: dict[Key, Summary], regime: str, variant: str) -> Summary | None:
    return s.get((regime, variant))


def _ratio(
    s: dict[Key, Summary],
    regime: str,
    num: str,
    den: str,
    value: Callable[[Summary], float | None],
) -> float | None:
    a, b = _get(s, regime, num), _get(s, regime, den)
    if a is None or b is None:
        return None
    x, y = value(a), value(b)
    if x is None or y is None or y <= 0:
        return None
    return x / y


def _nps(x: Summary) -> float:
    return x.nps


def _cpu(x: Summary) -> float:
    return x.cpu_per_1k


def _steady(x: Summary) -> float | None:
    return x.cpu_ms_per_note_steady


def _window_cpu(x: Summary) -> float | None:
    return x.window_cpu_ms_per_note


QUEUE_REGIME = "500ms-queue"
# The goals that the limits below are set against (``targets`` and ``_limits``).
CPU_VS_BARE = 0.25  # 0 ms: (c)'s CPU per note at most this × (b)'s
CPU_VS_RAW = 4.0  # 0 ms: (c)'s CPU per note at most this × the raw client's
NPS_VS_BARE_100MS = 1.5  # 100 ms: (c)'s notes/s at least this × (b)'s


def targets(
    s: dict[Key, Summary],
    startup: Startup,
    memory: Sequence[MemoryResult],
    plan: Plan,
    dedup: DedupMemory | None = None,
) -> list[Target]:
    found: list[Target] = []

    def add(
        name: str, value: float | None, fmt: str, goal: str, ok: Callable[[float], bool]
    ) -> None:
        shown = "not measured" if value is None else fmt.format(value)
        found.append(Target(name, value, shown, goal, None if value is None else ok(value)))

    add(
        "500 ms, 512 in flight: (c) / raw client notes/s",
        _ratio(s, "500ms-512", "c", "r", _nps),
        "{:.2f}×",
        "≥ 0.95×",
        lambda v: v >= 0.95,
    )
    add(
        "500 ms, 1,024 in flight: (c) / raw client notes/s",
        _ratio(s, "500ms-1024", "c", "r", _nps),
        "{:.2f}×",
        "≥ 0.90×",
        lambda v: v >= 0.9,
    )
    add(
        "0 ms, 64 in flight: (c) / (b) CPU per note, start-up subtracted",
        _ratio(s, "0ms-64", "c", "b", _steady),
        "{:.2f}×",
        f"≤ {CPU_VS_BARE:.2f}×",
        lambda v: v <= CPU_VS_BARE,
    )
    add(
        "0 ms, 64 in flight: (c) / raw client CPU per note, start-up subtracted",
        _ratio(s, "0ms-64", "c", "r", _steady),
        "{:.1f}×",
        f"≤ {CPU_VS_RAW:g}×",
        lambda v: v <= CPU_VS_RAW,
    )
    c_wall, floor = startup.wall_s.get("c"), startup.import_scrapy_wall_s
    add(
        'start-up: 1-note (c) at 0 ms / `python -c "import scrapy"`, wall time',
        c_wall / floor if c_wall is not None and floor else None,
        "{:.2f}×",
        "≤ 2.5×",
        lambda v: v <= 2.5,
    )
    for seeds, limit in ((10_000_000, 400), (1_000_000, 200)):
        if seeds not in plan.seedpath_seeds and seeds != plan.crawl_memory_seeds:
            continue
        judged, which = memory_figure(memory, seeds)
        mem = judged.peak_rss_bytes / MB if judged is not None else None
        name = f"peak RSS, {seeds:,} seeds" + (f" ({which})" if which else "")
        add(name, mem, "{:.0f} MB", f"≤ {limit} MB", _at_most(limit))
    add(
        "100 ms, 64 in flight: (c) / (b) notes/s",
        _ratio(s, "100ms-64", "c", "b", _nps),
        "{:.2f}×",
        f"≥ {NPS_VS_BARE_100MS:g}×",
        lambda v: v >= NPS_VS_BARE_100MS,
    )
    add(
        "100 ms, 64 in flight: (c) / (b) CPU per note",
        _ratio(s, "100ms-64", "c", "b", _cpu),
        "{:.2f}×",
        "≤ 0.6×",
        lambda v: v <= 0.6,
    )
    add(
        "100 ms, 64 in flight: (c) / (a) notes/s",
        _ratio(s, "100ms-64", "c", "a", _nps),
        "{:.1f}×",
        "≥ 20×",
        lambda v: v >= 20,
    )
    base = "cs" if ("100ms-64", "cs") in s else "c"
    cm = _get(s, "100ms-64", "cm")
    add(
        f"100 ms, 64 in flight: (c)+MongoDB / (c) notes/s ({cm.notes if cm else '?'} notes each)",
        _ratio(s, "100ms-64", "cm", base, _nps),
        "{:.2f}×",
        "≥ 0.90×",
        lambda v: v >= 0.9,
    )
    if plan.regime(QUEUE_REGIME) is not None:
        add(
            "500 ms, 128 in flight per process, one Redis: 3 processes / 1 process notes/s",
            _ratio(s, QUEUE_REGIME, "q3", "q1", _nps),
            "{:.2f}×",
            "≥ 2.7×",
            lambda v: v >= 2.7,
        )
        add(
            "500 ms, 128 in flight: CPU per note over the crawl window, 1 process on Redis / "
            "no queue",
            _ratio(s, QUEUE_REGIME, "q1", "q0", _window_cpu),
            "{:.2f}×",
            "≤ 1.2×",
            lambda v: v <= 1.2,
        )
    if plan.queue_memory_seeds:
        per_seed = dedup.bytes_per_seed if dedup is not None and dedup.ok else None
        add(
            f"Redis: run-wide dedup, bytes per seed at {plan.queue_memory_seeds:,} seeds",
            per_seed,
            "{:.1f} B",
            "≤ 100 B",
            _at_most(100),
        )
    return found


def _at_most(limit: float) -> Callable[[float], bool]:
    return lambda v: v <= limit


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


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

COLUMNS = ("r", "a", "b", "f", "c", "cm")
SHORT = {
    "r": "raw",
    "a": "(a)",
    "b": "(b)",
    "f": "(f)",
    "c": "(c)",
    "cs": "(c)",
    "cm": "(c)+MongoDB",
}


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _side_by_side(
    s: dict[Key, Summary], startup: Startup, plan: Plan, mongo_kind: str | None
) -> list[str]:
    head = ["raw aiohttp client", "(a) naive", "(b) bare Scrapy", "(f) Scrapy's floor"]
    head.append("(c) `note_detail`")
    head.append(f"(c) + MongoDB ({mongo_kind})" if mongo_kind else "(c) + MongoDB")
    lines = [
        "| figure | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(head),
    ]

    def row(label: str, cells: dict[str, str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells.get(v, "—") for v in COLUMNS) + " |")

    for regime in plan.regimes:
        present = [v for v in COLUMNS if (regime.key, v) in s]
        if not present:
            continue
        sizes = _sizes(regime, present)
        label = f"{regime.title}, {sizes}"
        if regime.latency_ms == 0:
            cells = {}
            for v in present:
                x = s[(regime.key, v)]
                cells[v] = _ms(x.cpu_ms_per_note_steady)
                if v in ("c", "f"):
                    cells[v] += _ratios(s, regime.key, v, ("b", "r"), _steady)
            row(f"{label}: CPU ms per note, a 1-note run's CPU subtracted", cells)
            continue
        cells = {}
        for v in present:
            cells[v] = f"{s[(regime.key, v)].nps:.0f}"
        if "c" in cells:
            cells["c"] += _ratios(s, regime.key, "c", ("r", "b", "a"), _nps, first_only=True)
        if "cm" in cells:
            base = "cs" if (regime.key, "cs") in s else "c"
            ratio = _ratio(s, regime.key, "cm", base, _nps)
            if ratio is not None:
                cells["cm"] += f" ({ratio:.2f}× (c) at its N)"
        row(f"{label}: notes/s", cells)
        if regime.concurrency >= 1024:
            rss = {v: f"{s[(regime.key, v)].peak_rss / MB:.0f} MB" for v in present}
            row(f"{regime.title}: peak RSS", rss)
    if startup.wall_s:
        floor = startup.import_scrapy_wall_s
        cells = {v: f"{w:.2f} s" for v, w in startup.wall_s.items()}
        if "c" in cells and floor:
            cells["c"] += f" ({startup.wall_s['c'] / floor:.2f}× `import scrapy`)"
        shown = f"{floor:.2f} s" if floor else "not measured"
        row(
            f'start-up: a 1-note run at 0 ms, wall time (`python -c "import scrapy"`: {shown})',
            cells,
        )
    return lines


def _sizes(regime: Regime, present: Sequence[str]) -> str:
    text = f"{regime.notes:,} notes"
    others = [
        f"{SHORT[v]} {regime.notes_of(v):,}" for v in present if regime.notes_of(v) != regime.notes
    ]
    return text + (f" ({', '.join(others)})" if others else "")


def _ratios(
    s: dict[Key, Summary],
    regime: str,
    num: str,
    dens: Sequence[str],
    value: Callable[[Summary], float | None],
    first_only: bool = False,
) -> str:
    parts = []
    for den in dens:
        ratio = _ratio(s, regime, num, den, value)
        if ratio is not None:
            parts.append(f"{ratio:.2f}× {SHORT[den]}")
            if first_only:
                break
    return f" ({', '.join(parts)})" if parts else ""


def _detail(s: dict[Key, Summary], regime: Regime, mongo_kind: str | None) -> list[str]:
    rows = [s[(regime.key, v)] for v in regime.variants if (regime.key, v) in s]
    if not rows:
        return []
    lines = [
        f"**{regime.title}** (`CONCURRENT_REQUESTS={regime.concurrency}`), "
        f"{rows[0].runs} round(s):",
        "",
        "| contender | notes | notes/s | notes/s, whole process | CPU s / 1k notes | "
        "CPU ms / note, start-up out | peak RSS | in flight (max) | simulator µs / call | "
        "simulator, cores | other processes, cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in rows:
        label = LABELS[x.variant]
        if x.variant == "cm" and mongo_kind:
            label += f" ({mongo_kind})"
        lines.append(
            f"| {label} | {x.notes:,} | {x.nps:.1f} ({x.nps_min:.1f}–{x.nps_max:.1f}) | "
            f"{x.nps_process:.1f} | {x.cpu_per_1k:.2f} | {_ms(x.cpu_ms_per_note_steady)} | "
            f"{x.peak_rss / MB:.0f} MB | {x.peak_concurrency} | {x.sim_us_per_call:.0f} | "
            f"{x.sim_share:.2f} | {x.background_cores:.2f} |"
        )
    return lines


def _scaling_table(s: dict[Key, Summary], plan: Plan, redis_version: str | None) -> list[str]:
    """The runs across processes: notes/s against one process, CPU per note against no queue."""
    regime = plan.regime(QUEUE_REGIME)
    rows = [s[(QUEUE_REGIME, v)] for v in QUEUE_VARIANTS if (QUEUE_REGIME, v) in s]
    if regime is None or not rows:
        return []
    one, alone = s.get((QUEUE_REGIME, "q1")), s.get((QUEUE_REGIME, "q0"))
    server = f"Redis {redis_version}" if redis_version else "Redis"
    lines = [
        f"**Scaling** ({regime.title}; {server} with `appendonly yes`; "
        f"`CONCURRENT_REQUESTS={regime.concurrency}` in each process, so "
        f"{regime.concurrency / (regime.latency_ms / 1000):.0f} notes/s per process at most), "
        f"{rows[0].runs} round(s):",
        "",
        "| processes | notes | notes/s | × 1 process | CPU ms / note over the window, all "
        "processes | × no queue | CPU s / 1k notes, whole processes | simulator, cores | "
        "machine busy over the window, cores | other processes, cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = alone.window_cpu_ms_per_note if alone is not None else None
    for x in rows:
        name = "1, no queue" if x.variant == "q0" else str(workers_of(x.variant))
        times = f"{x.nps / one.nps:.2f}×" if one is not None and one.nps > 0 else "—"
        window = x.window_cpu_ms_per_note
        cpu = f"{window / base:.2f}×" if window is not None and base else "—"
        busy = "—" if x.window_busy_cores is None else f"{x.window_busy_cores:.2f}"
        lines.append(
            f"| {name} | {x.notes:,} | {x.nps:.0f} ({x.nps_min:.0f}–{x.nps_max:.0f}) | {times} | "
            f"{_ms(window)} | {cpu} | {x.cpu_per_1k:.2f} | {x.sim_share:.2f} | {busy} | "
            f"{x.background_cores:.2f} |"
        )
    cores = os.cpu_count() or 0
    lines += [
        "",
        f"Machine busy: every process on the machine over the crawl window, of {cores} cores "
        "(the workers, the simulator, Redis, the benchmark and anything else): near "
        f"{cores} the run was bound by CPU, not by the API's latency.",
    ]
    return lines


def _dedup_table(dedup: DedupMemory | None) -> list[str]:
    if dedup is None:
        return []
    if not dedup.ok:
        return [f"Redis dedup memory run failed: {dedup.problem}"]
    return [
        f"**Redis memory of the run-wide dedup**: a reader pushed {dedup.seeds:,} distinct seeds "
        f"(batches of 500, as in a run) in {dedup.wall_s:.0f} s: `MEMORY USAGE` of the "
        f"{dedup.keys:,} dedup keys ({', '.join(dedup.encodings)}) "
        f"{dedup.dedup_bytes / MB:.1f} MB = **{dedup.bytes_per_seed:.1f} bytes per seed**; "
        f"`used_memory` grew by {dedup.used_memory_growth / MB:.1f} MB "
        f"({dedup.used_per_seed:.1f} bytes per seed).",
    ]


def _startup_table(startup: Startup) -> list[str]:
    if not startup.wall_s and startup.import_scrapy_wall_s is None:
        return []
    lines = [
        f"**Start-up**: 1-note runs at 0 ms latency, medians of {startup.runs}:",
        "",
        "| run | wall time, spawn to exit | CPU s |",
        "|---|---:|---:|",
    ]
    if startup.import_scrapy_wall_s is not None:
        lines.append(f'| `python -c "import scrapy"` | {startup.import_scrapy_wall_s:.2f} s | — |')
    for variant, wall in startup.wall_s.items():
        lines.append(f"| {LABELS[variant]} | {wall:.2f} s | {startup.cpu_s[variant]:.2f} |")
    return lines


def _memory_table(memory: Sequence[MemoryResult], plan: Plan) -> list[str]:
    if not memory:
        return []
    lines = [
        "| memory run | seeds read | peak RSS | CPU s | time to read them |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in memory:
        if m.mode == "crawl":
            what = (
                f"`scrapy crawl note_detail` ({plan.crawl_memory_latency_ms:g} ms latency, "
                f"`CONCURRENT_REQUESTS={plan.crawl_memory_concurrency}`), stopped once every "
                "seed is read"
            )
        else:
            base = m.baseline_rss_bytes
            loaded = f"; {base / MB:.0f} MB once Scrapy and the spider are loaded" if base else ""
            what = f"the seed path alone (`bench.seedpath`, no network{loaded})"
        read = "—" if m.read_s is None else f"{m.read_s:.1f} s"
        if not m.complete:
            read += f" (stopped at the {plan.crawl_memory_time_limit_s:g} s bound)"
        rss = f"{m.peak_rss_bytes / MB:.0f} MB" if m.ok else f"failed: {m.problem}"
        lines.append(
            f"| {what} | {m.seeds_read:,} of {m.seeds:,} | {rss} | {m.cpu_s:.1f} | {read} |"
        )
    return lines


def markdown(
    facts: dict[str, Any],
    command: str,
    plan: Plan,
    s: dict[Key, Summary],
    startup: Startup,
    found: list[Target],
    memory: Sequence[MemoryResult],
    mongo_kind: str | None,
    dedup: DedupMemory | None = None,
    redis_version: str | None = None,
) -> str:
    lines = [
        f"`{command}` — {facts['date']}, {facts['cpu']} ({facts['cores']} cores, shared), "
        f"Python {facts['python']}, Scrapy {facts['scrapy']}, commit {facts['commit']}, "
        f"load average {facts['loadavg_start'][0]} at start"
        + (f", {facts['loadavg_end'][0]} at the end" if "loadavg_end" in facts else "")
        + (f"; {facts['bench_minutes']} min in all" if "bench_minutes" in facts else "")
        + ".",
        "",
        "The simulator answers every call with a note, no faults; every contender of a regime "
        "runs with the same calls in flight over the same note IDs, in rotating order; medians "
        "over the rounds.",
        "",
        *_side_by_side(s, startup, plan, mongo_kind),
    ]
    if s:
        top = max(s.values(), key=lambda x: x.sim_share)
        lines += [
            "",
            f"The simulator used at most {top.sim_share:.0%} of one core over a crawl window "
            f"({LABELS[top.variant]}, {_regime_title(plan, top.regime)}; "
            f"{top.sim_us_per_call:.0f} µs per call).",
        ]
    for regime in plan.regimes:
        detail = _detail(s, regime, mongo_kind)
        if detail:
            lines += ["", *detail]
    extras = (
        _scaling_table(s, plan, redis_version),
        _dedup_table(dedup),
        _startup_table(startup),
        _memory_table(memory, plan),
    )
    for extra in extras:
        if extra:
            lines += ["", *extra]
    lines += ["", "| target | measured | goal | |", "|---|---:|---:|---|"]
    for t in found:
        lines.append(f"| {t.name} | {t.shown} | {t.goal} | {t.verdict} |")
    limits = _limits(s, plan)
    if limits:
        lines += ["", *limits]
    lines += [
        "",
        "notes/s = notes written / crawl window, from the first API request the simulator "
        "received to its N-th answer (Python start-up, imports and shutdown excluded); "
        '"whole process" divides by spawn-to-exit instead. CPU = user+sys of the crawling '
        'process alone (`os.wait4`), start-up included; "start-up out" subtracts the median '
        "CPU of the contender's 1-note runs at 0 ms latency and divides by N − 1. Peak RSS = "
        "`ru_maxrss` of that process. In flight (max): the simulator's peak of calls "
        "being answered at once (at 0 ms latency it answers each call before it reads the next: "
        "1). Simulator figures: its own CPU (from `/proc`) per call and over the crawl window "
        "(1.00 = one core busy). Other processes: the CPU that the rest of the machine used "
        "meanwhile (`/proc/stat`), in cores: a figure taken beside a busy neighbour is noisy. "
        "Every run is checked: exit status 0, N "
        "calls at the simulator, every one successful and billed, N lines in the feed (and N "
        "documents in MongoDB).",
    ]
    return "\n".join(lines)


def _limits(s: dict[Key, Summary], plan: Plan) -> list[str]:
    """What no client of that kind can do on this machine, beside the targets that ask it:
    Scrapy's floor (f) at 0 ms, and the latency ceiling at 100 ms against (b)'s rate."""
    lines = []
    floor = _get(s, "0ms-64", "f")
    by_bare = _ratio(s, "0ms-64", "f", "b", _steady)
    by_raw = _ratio(s, "0ms-64", "f", "r", _steady)
    if floor is not None and floor.cpu_ms_per_note_steady is not None and by_bare and by_raw:
        below = [
            f"≤ {goal:g}× {who}"
            for goal, measured, who in ((CPU_VS_BARE, by_bare, "(b)"), (CPU_VS_RAW, by_raw, "raw"))
            if measured > goal
        ]
        verdict = (
            f"(c)'s goal{'s' if len(below) > 1 else ''} {' and '.join(below)} "
            f"{'are' if len(below) > 1 else 'is'} below what Scrapy's engine itself costs for "
            "this work here: no spider on it that calls the API and writes the feed can meet "
            f"{'them' if len(below) > 1 else 'it'} on this machine."
            if below
            else "(c)'s goals there are above it: what (c) costs beyond it is the project's own."
        )
        lines += [
            f"**Scrapy's floor**: (f), the raw client's work inside Scrapy with every lean "
            f"setting of the project and a minimal aiohttp handler, used "
            f"{floor.cpu_ms_per_note_steady:.2f} ms of CPU per note at 0 ms latency "
            f"({by_bare:.2f}× (b), {by_raw:.2f}× raw). {verdict}",
            "",
        ]
    regime, bare = plan.regime("100ms-64"), _get(s, "100ms-64", "b")
    if regime is not None and bare is not None and bare.nps > 0 and regime.latency_ms > 0:
        ceiling = regime.concurrency * 1000 / regime.latency_ms
        reach = ceiling / bare.nps
        if reach < NPS_VS_BARE_100MS:
            lines += [
                f"**Latency ceiling**: at {regime.latency_ms:g} ms with {regime.concurrency} in "
                f"flight no client passes {ceiling:,.0f} notes/s = {reach:.2f}× (b)'s "
                f"{bare.nps:.0f}: (c)'s goal ≥ {NPS_VS_BARE_100MS:g}× (b) there is out of reach "
                "while (b) runs this fast.",
                "",
            ]
    return lines[:-1]


def _regime_title(plan: Plan, key: str) -> str:
    regime = plan.regime(key)
    return regime.title if regime is not None else key
