"""The benchmark's contenders, each one command line run as its own process.

- ``r``: ``python bench/raw_client.py`` — a raw aiohttp + orjson client with C tasks on a pool
  of C connections, writing the feed: the practical limit of the machine, no Scrapy;
- ``a``: ``python bench/naive.py`` — the API sample code's ``requests.get`` loop;
- ``b``: ``scrapy runspider bench/bare_spider.py`` — a bare spider, Scrapy's default settings
  except ``CONCURRENT_REQUESTS`` = ``CONCURRENT_REQUESTS_PER_DOMAIN`` = C and ``LOG_LEVEL=INFO``,
  run from a directory without ``scrapy.cfg`` so that no project setting applies;
- ``f``: ``scrapy runspider bench/floor_spider.py`` — Scrapy's floor: the raw client's work
  inside Scrapy with every lean setting of the project and a minimal aiohttp download handler,
  none of the project's own work (what any spider on Scrapy's engine costs per call);
- ``c``: ``scrapy crawl note_detail`` with the project's settings and default pipelines,
  ``-s CONCURRENT_REQUESTS=C`` (the spider applies it to the API host itself);
- ``cs``: ``c`` over (c)+MongoDB's smaller N, when that differs, for a like-for-like ratio;
- ``cm``: ``c`` with ``MONGO_URI`` set (a fresh database per run) and ``PGY_REFRESH_HOURS=0``,
  so that every note is still fetched from the API;
- ``q1``, ``q2``, ``q3``: ``c`` as N processes of one run on one Redis (``PGY_QUEUE_URL``,
  ``PGY_RUN``): the first with the seed file (the reader), the others with no seed argument
  (workers), each with C in flight and its own feed and summary (``%(worker)s``);
- ``q0``: the same command as ``q1`` without ``PGY_QUEUE_URL`` and ``PGY_RUN``: one process,
  the same feed and summary settings, the baseline of the queue's CPU per note.

To add a contender: a builder here returning a ``Command`` (its checks included), its letter in
``LABELS`` and in ``build``, then its letter in the regimes that run it (``bench/regimes.py``)
and any target on it (``bench/report.py``). A contender of several processes (workers of one
job) returns them all in ``Command.argvs``; ``bench.measure`` starts them together.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.sim import REPO_ROOT, TOKEN
from pgy_spider import settings as project_settings

BENCH_DIR = Path(__file__).resolve().parent
LABELS = {
    "r": "raw aiohttp client",
    "a": "(a) naive `requests.get` loop",
    "b": "(b) bare Scrapy spider",
    "f": "(f) Scrapy's floor (lean settings, minimal handler, no project code)",
    "c": "(c) `scrapy crawl note_detail`",
    "cs": "(c) at (c)+MongoDB's N",
    "cm": "(c) + MongoDB",
    "q0": "(c), no queue",
    "q1": "(c) on Redis, 1 worker process",
    "q2": "(c) on Redis, 2 worker processes",
    "q3": "(c) on Redis, 3 worker processes",
}
QUEUE_VARIANTS = ("q0", "q1", "q2", "q3")
# Environment variables that would change what a child does behind the benchmark's back.
_SCRUB = (
    "SCRAPY_SETTINGS_MODULE",
    "SCRAPY_PROJECT",
    "SCRAPY_PYTHON_SHELL",
    "MONGO_URI",
    "JUSTONEAPI_TOKEN",
    "PGY_TOKEN_FILE",
    "PGY_REGION",
    # The warm-up writes the contenders' .pyc files, as an installed project has them; with
    # this set every start compiles the project's modules again (~0.1 s of each start-up).
    "PYTHONDONTWRITEBYTECODE",
)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["PYTHONHASHSEED"] = "0"
    return env


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    out_path: Path
    # Checks after the run (beyond the feed's line count); returns a problem or None.
    checks: list[Callable[[], str | None]] = field(default_factory=list)
    # Every process of the run, started together; by default the one ``argv``.
    more_argvs: list[list[str]] = field(default_factory=list)
    # The notes written, when not the lines of ``out_path`` (several processes' feeds).
    count: Callable[[], int] | None = None
    # Start ``more_argvs`` first, and ``argv`` once each of them has logged this text.
    others_ready: str | None = None

    @property
    def argvs(self) -> list[list[str]]:
        return [self.argv, *self.more_argvs]


def build(
    variant: str,
    ids_file: Path,
    sim_url: str,
    work: Path,
    concurrency: int,
    *,
    c_settings: Sequence[str] = (),
    expected_notes: int | None = None,
) -> Command:
    """The command of ``variant`` (all but ``cm``, whose database the caller sets up: pass its
    settings as ``c_settings`` of ``project``)."""
    if variant == "r":
        return raw(ids_file, sim_url, work, concurrency)
    if variant == "a":
        return naive(ids_file, sim_url, work)
    if variant == "b":
        return bare(ids_file, sim_url, work, concurrency)
    if variant == "f":
        return floor(ids_file, sim_url, work, concurrency)
    if variant in ("c", "cs"):
        return project(
            ids_file,
            sim_url,
            work,
            concurrency,
            name=variant,
            extra_settings=c_settings,
            expected_notes=expected_notes,
        )
    raise ValueError(f"no command for variant {variant!r}")


def raw(ids_file: Path, sim_url: str, work: Path, concurrency: int) -> Command:
    out = work / "r.jsonl"
    argv = [sys.executable, str(BENCH_DIR / "raw_client.py"), str(ids_file), sim_url, TOKEN]
    argv += [str(out), str(concurrency)]
    env = base_env()
    env.pop("PYTHONPATH", None)  # no project code reachable
    return Command(argv, env, work, out)


def import_scrapy(work: Path) -> Command:
    """``python -c "import scrapy"``: the floor of any Scrapy command's start-up."""
    env = base_env()
    env.pop("PYTHONPATH", None)
    return Command([sys.executable, "-c", "import scrapy"], env, work, work / "none")


