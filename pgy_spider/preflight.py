"""Checks made before a crawl starts, so a user's mistake costs no API call.

Each failure is one line saying what is wrong and how to fix it (a
:class:`~pgy_spider.errors.UserError`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

from pgy_spider import jobstate, seeds
from pgy_spider.config import PgyConfig
from pgy_spider.errors import ConfigError
from pgy_spider.feeds import feeds_of, jobdir_feed_problem
from pgy_spider.spiders.note_detail import NO_SEEDS, split_paths
from pgy_spider.xlsxexport import xlsx_feed_problem


def preflight(settings: BaseSettings, spargs: Mapping[str, Any]) -> list[str]:
    """Raise a UserError for the first problem found; return warnings to show."""
    config = PgyConfig.from_settings(settings)
    check_event_loop(settings)
    # Imported here: the crawl imports the client anyway, the other commands need not.
    from pgy_spider.apiclient import tls_settings_problem

    if problem := tls_settings_problem(settings):
        raise ConfigError(problem)
    files = split_paths(spargs.get("ids_file"))
    inline = [p for p in str(spargs.get("ids") or "").split(",") if p.strip()]
    ids_url = str(spargs.get("ids_url") or "").strip()
    has_seeds = bool(files or inline or ids_url)
    if not has_seeds and config.queue is None:
        raise ConfigError(NO_SEEDS)  # in a run across processes: a worker without seeds
    if ids_url and not ids_url.startswith(("http://", "https://")):
        raise ConfigError(f"ids_url {ids_url!r} is not an http(s) URL")
    # Before any file is opened for writing: a state this version cannot read is refused.
    resuming = jobstate.probe(config.jobdir) is not None
    warnings = seeds.check_sources(files) if files else []
    check_output_paths(settings, config)
    if problem := xlsx_feed_problem(settings.getdict("FEEDS"), resuming=resuming):
        raise ConfigError(problem)
    if config.jobdir:
        check_resumable_outputs(settings, config, resuming=resuming)
    if config.mongo is not None:
        from pgy_spider.mongo import check_reachable

        check_reachable(config.mongo.uri)
    if config.queue is not None:
        # Last: the run is created only when nothing else is wrong.
        from pgy_spider.queue.check import check_run
        from pgy_spider.queue.identity import source_identities

        raw_inline = str(spargs.get("ids") or "")
        sources = source_identities(raw_inline, files, ids_url or None) if has_seeds else None
        check_run(config.queue, sources)
    return warnings


def check_event_loop(settings: BaseSettings) -> None:
    """Scrapy loads ASYNCIO_EVENT_LOOP as it starts, and a wrong one (an empty ``-s
    ASYNCIO_EVENT_LOOP=`` meant to switch uvloop off, a typo) ends in a traceback there."""
    path = settings.get("ASYNCIO_EVENT_LOOP")
    if path is None:
        return
    hint = "give a full path: uvloop.Loop, or asyncio.SelectorEventLoop for asyncio's own loop"
    if not str(path).strip():
        raise ConfigError(f"ASYNCIO_EVENT_LOOP is empty: {hint}")
    try:
        load_object(path)
    except (ValueError, ImportError, NameError, AttributeError) as exc:
        raise ConfigError(f"ASYNCIO_EVENT_LOOP={path!r} cannot be loaded ({exc}): {hint}") from None


def check_resumable_outputs(settings: BaseSettings, config: PgyConfig, *, resuming: bool) -> None:
    """A JOBDIR job must be able to resume after a kill: its feeds must be durable."""
    given = settings.getdict("FEEDS") or {
        config.feed_uri: {"format": "jsonlines", "overwrite": not resuming}
    }
    problem = jobdir_feed_problem(
        feeds_of(given, {}),
        resuming=resuming,
        store_is_durable=config.mongo is not None,
        failed_path=config.failed_path,
    )
    if problem:
        raise ConfigError(problem)


def check_output_paths(settings: BaseSettings, config: PgyConfig) -> None:
    """Local feed, failed and summary paths must be writable: a feed that cannot be opened
    would otherwise lose notes that were already paid for. Nothing is created here."""
    feeds = list(settings.getdict("FEEDS")) or [config.feed_uri]
    paths = [*feeds, config.failed_path, config.summary_path]
    if config.mongo is not None:
        paths.append(config.mongo.spill_path)
    for template in paths:
        target = str(template)
        if target.startswith("file://"):
            target = target[len("file://") :]
        elif "://" in target:
            continue  # remote storage (s3, ftp, ...): Scrapy reports its own errors
        ancestor = _existing_ancestor(Path(target).parent)
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise ConfigError(
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
