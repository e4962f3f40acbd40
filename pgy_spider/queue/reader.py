"""The reader role: the run's seeds read once, by whichever process holds the lease.

Any process started with seed arguments may hold it; while one does, the others wait and
try again every heartbeat, so when the holder dies (its lease expires after
``PGY_QUEUE_CLAIM_SECONDS``) another takes over from the run's durable cursor. The seeds are
read exactly as in one process (:class:`~pgy_spider.seedsource.LocalSeedSource`, the
freshness check with MongoDB) and pushed in batches, each one atomic script
(:data:`~pgy_spider.queue.scripts.PUSH`). The reader waits while the run has
``PGY_QUEUE_MAX_UNSETTLED`` notes queued and not settled: a 10-million-line file never sits in
Redis at once.

What the reader settles at once (rejected, duplicate, fresh seeds) is counted run-wide by the
push and in this process's own counts after it; rejected seeds' records stay in Redis until
they are in this process's failed file, so a reader killed in between leaves them to the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from pgy_spider.queue.member import QueueMember
from pgy_spider.seeds import Seed
from pgy_spider.seedsource import LocalSeedSource
from pgy_spider.storage import FreshnessSource

logger = logging.getLogger(__name__)

BATCH = 500  # seeds per push (and per freshness query, as in one process)
FULL_POLL = 0.2  # seconds between looks at a full queue


class ReadOutcomes(Protocol):
    """Where this process counts the seeds it settled at once (the run's accounting)."""

    def reject(self, seed: Seed) -> bool: ...

    def duplicate(self, seed: Seed) -> None: ...

    def skip_fresh(self, seed: Seed) -> None: ...


class SeedReader:
    def __init__(
        self,
        member: QueueMember,
        *,
        source: Callable[[tuple[int, int, int] | None], LocalSeedSource],
        source_bytes: Callable[[], int],
        fresh: FreshnessSource | None,
        outcomes: ReadOutcomes,
        stopping: Callable[[], bool],
    ) -> None:
        self.member = member
        self._source = source
        self._source_bytes = source_bytes
        self._fresh = fresh
        self._outcomes = outcomes
        self._stopping = stopping
        self._next = 0
        self._buckets = 1
        self._records_failed = False  # this process cannot write rejected seeds' records

    async def run(self) -> None:
        """Read whenever this process holds the lease, until the run's seeds are all read."""
        member = self.member
        try:
            while not member.reader_done and not self._stopping() and not self._records_failed:
                held = await member.take_lease()
                if held < 0:
                    return
                if held == 0:
                    await asyncio.sleep(member.beat_interval)
                    continue
                await self._read()
        finally:
            if member.is_reader and not member.closing:
                await member.release_lease()

    async def _read(self) -> None:
        member = self.member
        state = await member.reader_state(self._source_bytes)
        self._next, self._buckets = state.next_seq, state.buckets
        if not await self._write_rejects_left():
            self._records_failed = True
            return
        if state.cursor is None:
            logger.info("This process reads the seeds of run %r", member.config.run)
        else:
            logger.info(
                "This process reads the seeds of run %r on from seed %s (taken over)",
                member.config.run,
                state.next_seq,
            )
        batch: list[Seed] = []
        size = min(BATCH, member.config.max_unsettled)  # the queue's bound holds within a batch
        async for seed in self._source(state.cursor):
            batch.append(seed)
            if len(batch) >= size:
                if not await self._push(batch, done=False):
                    return
                batch = []
        await self._push(batch, done=True)

    async def _write_rejects_left(self) -> bool:
        """Write the records a reader that died left in Redis; False if some could not be."""
        member = self.member
        left = await member.rejects_left()
        written = 0
        for seed in left:
            if not self._outcomes.reject(seed):
                break
            written += 1
        await member.drop_rejects(left[:written])
        return written == len(left)

    async def _push(self, batch: list[Seed], *, done: bool) -> bool:
        """Commit one batch; False when this process must stop reading."""
        member = self.member
        if self._stopping() or member.closing:
            return False  # not committed: whoever reads next reads it again
        if batch and batch[0].seq != self._next:
            raise AssertionError(f"seed {batch[0].seq} read where the run is at {self._next}")
        valid = [s.note_id for s in batch if s.note_id is not None]
        fresh = await self._fresh.find_fresh(valid) if self._fresh is not None and valid else set()
        limit = member.config.max_unsettled
        while valid and await self._queued() >= limit:
            await asyncio.sleep(FULL_POLL)
            if self._stopping() or member.closing:
                return False
        status, outcomes = await member.push(batch, self._next, self._buckets, fresh, done)
        if status != b"ok":
            member.is_reader = False
            logger.warning(
                "This process is no longer the reader of run %r (%s): another one goes on "
                "from the run's cursor",
                member.config.run,
                "its lease expired" if status == b"lost" else "the run moved on",
            )
            return False
        written, complete = self._settled(batch, outcomes)
        await member.drop_rejects(written)
        if batch:
            self._next = batch[-1].seq + 1
        if not complete:
            # A failed file that cannot be written stops the process (pgy_output_error):
            # the records left in Redis go to the failed file of whoever reads next.
            self._records_failed = True
            return False
        return True

    async def _queued(self) -> int:
        member = self.member
        return int(await member.redis(lambda c: c.xlen(member.keys.stream)))

    def _settled(self, batch: list[Seed], outcomes: str) -> tuple[list[Seed], bool]:
        """This process's own counts of a committed batch, and the rejected seeds' records
        in its failed file: (the rejected seeds written, whether all of them were)."""
        results = iter(outcomes)
        written: list[Seed] = []
        complete = True
        for seed in batch:
            if seed.note_id is None:
                if complete and self._outcomes.reject(seed):
                    written.append(seed)
                else:
                    complete = False  # the rest stays in Redis, in order
                continue
            outcome = next(results)
            if outcome == "d":
                self._outcomes.duplicate(seed)
            elif outcome == "f":
                self._outcomes.skip_fresh(seed)
        return written, complete
