"""Replaying a MongoDB spill file into MongoDB: ``scrapy pgy_replay_spill``, without Scrapy.

A spill file holds one JSON line per note the crawl could not store (see
:class:`pgy_spider.mongo.SpillWriter`). The lines are read one batch at a time and go
through the crawl's own writes (:func:`pgy_spider.mongo.build_batch_writes` and
:func:`~pgy_spider.mongo.write_batch`). So notes, metrics snapshots (at their own fetch
times) and kols are stored exactly as the crawl would have stored them. The newest fetch
wins, so a line older than the stored note is skipped and counted as such. Running the
replay twice is harmless. The file itself is never changed or deleted.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, TextIO

import orjson
from pymongo import MongoClient
from pymongo.database import Database

from pgy_spider import exitcodes, mongo
from pgy_spider.config import mongo_config
from pgy_spider.errors import ConfigError
from pgy_spider.paths import format_path

# Unreadable lines and unstored notes named one by one; beyond that only counted.
SHOWN_PROBLEMS = 10

# Placeholders that make PGY_MONGO_SPILL_PATH name a new file per run.
_PER_RUN_PLACEHOLDERS = ("%(time)s", "%(job)s")
_NOTE_ID_RE = re.compile(rb'"noteId"\s*:\s*"([^"\\]{1,64})"')


class ReplayError(Exception):
    """The replay cannot start: the message is one line saying what to fix (exit 2)."""


class SettingsLike(Protocol):
    """What is read from Scrapy's settings (kept as a protocol: no Scrapy import here)."""

    def get(self, name: str, default: Any = None) -> Any: ...


@dataclass(frozen=True)
class ReplayConfig:
    path: Path
    uri: str
    database: str
    collection: str
    batch_size: int
    retries: int
    backoff_s: float


def spill_path(path_arg: str | None, template: str, spider_name: str) -> Path:
    """The file to replay: *path_arg*, else the one ``PGY_MONGO_SPILL_PATH`` names."""
    if path_arg:
        return Path(path_arg)
    if any(placeholder in template for placeholder in _PER_RUN_PLACEHOLDERS):
        raise ReplayError(
            f"PGY_MONGO_SPILL_PATH={template} names a new file for every run: "
            "give the spill file to replay, as in `scrapy pgy_replay_spill PATH`"
        )
    return Path(format_path(template, {"name": spider_name}))


def read_config(
    path_arg: str | None,
    settings: SettingsLike,
    spider_name: str,
    environ: Mapping[str, str] = os.environ,
) -> ReplayConfig:
    """The replay's settings, read as the crawl reads them; ReplayError if unusable."""
    try:
        mongo_settings = mongo_config(settings, environ)
    except ConfigError as exc:
        raise ReplayError(str(exc)) from None
    if mongo_settings is None:
        raise ReplayError(
            "MONGO_URI is not set: give the crawl's, in the environment or with -s MONGO_URI=..."
        )
    return ReplayConfig(
        path=spill_path(path_arg, mongo_settings.spill_path, spider_name),
        uri=mongo_settings.uri,
        database=mongo_settings.database,
        collection=mongo_settings.collection,
        batch_size=mongo_settings.batch_size,
        retries=mongo_settings.retries,
        backoff_s=mongo_settings.retry_backoff,
    )


def open_spill(path: Path) -> IO[bytes]:
    """*path* opened for reading, or ReplayError saying why it cannot be."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ReplayError(
            f"{path}: no such file (the crawl creates it only when notes could not be stored)"
        ) from None
    except IsADirectoryError:
        raise ReplayError(f"{path}: is a directory, not a spill file") from None
    except OSError as exc:
        raise ReplayError(f"{path}: cannot be read: {exc.strerror or exc}") from None


# -- reading the lines ------------------------------------------------------------


def numbered_lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, line, is the last line)`` for every non-blank line of *fh*."""
    previous: tuple[int, bytes] | None = None
    for number, line in enumerate(fh, 1):
        if not line.strip():
            continue
        if previous is not None:
            yield previous[0], previous[1], False
        previous = (number, line)
    if previous is not None:
        yield previous[0], previous[1], True


