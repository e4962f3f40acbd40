"""The spending budget: how many billable answers a job may still receive.

Plain module. The download handler reserves one unit at the moment of sending
(:meth:`Budget.reserve`) and the API middleware settles it when the answer says whether
the call was billable (:meth:`Budget.settle`). A call that failed after it was sent (a
timeout, a dropped connection) may have been billed upstream: it is settled as billable.
A unit is held only while its call is on the wire: a note waiting for its backoff or a
rate-limit pause holds none, and a non-billable answer (301, 302, 500, ...) gives its unit
back. So at any moment ``spent + held <= limit``, and the API can never have billed more
than that.

:class:`Budget` is the interface a shared backend implements a second time (Redis: an
atomic reserve, settles sent in the background). :class:`LocalBudget` is the budget of one
process; with ``JOBDIR`` it is durable (:class:`SpendMark`): before the job may send a
call beyond a mark, the mark is moved one block further and written atomically, and a
resumed job counts everything up to the mark as spent. A ``kill -9`` therefore never makes
a job overshoot; it can only forfeit the unused rest of one block.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from pathlib import Path

import orjson

from pgy_spider import jobstate
from pgy_spider.config import PgyConfig
from pgy_spider.errors import ConfigError
from pgy_spider.files import write_atomic

BUDGET_FILE = "pgy-budget.json"
FORMAT = 1
# Units reserved per write of the mark: at least this many, and CONCURRENT_REQUESTS when
# more. One small file write per block keeps the per-call path free of file writes.
MIN_BLOCK = 32


class BudgetStateError(Exception):
    """The budget's durable state cannot be written: no call may be sent beyond it."""

    def __init__(self, path: str, cause: OSError) -> None:
        super().__init__(f"cannot write {path}: {cause.strerror or cause}")
        self.path = path
        self.cause = cause


class Budget(ABC):
    @abstractmethod
    async def reserve(self) -> bool:
        """Reserve one unit for a call about to be sent. Waits while the only units left
        are held by calls in flight (a non-billable answer gives one back); False when
        the budget is spent. Raises BudgetStateError when the reservation cannot be made
        durable."""

    @abstractmethod
    def settle(self, *, billable: bool) -> None:
        """The reserved call was answered (or failed): spend its unit, or give it back.
        Not awaited, on every answer: a network backend sends it in the background. A
        settle that is lost leaves its unit held, which counts as spent: the safe side."""

    @property
    @abstractmethod
    def spent(self) -> int:
        """Billable answers so far, in this job (with ``JOBDIR``: over all its sessions)."""

    @property
    @abstractmethod
    def limit(self) -> int:
        """The cap; 0 = none."""

    @property
    def exhausted(self) -> bool:
        """Spent to the cap: no unit is left and none is held that could come back."""
        return 0 < self.limit <= self.spent

    def close(self) -> None:  # noqa: B027  # a backend without state to keep does nothing
        """The run sends no more calls: record what it spent, units still held counting
        as spent. Raises BudgetStateError when that cannot be written."""


class SpendMark:
    """``JOBDIR/pgy-budget.json``: the job may have been billed for at most this many
    calls. Replaced atomically; a new value is written before any call beyond the old."""

    def __init__(self, jobdir: str) -> None:
        self.path = Path(jobdir, BUDGET_FILE)

    def load(self) -> int:
        """The mark; 0 when there is none yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise self._unreadable(exc.strerror or str(exc)) from None
        try:
            doc = orjson.loads(raw)
            found = doc.get("format")
            value = doc["reserved_up_to"]
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
            raise self._unreadable("not a budget state") from None
        if found != FORMAT or not isinstance(value, int) or value < 0:
            raise self._unreadable(f"format {found!r}, reserved_up_to {value!r}")
        return value

    def store(self, value: int, *, durable: bool = False) -> None:
        doc = {"format": FORMAT, "reserved_up_to": value}
        try:
            write_atomic(self.path, orjson.dumps(doc), durable=durable)
        except OSError as exc:
            raise BudgetStateError(str(self.path), exc) from None

    def _unreadable(self, why: str) -> ConfigError:
        return ConfigError(
            f"the budget state {str(self.path)!r} cannot be read ({why}): "
            f"delete the JOBDIR {str(self.path.parent)!r} to start the job over"
        )


class LocalBudget(Budget):
    """The budget of one process: in memory, and durable across kills with a mark."""

    def __init__(
        self,
        limit: int,
        mark: SpendMark | None = None,
        *,
        block: int = MIN_BLOCK,
        spent: int = 0,
    ) -> None:
        self._limit = limit
        self._mark = mark
        self._block = max(block, 1)
        self._spent = spent  # a resumed job's mark: see job_budget
        # Units up to here may be reserved without a write (a new job's first reservation
        # writes the first mark).
        self._reserved_up_to = spent
        self._held = 0
        self._waiters: list[asyncio.Future[None]] = []

    async def reserve(self) -> bool:
        while True:
            used = self._spent + self._held
            if not self._limit or used < self._limit:
                if self._mark is not None and used >= self._reserved_up_to:
                    self._extend(used)
                self._held += 1
                return True
            if not self._held:
                return False
            # Every unit left is on the wire: wait for an answer to spend or free one.
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _extend(self, used: int) -> None:
        """Move the mark one block on; it is written before any call beyond the old one."""
        assert self._mark is not None
        mark = used + self._block
        if self._limit:
            mark = min(mark, self._limit)
        self._mark.store(mark)
        self._reserved_up_to = mark

    def settle(self, *, billable: bool) -> None:
        if self._held:
            self._held -= 1
        if billable:
            self._spent += 1
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def spent(self) -> int:
        return self._spent

    @property
    def held(self) -> int:
        """Units reserved by calls not answered yet."""
        return self._held

    @property
    def limit(self) -> int:
        return self._limit

    def close(self) -> None:
        self._spent += self._held
        self._held = 0
        self._wake()
        if self._mark is not None:
            # The exact count: a clean end forfeits nothing of its last block.
            self._mark.store(self._spent, durable=True)
            self._reserved_up_to = self._spent


def job_budget(config: PgyConfig) -> Budget:
    """The run's budget: capped by ``PGY_MAX_BILLED_CALLS``, durable with ``JOBDIR``.

    A mark is read only when the job resumes (its state says so): a new job starts from 0.
    Raises ConfigError for a mark that cannot be read.
    """
    jobdir = config.jobdir
    if not jobdir:
        return LocalBudget(config.max_billed_calls)
    mark = SpendMark(jobdir)
    # A resumed job counts everything up to its mark as spent, whether the calls of its
    # last block were made or not (after a kill nothing says how many were). A mark
    # without a job state is not this job's: it is overwritten by the first reservation.
    spent = mark.load() if jobstate.probe(jobdir) is not None else 0
    block = max(config.concurrent_requests, MIN_BLOCK)
    return LocalBudget(config.max_billed_calls, mark, block=block, spent=spent)


def spent_message(budget: Budget, *, resumable: bool) -> str:
    """The one line that says the budget stopped the run, and how to go on."""
    then = (
        "run the same command with a larger PGY_MAX_BILLED_CALLS to go on"
        if resumable
        else "this run is not resumable (no JOBDIR): running it again starts over"
    )
    return (
        f"The budget is spent: {'this job has' if resumable else 'this run has'} received "
        f"{budget.spent} billable answers (PGY_MAX_BILLED_CALLS={budget.limit}); stopping "
        f"with no further API calls, undone notes stay pending; {then}"
    )
