"""The benchmark: ``python -m bench.run`` (``make bench``; ``--quick`` = ``make bench-quick``).

One run, one machine, one simulator (no faults) and one list of note IDs. Side by side, in the
regimes of ``bench/regimes.py``: (r) a raw aiohttp client, the practical limit; (a) the API
sample code's ``requests.get`` loop; (b) a bare Scrapy spider; (c) ``scrapy crawl note_detail``
(project defaults, no JOBDIR, no MongoDB) and (c) with MongoDB — alternately for several rounds
per regime. Then 1-note runs at 0 ms latency (start-up time and the CPU that the per-note
figures subtract) beside ``python -c "import scrapy"``, and the memory runs (the seed path with
1,000,000 and 10,000,000 seeds, the real crawl with 1,000,000). Prints a Markdown report with
the medians, the ratios and PASS/FAIL per target; ``--json`` keeps the raw numbers. See
``bench/measure.py`` for what is measured and how, ``bench/variants.py`` for the exact command
lines.

Exit status: 0 when every run did what it had to (whatever the targets say), 1 when a run failed
(wrong exit status, note count or call count: the report says which).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import memory as memory_run
from bench import redisq, regimes, report, variants
from bench.ids import write_ids
from bench.measure import RunFailed, RunResult, count_lines, run_measured, run_process
from bench.mongo import BenchMongo
from bench.regimes import Plan, Regime
from bench.sim import Simulator

STARTUP_VARIANTS = ("r", "b", "f", "c", "cm")  # the contenders that get 1-note runs
IMPORT_SCRAPY = "import-scrapy"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test of every runner and check, small N, one round (~3 min)",
    )
    p.add_argument(
        "--regimes",
        default=",".join(regimes.ALL_KEYS),
        help=f"which regimes, comma-separated, or 'none' [{','.join(regimes.ALL_KEYS)}]",
    )
    p.add_argument("--rounds", type=int, default=None, help="rounds of every regime [3; quick 1]")
    p.add_argument(
        "--startup-runs",
        type=int,
        default=None,
        help="1-note runs of each contender at 0 ms latency, 0 = none [5; quick 1]",
    )
    p.add_argument(
        "--mongo",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run (c) with MONGO_URI (MONGO_URI from the environment, else mongod, else "
        "FerretDB, as the tests do) [on]",
    )
    p.add_argument(
        "--memory-seeds",
        default=None,
        help="seed-file sizes of the seed-path memory runs, comma-separated, 0 = none "
        "[1000000,10000000; quick 200000]",
    )
    p.add_argument(
        "--memory-crawl-seeds",
        type=int,
        default=None,
        help="seeds of the real crawl's memory run, 0 = none [1000000; quick 200000]",
    )
    p.add_argument(
        "--memory-time-limit",
        type=float,
        default=None,
        help="stop the memory crawl after this many seconds if it has not read every seed "
        "[30; quick 10]",
    )
    p.add_argument(
        "--queue-memory-seeds",
        type=int,
        default=None,
        help="distinct seeds the reader pushes for the Redis dedup's memory, 0 = none "
        "[1000000; quick 100000]",
    )
    p.add_argument(
        "--c-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra -s for (c) and (c)+MongoDB, to try a change (repeatable)",
    )
    p.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the warm-up")
    p.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    p.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, feeds, seed files)"
    )
    args = p.parse_args(argv)
    try:
        args.plan = build_plan(args)
    except ValueError as exc:
        p.error(str(exc))
    return args


def build_plan(args: argparse.Namespace) -> Plan:
    """The plan of ``--quick`` or of the full run, with the command line's overrides."""
    plan = regimes.QUICK if args.quick else regimes.FULL
    keys = [] if args.regimes == "none" else [k.strip() for k in args.regimes.split(",") if k]
    unknown = sorted(set(keys) - set(regimes.ALL_KEYS))
    if unknown:
        raise ValueError(f"--regimes: unknown {unknown}; known: {', '.join(regimes.ALL_KEYS)}")
    chosen: list[Regime] = []
    for listed in plan.regimes:
        if listed.key not in keys:
            continue
        regime = listed
        if args.rounds is not None:
            if args.rounds < 1:
                raise ValueError("--rounds must be >= 1")
            regime = replace(regime, rounds=args.rounds)
        if not args.mongo:
            regime = replace(regime, variants=tuple(v for v in regime.variants if v != "cm"))
        if "cm" not in regime.variants:  # (c) at MongoDB's N is only there to compare with it
            regime = replace(regime, variants=tuple(v for v in regime.variants if v != "cs"))
        chosen.append(regime)
    changes: dict[str, Any] = {"regimes": tuple(chosen)}
    if args.startup_runs is not None:
        changes["startup_runs"] = max(args.startup_runs, 0)
    if args.memory_seeds is not None:
        sizes = tuple(int(x) for x in args.memory_seeds.split(",") if int(x) > 0)
        changes["seedpath_seeds"] = sizes
    if args.memory_crawl_seeds is not None:
        changes["crawl_memory_seeds"] = max(args.memory_crawl_seeds, 0)
    if args.memory_time_limit is not None:
        changes["crawl_memory_time_limit_s"] = args.memory_time_limit
    if args.queue_memory_seeds is not None:
        changes["queue_memory_seeds"] = max(args.queue_memory_seeds, 0)
    return replace(plan, **changes)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def raise_open_files_limit() -> None:
    """1,024 calls in flight are 1,024 sockets in the client and as many in the simulator."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Bench:
    """The simulator, the database, the ID files and one measured run at a time."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        env = variants.base_env()
        env["PYTHONPATH"] = str(variants.REPO_ROOT)
        self.sim = Simulator(0.0, work / "simulator.log", env)
        self.mongo: BenchMongo | None = None
        self.redis: redisq.BenchRedis | None = None
        self._ids: dict[int, Path] = {}
        self._runs = 0

    def close(self) -> None:
        self.sim.stop()
        if self.mongo is not None:
            self.mongo.close()
        if self.redis is not None:
            self.redis.close()

    def start_redis(self) -> str | None:
        try:
            self.redis = redisq.BenchRedis(self.work / "redis")
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def start_mongo(self) -> str | None:
        try:
            self.mongo = BenchMongo(self.work / "mongo")
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def ids(self, notes: int) -> Path:
        """A file of the first ``notes`` IDs of the one list every run draws from."""
        if notes not in self._ids:
            path = self.work / f"ids-{notes}.txt"
            write_ids(path, notes)
            self._ids[notes] = path
        return self._ids[notes]

    def run(
        self,
        variant: str,
        round_no: int,
        notes: int,
        *,
        latency_ms: float,
        concurrency: int,
        regime: str,
        settings: list[str] | None = None,
        label: str | None = None,
    ) -> RunResult:
        """One measured run of ``variant``; ``settings`` replaces ``--c-setting`` for (c)
        and the result is filed under ``label`` (default: the variant)."""
        self._runs += 1
        work = self.work / f"run-{self._runs:03d}-{regime}-{variant}"
        work.mkdir()
        ids = self.ids(notes)
        database: str | None = None
        extra = list(self.args.c_setting if settings is None else settings)
        run_name = f"bench-{os.getpid()}-{self._runs:03d}"
        if variant in variants.QUEUE_VARIANTS:
            if variant != "q0" and self.redis is None:
                raise RunFailed(f"{variant}: no Redis")
            command = variants.queue(
                ids,
                self.sim.url,
                work,
                concurrency,
                variant=variant,
                queue_url=self.redis.url if self.redis is not None else None,
                run=run_name,
                expected_notes=notes,
            )
        elif variant == "cm":
            if self.mongo is None:
                raise RunFailed("cm: no MongoDB")
            database = self.mongo.database_name()
            extra += [
                f"MONGO_URI={self.mongo.uri}",
                f"MONGO_DATABASE={database}",
                "PGY_REFRESH_HOURS=0",
            ]
            command = variants.project(
                ids,
                self.sim.url,
                work,
                concurrency,
                name=variant,
                extra_settings=extra,
                expected_notes=notes,
            )
        else:
            command = variants.build(
                variant,
                ids,
                self.sim.url,
                work,
                concurrency,
                c_settings=extra,
                expected_notes=notes,
            )
        per_note = {"a": 1.0 + latency_ms / 1000, "cm": 0.5}.get(variant, 0.05)
        self.sim.use_latency(latency_ms)
        try:
            result = run_measured(
                variant,
                round_no,
                command.argvs,
                env=command.env,
                cwd=command.cwd,
                log_path=work / "run.log",
                sim=self.sim,
                expected_calls=notes,
                timeout_s=120 + notes * per_note,
                count_output=command.count or count_lines(command.out_path),
                others_ready=command.others_ready,
            )
            for check in command.checks:
                if (problem := check()) is not None:
                    raise RunFailed(f"{variant}: {problem}")
            if variant in variants.QUEUE_VARIANTS and variant != "q0":
                assert self.redis is not None
                if (problem := redisq.check_run(self.redis, run_name, notes)) is not None:
                    raise RunFailed(f"{variant}: {problem}")
            if database is not None:
                assert self.mongo is not None
                stored = self.mongo.count_notes(database)
                if stored != notes:
                    raise RunFailed(f"{variant}: {stored} notes in MongoDB, expected {notes}")
        finally:
            if database is not None and self.mongo is not None:
                self.mongo.drop(database)
            if self.redis is not None and variant in variants.QUEUE_VARIANTS:
                self.redis.delete_run(run_name)  # a failed run's keys too
        result.extra["argv"] = shlex.join(command.argv)
        result.regime, result.concurrency = regime, concurrency
        if label is not None:
            result.variant = label
        if not self.args.keep:  # the feeds are big; the logs stay with the work directory
            for feed in work.glob("*.jsonl"):
                feed.unlink()
        return result

    def import_scrapy(self) -> float:
        self._runs += 1
        work = self.work / f"run-{self._runs:03d}-{IMPORT_SCRAPY}"
        work.mkdir()
        command = variants.import_scrapy(work)
        code, _, wall = run_process(
            command.argv, env=command.env, cwd=command.cwd, log_path=work / "run.log", timeout_s=60
        )
        if code != 0:
            raise RunFailed(f'python -c "import scrapy" exited with {code}; see {work}')
        return wall