def parse_line(line: bytes) -> tuple[mongo.Doc | None, str]:
    """The spilled item on *line*, or None and why it is not one."""
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON ({str(exc).split(':', 1)[0]})"
    if not isinstance(item, dict):
        return None, "not a JSON object"
    note_id = item.get("noteId")
    if not isinstance(note_id, str) or not note_id:
        return None, "no noteId"
    if mongo.to_datetime(item.get("fetchedAt")) is None:
        # Without it the line would count as fetched now and beat every newer fetch.
        return None, "no valid fetchedAt"
    if not isinstance(item.get("kol"), dict | None):
        return None, "kol is not an object"
    return item, ""


# -- the replay -------------------------------------------------------------------


@dataclass
class ReplayReport:
    """What became of every non-blank line of a spill file."""

    lines: int = 0
    stored: int = 0  # the note's document now holds this fetch (or already did)
    skipped_older: int = 0  # a newer fetch of the note is stored
    not_stored: int = 0  # failed writes, unreadable lines, lines never tried
    # (line number, why) of unreadable lines before the last one.
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    # (line number, noteId) of the lines whose writes failed.
    failed_notes: list[tuple[int, str]] = field(default_factory=list)
    last_error: str | None = None
    # The unreadable last line a crash cut short: (line number, its noteId if legible).
    torn_line: tuple[int, str | None] | None = None
    # The server was lost: the line where that happened, and how many lines after it
    # were never tried (counted in not_stored too).
    lost_at: int | None = None
    untried: int = 0
    # The file could not be read to its end (a disk error): why.
    read_error: str | None = None

    @property
    def settled(self) -> bool:
        return self.not_stored == 0 and self.read_error is None


