"""Run accounting: where every seed of the run went, as one Scrapy extension.

It owns the ledger (:mod:`pgy_spider.ledger`), the failed file, the resume state in
``JOBDIR`` (:mod:`pgy_spider.jobstate`), the exit status and the summary. The spider
reports each seed as it reads it (:meth:`RunAccounting.issue`, ``reject``, ``duplicate``,
``skip_fresh``) and each failed note (:meth:`RunAccounting.settle_failed`); notes that
reach the feed are settled from Scrapy's ``item_scraped`` signal, after the feed has
written them. Every operation is keyed by the seed's sequence number, so settling twice
never counts twice.

In a run across processes (``PGY_QUEUE_URL``) the ledger counts this process's own share
(:class:`~pgy_spider.queue.share.ProcessShare`) and every settle also goes to the run
(:meth:`QueueMember.settle <pgy_spider.queue.member.QueueMember.settle>`), which gives the
call's place in flight back once Redis has it; when the crawl closes, the notes this process
still holds go back to the run before the summary is written.

With ``JOBDIR`` the state is checkpointed every ``PGY_CHECKPOINT_SECONDS``. A job killed
with SIGKILL resumes from its last checkpoint, and the output files tell it what was done
after that checkpoint (:mod:`pgy_spider.recovery`): a note found in a feed or the failed
file is settled from there, not requested again, and the seeds read after the checkpoint
are read again with the counts rolled back to it, so they are counted once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from pgy_spider import exitcodes, jobstate, meta, reasons, recovery
from pgy_spider.budget import BudgetStateError
from pgy_spider.failures import DuplicateNote, FailureRecord
from pgy_spider.feeds import feeds_of
from pgy_spider.jobstate import JobState, SeenJournal
from pgy_spider.ledger import Ledger
from pgy_spider.noteid import note_id_to_int
from pgy_spider.outputfile import open_output
from pgy_spider.outputs import FailedFile, write_summary
from pgy_spider.queue.keys import DUPLICATE, FAILED, WRITTEN
from pgy_spider.queue.share import ProcessShare
from pgy_spider.runtime import runtime_of

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from pgy_spider.seeds import Seed

logger = logging.getLogger(__name__)

# With MongoDB as the truth: the IDs of the notes stored, one JSON line each (in JOBDIR).
STORED_LOG = "pgy-stored.jsonl"


class RunAccounting:
    def __init__(self, crawler: Crawler) -> None:
        runtime = runtime_of(crawler)
        config = runtime.config
        if config is None or crawler.spider is None:
            raise NotConfigured  # the runtime closes the crawl and says why
        self.crawler = crawler
        self.stats = crawler.stats
        self._runtime = runtime
        self._in_flight = runtime.in_flight
        self.jobdir = config.jobdir
        self.started_at = runtime.started_at
        self.paths = runtime.paths
        self._checkpoint_seconds = config.checkpoint_seconds
        self._queue = runtime.queue  # None: a run of one process
        state = jobstate.load(self.jobdir)
        self.resumed = state is not None
        ledger = Ledger() if self._queue is None else ProcessShare()
        self.state = state or JobState(ledger=ledger, started_at=self.started_at.isoformat())
        self.ledger = self.state.ledger
        self.ledger.sessions += 1
        feeds = feeds_of(crawler.settings.getdict("FEEDS"), self.paths.params)
        self._durable_paths = [f.path for f in feeds if f.durable and f.path]
        # A JOBDIR job whose feeds a kill would lose, with MongoDB on: the store is the
        # truth. A note then counts as written once MongoDB (or the spill file) has it, and
        # its ID is logged in JOBDIR, the file a resumed job reads back like a feed.
        self._store_truth = bool(self.jobdir) and not self._durable_paths and bool(config.mongo)
        runtime.store_is_truth = self._store_truth
        self._awaiting_store: dict[str, dict[str, Any]] = {}
        self._stored_log: IO[bytes] | None = None
        if self._store_truth:
            assert self.jobdir is not None
            self._durable_paths.append(str(Path(self.jobdir, STORED_LOG)))
            runtime.on_notes_stored(self._notes_stored)
        # Notes the outputs show as settled but the counts do not count yet (written after
        # the checkpoint a killed session resumed from): settled from there, not
        # requested, when their seed comes round. Kept in every checkpoint until then.
        self._settled_later = self.state.settled_later
        self._journal: SeenJournal | None = None
        if self.jobdir:
            self._open_job(feeds)
        elif self._queue is None:
            logger.info(
                "This run is not resumable: if it is stopped or killed, running it again "
                "starts over. To make it resumable, add -s JOBDIR=jobs/NAME"
            )
        self.failed_file = FailedFile(
            self.paths.failed, append=self.resumed, on_error=runtime.output_failed
        )
        self.reading_done = False
        self.exit_code: int | None = None
        self._room: asyncio.Event | None = None
        self._room_limit = 0
        self._checkpoints: Any = None
        crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self._item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self._item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(self._item_error, signal=signals.item_error)
        crawler.signals.connect(self._spider_error, signal=signals.spider_error)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    # -- the job's state -------------------------------------------------------------------

    def _open_job(self, feeds: Iterable[Any]) -> None:
        assert self.jobdir is not None
        Path(self.jobdir).mkdir(parents=True, exist_ok=True)
        state = self.state
        if state.migrated_from is not None:
            # Format 2 kept the dedup set in its pickle: it becomes the journal.
            records = jobstate.write_journal(self.jobdir, self.ledger.seen)
        else:
            records = len(self.ledger.seen) if self.resumed else 0
        self._journal = SeenJournal(self.jobdir, records)
        if self._store_truth:
            self._stored_log = open_output(
                Path(self.jobdir, STORED_LOG),
                "ab" if self.resumed else "wb",
                on_error=self._runtime.output_failed,
            )
        if not self.resumed:
            # A new job: files it will replace are emptied now, so that the lengths a
            # checkpoint records are this job's (the feed opens only at the first note).
            for feed in feeds:
                if feed.durable and feed.overwrite and feed.path:
                    Path(feed.path).parent.mkdir(parents=True, exist_ok=True)
                    Path(feed.path).write_bytes(b"")
            return
        self._recover()

    def _recover(self) -> None:
        """Read back what the outputs hold past the checkpoint (see the module docstring)."""
        outputs = self.state.outputs
        written: set[str] = set()
        torn = 0
        for path in self._durable_paths:
            if path not in outputs:
                continue  # not a feed of this job's earlier sessions
            repair = recovery.repair_csv if path.lower().endswith(".csv") else recovery.repair_jsonl
            tail = repair(path, outputs[path])
            written |= tail.notes
            torn += tail.torn
        failed_tail = recovery.Tail()
        if self.paths.failed in outputs:
            failed_tail = recovery.repair_jsonl(self.paths.failed, outputs[self.paths.failed])
            torn += failed_tail.torn
        later = self._settled_later
        for note_id in written:
            later[note_id] = None
        for note_id, record in failed_tail.failed.items():
            later[note_id] = {k: record.get(k) for k in ("reason", "code", "attempts")}
        self.state.rejects_later += failed_tail.rejects
        ledger = self.ledger
        for seq, note_id in list(ledger.outstanding.items()):
            if note_id in later:
                found = later.pop(note_id)
                if found is None:
                    ledger.settle_written(seq)
                else:
                    ledger.settle_failed(seq, str(found["reason"]))
        logger.info(
            "Resuming from the last checkpoint: the outputs hold %s notes and %s failed or "
            "rejected seeds written since, which are not requested again%s",
            len(written),
            len(failed_tail.failed) + failed_tail.rejects,
            f"; a torn last line ({torn} bytes) was cut off" if torn else "",
        )

    def checkpoint(self, *, durable: bool = False) -> None:
        """Make the resume state durable (with JOBDIR): the counts, the cursor, the notes
        in flight, and how long each output file is now."""
        if not self.jobdir or self._journal is None:
            return
        state_file = str(jobstate.state_path(self.jobdir))
        try:
            records = self._journal.flush()
            if durable:
                self._journal.sync()
            paths = [*self._durable_paths, self.paths.failed]
            self.state.outputs = {path: recovery.file_size(path) for path in paths}
            # For the record: the budget resumes from its own mark, never below this.
            self.state.spent = self._runtime.budget.spent
            jobstate.save(self.jobdir, self.state, records, durable=durable)
        except OSError as exc:
            self._runtime.output_failed(state_file, exc)

    def _spider_opened(self) -> None:
        if self.jobdir:
            self.checkpoint()
            self._checkpoints = create_looping_call(self.checkpoint)
            self._checkpoints.start(self._checkpoint_seconds, now=False)

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
        key = note_id_to_int(note_id)
        if not self.ledger.seen.add(key):
            return True
        if self._journal is not None:
            self._journal.append(key)
        return False

    @property
    def _frozen(self) -> bool:
        """After an output failed nothing more is counted: the cursor stays at the last
        seed whose outcome is on disk, where the resumed job reads on."""
        return self._runtime.output_error is not None

    def issue(self, seed: Seed) -> bool:
        """The seed's note is to be requested; False when it needs no request (accounted
        for already, or settled by what the outputs show)."""
        note_id = seed.note_id
        assert note_id is not None
        if self._frozen or not self.ledger.issue(seed.seq, seed.pos, note_id):
            return False
        later = self._settled_later
        if not later or note_id not in later:
            return True
        record = later.pop(note_id)
        if record is None:
            self.ledger.settle_written(seed.seq)
        else:
            self.ledger.settle_failed(seed.seq, str(record["reason"]))
        return False

    def reject(self, seed: Seed) -> bool:
        """Record a rejected seed; False when its record could not be written."""
        reason = seed.reason or reasons.INVALID_ID
        if self.state.rejects_later:
            # Read again after a kill: its record is in the failed file already.
            if self.ledger.reject(seed.seq, seed.pos, reason):
                self.state.rejects_later -= 1
            return True
        if self._frozen:
            return False  # cannot be recorded: stays unread, read again on resume
        if self.failed_file.write(FailureRecord(None, None, reason, 0, seed=seed.raw)):
            self.ledger.reject(seed.seq, seed.pos, reason)
            return True
        return False

    def duplicate(self, seed: Seed) -> None:
        if not self._frozen:
            self.ledger.duplicate(seed.seq, seed.pos)

    def skip_fresh(self, seed: Seed) -> None:
        if not self._frozen:
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

    # Each takes the request's meta: the settled call gives its place in flight back.

    def settle_written(self, request_meta: dict[str, Any]) -> None:
        # After a failed feed write nothing counts as written: it may not be on disk.
        if self._queue is not None:
            settled = not self._frozen and self.ledger.settle_written(request_meta[meta.SEQ])
            self._queue.settle(request_meta, WRITTEN if settled else None)
            if settled:
                self._settled()
            return
        self._in_flight.give_back(request_meta)
        if not self._frozen and self.ledger.settle_written(request_meta[meta.SEQ]):
            self._settled()

    def settle_duplicate(self, request_meta: dict[str, Any]) -> None:
        if self._queue is not None:
            settled = self.ledger.settle_duplicate(request_meta[meta.SEQ])
            self._queue.settle(request_meta, DUPLICATE if settled else None)
            if settled:
                self._settled()
            return
        self._in_flight.give_back(request_meta)
        if self.ledger.settle_duplicate(request_meta[meta.SEQ]):
            self._settled()

    def settle_failed(self, request_meta: dict[str, Any], record: FailureRecord) -> None:
        seq = request_meta[meta.SEQ]
        settled = (
            seq in self.ledger.outstanding
            and self.failed_file.write(record)
            and self.ledger.settle_failed(seq, record.reason)
        )
        if self._queue is not None:
            self._queue.settle(request_meta, FAILED if settled else None, record.reason)
        else:
            self._in_flight.give_back(request_meta)
        if settled:
            self.stats.inc_value(f"pgy/failed/{record.reason}")
            self._settled()

    def unsettled(self, request_meta: dict[str, Any]) -> None:
        """The call ended without settling its note (it stays pending)."""
        self._in_flight.give_back(request_meta)

    def _item_scraped(self, item: Any, response: Response) -> None:
        request_meta = response.meta
        if meta.SEQ not in request_meta:
            return
        if self._store_truth:
            # Written when the note store has it (_notes_stored), not when exported.
            self._awaiting_store[request_meta[meta.NOTE_ID]] = request_meta
            return
        self.settle_written(request_meta)

    def _notes_stored(self, stored: list[str], lost: list[str]) -> None:
        log = self._stored_log
        for note_id in stored:
            request_meta = self._awaiting_store.pop(note_id, None)
            if request_meta is None:
                continue
            if log is not None:
                log.write(orjson.dumps({"noteId": note_id}) + b"\n")
            self.settle_written(request_meta)
        for note_id in lost:
            request_meta = self._awaiting_store.pop(note_id, None)
            if request_meta is not None:
                self.unsettled(request_meta)  # neither stored nor spilled: stays pending

    def _item_dropped(self, item: Any, response: Response, exception: BaseException) -> None:
        request_meta = response.meta
        if meta.SEQ not in request_meta:
            return
        if isinstance(exception, DuplicateNote):
            self.settle_duplicate(request_meta)
            return
        record = failure_from_meta(request_meta, reasons.DROPPED, str(exception))
        self.settle_failed(request_meta, record)

    def _item_error(self, item: Any, response: Response, failure: Failure) -> None:
        request_meta = response.meta
        if meta.SEQ in request_meta:
            message = type(failure.value).__name__
            self.settle_failed(
                request_meta, failure_from_meta(request_meta, reasons.PIPELINE_ERROR, message)
            )

    def _spider_error(self, failure: Failure, response: Response) -> None:
        # A callback that raised: its note stays pending, its call needs no place.
        self.unsettled(response.meta)

    # -- totals and the end -----------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        return self.ledger.counts()

    def _spider_closed(self, spider: Spider, reason: str) -> Coroutine[Any, Any, None] | None:
        if self._queue is not None:
            return self._close_in_run(spider, reason)
        self._close(spider, reason)
        return None

    async def _close_in_run(self, spider: Spider, reason: str) -> None:
        """The notes still held go back to the run first: the summary counts them pending."""
        assert self._queue is not None
        await self._queue.close(self._runtime.stop_reason or reason)
        self._close(spider, reason)

    def _close(self, spider: Spider, reason: str) -> None:
        if self._checkpoints is not None and self._checkpoints.running:
            self._checkpoints.stop()
        self._close_budget()
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
        budget = self._runtime.budget
        stats.set_value("pgy/billed", budget.spent)
        stats.set_value("pgy/budget", budget.limit)
        self.checkpoint(durable=True)
        self.close_files()
        outcomes = self._runtime.storage_outcomes()
        code = exitcodes.exit_code_for(reason, storage_failed=any(o.failed for o in outcomes))
        self.exit_code = code
        stats.set_value("pgy/exit_code", code)
        summary = self._summary(spider.name, reason, code, counts, outcomes)
        try:
            write_summary(self.paths.summary, summary)
        except OSError as exc:
            self._runtime.output_failed(self.paths.summary, exc)
        log = logger.info if code == exitcodes.OK else logger.error
        log(
            "Run ended (%s, exit %s): %s notes written, %s failed, %s rejected, %s pending%s; "
            "summary in %s",
            reason,
            code,
            counts["notes_written"],
            counts["failed"],
            counts["rejected"],
            counts["pending"],
            "" if self.reading_done else " (the seeds not read yet are in no count)",
            self.paths.summary,
        )

    def _close_budget(self) -> None:
        """The run's calls are over: the budget records exactly what the job spent."""
        try:
            self._runtime.budget.close()
        except BudgetStateError as exc:
            self._runtime.output_failed(exc.path, exc.cause)

    def close_files(self) -> None:
        self.failed_file.close()
        if self._stored_log is not None:
            self._stored_log.close()
        if self._journal is not None:
            try:
                self._journal.close()
            except OSError as exc:  # what it could not write was never counted
                self._runtime.output_failed(str(self._journal.path), exc)

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
        output_error = self._runtime.output_error
        return {
            "spider": spider_name,
            "finish_reason": reason,
            "exit_code": code,
            "start_time": self.started_at.isoformat(),
            "end_time": datetime.now(UTC).isoformat(),
            "api_base": config.base_url if config else None,
            **counts,
            # False: the run stopped before the end of its input; the seeds after the last
            # one read are in no count above (a resumed job, or the run again, reads them).
            "all_seeds_read": self.reading_done,
            "requests_sent": stats.get("pgy/requests_sent", 0),
            "api_calls": stats.get("pgy/api_calls", 0),
            "calls_by_code": _prefixed(stats, "pgy/code/"),
            "retries": stats.get("pgy/retry/count", 0),
            "possibly_billed": stats.get("pgy/possibly_billed", 0),
            "billed": self._runtime.budget.spent,
            "budget": self._runtime.budget.limit,
            "tokens": self._runtime.vault.report(),
            "failed_path": self.paths.failed,
            "mongo_spill_path": spill,
            "output_error": (
                {"path": output_error[0], "error": output_error[1]} if output_error else None
            ),
            "resumed": self.resumed,
            "sessions": self.ledger.sessions,
            "jobdir": self.jobdir,
            **self._run_keys(),
        }

    def _run_keys(self) -> dict[str, Any]:
        """In a run across processes: which run, and this process's name in it."""
        if self._queue is None:
            return {}
        return {"run": self._queue.config.run, "worker": self._queue.worker}

    def final_exit_code(self) -> int:
        """The exit status once Scrapy has stored the feeds: a feed that could not be
        stored holds notes that were paid for."""
        code = exitcodes.ERROR if self.exit_code is None else self.exit_code
        stats = self.stats.get_stats()
        failed_feed = any(k.startswith("feedexport/failed_count/") for k in stats)
        if code == exitcodes.OK and (failed_feed or self._runtime.output_error):
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