def naive(ids_file: Path, sim_url: str, work: Path) -> Command:
    out = work / "a.jsonl"
    argv = [sys.executable, str(BENCH_DIR / "naive.py"), str(ids_file), sim_url, TOKEN, str(out)]
    return Command(argv, base_env(), work, out)


def _runspider(
    script: str, out: Path, ids_file: Path, sim_url: str, concurrency: int, *settings: str
) -> list[str]:
    """``scrapy runspider bench/SCRIPT`` over the IDs with C in flight, writing ``out``."""
    argv = [sys.executable, "-m", "scrapy", "runspider", str(BENCH_DIR / script)]
    argv += ["-a", f"ids_file={ids_file}", "-a", f"base_url={sim_url}", "-a", f"token={TOKEN}"]
    argv += ["-s", f"CONCURRENT_REQUESTS={concurrency}"]
    argv += ["-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}"]
    for setting in settings:
        argv += ["-s", setting]
    return [*argv, "-s", "LOG_LEVEL=INFO", "-O", str(out)]


def _with_repo_on_path(env: dict[str, str]) -> dict[str, str]:
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def bare(ids_file: Path, sim_url: str, work: Path, concurrency: int) -> Command:
    out = work / "b.jsonl"
    argv = _runspider("bare_spider.py", out, ids_file, sim_url, concurrency)
    env = base_env()
    env.pop("PYTHONPATH", None)  # no project code reachable
    return Command(argv, env, work, out)  # work has no scrapy.cfg: Scrapy's defaults


def floor(ids_file: Path, sim_url: str, work: Path, concurrency: int) -> Command:
    out = work / "f.jsonl"
    loop = project_settings.ASYNCIO_EVENT_LOOP  # read before the spider's own settings
    settings = [f"ASYNCIO_EVENT_LOOP={loop}"] if loop else []
    argv = _runspider("floor_spider.py", out, ids_file, sim_url, concurrency, *settings)
    # The project's settings module and exporter, imported by the spider (no scrapy.cfg in
    # ``work``, so no project settings apply beyond the spider's own).
    return Command(argv, _with_repo_on_path(base_env()), work, out)


