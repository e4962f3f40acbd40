"""The benchmark: ``python -m bench.run`` (``make bench``). Not part of the test suite.

One run, one machine, the same note IDs, the project's simulator at a fixed latency and no
faults: (a) the API sample code's ``requests.get`` loop, (b) a bare Scrapy spider, (c) ``scrapy
crawl note_detail`` (and (c) with MongoDB), alternately for several rounds; then the memory run
with 1,000,000 seeds. Prints a Markdown report with the medians, the ratios and PASS/FAIL per
target of the issue; ``--json`` keeps the raw numbers. See ``bench/measure.py`` for what is
measured and how, ``bench/variants.py`` for the exact command lines.

Exit status: 0 when every run did what it had to (whatever the targets say), 1 when a run failed
(wrong exit status, note count or call count: the report says which).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import memory as memory_run
from bench import report, variants
from bench.ids import write_ids
from bench.measure import RunFailed, RunResult, count_lines, run_measured
from bench.mongo import BenchMongo
from bench.sim import Simulator

ALL_VARIANTS = ("a", "b", "c", "cm")
SMALL_C = "cs"  # (c) at --mongo-notes, added by itself when that differs from --notes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--notes", type=int, default=3000, help="notes per (b)/(c) run [3000]")
    p.add_argument("--naive-notes", type=int, default=150, help="notes per (a) run [150]")
    p.add_argument("--rounds", type=int, default=5, help="rounds of every variant [5]")
    p.add_argument("--latency-ms", type=float, default=100.0, help="simulator latency [100]")
    p.add_argument("--concurrency", type=int, default=64, help="CONCURRENT_REQUESTS of b, c [64]")
    p.add_argument(
        "--mongo",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run (c) with MONGO_URI (MONGO_URI from the environment, else mongod, else "
        "FerretDB, as the tests do) [on]",
    )
    p.add_argument(
        "--mongo-notes",
        type=int,
        default=1000,
        help="notes per (c)+MongoDB run [1000]. FerretDB's SQLite backend scans the collection "
        "on every upsert (O(N^2) per run), so 3000 notes take minutes; when this differs from "
        "--notes, (c) also runs at this N each round and (c)+MongoDB is compared with that",
    )
    p.add_argument(
        "--memory-seeds",
        type=int,
        default=1_000_000,
        help="seeds of the memory run, 0 = no memory run [1000000]",
    )
    p.add_argument(
        "--memory-mode",
        choices=("both", "crawl", "seedpath"),
        default="both",
        help="the real crawl, the seed path alone, or both [both]",
    )
    p.add_argument(
        "--memory-latency-ms",
        type=float,
        default=None,
        help="simulator latency of the memory crawl [same as --latency-ms]",
    )
    p.add_argument(
        "--memory-time-limit",
        type=float,
        default=180.0,
        help="stop the memory crawl after this many seconds if it has not read every seed [180]",
    )
    p.add_argument(
        "--variants",
        default=",".join(ALL_VARIANTS),
        help="which of a,b,c,cm to run [a,b,c,cm]",
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
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variant_list) - set(ALL_VARIANTS)
    if unknown:
        p.error(f"--variants: unknown {sorted(unknown)}")
    if not args.mongo and "cm" in args.variant_list:
        args.variant_list.remove("cm")
    args.mongo_notes = min(args.mongo_notes, args.notes)
    if "cm" in args.variant_list and args.mongo_notes != args.notes:
        # (c) at (c)+MongoDB's N, right before it in every round: the fair comparison.
        args.variant_list.insert(args.variant_list.index("cm"), "cs")
    if args.notes < 2 or args.naive_notes < 1 or args.rounds < 1 or args.concurrency < 1:
        p.error("--notes >= 2, --naive-notes >= 1, --rounds >= 1, --concurrency >= 1")
    return args


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        env = variants.base_env()
        env["PYTHONPATH"] = str(variants.REPO_ROOT)
        self.sim = Simulator(args.latency_ms, work / "simulator.log", env)
        self.mongo: BenchMongo | None = None
        self.ids = work / "ids.txt"
        write_ids(self.ids, args.notes)
        self.naive_ids = work / "ids-naive.txt"
        write_ids(self.naive_ids, min(args.naive_notes, args.notes))
        self.one_id = work / "ids-1.txt"
        write_ids(self.one_id, 1)
        self.mongo_ids = work / "ids-mongo.txt"
        write_ids(self.mongo_ids, args.mongo_notes)
        self._runs = 0

    def close(self) -> None:
        self.sim.stop()
        if self.mongo is not None:
            self.mongo.close()

    def start_mongo(self) -> str | None:
        try:
            self.mongo = BenchMongo(self.work / "mongo")
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def run(
        self,
        variant: str,
        round_no: int,
        ids: Path,
        notes: int,
        *,
        settings: list[str] | None = None,
        label: str | None = None,
    ) -> RunResult:
        """One measured run of ``variant``; ``settings`` replaces ``--c-setting`` for (c)
        and the result is filed under ``label`` (default: the variant)."""
        self._runs += 1
        work = self.work / f"run-{self._runs:03d}-{variant}"
        work.mkdir()
        args = self.args
        database: str | None = None
        if variant == "a":
            command = variants.naive(ids, self.sim.url, work)
        elif variant == "b":
            command = variants.bare(ids, self.sim.url, work, args.concurrency)
        else:
            extra = list(args.c_setting if settings is None else settings)
            if variant == "cm":
                assert self.mongo is not None
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
                args.concurrency,
                name=variant,
                extra_settings=extra,
                expected_notes=notes,
            )
        per_note = {"a": 1.0 + args.latency_ms / 1000, "cm": 0.5}.get(variant, 0.05)
        timeout = 120 + notes * per_note
        try:
            result = run_measured(
                variant,
                round_no,
                command.argv,
                env=command.env,
                cwd=command.cwd,
                log_path=work / "run.log",
                sim=self.sim,
                expected_calls=notes,
                timeout_s=timeout,
                count_output=count_lines(command.out_path),
            )
            for check in command.checks:
                if (problem := check()) is not None:
                    raise RunFailed(f"{variant}: {problem}")
            if database is not None:
                assert self.mongo is not None
                stored = self.mongo.count_notes(database)
                if stored != notes:
                    raise RunFailed(f"{variant}: {stored} notes in MongoDB, expected {notes}")
        finally:
            if database is not None and self.mongo is not None:
                self.mongo.drop(database)
        result.extra["argv"] = shlex.join(command.argv)
        if label is not None:
            result.variant = label
        if not args.keep:  # the feeds are big; the logs stay with the work directory
            for feed in work.glob("*.jsonl"):
                feed.unlink()
        return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raw_argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "bench.run", *raw_argv])
    facts = report.machine_facts()
    work = Path(tempfile.mkdtemp(prefix="pgy-bench-"))
    log(f"work directory {work}; {facts['cpu']}, {facts['cores']} cores")
    log(f"load average {facts['loadavg_start']}")
    bench = Bench(args, work)
    results: list[RunResult] = []
    startup_cpu: dict[str, float] = {}
    memory: list[memory_run.MemoryResult] = []
    mongo_problem: str | None = None
    failure: str | None = None
    try:
        log(f"simulator at {bench.sim.url}, latency {args.latency_ms:g} ms")
        order = list(args.variant_list)
        if "cm" in order:
            mongo_problem = bench.start_mongo()
            if mongo_problem is not None:
                log(f"no MongoDB for (c)+MongoDB, that figure is skipped: {mongo_problem}")
                order.remove("cm")
            else:
                assert bench.mongo is not None
                log(f"MongoDB: {bench.mongo.kind} at {bench.mongo.uri}")
        if args.warmup:
            # Page cache, .pyc files and the simulator's note cache: every variant then starts
            # warm. Not reported.
            for variant in [v for v in order if v in ("b", "c")][:1]:
                log(f"warm-up: {variant} over all {args.notes} IDs")
                bench.run(variant, -1, bench.ids, args.notes)
        for _ in range(2):  # start-up cost: a 1-note run of each Scrapy command, the lower one
            for variant in [v for v in order if v in ("b", "c", "cm")]:
                r = bench.run(variant, 0, bench.one_id, 1)
                startup_cpu[variant] = min(startup_cpu.get(variant, r.cpu_s), r.cpu_s)
        log("start-up CPU (1 note): " + ", ".join(f"{k} {v:.2f}s" for k, v in startup_cpu.items()))
        # "cs" always runs right before "cm": rotate the others, keep that pair together.
        groups = [[v] for v in order if v not in (SMALL_C, "cm")]
        if "cm" in order:
            groups.append([v for v in order if v in (SMALL_C, "cm")])
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % len(groups)
            for variant in [v for g in groups[shift:] + groups[:shift] for v in g]:
                ids, notes = {
                    "a": (bench.naive_ids, min(args.naive_notes, args.notes)),
                    SMALL_C: (bench.mongo_ids, args.mongo_notes),
                    "cm": (bench.mongo_ids, args.mongo_notes),
                }.get(variant, (bench.ids, args.notes))
                r = bench.run(variant, round_no, ids, notes)
                results.append(r)
                log(
                    f"round {round_no} {variant:>2}: {r.notes_per_s:7.1f} notes/s, "
                    f"CPU {r.cpu_per_1k:5.2f} s/1k, RSS {r.peak_rss_bytes / 1e6:4.0f} MB, "
                    f"in flight {r.sim_peak_concurrency}, wall {r.process_wall_s:.1f}s"
                )
        if args.memory_seeds > 0:
            memory = run_memory(args, work)
    except RunFailed as exc:
        failure = str(exc)
    finally:
        bench.close()

    summaries = report.summarise(results, startup_cpu)
    found = report.targets(summaries, memory)
    mongo_kind = bench.mongo.kind if bench.mongo is not None else None
    config = {
        "notes": args.notes,
        "naive_notes": min(args.naive_notes, args.notes),
        "rounds": args.rounds,
        "mongo_notes": args.mongo_notes,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "c_settings": args.c_setting,
        "memory_seeds": args.memory_seeds,
        "memory_latency_ms": memory_latency(args),
        "memory_time_limit_s": args.memory_time_limit,
    }
    text = report.markdown(facts, command, config, summaries, found, memory, mongo_kind)
    print(text)
    if args.c_setting:
        print("\n(c) ran with extra settings: " + " ".join(f"-s {s}" for s in args.c_setting))
    if mongo_problem:
        print(f"\n(c)+MongoDB not measured: {mongo_problem}")
    if args.json is not None:
        payload = {
            "machine": facts,
            "command": command,
            "config": config,
            "startup_cpu_s": startup_cpu,
            "summary": {k: v.as_json() for k, v in summaries.items()},
            "paired_ratios": paired_ratios(results),
            "targets": [t.__dict__ | {"verdict": t.verdict} for t in found],
            "memory": [m.as_json() for m in memory],
            "runs": [r.as_json() for r in results],
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
    bad_memory = [m for m in memory if not m.ok]
    if bad_memory:
        for m in bad_memory:
            print(f"\nMEMORY RUN ({m.mode}) FAILED: {m.problem}", file=sys.stderr)
        return 1
    return 0


def run_memory(args: argparse.Namespace, work: Path) -> list[memory_run.MemoryResult]:
    total = args.memory_seeds
    log(f"memory run: writing {total:,} seeds")
    seeds, expected = memory_run.seed_file(work, total)
    log(f"memory run: {expected}")
    out = []
    if args.memory_mode in ("both", "seedpath"):
        m = memory_run.seedpath_run(seeds, expected, total, work)
        log(
            f"memory (seed path): {m.peak_rss_bytes / 1e6:.0f} MB, "
            f"{m.wall_s:.1f}s {m.problem or ''}"
        )
        out.append(m)
    if args.memory_mode in ("both", "crawl"):
        m = memory_run.crawl_run(
            seeds,
            expected,
            total,
            work,
            args.concurrency,
            memory_latency(args),
            args.memory_time_limit,
        )
        log(
            f"memory (crawl): {m.peak_rss_bytes / 1e6:.0f} MB, {m.seeds_read:,} seeds read, "
            f"{m.wall_s:.1f}s {m.problem or ''}"
        )
        out.append(m)
    return out


def memory_latency(args: argparse.Namespace) -> float:
    return float(args.latency_ms if args.memory_latency_ms is None else args.memory_latency_ms)


def paired_ratios(results: list[RunResult]) -> dict[str, float]:
    """Per-round ratios (same round, so the same background load), then their median."""
    rounds: dict[int, dict[str, RunResult]] = {}
    for r in results:
        rounds.setdefault(r.round, {})[r.variant] = r
    pairs = {
        "c/b notes_per_s": ("c", "b", lambda r: r.notes_per_s),
        "c/b cpu_per_1k": ("c", "b", lambda r: r.cpu_per_1k),
        "c/a notes_per_s": ("c", "a", lambda r: r.notes_per_s),
        "cm/c notes_per_s": ("cm", "c", lambda r: r.notes_per_s),
        "cm/cs notes_per_s": ("cm", SMALL_C, lambda r: r.notes_per_s),
    }
    out: dict[str, Any] = {}
    for name, (num, den, field) in pairs.items():
        values = [
            field(v[num]) / field(v[den])
            for v in rounds.values()
            if num in v and den in v and field(v[den]) > 0
        ]
        if values:
            out[name] = statistics.median(values)
    return out


if __name__ == "__main__":
    sys.exit(main())
