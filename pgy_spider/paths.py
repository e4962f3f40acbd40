"""The run's output paths, computed once from their templates.

Plain module. ``PGY_FAILED_PATH``, ``PGY_SUMMARY_PATH``, ``PGY_MONGO_SPILL_PATH`` and the
feed URIs accept ``%(name)s`` (the spider), ``%(time)s`` (the run's start in UTC, the same in
every file) and ``%(job)s`` (Scrapyd's job id, empty elsewhere), as Scrapy's feed URIs do, and
in a run across processes ``%(run)s`` (``PGY_RUN``) and ``%(worker)s`` (this process's name in
the run, unique: two processes on one host never share a file).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pgy_spider.config import PgyConfig


class _Params(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def format_path(template: str, params: dict[str, Any]) -> str:
    """Fill ``%(name)s``/``%(time)s``/``%(job)s`` like Scrapy's feed URIs (unknown keys: empty)."""
    if "%(" not in template:
        return template
    return template % _Params(params)


def path_params(
    spider_name: str, started_at: datetime, job: str, run: str = "", worker: str = ""
) -> dict[str, Any]:
    params = {
        "name": spider_name,
        "time": started_at.replace(microsecond=0).isoformat().replace(":", "-"),
        "job": job,
        "_job": job,
    }
    if run:
        params.update(run=run, worker=worker)
    return params


@dataclass(frozen=True, slots=True)
class RunPaths:
    params: dict[str, Any]
    failed: str
    summary: str
    spill: str
    seeds_dir: str  # where an ids_url download is kept (JOBDIR when there is one)

    @classmethod
    def compute(
        cls, config: PgyConfig, spider_name: str, started_at: datetime, job: str, worker: str = ""
    ) -> RunPaths:
        run = config.queue.run if config.queue else ""
        params = path_params(spider_name, started_at, job, run, worker)
        summary = format_path(config.summary_path, params)
        spill = format_path(config.mongo.spill_path, params) if config.mongo else ""
        return cls(
            params=params,
            failed=format_path(config.failed_path, params),
            summary=summary,
            spill=spill,
            seeds_dir=config.jobdir or str(Path(summary).parent),
        )
