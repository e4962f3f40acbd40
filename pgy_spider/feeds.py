"""Which of a run's feeds can survive a ``kill -9``, and which a resumable job must refuse.

Plain module. A feed is *durable* when its notes reach a local file one line at a time
(JSON lines or CSV, no post-processing, no batches): then the file itself tells a resumed
job which notes were written. Scrapy stores the others (stdout, S3, FTP, compressed,
JSON arrays, workbooks) only when the run ends, so a kill loses all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pgy_spider.paths import format_path

LINE_FORMATS = frozenset({"jsonlines", "jsonl", "jl", "csv"})
# Placeholders that differ between the sessions of a job: a resumed session would write
# another file and could not find what the killed one wrote.
SESSION_PLACEHOLDERS = ("%(time)s", "%(job)s", "%(_job)s", "%(batch_time)s", "%(batch_id)")


@dataclass(frozen=True, slots=True)
class Feed:
    uri: str  # as given (a template)
    format: str
    overwrite: bool
    local: bool
    path: str | None  # the local file, placeholders filled in
    line_by_line: bool  # one record per write, nothing added at the end

    @property
    def durable(self) -> bool:
        return self.local and self.line_by_line


def feeds_of(feeds: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]) -> list[Feed]:
    found = []
    for given, options in feeds.items():
        uri = str(given)
        scheme = urlsplit(uri).scheme
        # A one-letter "scheme" is a Windows drive letter.
        local = scheme in ("", "file") or len(scheme) == 1
        path = None
        if local:
            path = format_path(uri.removeprefix("file://"), dict(params))
        fmt = str(options.get("format") or "")
        line_by_line = (
            fmt in LINE_FORMATS
            and not options.get("postprocessing")
            and not options.get("batch_item_count")
        )
        found.append(Feed(uri, fmt, bool(options.get("overwrite")), local, path, line_by_line))
    return found


def jobdir_feed_problem(
    feeds: list[Feed], *, resuming: bool, store_is_durable: bool, failed_path: str
) -> str | None:
    """Why a JOBDIR job cannot run with these feeds (one line), or None."""
    for feed in feeds:
        if feed.overwrite and resuming:
            return (
                f"-O {feed.uri} would replace the notes earlier sessions of this JOBDIR job "
                "wrote: use -o to append, or leave both out to use the default feed"
            )
        if not feed.durable and not store_is_durable:
            return (
                f"the feed {feed.uri} ({feed.format or 'no format'}) is only stored when the "
                "run ends, so a kill would lose every note in it: with JOBDIR use -o/-O with a "
                "local .jsonl or .csv file (or the default feed), or turn on MongoDB storage"
            )
        if feed.durable and any(p in feed.uri for p in SESSION_PLACEHOLDERS):
            return _placeholder_problem(feed.uri)
    if any(p in failed_path for p in SESSION_PLACEHOLDERS):
        return _placeholder_problem(failed_path)
    return None


def _placeholder_problem(template: str) -> str:
    return (
        f"{template!r} names a new file in every session (%(time)s, %(job)s), so a resumed "
        "JOBDIR job could not find what the last one wrote: give it a fixed path"
    )
