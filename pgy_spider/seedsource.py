"""Where a run's seeds come from: inline ``ids``, ``ids_file`` files and an ``ids_url``.

The spider's ``start()`` asks a :class:`SeedSource` for the next seed; the source reads
in order from where the job stopped (the resume cursor) and no further ahead than the
read-ahead bound allows: Scrapy 2.19 keeps pulling start requests while the downloader is
busy, so without the bound a 10-million-line seed file would all sit in the scheduler.

:class:`SeedSource` is the interface a shared backend implements a second time (one seed
queue for many processes: :class:`pgy_spider.queue.source.QueueSeedSource`);
:class:`LocalSeedSource` reads this process's own arguments.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Protocol

from pgy_spider import seeds
from pgy_spider.seeds import Seed

# A long run of bad or duplicate seeds must not starve the event loop: yield to it this often.
_YIELD_EVERY = 2048


class Backlog(Protocol):
    """How many issued notes are not settled yet, and a way to wait until fewer are."""

    @property
    def pending(self) -> int: ...

    async def wait_for_room(self, limit: int) -> None: ...


class SeedSource(ABC):
    # True for a source whose seeds are deduplicated, checked and counted before they come
    # (a shared queue): each one is a note to request. False: every seed read, as it is.
    prepared = False

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[Seed]:
        """The seeds still to read, in order (valid and rejected alike)."""


class LocalSeedSource(SeedSource):
    def __init__(
        self,
        *,
        inline: str,
        files: list[str],
        ids_url: str | None,
        fetch_url: Callable[[str], Awaitable[str]],
        cursor: tuple[int, int, int] | None,
        backlog: Backlog,
        read_ahead: int,
        check_time: bool,
    ) -> None:
        self.inline = inline
        self.files = files
        self.ids_url = ids_url
        self._fetch_url = fetch_url
        self.cursor = cursor
        self._backlog = backlog
        self.read_ahead = read_ahead
        self.check_time = check_time

    async def __aiter__(self) -> AsyncIterator[Seed]:
        paths = list(self.files)
        if self.ids_url:
            # Raises SeedFileError when the URL cannot be fetched.
            paths.append(await self._fetch_url(self.ids_url))
        backlog, limit = self._backlog, self.read_ahead
        for count, seed in enumerate(self._iter_seeds(paths)):
            if backlog.pending >= limit:
                await backlog.wait_for_room(limit)
            elif count % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            yield seed

    def _iter_seeds(self, paths: list[str]) -> Iterator[Seed]:
        """Inline seeds first, then the files; after a resume, from the cursor on."""
        check_time = self.check_time
        cursor = self.cursor
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
        for seed in seeds.iter_inline(self.inline, 0, check_time=check_time):
            last_seq = seed.seq
            if seed.seq > done_seq:
                yield seed
        yield from seeds.iter_seeds(paths, None, last_seq + 1, check_time=check_time)
