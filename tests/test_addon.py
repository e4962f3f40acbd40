"""End-to-end: another Scrapy project uses pgy-spider as an installed package and add-on.

``tests/foreign_project`` is a small brand-page project with its own ``scrapy.cfg``,
settings and spider. The package is installed with ``pip install`` into a fresh virtual
environment (its dependencies resolved from pyproject.toml), and a real ``scrapy crawl`` in
that project fetches notes from the simulator with ``note_request()``, with and without a
callback, and an ordinary page through a redirect with Scrapy's defaults.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.crawl import parse_stats, read_jsonl
from tests.support.ids import make_note_ids, not_found_id
from tests.support.simulator import SimulatorClient

REPO = Path(__file__).resolve().parents[1]
PROJECT = Path(__file__).resolve().parent / "foreign_project"
TOKEN = "foreign-secret-token"
NOTES = make_note_ids(3)
NOTES_CB = make_note_ids(2, 3)

# Scrapy 2.19's downloader middlewares: the add-on adds its own and changes none of these.
SCRAPY_DOWNLOADER_MIDDLEWARES = [
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware",
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware",
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware",
    "scrapy.downloadermiddlewares.downloadtimeout.DownloadTimeoutMiddleware",
    "scrapy.downloadermiddlewares.defaultheaders.DefaultHeadersMiddleware",
    "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware",
    "scrapy.downloadermiddlewares.retry.RetryMiddleware",
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware",
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware",
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware",
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware",
    "scrapy.downloadermiddlewares.stats.DownloaderStats",
]


@pytest.fixture(scope="session")
def foreign_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the package installed from a copy of the clone."""
    root = tmp_path_factory.mktemp("foreign")
    clone = root / "clone"
    clone.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, clone / name)
    shutil.copytree(
        REPO / "pgy_spider", clone / "pgy_spider", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(clone),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-4000:]
    return venv / "bin"


class _Pages(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, dict(self.headers.items())))
        if self.path == "/start":
            self.send_response(302)
            self.send_header("Location", "/page")
            self.end_headers()
            return
        if self.path == "/robots.txt":
            body = b"User-agent: *\nAllow: /\n"
        elif self.path == "/page":
            body = "<html><head><title>品牌页 ✨</title></head><body>hi</body></html>".encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def pages() -> Iterator[str]:
    _Pages.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], workdir: Path) -> None:
        self.returncode = proc.returncode
        self.stderr = proc.stderr
        self.stdout = proc.stdout
        self.workdir = workdir
        self.stats = parse_stats(proc.stderr)

    @property
    def items(self) -> list[dict[str, Any]]:
        return read_jsonl(self.workdir / "items.jsonl")

    @property
    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.workdir / "report.json").read_text())
        return report

    def __repr__(self) -> str:
        return f"exit {self.returncode}\n{self.stderr[-5000:]}"


