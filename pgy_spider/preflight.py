"""Checks made before a crawl starts, so a user's mistake costs no API call.

Each failure is one line saying what is wrong and how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scrapy.settings import BaseSettings

from pgy_spider import api, seeds
from pgy_spider.ledger import STATE_FILE
from pgy_spider.tokens import load_tokens
from pgy_spider.xlsxexport import xlsx_feed_problem


def preflight(settings: BaseSettings, spargs: Mapping[str, Any]) -> list[str]:
    """Raise ConfigError/SeedFileError/MongoUnavailable; return warnings to show."""
    load_tokens(settings.get("PGY_TOKEN"), settings.get("PGY_TOKEN_FILE"))
    api.resolve_base_url(
        settings.get("PGY_REGION") or os.environ.get("PGY_REGION"), settings.get("PGY_BASE_URL")
    )
    files = [p.strip() for p in str(spargs.get("ids_file") or "").split(",") if p.strip()]
    inline = [p for p in str(spargs.get("ids") or "").split(",") if p.strip()]
    if not (files or inline or spargs.get("ids_url")):
        raise api.ConfigError(
            "no seeds given: pass -a ids_file=PATH[,PATH...], -a ids=ID[,ID...] or -a ids_url=URL"
        )
    ids_url = str(spargs.get("ids_url") or "")
    if ids_url and not ids_url.startswith(("http://", "https://")):
        raise api.ConfigError(f"ids_url {ids_url!r} is not an http(s) URL")
    warnings = seeds.check_sources(files) if files else []
    check_output_paths(settings)
    jobdir = settings.get("JOBDIR")
    resuming = bool(jobdir) and Path(jobdir, STATE_FILE).exists()
    if problem := xlsx_feed_problem(settings.getdict("FEEDS"), resuming=resuming):
        raise api.ConfigError(problem)
    mongo_uri = settings.get("MONGO_URI") or os.environ.get("MONGO_URI")
    if mongo_uri:
        from pgy_spider.mongo import check_reachable

        check_reachable(mongo_uri)
    return warnings


def check_output_paths(settings: BaseSettings) -> None:
    """Local feed, failed and summary paths must be writable: a feed that cannot be opened
    would otherwise lose notes that were already paid for. Nothing is created here."""
    feeds = list(settings.getdict("FEEDS")) or [
        settings.get("PGY_FEED_URI") or "output/notes.jsonl"
    ]
    paths = [
        *feeds,
        settings.get("PGY_FAILED_PATH"),
        settings.get("PGY_SUMMARY_PATH"),
        settings.get("PGY_MONGO_SPILL_PATH"),
    ]
    for template in filter(None, paths):
        target = str(template)
        if target.startswith("file://"):
            target = target[len("file://") :]
        elif "://" in target:
            continue  # remote storage (s3, ftp, ...): Scrapy reports its own errors
        ancestor = _existing_ancestor(Path(target).parent)
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise api.ConfigError(
                f"cannot write {template!r}: {str(ancestor)!r} is not a writable directory; "
                "choose a writable path"
            )


def _existing_ancestor(path: Path) -> Path:
    """The nearest directory above ``path`` that exists, ignoring ``%(...)s`` placeholder parts
    (they are filled in at run time and will be created then)."""
    parts = path.parts
    for index, part in enumerate(parts):
        if "%(" in part:
            path = Path(*parts[:index]) if index else Path(".")
            break
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