def replay(
    db: Database[mongo.Doc],
    collection: str,
    fh: IO[bytes],
    *,
    batch_size: int,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayReport:
    """Store every line of the spill file *fh*, *batch_size* lines at a time."""
    report = ReplayReport()
    batch: list[tuple[int, mongo.Doc]] = []

    def flush() -> None:
        if batch and report.lost_at is None:
            _write(db, collection, batch, report, retries=retries, backoff_s=backoff_s, sleep=sleep)
        batch.clear()

    try:
        for number, line, is_last in numbered_lines(fh):
            report.lines += 1
            if report.lost_at is not None:  # the server is gone: count the rest, untried
                report.untried += 1
                report.not_stored += 1
                continue
            item, why = parse_line(line)
            if item is None:
                if is_last:
                    match = _NOTE_ID_RE.search(line)
                    report.torn_line = (number, match.group(1).decode() if match else None)
                else:
                    report.bad_lines.append((number, why))
                    report.not_stored += 1
                continue
            batch.append((number, item))
            if len(batch) >= batch_size:
                flush()
    except OSError as exc:  # the file went bad midway (a disk error): store what was read
        report.read_error = str(exc.strerror or exc)
    flush()
    return report


def _write(
    db: Database[mongo.Doc],
    collection: str,
    batch: list[tuple[int, mongo.Doc]],
    report: ReplayReport,
    **retry: Any,
) -> None:
    items = [item for _, item in batch]
    result = mongo.write_batch(db, mongo.build_batch_writes(items, collection), **retry)
    for index, (number, item) in enumerate(batch):
        if index in result.failed_items:
            report.not_stored += 1
            report.failed_notes.append((number, item["noteId"]))
        elif index in result.older_items:
            report.skipped_older += 1
        else:
            report.stored += 1
    if result.failed_items:
        report.last_error = result.last_error
        if result.unreachable:
            report.lost_at = batch[0][0]


# -- the command --------------------------------------------------------------------


def connect(config: ReplayConfig) -> MongoClient[mongo.Doc]:
    """A client for the replay, after the crawl's start-up checks (ping, indexes)."""
    return mongo.open_for_writes(
        config.uri,
        config.database,
        config.collection,
        fix="start the server or fix MONGO_URI, then run this again",
    )


def describe(report: ReplayReport, path: Path) -> tuple[list[str], list[str]]:
    """The lines printed after a replay: (for stdout, for stderr)."""
    out = [
        f"{path}: {report.lines} lines: {report.stored} notes stored, "
        f"{report.skipped_older} skipped as older (a newer fetch is stored), "
        f"{report.not_stored} could not be stored"
    ]
    err: list[str] = []
    if report.torn_line is not None:
        number, note_id = report.torn_line
        note = f" (note {note_id}: it is in the run's feed)" if note_id else ""
        err.append(
            f"warning: line {number}, the last, is cut short (the crawl stopped while "
            f"writing it): skipped{note}"
        )
    for number, why in report.bad_lines[:SHOWN_PROBLEMS]:
        err.append(f"error: line {number} is not a spilled note ({why}): not stored")
    if len(report.bad_lines) > SHOWN_PROBLEMS:
        err.append(f"error: ... and {len(report.bad_lines) - SHOWN_PROBLEMS} more such lines")
    if report.failed_notes:
        shown = ", ".join(
            f"{note_id} (line {number})" for number, note_id in report.failed_notes[:SHOWN_PROBLEMS]
        )
        more = len(report.failed_notes) - SHOWN_PROBLEMS
        err.append(
            f"error: {len(report.failed_notes)} notes could not be stored: {shown}"
            f"{f' and {more} more' if more > 0 else ''}; last error: {report.last_error}"
        )
    if report.lost_at is not None:
        err.append(
            f"error: MongoDB was lost at line {report.lost_at}: "
            f"{report.untried} lines after it were not tried"
        )
    if report.read_error is not None:
        err.append(
            f"error: {path} could not be read past line {report.lines} ({report.read_error})"
        )
    if report.settled:
        out.append(
            f"Every line is settled: {path} may be removed (or moved away: the next "
            "crawl that spills appends to it)"
        )
    else:
        what = f"{report.not_stored} lines" if report.read_error is None else "lines"
        err.append(
            f"error: {what} not stored: {path} is kept as it is; fix the "
            "cause and run this command again (what is stored is not stored twice)"
        )
    return out, err


def main(
    path_arg: str | None,
    settings: SettingsLike,
    *,
    spider_name: str,
    environ: Mapping[str, str] = os.environ,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``scrapy pgy_replay_spill [PATH]``: the exit status (0, 2, 4 or 5; see the README)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        config = read_config(path_arg, settings, spider_name, environ)
        fh = open_spill(config.path)
    except ReplayError as exc:
        print(f"error: {exc}", file=err)
        return exitcodes.USAGE
    try:
        with fh:
            try:
                client = connect(config)
            except mongo.MongoUnavailable as exc:
                print(f"error: {exc}", file=err)
                return exitcodes.USAGE
            try:
                print(
                    f"Replaying {config.path} into {mongo.mask_uri(config.uri)}, database "
                    f"{config.database}, collection {config.collection}",
                    file=out,
                    flush=True,
                )
                report = replay(
                    client[config.database],
                    config.collection,
                    fh,
                    batch_size=config.batch_size,
                    retries=config.retries,
                    backoff_s=config.backoff_s,
                )
            finally:
                client.close()
    except KeyboardInterrupt:
        print(
            "interrupted: what was stored stays stored; run the command again to finish",
            file=err,
        )
        return exitcodes.INTERRUPTED
    out_lines, err_lines = describe(report, config.path)
    for line in out_lines:
        print(line, file=out)
    for line in err_lines:
        print(line, file=err)
    return exitcodes.OK if report.settled else exitcodes.STORAGE
