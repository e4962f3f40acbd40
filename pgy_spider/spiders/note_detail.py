"""The ``note_detail`` spider: seeds in, one API call per distinct valid note ID.

It reads as *seeds -> requests -> outcomes*: the arguments name the seeds, ``start()`` turns
each seed into a request (or settles it at once: rejected, duplicate, fresh), ``parse_note``
turns a success answer into an item and the errback records a note given up on. What each
answer means is decided by the API middleware; where each seed went is kept by the run's
accounting (:mod:`pgy_spider.extensions.accounting`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from scrapy import Request, Spider

from pgy_spider import meta, reasons, seedurl, shaping
from pgy_spider.config import queue_config
from pgy_spider.errors import ConfigError, StorageUnavailable
from pgy_spider.extensions.accounting import RunAccounting, accounting_of
from pgy_spider.failures import FailureRecord, NoteFailed
from pgy_spider.noterequest import api_request
from pgy_spider.queue.errors import QueueStop
from pgy_spider.runtime import PgyRuntime, runtime_of
from pgy_spider.seeds import Seed, SeedFileError
from pgy_spider.seedsource import LocalSeedSource, SeedSource
from pgy_spider.storage import FreshnessSource

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

# Seeds looked up for freshness in one query (with MongoDB).
FRESH_BATCH = 500
NO_SEEDS = "no seeds given: pass -a ids_file=PATH[,PATH...], -a ids=ID[,ID...] or -a ids_url=URL"


def split_paths(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def _in_a_run(crawler: Crawler) -> bool:
    """PGY_QUEUE_URL is given (a wrong one too: the runtime stops the crawl saying why)."""
    try:
        return queue_config(crawler.settings) is not None
    except ConfigError:
        return True


class NoteDetailSpider(Spider):
    name = "note_detail"

    def __init__(
        self,
        ids_file: str | None = None,
        ids: str | None = None,
        ids_url: str | None = None,
        *args: Any,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.ids_files = split_paths(ids_file)
        self.ids_inline = ids or ""
        self.ids_url = (ids_url or "").strip() or None

    @property
    def has_seeds(self) -> bool:
        inline = any(value.strip() for value in self.ids_inline.split(","))
        return bool(self.ids_files or inline or self.ids_url)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        # In a run across processes (PGY_QUEUE_URL) a process without seeds joins as a worker.
        if not spider.has_seeds and not _in_a_run(crawler):
            raise ConfigError(NO_SEEDS)
        return spider

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        shaping.shape(settings)

    # -- seeds -> requests --------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        runtime = runtime_of(self.crawler)
        accounting = self._accounting = accounting_of(self.crawler)
        self._runtime = runtime
        if accounting.finished:
            logger.info("This job already finished (JOBDIR); nothing left to do")
            accounting.done_reading()  # in an earlier session: the job stays finished
            return
        if accounting.resumed:
            counts = accounting.counts()
            logger.info(
                "Resuming: %s seeds already read, %s pending notes re-issued first",
                counts["seeds_read"],
                counts["pending"],
            )
        # Notes left pending by the previous session come first (already counted as read).
        for seq, note_id in accounting.pending_notes():
            yield self.note_request(note_id, seq)
        source = self._seed_source(runtime, accounting)
        try:
            async for request in self._requests(source, runtime.freshness(), accounting):
                yield request
        except (SeedFileError, StorageUnavailable, QueueStop) as exc:
            self._seeds_failed(exc)

    def _seeds_failed(self, exc: BaseException) -> None:
        """Reading seeds failed: stop, say why, call no more."""
        runtime = self._runtime
        if isinstance(exc, SeedFileError):
            # E.g. a seed file changed under a paused job.
            runtime.stop(reasons.SEED_ERROR, str(exc))
        elif isinstance(exc, StorageUnavailable):
            # Freshness cannot be checked: going on would pay again for stored notes.
            runtime.stop(reasons.STORAGE_ERROR, f"{exc}; stopping before paying for notes")
        elif isinstance(exc, QueueStop):
            runtime.stop(exc.reason, str(exc))
        else:  # a bug in the run's reader (a task of its own): stop rather than hang
            logger.error("Reading the run's seeds failed", exc_info=exc)
            runtime.stop(reasons.QUEUE_ERROR)

    def _seed_source(self, runtime: PgyRuntime, accounting: RunAccounting) -> SeedSource:
        config = runtime.config
        assert config is not None
        seeds_dir = accounting.paths.seeds_dir
        read_ahead = max(2 * config.concurrent_requests, 32)

        async def fetch_url(url: str) -> str:
            return await seedurl.fetch_seed_url(
                self.crawler, url, seeds_dir, reuse=bool(config.jobdir)
            )

        if runtime.queue is not None:
            from pgy_spider.queue.source import queue_source

            return queue_source(
                runtime.queue,
                (self.ids_inline, self.ids_files, self.ids_url) if self.has_seeds else None,
                fetch_url=fetch_url,
                check_time=config.id_time_check,
                outcomes=accounting,
                backlog=accounting,
                fresh=runtime.freshness(),
                read_ahead=read_ahead,
                stopping=lambda: runtime.stopping,
                on_error=self._seeds_failed,
            )
        return LocalSeedSource(
            inline=self.ids_inline,
            files=self.ids_files,
            ids_url=self.ids_url,
            fetch_url=fetch_url,
            cursor=accounting.cursor,
            backlog=accounting,
            read_ahead=read_ahead,
            check_time=config.id_time_check,
        )

    async def _requests(
        self, source: SeedSource, fresh: FreshnessSource | None, accounting: RunAccounting
    ) -> AsyncIterator[Request]:
        runtime = self._runtime
        if source.prepared:
            # Deduplicated, checked and counted upstream (a run's shared queue): request each.
            async for seed in source:
                if runtime.stopping:
                    return
                if accounting.issue(seed):
                    yield self.note_request(seed.note_id, seed.seq)  # type: ignore[arg-type]
            accounting.done_reading()
            return
        if fresh is None:
            async for seed in source:
                if runtime.stopping:
                    return  # the rest stays unread: a resumed job reads it
                request = self._take(seed, accounting, frozenset())
                if request is not None:
                    yield request
            accounting.done_reading()
            return
        batch: list[Seed] = []
        async for seed in source:
            if runtime.stopping:
                return
            batch.append(seed)
            if len(batch) >= FRESH_BATCH:
                for request in await self._take_batch(batch, fresh, accounting):
                    yield request
                batch = []
        for request in await self._take_batch(batch, fresh, accounting):
            yield request
        accounting.done_reading()

    async def _take_batch(
        self, batch: list[Seed], fresh: FreshnessSource, accounting: RunAccounting
    ) -> list[Request]:
        candidates = [s.note_id for s in batch if s.note_id is not None]
        fresh_ids = await fresh.find_fresh(candidates) if candidates else set()
        requests = []
        for seed in batch:
            request = self._take(seed, accounting, fresh_ids)
            if request is not None:
                requests.append(request)
        return requests

    def _take(
        self, seed: Seed, accounting: RunAccounting, fresh_ids: set[str] | frozenset[str]
    ) -> Request | None:
        """Settle one seed at once (rejected, duplicate, fresh) or request its note."""
        note_id = seed.note_id
        if note_id is None:
            accounting.reject(seed)
            return None
        if accounting.seen_before(note_id):
            accounting.duplicate(seed)
            return None
        if note_id in fresh_ids:
            accounting.skip_fresh(seed)
            return None
        if not accounting.issue(seed):
            return None
        return self.note_request(note_id, seed.seq)

    def note_request(self, note_id: str, seq: int) -> Request:
        config = self._runtime.config
        assert config is not None
        return api_request(
            config.base_url,
            note_id,
            callback=self.parse_note,
            errback=self.on_error,
            extra_meta={meta.SEQ: seq},
        )

    # -- answers -> outcomes -----------------------------------------------------------------

    def parse_note(self, response: Response) -> dict[str, Any]:
        # The API middleware validated and normalised the note. A plain function, not a
        # generator: Scrapy inspects the source of generator callbacks on every response.
        note: dict[str, Any] = response.meta[meta.NOTE]
        return note

    def on_error(self, failure: Failure) -> None:
        exc = failure.value
        request_meta = failure.request.meta  # type: ignore[attr-defined]
        if isinstance(exc, meta.PendingRequest):
            # Not settled: stays pending, re-issued when the job resumes.
            self._accounting.unsettled(request_meta)
            return
        if isinstance(exc, NoteFailed):
            record = exc.record
        else:
            record = FailureRecord(
                request_meta.get(meta.NOTE_ID),
                None,
                reasons.TRANSPORT_ERROR,
                request_meta.get(meta.ATTEMPTS, 0),
                message=self._runtime.vault.mask(f"{type(exc).__name__}: {exc}"),
            )
        self._accounting.settle_failed(request_meta, record)
