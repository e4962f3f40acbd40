"""The seeds of a run across processes: entries of the run's stream, as seeds to request.

The spider asks this source instead of its own files when ``PGY_QUEUE_URL`` is set. Its seeds
arrive deduplicated run-wide and checked for freshness already (``prepared``): each is a note
to request. It joins the run first (creating it, or checking that this process's seed
sources are the run's, or waiting for it without seeds), runs the reader role in the
background when this process has seeds, and then takes entries, no more than the read-ahead
bound allows unsettled in this process, and the entries of dead workers, until the run is
finished: every seed read and every entry settled.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from pgy_spider.queue import identity
from pgy_spider.queue.member import QueueMember
from pgy_spider.queue.reader import ReadOutcomes, SeedReader
from pgy_spider.seeds import Seed
from pgy_spider.seedsource import Backlog, LocalSeedSource, SeedSource
from pgy_spider.storage import FreshnessSource

# How long one stream read waits for an entry: also how soon a stop or the run's end is seen.
BLOCK_MS = 500


class QueueSeedSource(SeedSource):
    prepared = True

    def __init__(
        self,
        member: QueueMember,
        *,
        reader: SeedReader | None,
        identities: Callable[[], list[str]] | None,
        backlog: Backlog,
        read_ahead: int,
        stopping: Callable[[], bool],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.member = member
        self._reader = reader
        self._identities = identities
        self._backlog = backlog
        self.read_ahead = read_ahead
        self._stopping = stopping
        self._on_error = on_error

    async def __aiter__(self) -> AsyncIterator[Seed]:
        member = self.member
        sources = await asyncio.to_thread(self._identities) if self._identities else None
        if not await member.join(sources, self._stopping):
            return
        reading: asyncio.Future[None] | None = None
        if self._reader is not None and not member.reader_done:
            reading = asyncio.ensure_future(self._reader.run())
            reading.add_done_callback(self._reader_ended)
        try:
            async for seed in self._entries():
                yield seed
        finally:
            if reading is not None and not reading.done():
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)

    def _reader_ended(self, reading: asyncio.Future[None]) -> None:
        if not reading.cancelled() and (exc := reading.exception()) is not None:
            self._on_error(exc)

    async def _entries(self) -> AsyncIterator[Seed]:
        member, backlog, limit = self.member, self._backlog, self.read_ahead
        while not self._stopping():
            room = limit - backlog.pending
            if room <= 0:
                await backlog.wait_for_room(limit)
                continue
            seeds = await member.claim(room) if member.claim_due() else []
            if not seeds:
                seeds = await member.take(room, BLOCK_MS)
            for seed in seeds:
                yield seed
            if not seeds and await member.run_finished():
                await member.finish_run()
                return


class NoLocalBound:
    """The reader's own seeds need no local bound: the run's queue bounds them."""

    pending = 0

    async def wait_for_room(self, limit: int) -> None:
        return None


def queue_source(
    member: QueueMember,
    seeds: tuple[str, list[str], str | None] | None,
    *,
    fetch_url: Callable[[str], Awaitable[str]],
    check_time: bool,
    outcomes: ReadOutcomes,
    backlog: Backlog,
    fresh: FreshnessSource | None,
    read_ahead: int,
    stopping: Callable[[], bool],
    on_error: Callable[[BaseException], None],
) -> QueueSeedSource:
    """The source of a process of a run; ``seeds`` (inline, files, ids_url) when it has
    seed arguments, which makes it a candidate for the reader role."""
    if seeds is None:
        return QueueSeedSource(
            member,
            reader=None,
            identities=None,
            backlog=backlog,
            read_ahead=read_ahead,
            stopping=stopping,
            on_error=on_error,
        )
    inline, files, ids_url = seeds
    downloaded: list[str] = []

    async def fetch_checked(url: str) -> str:
        path = await fetch_url(url)
        await member.check_url_content(await asyncio.to_thread(identity.file_identity, path))
        downloaded.append(path)
        return path

    def local(cursor: tuple[int, int, int] | None) -> LocalSeedSource:
        return LocalSeedSource(
            inline=inline,
            files=files,
            ids_url=ids_url,
            fetch_url=fetch_checked,
            cursor=cursor,
            backlog=NoLocalBound(),
            read_ahead=1,
            check_time=check_time,
        )

    def source_bytes() -> int:
        return len(inline) + sum(os.path.getsize(p) for p in (*files, *downloaded))

    reader = SeedReader(
        member,
        source=local,
        source_bytes=source_bytes,
        fresh=fresh,
        outcomes=outcomes,
        stopping=stopping,
    )
    return QueueSeedSource(
        member,
        reader=reader,
        identities=lambda: identity.source_identities(inline, files, ids_url),
        backlog=backlog,
        read_ahead=read_ahead,
        stopping=stopping,
        on_error=on_error,
    )
