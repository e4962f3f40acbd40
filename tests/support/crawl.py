"""Run real ``scrapy crawl note_detail`` processes and read what they wrote."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STAT_LINE = re.compile(
    r"^\s*\{?'(?P<key>[^']+)': (?P<value>-?\d+(?:\.\d+)?|'[^']*'|True|False|None),?\}?$"
)


@dataclass
class CrawlResult:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> Path:
        return self.workdir / "output"

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.output / "summary.json").read_text(encoding="utf-8"))

    @property
    def failed(self) -> list[dict[str, Any]]:
        return read_jsonl(self.output / "failed.jsonl")

    @property
    def notes(self) -> list[dict[str, Any]]:
        return read_jsonl(self.output / "notes.jsonl")

    def __repr__(self) -> str:  # shown by pytest when an assertion on the result fails
        return f"exit {self.returncode}\n--- stderr (tail) ---\n{self.stderr[-6000:]}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    # Split on "\n" only: orjson writes U+2028/U+0085 unescaped, and str.splitlines()
    # would cut a valid JSON line there.
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def parse_stats(log: str) -> dict[str, Any]:
    """The numbers of Scrapy's closing stats dump (``Dumping Scrapy stats:``)."""
    stats: dict[str, Any] = {}
    _, _, dump = log.rpartition("Dumping Scrapy stats:")
    for line in dump.splitlines()[1:]:
        match = STAT_LINE.match(line)
        if match:
            raw = match["value"]
            value: Any = (
                raw.strip("'")
                if raw.startswith("'")
                else json.loads(
                    raw.lower() if raw in ("True", "False") else ("null" if raw == "None" else raw)
                )
            )
            stats[match["key"]] = value
        if "Spider closed" in line:
            break
    return stats


# What a test crawl never takes from the environment it runs in: a developer's shell may hold
# any of them.
INHERITED_NOT = frozenset(
    {"JUSTONEAPI_TOKEN", "PGY_TOKEN_FILE", "PGY_REGION", "MONGO_URI", "PGY_QUEUE_URL", "PGY_RUN"}
)


def crawl_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_NOT}
    env["PYTHONPATH"] = str(REPO)
    env["SCRAPY_SETTINGS_MODULE"] = "pgy_spider.settings"
    env["PYTHONWARNINGS"] = "error::DeprecationWarning:pgy_spider"
    env.update(extra or {})
    return env


def modules_loaded_by(module: str, names: Sequence[str]) -> list[str]:
    """Which of ``names`` a fresh interpreter has in ``sys.modules`` after importing
    ``module`` (with the crawl's environment): for checks that start-up stays light."""
    code = f"import sys, {module}\nprint(repr([m for m in {tuple(names)!r} if m in sys.modules]))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=crawl_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = ast.literal_eval(proc.stdout.strip())
    return loaded


def crawl_command(
    *args: str,
    sim_url: str | None = None,
    token: str | None = "test-token",
    settings: dict[str, Any] | None = None,
) -> list[str]:
    cmd = [sys.executable, "-m", "scrapy", "crawl", "note_detail", *args]
    merged: dict[str, Any] = {"PGY_RETRY_BACKOFF": 0, "PGY_RATE_LIMIT_DELAY": 0.05}
    if sim_url:
        merged["PGY_BASE_URL"] = sim_url
    if token is not None:
        merged["PGY_TOKEN"] = token
    merged.update(settings or {})
    for key, value in merged.items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def run_crawl(
    workdir: Path,
    *args: str,
    sim_url: str | None = None,
    token: str | None = "test-token",
    settings: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> CrawlResult:
    """``scrapy crawl note_detail ARGS`` in ``workdir`` against the simulator."""
    cmd = crawl_command(*args, sim_url=sim_url, token=token, settings=settings)
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        env=crawl_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    return CrawlResult(proc.returncode, proc.stdout, proc.stderr, workdir, parse_stats(proc.stderr))


def start_crawl(
    workdir: Path,
    *args: str,
    sim_url: str | None = None,
    token: str | None = "test-token",
    settings: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """The same crawl as a background process (to signal or kill it mid-run)."""
    cmd = crawl_command(*args, sim_url=sim_url, token=token, settings=settings)
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        cmd,
        cwd=workdir,
        env=crawl_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def finish_crawl(proc: subprocess.Popen[str], workdir: Path, timeout: float = 180) -> CrawlResult:
    stdout, stderr = proc.communicate(timeout=timeout)
    return CrawlResult(proc.returncode, stdout, stderr, workdir, parse_stats(stderr))
