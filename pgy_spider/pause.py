"""The rate-limit pause: after a 302, every API call of the run waits.

The API middleware asks :meth:`RatePause.paused_until` before each send (a cheap local
read) and reports each 302 with :meth:`RatePause.rate_limited`. The first 302 of a burst
starts a pause; 302s answered while it lasts (calls that were already in flight) do not
lengthen it. Each new burst doubles the pause (``PGY_RATE_LIMIT_DELAY``, capped at
``PGY_RATE_LIMIT_MAX_DELAY``); a success resets the doubling.

:class:`RatePause` is the interface a shared backend implements a second time (one pause
for every process of a run); :class:`LocalRatePause` is the one-process pause.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable


class RatePause(ABC):
    @abstractmethod
    def paused_until(self) -> float:
        """The ``time.monotonic()`` before which no API call may be sent (past: none)."""

    @abstractmethod
    async def rate_limited(self) -> float | None:
        """A 302 was answered: the length of the pause it started, or None when it fell
        inside the current pause."""

    @abstractmethod
    def succeeded(self) -> None:
        """A call succeeded: the next burst of 302s starts from the first delay again."""


class LocalRatePause(RatePause):
    def __init__(
        self, delay: float, max_delay: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.delay = delay
        self.max_delay = max_delay
        self._clock = clock
        self._until = 0.0
        self._level = 0

    def paused_until(self) -> float:
        return self._until

    async def rate_limited(self) -> float | None:
        now = self._clock()
        if now < self._until:
            return None  # a straggler of the current burst
        self._level += 1
        pause = min(self.delay * 2 ** (self._level - 1), self.max_delay)
        self._until = now + pause
        return pause

    def succeeded(self) -> None:
        self._level = 0
