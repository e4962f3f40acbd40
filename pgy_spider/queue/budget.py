"""The budget (``PGY_MAX_BILLED_CALLS``) of a whole run across processes, in Redis.

The run's budget hash counts ``spent`` (billable answers) and ``held`` (units reserved by
calls on the wire, with ``held:<worker>`` for each worker). A unit is reserved atomically
against ``spent + held <= limit`` (:data:`~pgy_spider.queue.scripts.RESERVE`, one round trip
per call sent); settles are not awaited: they go in batches, in the background, each batch
counted once however often it is sent (:data:`~pgy_spider.queue.scripts.SPEND`). A settle that
is lost leaves its unit held, which counts as spent: the safe side.

A worker killed with its calls in flight leaves their units held; when its notes are claimed
(or when the others would otherwise wait for them) they count as spent, since those calls may
have been billed: never lost, never counted twice, and the run never spends past the cap.
Without a cap (0) a reservation needs no round trip, and the spent count is still the run's.
"""

from __future__ import annotations

import asyncio
import contextlib

from pgy_spider import reasons
from pgy_spider.budget import Budget
from pgy_spider.queue.errors import QueueStop
from pgy_spider.queue.member import Look, QueueMember

# Seconds between tries while every unit left is held by a call in flight.
HELD_POLL = 0.05


class RedisBudget(Budget):
    def __init__(self, limit: int, member: QueueMember) -> None:
        self._limit = limit
        self._member = member
        self._spent = 0  # the run's, as last seen
        self._released = 0  # settles not sent yet: units given back, of them billable
        self._billable = 0
        self._batch = 0
        self._flushing: asyncio.Future[None] | None = None
        self._settled = asyncio.Event()
        member.watchers.append(self._seen)
        member.closers.append(self._flush_all)

    def _seen(self, look: Look) -> None:
        self._spent = max(self._spent, look.spent)

    async def reserve(self) -> bool:
        if not self._limit:
            return True
        member = self._member
        k = member.keys
        while True:
            status, spent = await member.script(
                "RESERVE",
                [k.budget, k.beats, k.meta],
                [
                    member.worker,
                    self._limit,
                    member.claim_ms,
                    "1" if member.may_take_over else "0",
                    reasons.BUDGET_EXHAUSTED,
                ],
            )
            self._spent = max(self._spent, int(spent))
            if int(status) > 0:
                return True
            if int(status) < 0:
                return False
            # Every unit left is on the wire (here or elsewhere): wait for an answer.
            self._settled.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), HELD_POLL)

    def settle(self, *, billable: bool) -> None:
        if self._limit:
            self._released += 1
        if billable:
            self._billable += 1
        if (self._released or self._billable) and self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        member = self._member
        try:
            while self._released or self._billable:
                released, billable = self._released, self._billable
                self._released = self._billable = 0
                self._batch += 1
                try:
                    spent = await member.script(
                        "SPEND",
                        [member.keys.budget],
                        [member.worker, self._batch, released, billable],
                    )
                except QueueStop as exc:
                    # Not applied: those units stay held, which counts as spent.
                    member.fail(exc)
                    return
                self._spent = max(self._spent, int(spent))
                self._settled.set()
        finally:
            self._flushing = None

    async def _flush_all(self) -> None:
        while self._flushing is not None:
            await self._flushing

    @property
    def spent(self) -> int:
        """The billable answers of the whole run, as this process last saw them."""
        return self._spent

    @property
    def limit(self) -> int:
        return self._limit