def rotated(items: list[Any], round_no: int) -> list[Any]:
    shift = (round_no - 1) % len(items) if items else 0
    return items[shift:] + items[:shift]


def run_regime(bench: Bench, regime: Regime, available: set[str]) -> list[RunResult]:
    """Every round of ``regime``: its contenders in rotating order, (c) at MongoDB's N kept
    right before (c)+MongoDB."""
    groups = [[v] for v in regime.variants if v not in ("cs", "cm") and v in available]
    paired = [v for v in regime.variants if v in ("cs", "cm") and v in available]
    if paired:
        groups.append(paired)
    results = []
    for round_no in range(1, regime.rounds + 1):
        for variant in [v for group in rotated(groups, round_no) for v in group]:
            r = bench.run(
                variant,
                round_no,
                regime.notes_of(variant),
                latency_ms=regime.latency_ms,
                concurrency=regime.concurrency,
                regime=regime.key,
            )
            results.append(r)
            log(
                f"{regime.key} round {round_no} {variant:>2}: {r.notes_per_s:7.1f} notes/s, "
                f"CPU {r.cpu_per_1k:5.2f} s/1k, RSS {r.peak_rss_bytes / 1e6:4.0f} MB, "
                f"in flight {r.sim_peak_concurrency}, wall {r.process_wall_s:.1f}s, "
                f"simulator {r.sim_cpu_s / r.sim_calls * 1e6:.0f} µs/call"
            )
    return results


