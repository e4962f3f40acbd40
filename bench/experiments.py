"""What settings alone would gain: (c) with ``-s`` overrides against (c) as shipped.

``python -m bench.experiments [--notes 3000] [--rounds 3] [--only NAME ...]`` runs the plain
(c) and every experiment below alternately (a rotating order each round) against the simulator
at 100 ms latency, ``CONCURRENT_REQUESTS=64``, and prints per experiment the median notes/s and
CPU s per 1,000 notes and the median of the per-round changes against the baseline of the same
round. No product file is touched: each experiment is a list of ``-s NAME=VALUE``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench import run as bench_run
from bench.measure import RunFailed, RunResult

API_MW = '"pgy_spider.middlewares.api.PgyApiMiddleware": 580'
DMW = "scrapy.downloadermiddlewares"
SMW = "scrapy.spidermiddlewares"

# Downloader middlewares that do nothing useful for one GET per note to one JSON API: no
# offsite filtering (requests are ours), no HTTP auth, no default Accept headers, retries and
# redirects are off per request (dont_retry/dont_redirect) and done by PgyApiMiddleware, no
# <meta refresh> in JSON, DownloaderStats measures request sizes with request_httprepr().
# Kept: DownloadTimeout, UserAgent, HttpCompression, HttpProxy (a company proxy), HttpCache.
_DL_OFF = [
    "offsite.OffsiteMiddleware",
    "httpauth.HttpAuthMiddleware",
    "defaultheaders.DefaultHeadersMiddleware",
    "retry.RetryMiddleware",
    "redirect.MetaRefreshMiddleware",
    "redirect.RedirectMiddleware",
    "stats.DownloaderStats",
]
TRIM_DL = "DOWNLOADER_MIDDLEWARES={%s, %s}" % (  # noqa: UP031 - JSON braces
    API_MW,
    ", ".join(f'"{DMW}.{name}": null' for name in _DL_OFF),
)
# Spider middlewares for requests that never link anywhere: no Referer, URL length, depth
# or meta-copy checks; HttpError is moot with handle_httpstatus_all. Kept: StartSpiderMiddleware.
_SP_OFF = [
    "httperror.HttpErrorMiddleware",
    "referer.RefererMiddleware",
    "urllength.UrlLengthMiddleware",
    "depth.DepthMiddleware",
    "metacopy.MetaCopyDetectionMiddleware",
]
TRIM_SP = "SPIDER_MIDDLEWARES={%s}" % ", ".join(  # noqa: UP031
    f'"{SMW}.{name}": null' for name in _SP_OFF
)
AIOHTTP = (
    "PGY_INNER_DOWNLOAD_HANDLER=scrapy.core.downloader.handlers._aiohttp.AiohttpDownloadHandler"
)

EXPERIMENTS: dict[str, list[str]] = {
    "baseline": [],
    # Scrapy 2.19 runs each callback's output through _parallel_asyncio, which creates
    # 1 + CONCURRENT_ITEMS (default 100) asyncio tasks per response; parse_note yields one item.
    "concurrent-items-1": ["CONCURRENT_ITEMS=1"],
    "log-warning": ["LOG_LEVEL=WARNING"],
    "aiohttp-handler": [AIOHTTP],
    "no-downloader-stats": ["DOWNLOADER_STATS=False"],
    "trim-downloader-mw": [TRIM_DL],
    "trim-spider-mw": [TRIM_SP],
    "items-1+trim-all": ["CONCURRENT_ITEMS=1", TRIM_DL, TRIM_SP, "LOG_LEVEL=WARNING"],
    # The warning check re-parses parse_note's source (inspect.getsource + ast.parse) for every
    # response: its cache is keyed weakly on the bound method, which dies with each request.
    "no-generator-return-check": ["WARN_ON_GENERATOR_RETURN_VALUE=False"],
    "best": [
        "CONCURRENT_ITEMS=1",
        "WARN_ON_GENERATOR_RETURN_VALUE=False",
        TRIM_DL,
        TRIM_SP,
        "LOG_LEVEL=WARNING",
        AIOHTTP,
    ],
    "items-1+trim-all+aiohttp": [
        "CONCURRENT_ITEMS=1",
        TRIM_DL,
        TRIM_SP,
        "LOG_LEVEL=WARNING",
        AIOHTTP,
    ],
    # Diagnostic, not a suggestion: what the item pipelines (validation, dedup) cost.
    "diag-no-pipelines": ["ITEM_PIPELINES={}"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__)
    p.add_argument("--notes", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--only", nargs="*", default=None, help=f"from {sorted(EXPERIMENTS)}")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    names = ["baseline", *[n for n in (args.only or EXPERIMENTS) if n != "baseline"]]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        p.error(f"unknown experiments {unknown}")
    run_args = bench_run.parse_args(
        ["--regimes", "none", "--no-mongo", "--memory-seeds", "0", "--memory-crawl-seeds", "0"]
    )
    bench_run.raise_open_files_limit()
    work = Path(tempfile.mkdtemp(prefix="pgy-bench-exp-"))
    bench = bench_run.Bench(run_args, work)
    results: list[RunResult] = []
    where = {"latency_ms": args.latency_ms, "concurrency": args.concurrency}
    try:
        bench_run.log(f"warm-up; experiments: {', '.join(names)}")
        bench.run("c", -1, args.notes, regime="experiments", **where)
        for round_no in range(1, args.rounds + 1):
            for name in bench_run.rotated(names, round_no):
                r = bench.run(
                    "c",
                    round_no,
                    args.notes,
                    regime="experiments",
                    settings=EXPERIMENTS[name],
                    label=name,
                    **where,
                )
                results.append(r)
                bench_run.log(
                    f"round {round_no} {name:>20}: {r.notes_per_s:6.1f} notes/s, "
                    f"CPU {r.cpu_per_1k:5.2f} s/1k"
                )
    except RunFailed as exc:
        print(f"EXPERIMENT FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    print(table(results, names, args))
    if args.json is not None:
        args.json.write_text(json.dumps([r.as_json() for r in results], indent=2) + "\n")
    return 0


def table(results: list[RunResult], names: list[str], args: argparse.Namespace) -> str:
    base = {r.round: r for r in results if r.variant == "baseline"}
    lines = [
        f"(c) with -s overrides, {args.notes} notes, {args.latency_ms:g} ms latency, "
        f"CONCURRENT_REQUESTS={args.concurrency}, {args.rounds} rounds; medians, and the median "
        "of the per-round changes against the baseline of the same round.",
        "",
        "| experiment | notes/s | Δ notes/s | CPU s / 1k notes | Δ CPU |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in names:
        runs = [r for r in results if r.variant == name]
        if not runs:
            continue
        nps = statistics.median(r.notes_per_s for r in runs)
        cpu = statistics.median(r.cpu_per_1k for r in runs)
        d_nps = [r.notes_per_s / base[r.round].notes_per_s - 1 for r in runs if r.round in base]
        d_cpu = [r.cpu_per_1k / base[r.round].cpu_per_1k - 1 for r in runs if r.round in base]
        dn = f"{statistics.median(d_nps):+.0%}" if name != "baseline" and d_nps else ""
        dc = f"{statistics.median(d_cpu):+.0%}" if name != "baseline" and d_cpu else ""
        lines.append(f"| {name} | {nps:.1f} | {dn} | {cpu:.2f} | {dc} |")
    lines += ["", "Settings per experiment:"]
    for name in names:
        if EXPERIMENTS[name]:
            lines.append(f"- {name}: " + " ".join(f"-s '{s}'" for s in EXPERIMENTS[name]))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
