"""Calls in flight: at most ``CONCURRENT_REQUESTS`` calls sent and not yet settled.

Plain module. The download handler takes one place before it sends a call; the API
middleware gives it back on an answer that is not billed (a retry waiting for its backoff
holds none), and the run's accounting when the note is settled: written to the feed, or
failed. So at any moment at most ``CONCURRENT_REQUESTS`` calls can have been paid for
without their note being on disk yet: the most a ``kill -9`` can make a job pay twice.
A request holding a place carries ``meta["pgy_in_flight"]``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pgy_spider import meta


class InFlight:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._places = asyncio.Semaphore(limit)
        self.taken = 0  # places held now

    async def take(self, request_meta: dict[str, Any]) -> None:
        """Wait for a place, before the call is sent."""
        await self._places.acquire()
        self.taken += 1
        request_meta[meta.IN_FLIGHT] = True

    def give_back(self, request_meta: dict[str, Any]) -> None:
        """The call needs its place no more (idempotent)."""
        if request_meta.pop(meta.IN_FLIGHT, False):
            self.taken -= 1
            self._places.release()
