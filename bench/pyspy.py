"""Profile (c) with py-spy and say where its CPU per note goes.

``python -m bench.pyspy [--notes 3000] [--concurrency 64] [--latency-ms 100] [-s NAME=VALUE ...]``
starts the simulator, runs ``scrapy crawl note_detail`` exactly as ``bench.run`` does, under
``py-spy record --format raw`` (py-spy is pinned in ``requirements-dev.txt``), and prints
two tables, in microseconds of CPU per note (the sample shares scaled to the process's
measured CPU time):

- *by owner*: each sample (``--gil``: only stacks holding the GIL, i.e. Python on the CPU) goes
  to the innermost frame that belongs to a known part (our modules, Scrapy's downloader
  middlewares, the download handler, the scheduler, feed export, logging, stats, signals,
  Twisted, pydantic, ...; standard-library frames count for their caller, except under the
  event loop itself), so the parts add up to the whole;
- *inclusive*: the share of samples with a given function anywhere on the stack (our entry
  points and Scrapy's chains), so "everything under PgyApiMiddleware.process_response".

The collapsed stacks are kept (``--out``) for flamegraph tools.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import variants
from bench.ids import write_ids
from bench.sim import Simulator

# (label, path fragment) — the first fragment found in a frame's file names its owner. Order
# matters: the more specific fragments come first.
OWNERS: list[tuple[str, str]] = [
    ("import / start-up", "<frozen importlib"),
    ("ours: spider (note_detail.py)", "pgy_spider/spiders/"),
    ("ours: API middleware (middlewares/api.py)", "pgy_spider/middlewares/"),
    ("ours: token handler (handler.py)", "pgy_spider/handler.py"),
    ("ours: notes normalisation (notes.py)", "pgy_spider/notes.py"),
    ("ours: pipelines", "pgy_spider/pipelines/"),
    ("ours: exporters (orjson)", "pgy_spider/exporters.py"),
    ("ours: api.py (envelope, URLs)", "pgy_spider/api.py"),
    ("ours: seeds/noteid", "pgy_spider/seeds.py"),
    ("ours: seeds/noteid", "pgy_spider/noteid.py"),
    ("ours: HTTP client (apiclient.py)", "pgy_spider/apiclient.py"),
    ("stats collector", "pgy_spider/stats.py"),
    ("ours: ledger/tokens/logmask/other", "pgy_spider/"),
    ("pydantic", "pydantic"),
    ("scrapy: download handler HTTP/1.1", "scrapy/core/downloader/handlers/http11"),
    ("scrapy: download handler (other)", "scrapy/core/downloader/handlers/"),
    ("scrapy: downloader (slots, middleware chain)", "scrapy/core/downloader/"),
    ("scrapy: downloader middlewares", "scrapy/downloadermiddlewares/"),
    ("scrapy: spider middlewares", "scrapy/spidermiddlewares/"),
    ("scrapy: spider middleware chain", "scrapy/core/spidermw"),
    ("scrapy: scheduler + queues", "scrapy/core/scheduler"),
    ("scrapy: scheduler + queues", "scrapy/pqueues"),
    ("scrapy: scheduler + queues", "queuelib/"),
    ("scrapy: scraper (callbacks, items)", "scrapy/core/scraper"),
    ("scrapy: engine", "scrapy/core/engine"),
    ("scrapy: feed export", "scrapy/extensions/feedexport"),
    ("scrapy: extensions (other)", "scrapy/extensions/"),
    ("stats collector", "scrapy/statscollectors"),
    ("scrapy: signals", "scrapy/signalmanager"),
    ("scrapy: signals", "scrapy/utils/signal"),
    ("scrapy: signals", "pydispatch/"),
    ("scrapy: Request/Response/Headers", "scrapy/http/"),
    ("scrapy: url/fingerprint utils", "scrapy/utils/url"),
    ("scrapy: url/fingerprint utils", "scrapy/utils/request"),
    ("scrapy: url/fingerprint utils", "w3lib/"),
    ("scrapy: deferred/coroutine glue", "scrapy/utils/defer"),
    ("scrapy: deferred/coroutine glue", "scrapy/utils/asyncio"),
    ("scrapy: other", "scrapy/"),
    ("logging", "logging/"),
    ("twisted: web client / HTTP", "twisted/web/"),
    ("twisted: reactor, Deferreds, protocols", "twisted/"),
    ("aiohttp / yarl / multidict", "aiohttp/"),
    ("aiohttp / yarl / multidict", "yarl/"),
    ("aiohttp / yarl / multidict", "multidict/"),
    ("asyncio event loop", "asyncio/"),
    ("json (stdlib)", "json/"),
    ("urllib / http (stdlib)", "urllib/"),
    ("urllib / http (stdlib)", "http/"),
    ("other stdlib", "/lib/python3"),
]

# Owners that only say "the standard library did it": a sample whose innermost frames are
# these goes to the innermost caller that is not (Scrapy's code that called asyncio, ...),
# unless the event loop itself is the caller.
WEAK = {
    "asyncio event loop",
    "json (stdlib)",
    "urllib / http (stdlib)",
    "other stdlib",
}
LOOP_FRAME = "BaseEventLoop.run_forever"

# Functions reported inclusively (anywhere on the stack): (label, function, file fragment).
INCLUSIVE: list[tuple[str, str, str]] = [
    (
        "Scrapy's _parallel_asyncio (1 + CONCURRENT_ITEMS tasks per response)",
        "_parallel_asyncio",
        "scrapy/utils/asyncio",
    ),
    (
        "TokenDownloadHandler.download_request (with the inner handler)",
        "download_request",
        "pgy_spider/handler",
    ),
    ("HTTP11DownloadHandler.download_request", "download_request", "handlers/http11"),
    (
        "downloader middleware chain (DownloaderMiddlewareManager.download)",
        "download",
        "scrapy/core/downloader/middleware",
    ),
    ("PgyApiMiddleware.process_request", "process_request", "pgy_spider/middlewares"),
    (
        "PgyApiMiddleware.process_response (with parse_envelope)",
        "process_response",
        "pgy_spider/middlewares",
    ),
    ("NoteDetailSpider.start (seeds -> requests)", "start", "pgy_spider/spiders"),
    ("NoteDetailSpider.parse_note", "parse_note", "pgy_spider/spiders"),
    ("item pipelines (ItemPipelineManager)", "process_item", "scrapy/pipelines"),
    ("NoteDedupPipeline.process_item", "process_item", "pgy_spider/pipelines/notes"),
    ("feed export (FeedExporter.item_scraped)", "item_scraped", "scrapy/extensions/feedexport"),
    ("spider middleware chain (scrape_response)", "scrape_response", "scrapy/core/spidermw"),
    ("scheduler enqueue_request", "enqueue_request", "scrapy/core/scheduler"),
    ("scheduler next_request", "next_request", "scrapy/core/scheduler"),
    ("signals (send_catch_log*)", "send_catch_log", "scrapy/"),
    ("logging (Logger._log)", "_log", "logging/"),
    ("stats (inc_value)", "inc_value", "scrapy/statscollectors"),
    ("stats (inc_value)", "inc_value", "pgy_spider/stats"),
    ("Request/Response .replace", "replace", "scrapy/http/"),
]


def _split(frame: str) -> tuple[str, str]:
    name, _, rest = frame.partition(" (")
    return name, rest


def owner_of(frames: list[str]) -> str:
    weak: str | None = None
    for frame in reversed(frames):  # leaf first
        if frame.startswith(LOOP_FRAME):
            break
        for label, fragment in OWNERS:
            if fragment in frame:
                if label not in WEAK:
                    return label
                weak = weak or label
                break
    return weak or "unattributed"


def analyse(raw: Path) -> tuple[Counter[str], Counter[str], int]:
    owners: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        owners[owner_of(frames)] += count
        split = [_split(frame) for frame in frames]
        for label, func, fragment in INCLUSIVE:
            if any(name.endswith(func) and fragment in where for name, where in split):
                inclusive[label] += count
    return owners, inclusive, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pyspy", description=__doc__)
    p.add_argument("--notes", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second [250]")
    p.add_argument("-s", "--setting", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--out", type=Path, default=None, help="keep the collapsed stacks here")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        print("no py-spy: .venv/bin/pip install -r requirements-dev.txt", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="pgy-bench-pyspy-"))
    env = variants.base_env()
    env["PYTHONPATH"] = str(variants.REPO_ROOT)
    sim = Simulator(args.latency_ms, work / "simulator.log", env)
    try:
        ids = work / "ids.txt"
        write_ids(ids, args.notes)
        command = variants.project(
            ids, sim.url, work, args.concurrency, extra_settings=args.setting
        )
        raw = work / "stacks.txt"
        argv_spy = [pyspy, "record", "--format", "raw", "--nolineno", "--full-filenames", "--gil"]
        argv_spy += ["--rate", str(args.rate), "-o", str(raw), "--", *command.argv]
        with (work / "crawl.log").open("wb") as log:
            proc = subprocess.Popen(
                argv_spy, cwd=command.cwd, env=command.env, stdout=log, stderr=log
            )
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not raw.exists():
            print(f"the profiled crawl failed ({proc.returncode}); see {work}", file=sys.stderr)
            return 1
        # py-spy's own CPU is in this rusage too; the crawl's CPU is in its child, so take both
        # and scale the shares by the total (py-spy's sampling cost is small at 250 Hz).
        cpu = usage.ru_utime + usage.ru_stime
        owners, inclusive, total = analyse(raw)
        print(report(owners, inclusive, total, cpu, args))
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, args.out / "stacks.txt")
            print(f"\ncollapsed stacks: {args.out / 'stacks.txt'}")
    finally:
        sim.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    owners: Counter[str],
    inclusive: Counter[str],
    total: int,
    cpu_s: float,
    args: argparse.Namespace,
) -> str:
    per_sample_us = cpu_s / max(total, 1) / args.notes * 1e6
    lines = [
        f"(c) under py-spy: {args.notes} notes, {args.latency_ms:g} ms latency, "
        f"CONCURRENT_REQUESTS={args.concurrency}"
        + (f", {' '.join('-s ' + s for s in args.setting)}" if args.setting else "")
        + f"; {total} samples, CPU {cpu_s:.1f} s (crawl + py-spy) = "
        f"{cpu_s / args.notes * 1e6:.0f} µs per note",
        "",
        "| by owner (innermost known frame) | share | µs / note |",
        "|---|---:|---:|",
    ]
    for label, count in owners.most_common(args.top):
        lines.append(f"| {label} | {count / total:.1%} | {count * per_sample_us:.0f} |")
    lines += ["", "| inclusive (anywhere on the stack) | share | µs / note |", "|---|---:|---:|"]
    for label, count in sorted(inclusive.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {count / total:.1%} | {count * per_sample_us:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
