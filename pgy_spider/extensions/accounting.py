"""Run accounting: where every seed of the run went, as one Scrapy extension.

It owns the ledger (:mod:`pgy_spider.ledger`), the failed file, the output paths
(computed once), the resume state in ``JOBDIR``, the exit status and the summary. The
spider reports each seed as it reads it (:meth:`RunAccounting.issue`, ``reject``,
``duplicate``, ``skip_fresh``) and each failed note (:meth:`RunAccounting.settle_failed`);
notes that reach the outputs are settled from Scrapy's item signals. Every operation is
keyed by the seed's sequence number, so settling twice never counts twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

from pgy_spider import exitcodes, jobstate, meta, reasons
from pgy_spider.failures import DuplicateNote, FailureRecord, InvalidNoteResponse
from pgy_spider.ledger import Ledger
from pgy_spider.noteid import note_id_to_int
from pgy_spider.outputs import FailedFile, write_summary
from pgy_spider.runtime import runtime_of

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from pgy_spider.seeds import Seed

logger = logging.getLogger(__name__)


class RunAccounting:
    def __init__(self, crawler: Crawler) -> None:
        runtime = runtime_of(crawler)
        config = runtime.config
        spider = crawler.spider
        if config is None or spider is None:
            raise NotConfigured  # the runtime closes the crawl and says why
        self.crawler = crawler
        self.stats = crawler.stats
        self._runtime = runtime
        self.jobdir = config.jobdir
        self.started_at = runtime.started_at
        self.paths = runtime.paths
        previous = jobstate.load(self.jobdir)
        self.resumed = previous is not None
        self.ledger = previous or Ledger()
        self.ledger.sessions += 1
        self.failed_file = FailedFile(self.paths.failed, append=self.resumed)
        self.reading_done = False
        self.exit_code: int | None = None
        self._room: asyncio.Event | None = None
        self._room_limit = 0
        crawler.signals.connect(self._item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self._item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(self._item_error, signal=signals.item_error)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    # -- seeds as they are read -------------------------------------------------------

    @property
    def finished(self) -> bool:
        """The job finished in an earlier session: nothing is left to do."""
        return self.ledger.finished

    def pending_notes(self) -> list[tuple[int, str]]:
        """(seq, note ID) of every note issued and not settled, oldest first."""
        return sorted(self.ledger.outstanding.items())

    @property
    def cursor(self) -> tuple[int, int, int] | None:
        """(file index, offset, seq) of the last seed read: where reading resumes."""
        return self.ledger.cursor

    def seen_before(self, note_id: str) -> bool:
        """Whether this note ID was read earlier in the job (it is remembered now)."""
        return not self.ledger.seen.add(note_id_to_int(note_id))

    def issue(self, seed: Seed) -> bool:
        """The seed's note is requested; False when this seed was accounted for already."""
        assert seed.note_id is not None
        return self.ledger.issue(seed.seq, seed.pos, seed.note_id)

    def reject(self, seed: Seed) -> None:
        reason = seed.reason or reasons.INVALID_ID
        if self.ledger.reject(seed.seq, seed.pos, reason):
            self.failed_file.write(FailureRecord(None, None, reason, 0, seed=seed.raw))

    def duplicate(self, seed: Seed) -> None:
        self.ledger.duplicate(seed.seq, seed.pos)

    def skip_fresh(self, seed: Seed) -> None:
        self.ledger.skip_fresh(seed.seq, seed.pos)

    def done_reading(self) -> None:
        """Every seed has been read."""
        self.reading_done = True

    # -- backlog (the read-ahead bound) ----------------------------------------------------

    @property
    def pending(self) -> int:
        return self.ledger.pending

    async def wait_for_room(self, limit: int) -> None:
        """Wait until fewer than ``limit`` issued notes are unsettled."""
        if self._room is None:
            self._room = asyncio.Event()
        self._room_limit = limit
        while self.ledger.pending >= limit:
            self._room.clear()
            await self._room.wait()

    def _settled(self) -> None:
        if self._room is not None and self.ledger.pending < self._room_limit:
            self._room.set()

    # -- notes settled ------------------------------------------------------------------

    def settle_written(self, seq: int) -> None:
        if self.ledger.settle_written(seq):
            self._settled()

    def settle_duplicate(self, seq: int) -> None:
        if self.ledger.settle_duplicate(seq):
            self._settled()

    def settle_failed(self, seq: int, record: FailureRecord) -> None:
        if self.ledger.settle_failed(seq, record.reason):
            self.failed_file.write(record)
            self.stats.inc_value(f"pgy/failed/{record.reason}")
            self._settled()

    def _item_scraped(self, item: Any, response: Response) -> None:
        seq = response.meta.get(meta.SEQ)
        if seq is not None:
            self.settle_written(seq)

    def _item_dropped(self, item: Any, response: Response, exception: BaseException) -> None:
        seq = response.meta.get(meta.SEQ)
        if seq is None:
            return
        if isinstance(exception, DuplicateNote):
            self.settle_duplicate(seq)
            return
        reason = (
            reasons.INVALID_RESPONSE
            if isinstance(exception, InvalidNoteResponse)
            else reasons.DROPPED
        )
        self.settle_failed(seq, failure_from_meta(response.meta, reason, str(exception)))

    def _item_error(self, item: Any, response: Response, failure: Failure) -> None:
        seq = response.meta.get(meta.SEQ)
        if seq is not None:
            message = type(failure.value).__name__
            self.settle_failed(
                seq, failure_from_meta(response.meta, reasons.PIPELINE_ERROR, message)
            )

    # -- totals and the end -----------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        return self.ledger.counts()

    def checkpoint(self) -> None:
        """Make the resume state durable (with JOBDIR)."""
        if self.jobdir:
            jobstate.save(self.jobdir, self.ledger)

    def _spider_closed(self, spider: Spider, reason: str) -> None:
        # A named stop (fatal code, seed error) wins over the "finished" Scrapy may also send.
        reason = self._runtime.stop_reason or reason
        ledger = self.ledger
        ledger.finished = reason == reasons.FINISHED and self.reading_done and not ledger.pending
        self.failed_file.close()
        counts = ledger.counts()
        stats = self.stats
        for key, value in counts.items():
            if isinstance(value, dict):  # rejected_by_reason -> pgy/rejected/<reason>
                for why, count in value.items():
                    stats.set_value(f"pgy/{key.removesuffix('_by_reason')}/{why}", count)
            else:
                stats.set_value(f"pgy/{key}", value)
        outcomes = self._runtime.storage_outcomes()
        code = exitcodes.exit_code_for(reason, storage_failed=any(o.failed for o in outcomes))
        self.exit_code = code
        stats.set_value("pgy/exit_code", code)
        self.checkpoint()
        summary = self._summary(spider.name, reason, code, counts, outcomes)
        write_summary(self.paths.summary, summary)
        log = logger.info if code == exitcodes.OK else logger.error
        log(
            "Run ended (%s, exit %s): %s notes written, %s failed, %s rejected, %s pending; "
            "summary in %s",
            reason,
            code,
            counts["notes_written"],
            counts["failed"],
            counts["rejected"],
            counts["pending"],
            self.paths.summary,
        )

    def _summary(
        self,
        spider_name: str,
        reason: str,
        code: int,
        counts: dict[str, Any],
        outcomes: Iterable[Any],
    ) -> dict[str, Any]:
        stats = self.stats.get_stats()
        config = self._runtime.config
        spill = next((o.spill_path for o in outcomes if o.spill_path), None)
        return {
            "spider": spider_name,
            "finish_reason": reason,
            "exit_code": code,
            "start_time": self.started_at.isoformat(),
            "end_time": datetime.now(UTC).isoformat(),
            "api_base": config.base_url if config else None,
            **counts,
            "requests_sent": stats.get("pgy/requests_sent", 0),
            "api_calls": stats.get("pgy/api_calls", 0),
            "calls_by_code": _prefixed(stats, "pgy/code/"),
            "retries": stats.get("pgy/retry/count", 0),
            "possibly_billed": stats.get("pgy/possibly_billed", 0),
            "tokens": self._runtime.vault.report(),
            "failed_path": self.paths.failed,
            "mongo_spill_path": spill,
            "resumed": self.resumed,
            "sessions": self.ledger.sessions,
            "jobdir": self.jobdir,
        }

    def final_exit_code(self) -> int:
        """The exit status once Scrapy has stored the feeds: a feed that could not be
        stored holds notes that were paid for."""
        code = exitcodes.ERROR if self.exit_code is None else self.exit_code
        stats = self.stats.get_stats()
        if code == exitcodes.OK and any(k.startswith("feedexport/failed_count/") for k in stats):
            return exitcodes.STORAGE
        return code


def failure_from_meta(
    request_meta: dict[str, Any], reason: str, message: str | None = None
) -> FailureRecord:
    """The failed-file record of a note given up on after its answer(s)."""
    return FailureRecord(
        request_meta.get(meta.NOTE_ID),
        request_meta.get(meta.LAST_CODE),
        reason,
        request_meta.get(meta.ATTEMPTS, 1),
        request_meta.get(meta.REQUEST_ID),
        message=message,
    )


def accounting_of(crawler: Crawler) -> RunAccounting:
    found = crawler.get_extension(RunAccounting)
    if found is None:
        raise RuntimeError(
            "pgy_spider.extensions.accounting.RunAccounting is not enabled: add it to EXTENSIONS"
        )
    return found


def _prefixed(stats: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in sorted(stats.items()) if k.startswith(prefix)}
