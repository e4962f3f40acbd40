"""The 302 pause shared by every process of a run, timed by Redis's clock.

A 302 answered to any worker starts (or falls inside) the run's one pause: the
:data:`~pgy_spider.queue.scripts.PAUSE` script decides, with the same doubling as in one
process (``PGY_RATE_LIMIT_DELAY``, capped at ``PGY_RATE_LIMIT_MAX_DELAY``), and the time left
comes back in Redis's milliseconds, so hosts whose clocks differ pause alike. Every worker
learns of it with its next poll (:data:`~pgy_spider.queue.member.WATCH_INTERVAL`), and
:meth:`paused_until` stays a local read. A success anywhere starts the doubling over.
"""

from __future__ import annotations

import math
import time

from pgy_spider.pause import RatePause
from pgy_spider.queue.member import Look, QueueMember


class RedisRatePause(RatePause):
    def __init__(self, delay: float, max_delay: float, member: QueueMember) -> None:
        self.delay = delay
        self.max_delay = max_delay
        self._member = member
        self._until = 0.0  # time.monotonic() before which no call may be sent
        self._level = 0  # the run's doubling as last seen
        self._asking = 0  # this worker's 302s whose pause Redis has not answered yet
        member.watchers.append(self._seen)

    def paused_until(self) -> float:
        # A 302 of its own: this worker sends nothing until Redis says how long the pause is
        # (a round trip, longer on a loaded host), rather than a few calls more meanwhile.
        return math.inf if self._asking else self._until

    def _extend(self, left: float) -> None:
        if left > 0:
            # A pause never gets shorter: a poll sent before this worker's own 302 may
            # answer after it.
            self._until = max(self._until, time.monotonic() + left)

    def _seen(self, look: Look) -> None:
        self._level = look.pause_level
        self._extend(look.pause_left)

    async def rate_limited(self) -> float | None:
        k = self._member.keys
        self._asking += 1
        try:
            started, pause_ms, left_ms = await self._member.script(
                "PAUSE", [k.pause], [int(self.delay * 1000), int(self.max_delay * 1000)]
            )
        finally:
            self._asking -= 1
        self._extend(int(left_ms) / 1000)
        if not int(started):
            return None  # a straggler of the run's current burst
        self._level = max(self._level, 1)
        return int(pause_ms) / 1000

    def succeeded(self) -> None:
        if self._level:
            self._level = 0
            self._member.pause_reset = True  # sent with the next poll