def run_startup(
    bench: Bench, plan: Plan, available: set[str]
) -> tuple[list[RunResult], list[float]]:
    """1-note runs at 0 ms latency of each contender, beside `python -c "import scrapy"`."""
    used = {v for regime in plan.regimes for v in regime.variants}
    order = [IMPORT_SCRAPY, *(v for v in STARTUP_VARIANTS if v in used and v in available)]
    runs: list[RunResult] = []
    walls: list[float] = []
    for round_no in range(1, plan.startup_runs + 1):
        for variant in rotated(order, round_no):
            if variant == IMPORT_SCRAPY:
                walls.append(bench.import_scrapy())
                continue
            runs.append(
                bench.run(variant, round_no, 1, latency_ms=0, concurrency=64, regime=report.STARTUP)
            )
    if runs or walls:
        s = report.Startup.from_runs(runs, walls)
        floor = f"import scrapy {s.import_scrapy_wall_s:.2f}s; " if walls else ""
        log(
            "start-up (1 note, medians): "
            + floor
            + ", ".join(f"{k} {s.wall_s[k]:.2f}s wall / {s.cpu_s[k]:.2f}s CPU" for k in s.wall_s)
        )
    return runs, walls


def warm_up(bench: Bench, plan: Plan) -> None:
    """The simulator's note cache for every ID of the run, the page cache and ``.pyc`` files of
    the contenders. Not reported."""
    most = max((r.notes for r in plan.regimes), default=0)
    if most:
        few = min(most, 1000)
        log(f"warm-up: the simulator's notes for {most:,} IDs, then (c) over {few:,}")
        bench.run("r", -1, most, latency_ms=0, concurrency=64, regime="warm-up")
        bench.run("c", -1, few, latency_ms=0, concurrency=64, regime="warm-up")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan: Plan = args.plan
    raw_argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "bench.run", *raw_argv])
    facts = report.machine_facts()
    raise_open_files_limit()
    work = Path(tempfile.mkdtemp(prefix="pgy-bench-"))
    log(f"work directory {work}; {facts['cpu']}, {facts['cores']} cores")
    log(f"load average {facts['loadavg_start']}")
    started = time.monotonic()
    bench = Bench(args, work)
    results: list[RunResult] = []
    startup_runs: list[RunResult] = []
    import_walls: list[float] = []
    memory: list[memory_run.MemoryResult] = []
    dedup: redisq.DedupMemory | None = None
    mongo_problem: str | None = None
    redis_problem: str | None = None
    failure: str | None = None
    available = {"r", "a", "b", "f", "c", "cs", "cm", *variants.QUEUE_VARIANTS}
    try:
        log(f"simulator at {bench.sim.url}")
        if any("cm" in r.variants for r in plan.regimes):
            mongo_problem = bench.start_mongo()
            if mongo_problem is not None:
                log(f"no MongoDB for (c)+MongoDB, that figure is skipped: {mongo_problem}")
                available -= {"cm", "cs"}
            else:
                assert bench.mongo is not None
                log(f"MongoDB: {bench.mongo.kind} at {bench.mongo.uri}")
        else:
            available -= {"cm", "cs"}
        queued = {"q1", "q2", "q3"}
        if plan.queue_memory_seeds or any(queued & set(r.variants) for r in plan.regimes):
            redis_problem = bench.start_redis()
            if redis_problem is not None:
                log(f"no Redis, the runs across processes are skipped: {redis_problem}")
                available -= queued
            else:
                assert bench.redis is not None
                log(f"Redis {bench.redis.version} at {bench.redis.url}")
        if args.warmup:
            warm_up(bench, plan)
        startup_runs, import_walls = run_startup(bench, plan, available)
        for regime in plan.regimes:
            log(f"regime {regime.key}: {regime.title}, {regime.notes:,} notes")
            results += run_regime(bench, regime, available)
        memory = run_memory(plan, work)
        if plan.queue_memory_seeds and bench.redis is not None:
            log(f"Redis dedup: the reader pushes {plan.queue_memory_seeds:,} distinct seeds")
            dedup = redisq.dedup_memory(bench.redis, plan.queue_memory_seeds)
            log(
                f"Redis dedup ({dedup.seeds:,}): {dedup.bytes_per_seed:.1f} bytes/seed "
                f"(MEMORY USAGE), used_memory +{dedup.used_per_seed:.1f} bytes/seed, "
                f"{dedup.wall_s:.1f}s {dedup.problem or ''}"
            )
    except RunFailed as exc:
        failure = str(exc)
    finally:
        bench.close()
    facts["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    facts["bench_minutes"] = round((time.monotonic() - started) / 60, 1)
    startup = report.Startup.from_runs(startup_runs, import_walls)
    summaries = report.summarise(results, startup)
    found = report.targets(summaries, startup, memory, plan, dedup)
    mongo_kind = bench.mongo.kind if bench.mongo is not None else None
    redis_version = bench.redis.version if bench.redis is not None else None
    text = report.markdown(
        facts, command, plan, summaries, startup, found, memory, mongo_kind, dedup, redis_version
    )
    print(text)
    if args.c_setting:
        print("\n(c) ran with extra settings: " + " ".join(f"-s {s}" for s in args.c_setting))
    if mongo_problem:
        print(f"\n(c)+MongoDB not measured: {mongo_problem}")
    if redis_problem:
        print(f"\nThe runs across processes not measured: {redis_problem}")
    log(f"done in {facts['bench_minutes']} min")
    if args.json is not None:
        payload = {
            "machine": facts,
            "command": command,
            "plan": plan_json(plan),
            "startup": startup.__dict__,
            "summary": [v.as_json() for v in summaries.values()],
            "paired_ratios": paired_ratios(results),
            "targets": [t.__dict__ | {"verdict": t.verdict} for t in found],
            "memory": [m.as_json() for m in memory],
            "redis_dedup": dedup.as_json() if dedup is not None else None,
            "runs": [r.as_json() for r in results + startup_runs],
            "import_scrapy_walls_s": import_walls,
            "failure": failure,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if args.keep or failure is not None:
        log(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if failure is not None:
        print(f"\nBENCHMARK RUN FAILED: {failure}", file=sys.stderr)
        return 1
    if dedup is not None and not dedup.ok:
        print(f"\nREDIS DEDUP RUN FAILED: {dedup.problem}", file=sys.stderr)
        return 1
    bad_memory = [m for m in memory if not m.ok]
    if bad_memory:
        for m in bad_memory:
            print(f"\nMEMORY RUN ({m.mode}, {m.seeds:,}) FAILED: {m.problem}", file=sys.stderr)
        return 1
    return 0


def plan_json(plan: Plan) -> dict[str, Any]:
    data = dict(plan.__dict__)
    data["regimes"] = [
        dict(r.__dict__) | {"notes_by_variant": dict(r.notes_by_variant)} for r in plan.regimes
    ]
    return data


def run_memory(plan: Plan, work: Path) -> list[memory_run.MemoryResult]:
    out = []
    sizes = sorted({*plan.seedpath_seeds, plan.crawl_memory_seeds} - {0})
    for total in sizes:
        log(f"memory run: writing {total:,} seeds")
        seeds, expected = memory_run.seed_file(work, total)
        log(f"memory run: {expected}")
        if total in plan.seedpath_seeds:
            m = memory_run.seedpath_run(seeds, expected, total, work)
            log(
                f"memory (seed path, {total:,}): {m.peak_rss_bytes / 1e6:.0f} MB, "
                f"{m.wall_s:.1f}s {m.problem or ''}"
            )
            out.append(m)
        if total == plan.crawl_memory_seeds:
            m = memory_run.crawl_run(
                seeds,
                expected,
                total,
                work,
                plan.crawl_memory_concurrency,
                plan.crawl_memory_latency_ms,
                plan.crawl_memory_time_limit_s,
            )
            log(
                f"memory (crawl, {total:,}): {m.peak_rss_bytes / 1e6:.0f} MB, "
                f"{m.seeds_read:,} seeds read, {m.wall_s:.1f}s {m.problem or ''}"
            )
            out.append(m)
        seeds.unlink()  # 10,000,000 lines are 250 MB
    return out


def paired_ratios(results: list[RunResult]) -> dict[str, float]:
    """Per-round ratios (same regime and round, so the same background load), then their
    median."""
    rounds: dict[tuple[str, int], dict[str, RunResult]] = {}
    for r in results:
        rounds.setdefault((r.regime, r.round), {})[r.variant] = r
    pairs = {
        "notes_per_s": lambda r: r.notes_per_s,
        "cpu_per_1k": lambda r: r.cpu_per_1k,
    }
    combos = [("c", "r"), ("c", "b"), ("c", "a"), ("cm", "c"), ("cm", "cs")]
    combos += [("q1", "q0"), ("q2", "q1"), ("q3", "q1")]
    found: dict[str, list[float]] = {}
    for (regime, _), runs in rounds.items():
        for num, den in combos:
            if num not in runs or den not in runs:
                continue
            for name, value in pairs.items():
                if value(runs[den]) > 0:
                    key = f"{regime} {num}/{den} {name}"
                    found.setdefault(key, []).append(value(runs[num]) / value(runs[den]))
    return {k: statistics.median(v) for k, v in found.items()}


if __name__ == "__main__":
    sys.exit(main())
