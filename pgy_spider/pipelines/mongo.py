"""Item pipeline storing notes in MongoDB without ever blocking the crawl.

``process_item`` only appends the item to an in-memory buffer. A full buffer (or one
older than ``PGY_MONGO_FLUSH_SECONDS``) is handed as a batch to a single writer thread,
which runs the unordered bulk writes of :mod:`pgy_spider.mongo`, retries what failed and
spills what still fails to a JSON-lines file. At most ``MAX_PENDING_BATCHES`` batches
wait for the writer; beyond that ``process_item`` awaits (backpressure, which Scrapy
passes on to the downloader) instead of letting memory grow.

The single writer keeps batches in order, so a note fetched twice is stored with its
later fetch; lookups (``find_fresh``) run on other threads so they never queue behind
writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured

from pgy_spider.runtime import runtime_of
from pgy_spider.storage import StorageOutcome

# pgy_spider.mongo imports pymongo (~150 ms of every start-up): it is imported by the
# methods of a pipeline that runs (MONGO_URI set), never by a crawl without MongoDB.
if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

    from pgy_spider import mongo

logger = logging.getLogger(__name__)

# Batches allowed to wait for the writer thread before process_item applies backpressure.
MAX_PENDING_BATCHES = 2
# IDs per find_fresh query: keeps each query's BSON far below the 16 MiB limit.
FRESH_QUERY_CHUNK = 1000
# During an outage, how often one batch is tried again (the rest are spilled untried).
OUTAGE_PROBE_SECONDS = 30.0

STAT_PREFIX = "pgy/mongo/"


def _check_writable(path: Path) -> None:
    """Fail at start, not at the first spill, if the spill file could never be created.

    Nothing is created here (a clean run leaves no stray directory): the nearest existing
    ancestor just has to be writable.
    """
    target = path.resolve()
    if target.exists():
        ok = target.is_file() and os.access(target, os.W_OK)
    else:
        ancestor = target.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        ok = ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK)
    if not ok:
        raise PermissionError(f"PGY_MONGO_SPILL_PATH={path}: cannot be written")


class MongoPipeline:
    """Stores every note, its metrics history and its creator; see the module docstring."""

    def __init__(self, crawler: Crawler) -> None:
        runtime = runtime_of(crawler)
        config = runtime.config.mongo if runtime.config else None
        if config is None:
            # A bare NotConfigured: "no MongoDB" is a normal way to run, not worth a warning.
            raise NotConfigured
        from pgy_spider import mongo

        self.uri: str = config.uri
        self.database_name = config.database
        self.collection_name = config.collection
        self.refresh_hours = config.refresh_hours
        self.batch_size = config.batch_size
        if runtime.store_is_truth:
            # A resumable job with no local feed: a note counts once it is stored here, and
            # holds its place in flight until then (see pgy_spider/flight.py), so batches
            # are never larger than the calls that may be in flight.
            self.batch_size = min(self.batch_size, runtime.in_flight.limit)
        self.flush_seconds = config.flush_seconds
        self.retries = config.retries
        self.retry_backoff = config.retry_backoff
        self.spill_path = Path(runtime.paths.spill)
        self._runtime = runtime

        self.stats: StatsCollector = crawler.stats
        self._client: MongoClient[mongo.Doc] | None = None
        self._notes: Collection[mongo.Doc] | None = None
        self._spill = mongo.SpillWriter(self.spill_path)
        self._writer: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer: list[dict[str, Any]] = []
        self._buffer_due = False  # the age timer fired while the writer was busy
        self._age_timer: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Future[mongo.BatchResult]] = set()
        self._room: asyncio.Event | None = None
        # Owned by the writer thread. After a batch failed for want of a server, later
        # batches are spilled without trying, except for one quick probe every
        # OUTAGE_PROBE_SECONDS: an outage must not slow the crawl to one batch per timeout.
        self._server_down = False
        self._next_probe = 0.0
        self.outage_probe_seconds = OUTAGE_PROBE_SECONDS

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MongoPipeline:
        pipeline = cls(crawler)
        runtime_of(crawler).register_store(pipeline)
        return pipeline

    def outcome(self) -> StorageOutcome:
        """How storing went (the run's accounting reads it for the summary and exit status)."""
        spilled = self.stats.get_value(f"{STAT_PREFIX}spilled", 0)
        return StorageOutcome(
            name="mongo",
            spilled=spilled,
            lost=self.stats.get_value(f"{STAT_PREFIX}lost", 0),
            spill_path=str(self.spill_path) if spilled else None,
        )

    @property
    def refresh_enabled(self) -> bool:
        """Whether already-fresh notes are skipped (``PGY_REFRESH_HOURS`` > 0)."""
        return self.refresh_hours > 0

    # -- lifecycle -------------------------------------------------------------

    async def open_spider(self) -> None:
        """Check the server and create the indexes before the first (paid) request."""
        from pgy_spider import mongo

        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        self._room.set()
        _check_writable(self.spill_path)
        try:
            await asyncio.to_thread(self._connect)
        except mongo.MongoUnavailable as exc:
            logger.error("%s", exc)
            self.stats.inc_value(f"{STAT_PREFIX}errors")
            raise
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgy-mongo-writer")
        for name in (
            "notes_upserted",
            "skipped_older",
            "batches",
            "batch_retries",
            "spilled",
            "errors",
        ):
            self.stats.set_value(f"{STAT_PREFIX}{name}", 0)
        logger.info(
            "MongoDB storage on: %s, database %s, collection %s",
            mongo.mask_uri(self.uri),
            self.database_name,
            self.collection_name,
        )

    def _connect(self) -> None:
        from pgy_spider import mongo

        client = mongo.open_for_writes(self.uri, self.database_name, self.collection_name)
        self._client = client
        self._notes = client[self.database_name][self.collection_name]

    async def close_spider(self) -> None:
        """Write out everything buffered, then spill what could not be written."""
        if self._client is None:  # never opened (e.g. MongoDB was down at start)
            return
        self._cancel_age_timer()
        while self._buffer:
            if not self._submit():
                await asyncio.wait(set(self._pending), return_when=asyncio.FIRST_COMPLETED)
        if self._pending:
            await asyncio.wait(set(self._pending))
        if self._writer is not None:
            self._writer.shutdown(wait=False)  # idle by now: every batch has been awaited
        self._spill.close()
        self._client.close()
        self._client = None
        self._report_close()

    def _report_close(self) -> None:
        spilled = self.stats.get_value(f"{STAT_PREFIX}spilled", 0)
        if spilled:
            logger.error(
                "MongoDB: %s items could not be stored and were written to %s",
                spilled,
                self.spill_path,
            )
        logger.info(
            "MongoDB: %s notes upserted in %s batches (%s retries, %s spilled)",
            self.stats.get_value(f"{STAT_PREFIX}notes_upserted", 0),
            self.stats.get_value(f"{STAT_PREFIX}batches", 0),
            self.stats.get_value(f"{STAT_PREFIX}batch_retries", 0),
            spilled,
        )

    # -- items -------------------------------------------------------------------

    async def process_item(self, item: Any) -> Any:
        """Buffer *item*; waits only while the buffer is full and the writer is behind."""
        if self._room is None:
            raise RuntimeError("MongoPipeline.process_item() called before open_spider()")
        while len(self._buffer) >= self.batch_size:
            self._room.clear()
            await self._room.wait()
        # A copy: later pipelines may change the item after this one has returned it.
        # A shallow copy: nothing downstream mutates a note (ItemAdapter.asdict() deep-copies
        # at ~0.3 ms per note, a quarter of the crawl's CPU).
        self._buffer.append(dict(item))
        if len(self._buffer) == 1:
            self._arm_age_timer()
        if len(self._buffer) >= self.batch_size:
            self._submit()
        return item

    def _arm_age_timer(self) -> None:
        assert self._loop is not None
        self._cancel_age_timer()
        self._age_timer = self._loop.call_later(self.flush_seconds, self._on_age)

    def _cancel_age_timer(self) -> None:
        if self._age_timer is not None:
            self._age_timer.cancel()
            self._age_timer = None

    def _on_age(self) -> None:
        self._age_timer = None
        if self._buffer and not self._submit():
            self._buffer_due = True  # submitted as soon as the writer frees a slot

    def _submit(self) -> bool:
        """Hand the buffer to the writer thread unless it is already full; never waits."""
        if not self._buffer:
            return True
        if len(self._pending) >= MAX_PENDING_BATCHES:
            return False
        assert self._loop is not None and self._room is not None
        batch, self._buffer = self._buffer, []
        self._buffer_due = False
        self._cancel_age_timer()
        future = self._loop.run_in_executor(self._writer, self._write, batch)
        self._pending.add(future)
        note_ids = [item["noteId"] for item in batch]
        future.add_done_callback(lambda done: self._on_batch_done(done, note_ids))
        self._room.set()
        return True

    def _on_batch_done(
        self, future: asyncio.Future[mongo.BatchResult], note_ids: list[str]
    ) -> None:
        self._pending.discard(future)
        if future.cancelled():
            return
        result = future.result()  # _write catches everything: it never raises here
        self._record(result)
        # Stored, skipped as older, or spilled (the spill file is fsynced): durable. Lost:
        # neither stored nor spilled.
        lost = set(result.failed_items) if result.lost else set()
        self._runtime.notes_stored(
            [note for index, note in enumerate(note_ids) if index not in lost],
            [note_ids[index] for index in sorted(lost)],
        )
        if self._buffer and (self._buffer_due or len(self._buffer) >= self.batch_size):
            self._submit()

    def _record(self, result: mongo.BatchResult) -> None:
        stats = self.stats
        stats.inc_value(f"{STAT_PREFIX}batches")
        stats.inc_value(f"{STAT_PREFIX}notes_upserted", result.notes_written)
        # A newer fetch of the note is already stored: settled, not an error.
        stats.inc_value(f"{STAT_PREFIX}skipped_older", result.notes_skipped_older)
        stats.inc_value(f"{STAT_PREFIX}batch_retries", result.retries)
        stats.inc_value(f"{STAT_PREFIX}errors", result.failed_attempts)
        spilled = len(result.failed_items) - result.lost
        if spilled:
            stats.inc_value(f"{STAT_PREFIX}spilled", spilled)
            stats.set_value(f"{STAT_PREFIX}spill_path", str(self.spill_path))
        if result.lost:
            stats.inc_value(f"{STAT_PREFIX}lost", result.lost)

    # -- writer thread -----------------------------------------------------------

    def _write(self, batch: list[dict[str, Any]]) -> mongo.BatchResult:
        """Runs on the writer thread: store *batch*, spill what cannot be stored."""
        from pgy_spider import mongo

        assert self._client is not None
        started = time.monotonic()
        if self._server_down and time.monotonic() < self._next_probe:
            result = mongo.BatchResult(last_error="MongoDB still unreachable", unreachable=True)
            result.failed_items = set(range(len(batch)))
        else:
            result = self._try_write(batch)
        self._server_down = result.unreachable and bool(result.failed_items)
        if self._server_down and result.failed_attempts:
            self._next_probe = time.monotonic() + self.outage_probe_seconds
        if result.failed_items:
            self._spill_items([batch[i] for i in sorted(result.failed_items)], result)
        logger.debug(
            "MongoDB: batch of %s items done in %.3fs", len(batch), time.monotonic() - started
        )
        return result

    def _try_write(self, batch: list[dict[str, Any]]) -> mongo.BatchResult:
        from pgy_spider import mongo

        assert self._client is not None
        try:
            plans = mongo.build_batch_writes(batch, self.collection_name)
            return mongo.write_batch(
                self._client[self.database_name],
                plans,
                retries=0 if self._server_down else self.retries,
                backoff_s=self.retry_backoff,
            )
        except Exception as exc:  # a bug must not lose the batch: spill it all
            logger.exception("MongoDB: unexpected failure writing a batch")
            result = mongo.BatchResult(failed_attempts=1, last_error=mongo.short_error(exc))
            result.failed_items = set(range(len(batch)))
            return result

    def _spill_items(self, items: list[dict[str, Any]], result: mongo.BatchResult) -> None:
        try:
            self._spill.write(items)
        except Exception as exc:  # disk full, permissions...: say so as loudly as possible
            result.lost = len(items)
            logger.critical(
                "MongoDB: %s items could not be stored (%s) NOR written to %s (%s): they are lost",
                len(items),
                result.last_error,
                self.spill_path,
                exc,
            )
            return
        logger.error(
            "MongoDB: batch of %s items not stored after %s retries (%s); spilled to %s",
            len(items),
            result.retries,
            result.last_error,
            self.spill_path,
        )

    # -- freshness ---------------------------------------------------------------

    async def find_fresh(self, note_ids: list[str]) -> set[str]:
        """The IDs among *note_ids* stored less than ``PGY_REFRESH_HOURS`` ago: skip them.

        One query per ``FRESH_QUERY_CHUNK`` IDs, run off the event loop. Empty when
        ``PGY_REFRESH_HOURS`` is 0. Raises :class:`~pgy_spider.mongo.MongoUnavailable`
        when the lookup fails.
        """
        if not self.refresh_enabled or not note_ids:
            return set()
        from pymongo.errors import PyMongoError

        from pgy_spider import mongo

        notes = self._notes
        if notes is None:
            raise RuntimeError("MongoPipeline.find_fresh() called before open_spider()")
        cutoff = datetime.now(UTC) - timedelta(hours=self.refresh_hours)
        unique = list(dict.fromkeys(note_ids))
        fresh: set[str] = set()
        for start in range(0, len(unique), FRESH_QUERY_CHUNK):
            chunk = unique[start : start + FRESH_QUERY_CHUNK]
            try:
                fresh |= await asyncio.to_thread(mongo.find_fresh, notes, chunk, cutoff)
            except PyMongoError as exc:
                self.stats.inc_value(f"{STAT_PREFIX}errors")
                raise mongo.MongoUnavailable(
                    f"MongoDB at {mongo.mask_uri(self.uri)}: freshness lookup failed: "
                    f"{mongo.short_error(exc, self.uri)}"
                ) from exc
        return fresh
