"""The run's own output files: the failed file, the summary, and the exit status."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any

import orjson

from pgy_spider.api import FATAL_CLOSE_REASONS
from pgy_spider.failures import FailureRecord

# Exit statuses of `scrapy crawl note_detail` (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_API_STOP = 3
EXIT_INTERRUPTED = 4
EXIT_STORAGE = 5

CLOSE_SEED_ERROR = "pgy_seed_error"
CLOSE_STORAGE_ERROR = "pgy_storage_error"


def exit_code_for(reason: str, stats: dict[str, Any]) -> int:
    if stats.get("pgy/mongo/spilled") or stats.get("pgy/mongo/lost"):
        return EXIT_STORAGE
    if reason == CLOSE_STORAGE_ERROR:
        return EXIT_STORAGE
    if reason == "finished":
        return EXIT_OK
    if reason in FATAL_CLOSE_REASONS:
        return EXIT_API_STOP
    if reason == "shutdown":
        return EXIT_INTERRUPTED
    if reason == CLOSE_SEED_ERROR:
        return EXIT_USAGE
    return EXIT_ERROR


class _PathParams(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def format_path(template: str, params: dict[str, Any]) -> str:
    """Fill ``%(name)s``/``%(time)s``/``%(job)s`` like Scrapy's feed URIs (unknown keys: empty)."""
    if "%(" not in template:
        return template
    return template % _PathParams(params)


def feed_uri_params(params: dict[str, Any], spider: Any) -> dict[str, Any]:
    """``FEED_URI_PARAMS``: the same ``%(job)s`` and ``%(time)s`` in feed URIs as in the
    failed and summary paths (Scrapyd's job id comes as the spider argument ``_job``)."""
    own = getattr(spider, "_path_params", None)
    if callable(own):
        params.update(own())
    else:
        job = params.get("_job") or params.get("job") or ""
        params.setdefault("job", job)
        params.setdefault("_job", job)
    return params


class FailedFile:
    """One JSON line per seed that did not yield a note; appended to when a job resumes."""

    def __init__(self, path: str, *, append: bool):
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = open(path, "ab" if append else "wb")  # noqa: SIM115

    def write(self, record: FailureRecord) -> None:
        if self._fh is not None:
            self._fh.write(orjson.dumps(record.to_json()) + b"\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def write_summary(path: str, summary: dict[str, Any]) -> None:
    """Write the summary atomically, pretty and UTF-8 (never half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".summary-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
