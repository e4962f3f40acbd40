"""What the benchmark runs: the regimes (latency, calls in flight, notes, contenders), the
start-up runs and the memory runs, for ``make bench`` and for ``--quick``.

A regime runs its contenders alternately for ``rounds`` rounds against one simulator at its
latency. Every contender of a regime runs with the same ``CONCURRENT_REQUESTS`` (the raw client
with as many tasks and connections) and, unless ``notes_by_variant`` says otherwise, over the
same N note IDs (a prefix of one list shared by every regime, so the simulator's note cache
stays warm).

To add a regime (for example N worker processes on one Redis at 500 ms and 128 in flight per
worker): an entry in ``FULL`` and in ``QUICK``, the contenders' builders in
``bench/variants.py``, and its targets in ``bench/report.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Regime:
    key: str
    title: str  # what a reader needs to know, for the report
    latency_ms: float
    concurrency: int
    notes: int
    variants: tuple[str, ...]
    rounds: int = 3
    notes_by_variant: Mapping[str, int] = field(default_factory=dict)

    def notes_of(self, variant: str) -> int:
        return min(self.notes_by_variant.get(variant, self.notes), self.notes)


@dataclass(frozen=True)
class Plan:
    regimes: tuple[Regime, ...]
    startup_runs: int  # 1-note runs of each Scrapy contender (and `import scrapy`), 0 ms latency
    seedpath_seeds: tuple[int, ...]  # seed-path memory runs, by seed-file size
    crawl_memory_seeds: int  # the real crawl's memory run (0: none)
    crawl_memory_latency_ms: float
    crawl_memory_concurrency: int
    crawl_memory_time_limit_s: float
    queue_memory_seeds: int = 0  # distinct seeds pushed for the Redis dedup's memory (0: none)

    def regime(self, key: str) -> Regime | None:
        return next((r for r in self.regimes if r.key == key), None)


# The regimes, then the one the benchmark measured first (kept for its figures).
# (b), the bare Scrapy spider, runs over fewer notes than (c) where it would take most of the
# regime's time (~55 s a round over 8,000 at 500 ms): it is bound by its own CPU from its
# first seconds, so its notes/s and its CPU per note with start-up subtracted hardly depend on
# N, and `make bench` stays within its 15 minutes.
FULL = Plan(
    regimes=(
        Regime(
            "500ms-512",
            "500 ms latency, 512 in flight",
            500,
            512,
            8000,
            ("r", "b", "c"),
            notes_by_variant={"b": 1500},
        ),
        Regime("500ms-1024", "500 ms latency, 1,024 in flight", 500, 1024, 10000, ("r", "c")),
        Regime(
            "0ms-64",
            "0 ms latency, 64 in flight",
            0,
            64,
            5000,
            ("r", "b", "f", "c"),
            notes_by_variant={"b": 1000},
        ),
        Regime(
            "100ms-64",
            "100 ms latency, 64 in flight",
            100,
            64,
            3000,
            ("a", "b", "c", "cs", "cm"),
            # (c)+MongoDB at 400: on FerretDB 1.x (SQLite) every write scans the collection,
            # so its drain after the crawl grows with N squared (1,000: ~140 s a round, 500:
            # ~42 s). (a) makes one call after the other: 9.4 notes/s over any N.
            notes_by_variant={"a": 60, "b": 1000, "cs": 400, "cm": 400},
        ),
        # Runs across processes: each worker keeps 128 calls in flight, so the ceiling is
        # 256 notes/s per process; N is 2,000 per process, so every run's crawl window is
        # about as long (~8 s) and the workers' start-up lag weighs the same in each.
        Regime(
            "500ms-queue",
            "500 ms latency, 128 in flight per process, one Redis",
            500,
            128,
            6000,
            ("q0", "q1", "q2", "q3"),
            rounds=2,
            notes_by_variant={"q0": 2000, "q1": 2000, "q2": 4000},
        ),
    ),
    startup_runs=5,
    seedpath_seeds=(1_000_000, 10_000_000),
    crawl_memory_seeds=1_000_000,
    crawl_memory_latency_ms=100,
    crawl_memory_concurrency=64,
    crawl_memory_time_limit_s=30,
    queue_memory_seeds=1_000_000,
)

# A smoke test of every runner and every check, in minutes: the figures mean little.
QUICK = Plan(
    regimes=(
        replace(FULL.regimes[0], notes=1000, rounds=1),
        replace(FULL.regimes[1], notes=2048, rounds=1),
        replace(FULL.regimes[2], notes=500, rounds=1),
        replace(
            FULL.regimes[3], notes=300, rounds=1, notes_by_variant={"a": 10, "cs": 100, "cm": 100}
        ),
        replace(
            FULL.regimes[4], notes=900, rounds=1, notes_by_variant={"q0": 300, "q1": 300, "q2": 600}
        ),
    ),
    startup_runs=1,
    seedpath_seeds=(200_000,),
    crawl_memory_seeds=200_000,
    crawl_memory_latency_ms=100,
    crawl_memory_concurrency=64,
    crawl_memory_time_limit_s=10,
    queue_memory_seeds=100_000,
)

ALL_KEYS = tuple(r.key for r in FULL.regimes)
