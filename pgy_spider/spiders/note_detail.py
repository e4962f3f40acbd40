"""The ``note_detail`` spider: seeds in, one API call per distinct valid note ID.

The spider owns the run's ledger (where every seed ended up) because it is the one
that reads seeds; the API middleware decides what each answer means, pipelines
validate and store, and the spider settles each seed from the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import Request, Spider, signals
from scrapy.utils.defer import _schedule_coro
from scrapy.utils.job import job_dir

from pgy_spider import api, noteid, seeds
from pgy_spider.failures import DuplicateNote, FailureRecord, InvalidNoteResponse, NoteFailed
from pgy_spider.handler import META_API, PendingRequest
from pgy_spider.ledger import STATE_FILE, Ledger
from pgy_spider.middlewares.api import (
    META_ATTEMPTS,
    META_ENVELOPE,
    META_LAST_CODE,
    META_REQUEST_ID,
    PgyApiMiddleware,
)
from pgy_spider.mongo import MongoUnavailable
from pgy_spider.outputs import (
    CLOSE_SEED_ERROR,
    CLOSE_STORAGE_ERROR,
    FailedFile,
    exit_code_for,
    format_path,
    write_summary,
)
from pgy_spider.seedurl import fetch_seed_url

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

META_SEQ = "pgy_seq"
META_NOTE_ID = "pgy_note_id"
FRESH_BATCH = 500
DEFAULT_FEED_URI = "output/notes.jsonl"


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
        self.ids_files = [p.strip() for p in (ids_file or "").split(",") if p.strip()]
        self.ids_inline = ids or ""
        self.ids_url = (ids_url or "").strip() or None
        if not (self.ids_files or self.ids_inline.strip() or self.ids_url):
            raise api.ConfigError(
                "no seeds given: pass -a ids_file=PATH[,PATH...], -a ids=ID[,ID...] "
                "or -a ids_url=URL"
            )

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        # Honour CONCURRENT_REQUESTS: all calls go to one host, whose per-domain
        # limit (Scrapy's default 8) would otherwise cap the crawl silently.
        if settings.getpriority("CONCURRENT_REQUESTS_PER_DOMAIN") in (None, 0, 20):
            settings.set(
                "CONCURRENT_REQUESTS_PER_DOMAIN",
                settings.getint("CONCURRENT_REQUESTS"),
                priority="spider",
            )
        if not settings.getdict("FEEDS"):
            # No -o/-O/FEEDS given: the embedded default JSON-lines feed. A resumed
            # job appends to it, a new run replaces it.
            jobdir = job_dir(settings)
            resuming = bool(jobdir and Path(jobdir, STATE_FILE).exists())
            settings.set(
                "FEEDS",
                {
                    settings.get("PGY_FEED_URI") or DEFAULT_FEED_URI: {
                        "format": "jsonlines",
                        "encoding": "utf-8",
                        "overwrite": not resuming,
                    }
                },
                priority="spider",
            )

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider._setup(crawler)
        return spider

    def _setup(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.api_base = api.resolve_base_url(
            settings.get("PGY_REGION") or _env("PGY_REGION"), settings.get("PGY_BASE_URL")
        )
        self.check_time = settings.getbool("PGY_ID_TIME_CHECK", True)
        self.progress_interval = settings.getfloat("PGY_PROGRESS_INTERVAL", 60.0)
        self.jobdir = job_dir(settings)
        self.started_at = datetime.now(UTC)
        params = self._path_params()
        self.failed_path = format_path(
            settings.get("PGY_FAILED_PATH") or "output/failed.jsonl", params
        )
        self.summary_path = format_path(
            settings.get("PGY_SUMMARY_PATH") or "output/summary.json", params
        )
        self.seeds_path_dir = self.jobdir or str(Path(self.summary_path).parent)
        previous = Ledger.load(self.jobdir) if self.jobdir else None
        self.resumed = previous is not None
        self.ledger = previous or Ledger()
        self.ledger.sessions += 1
        self.failed_file = FailedFile(self.failed_path, append=self.resumed)
        self._seeds_exhausted = False
        # Scrapy 2.19 keeps pulling start requests while the downloader is busy, so a
        # 10-million-line seed file would all sit in the scheduler. Read ahead only this far.
        self._max_outstanding = max(2 * settings.getint("CONCURRENT_REQUESTS"), 32)
        self._room: asyncio.Event | None = None
        self._fatal_reason: str | None = None
        self._last_progress = (time.monotonic(), 0)
        crawler.signals.connect(self._item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self._item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(self._item_error, signal=signals.item_error)
        crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        if self.api_base.startswith("http://") and not _is_loopback(self.api_base):
            logger.warning(
                "API base %s is plain HTTP: the token travels unencrypted "
                "(the cn region has no HTTPS)",
                self.api_base,
            )

    def _path_params(self) -> dict[str, Any]:
        job = getattr(self, "_job", None) or getattr(self, "job", None) or ""
        return {
            "name": self.name,
            "time": self.started_at.replace(microsecond=0).isoformat().replace(":", "-"),
            "job": job,
            "_job": job,
        }

    # -- seeds -> requests --------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        if self.ledger.finished:
            logger.info("This job already finished (JOBDIR); nothing left to do")
            return
        if self.resumed:
            logger.info(
                "Resuming: %s seeds already read, %s pending notes re-issued first",
                self.ledger.seeds_read,
                self.ledger.pending,
            )
        # Notes left pending by the previous session come first (already counted as read).
        for seq, note_id in sorted(self.ledger.outstanding.items()):
            yield self._note_request(note_id, seq)
        paths = list(self.ids_files)
        if self.ids_url:
            downloaded = await fetch_seed_url(
                self.crawler, self.ids_url, self.seeds_path_dir, reuse=bool(self.jobdir)
            )
            if downloaded is None:
                self._fatal_reason = CLOSE_SEED_ERROR
                return
            paths.append(downloaded)
        try:
            async for request in self._requests_from_seeds(paths):
                yield request
        except seeds.SeedFileError as exc:
            # E.g. a seed file changed under a paused job: stop, say why, call no more.
            self._stop_reading(CLOSE_SEED_ERROR, str(exc))
        except MongoUnavailable as exc:
            # Freshness cannot be checked: going on would pay again for stored notes.
            self._stop_reading(CLOSE_STORAGE_ERROR, f"{exc}; stopping before paying for notes")

    def _stop_reading(self, reason: str, message: str) -> None:
        logger.error("%s", message)
        self._fatal_reason = reason
        _schedule_coro(self.crawler.engine.close_spider_async(reason=reason))

    async def _requests_from_seeds(self, paths: list[str]) -> AsyncIterator[Request]:
        fresh = self._fresh_lookup()
        batch: list[seeds.Seed] = []
        ledger = self.ledger
        for count, seed in enumerate(self._iter_seeds(paths)):
            if ledger.pending >= self._max_outstanding:
                await self._wait_for_room()
            elif count % 2048 == 2047:
                await asyncio.sleep(0)  # a long run of bad seeds must not starve the loop
            if fresh is None:
                request = self._take_seed(seed, frozenset())
                if request is not None:
                    yield request
                continue
            batch.append(seed)
            if len(batch) >= FRESH_BATCH:
                for request in await self._take_batch(batch, fresh):
                    yield request
                batch = []
        if batch and fresh is not None:
            for request in await self._take_batch(batch, fresh):
                yield request
        self._seeds_exhausted = True

    async def _wait_for_room(self) -> None:
        """Wait until enough issued notes have settled to read more seeds."""
        if self._room is None:
            self._room = asyncio.Event()
        while self.ledger.pending >= self._max_outstanding:
            self._room.clear()
            await self._room.wait()

    def _settled(self) -> None:
        if self._room is not None and self.ledger.pending < self._max_outstanding:
            self._room.set()

    def _iter_seeds(self, paths: list[str]) -> Iterator[seeds.Seed]:
        """Inline seeds first, then the files; after a resume, from the cursor on."""
        check_time = self.check_time
        cursor = self.ledger.cursor
        if cursor is not None and cursor[0] >= 0:
            # Resume inside the files: seek to the last consumed seed and skip it.
            rest = seeds.iter_seeds(
                paths, seeds.SeedPos(cursor[0], cursor[1]), cursor[2], check_time=check_time
            )
            next(rest, None)
            yield from rest
            return
        done_seq = -1 if cursor is None else cursor[2]
        last_seq = -1
        for seed in seeds.iter_inline(self.ids_inline, 0, check_time=check_time):
            last_seq = seed.seq
            if seed.seq > done_seq:
                yield seed
        yield from seeds.iter_seeds(paths, None, last_seq + 1, check_time=check_time)

    def _fresh_lookup(self) -> Callable[[list[str]], Awaitable[set[str]]] | None:
        try:
            from pgy_spider.pipelines.mongo import MongoPipeline
        except ImportError:  # pragma: no cover - storage not installed
            return None
        pipeline = self.crawler.get_item_pipeline(MongoPipeline)
        if pipeline is None or not getattr(pipeline, "refresh_enabled", True):
            return None
        return pipeline.find_fresh

    async def _take_batch(
        self, batch: list[seeds.Seed], fresh: Callable[[list[str]], Awaitable[set[str]]]
    ) -> list[Request]:
        candidates = [s.note_id for s in batch if s.note_id is not None]
        fresh_ids = await fresh(candidates) if candidates else set()
        requests = []
        for seed in batch:
            request = self._take_seed(seed, fresh_ids)
            if request is not None:
                requests.append(request)
        return requests

    def _take_seed(self, seed: seeds.Seed, fresh_ids: set[str] | frozenset[str]) -> Request | None:
        """Settle or issue one seed, in reading order, and move the resume cursor past it."""
        ledger = self.ledger
        ledger.cursor = (seed.pos.file_index, seed.pos.offset, seed.seq)
        note_id = seed.note_id
        if note_id is None:
            reason = seed.reason or noteid.REJECT_INVALID_ID
            ledger.reject(reason)
            self.failed_file.write(FailureRecord(None, None, reason, 0, seed=seed.raw))
            return None
        if not ledger.seen.add(noteid.note_id_to_int(note_id)):
            ledger.duplicate()
            return None
        if note_id in fresh_ids:
            ledger.skip_fresh()
            return None
        ledger.issue(seed.seq, note_id)
        return self._note_request(note_id, seed.seq)

    def _note_request(self, note_id: str, seq: int) -> Request:
        return Request(
            api.note_url(self.api_base, note_id),
            callback=self.parse_note,
            errback=self.on_error,
            dont_filter=True,
            meta={
                META_API: True,
                META_NOTE_ID: note_id,
                META_SEQ: seq,
                "dont_retry": True,  # our middleware retries by business code
                "dont_redirect": True,
                "handle_httpstatus_all": True,  # 4xx/5xx may carry a JSON code
            },
        )

    # -- outcomes -----------------------------------------------------------------------

    def parse_note(self, response: Response) -> dict[str, Any] | None:
        # A plain function, not a generator: Scrapy inspects the source of generator
        # callbacks on every response (a return-value check), a measurable cost per note.
        envelope = response.meta[META_ENVELOPE]
        data = envelope.data
        if not isinstance(data, dict) or not data:
            self._fail(
                response.meta,
                FailureRecord(
                    response.meta[META_NOTE_ID],
                    envelope.code,
                    api.REASON_EMPTY_DATA,
                    response.meta.get(META_ATTEMPTS, 1),
                    envelope.request_id,
                ),
            )
            return None
        return {
            "noteId": response.meta[META_NOTE_ID],
            "data": data,
            "requestId": envelope.request_id,
        }

    def on_error(self, failure: Failure) -> None:
        exc = failure.value
        meta = failure.request.meta  # type: ignore[attr-defined]
        if isinstance(exc, PendingRequest):
            return  # not settled: stays pending, re-issued when the job resumes
        if isinstance(exc, NoteFailed):
            record = exc.record
        else:
            mw = self.crawler.get_downloader_middleware(PgyApiMiddleware)
            secrets = mw.tokens.secrets if mw else ()
            record = FailureRecord(
                meta.get(META_NOTE_ID),
                None,
                api.REASON_TRANSPORT,
                meta.get(META_ATTEMPTS, 0),
                message=api.mask_secrets(f"{type(exc).__name__}: {exc}", secrets),
            )
        self._fail(meta, record)

    def _fail(self, meta: dict[str, Any], record: FailureRecord) -> None:
        if self.ledger.settle_failed(meta[META_SEQ], record.reason):
            self.failed_file.write(record)
            self.crawler.stats.inc_value(f"pgy/failed/{record.reason}")
            self._settled()

    def _item_scraped(self, item: Any, response: Response) -> None:
        if self.ledger.settle_written(response.meta[META_SEQ]):
            self._settled()

    def _item_dropped(self, item: Any, response: Response, exception: BaseException) -> None:
        meta = response.meta
        if isinstance(exception, DuplicateNote):
            self.ledger.settle_duplicate(meta[META_SEQ])
            self._settled()
            return
        reason = (
            api.REASON_INVALID_RESPONSE
            if isinstance(exception, InvalidNoteResponse)
            else ("dropped")
        )
        self._fail(
            meta,
            FailureRecord(
                meta.get(META_NOTE_ID),
                meta.get(META_LAST_CODE),
                reason,
                meta.get(META_ATTEMPTS, 1),
                meta.get(META_REQUEST_ID),
                message=str(exception),
            ),
        )

    def _item_error(self, item: Any, response: Response, failure: Failure) -> None:
        meta = response.meta
        self._fail(
            meta,
            FailureRecord(
                meta.get(META_NOTE_ID),
                meta.get(META_LAST_CODE),
                "pipeline_error",
                meta.get(META_ATTEMPTS, 1),
                meta.get(META_REQUEST_ID),
                message=type(failure.value).__name__,
            ),
        )

    # -- progress and the end --------------------------------------------------------------

    def _spider_opened(self) -> None:
        if self.progress_interval > 0:
            self._progress_task = asyncio.ensure_future(self._progress_loop())

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval)
            self.log_progress()

    def log_progress(self) -> None:
        ledger = self.ledger
        now = time.monotonic()
        then, settled_then = self._last_progress
        rate = (ledger.settled - settled_then) / max(now - then, 1e-9) * 60
        self._last_progress = (now, ledger.settled)
        logger.info(
            "Progress: %s/%s seeds read settled%s, %.0f seeds/min, %s written, %s failed, "
            "%s rejected, %s pending",
            ledger.settled,
            ledger.seeds_read,
            "" if self._seeds_exhausted else " (still reading)",
            rate,
            ledger.notes_written,
            sum(ledger.failed.values()),
            sum(ledger.rejected.values()),
            ledger.pending,
        )

    def closed(self, reason: str) -> None:
        reason = self._fatal_reason or reason
        task = getattr(self, "_progress_task", None)
        if task is not None:
            task.cancel()
        ledger = self.ledger
        ledger.finished = reason == "finished" and self._seeds_exhausted and not ledger.pending
        self.failed_file.close()
        stats = self.crawler.stats
        for key, value in ledger.counts().items():
            if isinstance(value, dict):  # rejected_by_reason -> pgy/rejected/<reason>
                for why, count in value.items():
                    stats.set_value(f"pgy/{key.removesuffix('_by_reason')}/{why}", count)
            else:
                stats.set_value(f"pgy/{key}", value)
        mw = self.crawler.get_downloader_middleware(PgyApiMiddleware)
        code = exit_code_for(reason, stats.get_stats())
        stats.set_value("pgy/exit_code", code)
        if self.jobdir:
            ledger.save(self.jobdir)
        summary = {
            "spider": self.name,
            "finish_reason": reason,
            "exit_code": code,
            "start_time": self.started_at.isoformat(),
            "end_time": datetime.now(UTC).isoformat(),
            "api_base": self.api_base,
            **ledger.counts(),
            "requests_sent": stats.get_value("pgy/requests_sent", 0),
            "api_calls": stats.get_value("pgy/api_calls", 0),
            "calls_by_code": _prefixed(stats.get_stats(), "pgy/code/"),
            "retries": stats.get_value("pgy/retry/count", 0),
            "possibly_billed": stats.get_value("pgy/possibly_billed", 0),
            "tokens": mw.tokens.report() if mw else {},
            "failed_path": self.failed_path,
            "mongo_spill_path": stats.get_value("pgy/mongo/spill_path"),
            "resumed": self.resumed,
            "sessions": ledger.sessions,
            "jobdir": self.jobdir,
        }
        write_summary(self.summary_path, summary)
        log = logger.info if code == 0 else logger.error
        log(
            "Run ended (%s, exit %s): %s notes written, %s failed, %s rejected, %s pending; "
            "summary in %s",
            reason,
            code,
            ledger.notes_written,
            sum(ledger.failed.values()),
            sum(ledger.rejected.values()),
            ledger.pending,
            self.summary_path,
        )


def _prefixed(stats: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in sorted(stats.items()) if k.startswith(prefix)}


def _env(name: str) -> str | None:
    import os

    return os.environ.get(name)


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")