def project(
    ids_file: Path,
    sim_url: str,
    work: Path,
    concurrency: int,
    *,
    name: str = "c",
    extra_settings: Sequence[str] = (),
    expected_notes: int | None = None,
) -> Command:
    out = work / f"{name}.jsonl"
    summary = work / f"{name}-summary.json"
    argv = [sys.executable, "-m", "scrapy", "crawl", "note_detail", "-a", f"ids_file={ids_file}"]
    settings = [
        f"PGY_BASE_URL={sim_url}",
        f"CONCURRENT_REQUESTS={concurrency}",
        f"PGY_TOKEN={TOKEN}",
        f"PGY_FAILED_PATH={work / f'{name}-failed.jsonl'}",
        f"PGY_SUMMARY_PATH={summary}",
        f"PGY_MONGO_SPILL_PATH={work / f'{name}-spill.jsonl'}",
        *extra_settings,
    ]
    for setting in settings:
        argv += ["-s", setting]
    argv += ["-O", str(out)]
    env = _with_repo_on_path(base_env())
    env["SCRAPY_SETTINGS_MODULE"] = "pgy_spider.settings"
    command = Command(argv, env, REPO_ROOT, out)
    if expected_notes is not None:
        command.checks.append(lambda: _check_summary(summary, expected_notes))
    return command


def _check_summary(path: Path, expected: int) -> str | None:
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return f"no readable summary {path}: {exc}"
    written = summary.get("notes_written")
    if written != expected or summary.get("exit_code") != 0:
        return f"summary {path}: notes_written={written}, exit_code={summary.get('exit_code')}"
    return None


def workers_of(variant: str) -> int:
    """The processes of a queue contender: ``q2`` -> 2 (``q0``: 1, no queue)."""
    return max(int(variant[1:]), 1)


def queue(
    ids_file: Path,
    sim_url: str,
    work: Path,
    concurrency: int,
    *,
    variant: str,
    queue_url: str | None,
    run: str,
    expected_notes: int,
) -> Command:
    """``variant`` of ``q0``..``q3``: (c) as ``workers_of(variant)`` processes of run ``run`` on
    the Redis at ``queue_url`` (``q0``: one process, ``queue_url`` unused). Checks: every
    process's summary exit_code 0, and their notes_written add up to N."""
    stem = f"{work / variant}-%(worker)s" if variant != "q0" else str(work / variant)
    settings = [
        f"PGY_BASE_URL={sim_url}",
        f"CONCURRENT_REQUESTS={concurrency}",
        f"PGY_TOKEN={TOKEN}",
        f"PGY_FEED_URI={stem}-notes.jsonl",
        f"PGY_FAILED_PATH={stem}-failed.jsonl",
        f"PGY_SUMMARY_PATH={stem}-summary.json",
        f"PGY_MONGO_SPILL_PATH={stem}-spill.jsonl",
    ]
    if variant != "q0":
        assert queue_url is not None
        settings += [f"PGY_QUEUE_URL={queue_url}", f"PGY_RUN={run}"]
    base = [sys.executable, "-m", "scrapy", "crawl", "note_detail"]
    for setting in settings:
        base += ["-s", setting]
    argvs = [[*base, "-a", f"ids_file={ids_file}"]]  # the reader
    argvs += [list(base) for _ in range(workers_of(variant) - 1)]  # workers: no seeds
    env = _with_repo_on_path(base_env())
    env.pop("PGY_QUEUE_URL", None)
    env.pop("PGY_RUN", None)
    env["SCRAPY_SETTINGS_MODULE"] = "pgy_spider.settings"
    feeds = f"{variant}*-notes.jsonl"
    command = Command(argvs[0], env, REPO_ROOT, work / f"{variant}-notes.jsonl")
    command.more_argvs = argvs[1:]
    # The workers start first and wait for the run (the reader creates it): their start-up
    # stays outside the crawl window, as a single process's does.
    command.others_ready = "Waiting up to"
    command.count = lambda: sum(_lines(p) for p in work.glob(feeds))
    processes = workers_of(variant)
    command.checks.append(
        lambda: _check_summaries(
            sorted(work.glob(f"{variant}*-summary.json")), processes, expected_notes
        )
    )
    return command


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def _check_summaries(paths: list[Path], processes: int, expected: int) -> str | None:
    """One summary per process, each exit_code 0, notes_written adding up to N."""
    if len(paths) != processes:
        return f"{len(paths)} summaries for {processes} processes: {[p.name for p in paths]}"
    written = 0
    for path in paths:
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            return f"no readable summary {path}: {exc}"
        if summary.get("exit_code") != 0:
            return f"summary {path}: exit_code={summary.get('exit_code')}"
        written += int(summary.get("notes_written") or 0)
    if written != expected:
        return f"the summaries' notes_written add up to {written}, expected {expected}"
    return None