def _crawl(
    bin_dir: Path,
    tmp_path: Path,
    page: str,
    *,
    notes: list[str],
    notes_cb: list[str] = (),  # type: ignore[assignment]
    settings: dict[str, Any] | None = None,
) -> Run:
    workdir = tmp_path / "project"
    if not workdir.exists():
        shutil.copytree(PROJECT, workdir, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SCRAPY", "PGY"))}
    env.pop("JUSTONEAPI_TOKEN", None)
    argv = [str(bin_dir / "scrapy"), "crawl", "brand", "-O", "items.jsonl"]
    argv += ["-a", f"page={page}", "-a", f"notes={','.join(notes)}"]
    argv += ["-a", f"notes_cb={','.join(notes_cb)}", "-a", "report=report.json"]
    for key, value in {"PGY_RETRY_BACKOFF": 0, **(settings or {})}.items():
        argv += ["-s", f"{key}={value}"]
    proc = subprocess.run(
        argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return Run(proc, workdir)


def _no_token_anywhere(run: Run) -> None:
    texts = [run.stdout, run.stderr]
    texts += [p.read_text(errors="replace") for p in run.workdir.rglob("*") if p.is_file()]
    assert not any(TOKEN in text for text in texts)


def test_notes_by_id_with_and_without_a_callback_beside_an_ordinary_page(
    foreign_python: Path, tmp_path: Path, sim: SimulatorClient, pages: str
) -> None:
    settings = {"PGY_TOKEN": TOKEN, "PGY_BASE_URL": sim.url}
    sim.configure(tokens=[TOKEN])
    run = _crawl(
        foreign_python,
        tmp_path,
        f"{pages}/start",
        notes=NOTES,
        notes_cb=NOTES_CB,
        settings=settings,
    )
    assert run.returncode == 0, run
    items = run.items
    # Without a callback the validated, normalised note is the item.
    notes = {i["noteId"]: i for i in items if "noteId" in i}
    assert set(notes) == set(NOTES)
    assert all(n["kol"] and n["fetchedAt"] and "raw" in n for n in notes.values())
    # With one, the callback got the note in response.meta["pgy_note"], and its own meta.
    from_cb = {i["fromCallback"]: i for i in items if "fromCallback" in i}
    assert set(from_cb) == set(NOTES_CB) and all(i["mine"] == 7 for i in from_cb.values())
    # The ordinary page came through Scrapy's redirect middleware and default client.
    (page,) = [i for i in items if "page" in i]
    assert page["page"] == f"{pages}/page" and page["title"] == "品牌页 ✨"
    assert page["redirected_from"] == [f"{pages}/start"]
    headers = dict(_Pages.seen)["/page"]
    assert headers["User-Agent"].startswith("Scrapy/")
    assert "gzip" in headers["Accept-Encoding"]  # Scrapy's compression middleware
    assert headers["Accept"].startswith("text/html")  # Scrapy's default headers
    assert "/robots.txt" in dict(_Pages.seen)  # Scrapy's robots.txt middleware, kept
    # Each note paid for once; the calls went to the configured base, with the token.
    stats = sim.stats()
    assert stats["success_by_note"] == dict.fromkeys(NOTES + NOTES_CB, 1)
    assert stats["calls"] == len(NOTES + NOTES_CB)
    assert run.stats["pgy/api_calls"] == 5 and run.stats["pgy/code/0"] == 5
    # What the add-on left as it was.
    report = run.report
    assert report["reason"] == "finished"
    assert report["settings"]["CONCURRENT_ITEMS"] == 50
    assert report["settings"]["SCHEDULER"] == "scrapy.core.scheduler.Scheduler"
    assert report["settings"]["DUPEFILTER_CLASS"] == "scrapy.dupefilters.RFPDupeFilter"
    assert report["settings"]["LOG_FORMATTER"] == "scrapy.logformatter.LogFormatter"
    assert report["settings"]["CONCURRENT_REQUESTS_PER_DOMAIN"] == 8
    assert report["settings"]["COOKIES_ENABLED"] is True
    middlewares = report["downloader_middlewares"]
    assert [m for m in middlewares if m.startswith("scrapy.")] == SCRAPY_DOWNLOADER_MIDDLEWARES
    assert [m for m in middlewares if not m.startswith("scrapy.")] == [
        "pgy_spider.middlewares.api.PgyApiMiddleware"
    ]
    assert all(m.startswith("scrapy.") for m in report["spider_middlewares"])
    assert report["pipelines"] == []
    assert report["fallback_handlers"] == {
        "http": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
        "https": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
    }
    assert set(report["root_filters"]) <= {
        "scrapy.utils.log.TopLevelFormatter",
        "pgy_spider.logmask.SecretMaskingFilter",
    }
    # The levels Scrapy gives its loggers (the project's own speed shaping is not imposed).
    assert report["logger_levels"] == {"scrapy.core.engine": 0, "scrapy.core.scraper": 0}
    _no_token_anywhere(run)


def test_a_failed_note_is_a_warning_a_stat_and_a_failed_file(
    foreign_python: Path, tmp_path: Path, sim: SimulatorClient, pages: str
) -> None:
    sim.configure(tokens=[TOKEN])
    missing, missing_cb = not_found_id(1), not_found_id(2)
    settings = {"PGY_TOKEN": TOKEN, "PGY_BASE_URL": sim.url, "PGY_FAILED_PATH": "failed.jsonl"}
    run = _crawl(
        foreign_python,
        tmp_path,
        f"{pages}/page",
        notes=[NOTES[0], missing],
        notes_cb=[missing_cb],
        settings=settings,
    )
    assert run.returncode == 0, run
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line and "failed" in line]
    assert any(f"Note {missing} failed: not_found (code 201" in w for w in warnings), warnings
    assert run.stats["pgy/failed/not_found"] == 2
    records = read_jsonl(run.workdir / "failed.jsonl")
    assert sorted(r["noteId"] for r in records) == sorted([missing, missing_cb])
    assert all(r["reason"] == "not_found" and r["code"] == 201 for r in records)
    # The callback's errback was called too.
    assert {"failedInErrback": missing_cb} in run.items
    _no_token_anywhere(run)


def test_a_fatal_code_closes_the_spider_with_its_reason(
    foreign_python: Path, tmp_path: Path, sim: SimulatorClient, pages: str
) -> None:
    sim.configure(tokens=[TOKEN], token_codes={TOKEN: 303})
    settings = {"PGY_TOKEN": TOKEN, "PGY_BASE_URL": sim.url, "CONCURRENT_REQUESTS": 1}
    ids = make_note_ids(20)
    run = _crawl(foreign_python, tmp_path, f"{pages}/page", notes=ids, settings=settings)
    assert run.report["reason"] == "pgy_quota_exceeded", run
    assert "Stopping the crawl: pgy_quota_exceeded" in run.stderr
    assert sim.stats()["calls"] <= 2  # no call after the stop beyond the one in flight
    _no_token_anywhere(run)


def test_a_missing_token_closes_the_spider_before_any_call(
    foreign_python: Path, tmp_path: Path, sim: SimulatorClient, pages: str
) -> None:
    run = _crawl(
        foreign_python, tmp_path, f"{pages}/page", notes=NOTES, settings={"PGY_BASE_URL": sim.url}
    )
    assert run.report["reason"] == "pgy_config_error", run
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert any("pgy-spider is not configured: no API token" in line for line in errors), errors
    assert "Traceback" not in run.stderr
    assert sim.stats()["calls"] == 0


def test_note_requests_survive_a_foreign_jobdir_disk_queue(
    foreign_python: Path, tmp_path: Path, sim: SimulatorClient, pages: str
) -> None:
    # Retries (301 first) are new requests: they go through Scrapy's disk queue too.
    sim.configure(tokens=[TOKEN], fail_first={"301": 1})
    settings = {"PGY_TOKEN": TOKEN, "PGY_BASE_URL": sim.url, "JOBDIR": "job"}
    run = _crawl(
        foreign_python, tmp_path, f"{pages}/page", notes=NOTES, notes_cb=NOTES_CB, settings=settings
    )
    assert run.returncode == 0, run
    assert "Unable to serialize" not in run.stderr
    assert run.stats["scheduler/enqueued/disk"] >= 10
    assert {i["noteId"] for i in run.items if "noteId" in i} == set(NOTES)
    assert {i["fromCallback"] for i in run.items if "fromCallback" in i} == set(NOTES_CB)
    assert sim.stats()["success_by_note"] == dict.fromkeys(NOTES + NOTES_CB, 1)
