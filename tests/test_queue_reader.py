"""The reader role in process, against a real Redis: seeds read once for the run, in batches,
no further ahead than the queue's bound, and taken over from the cursor by another reader,
rejected seeds' records included."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis

from pgy_spider.queue.keys import RunKeys
from pgy_spider.queue.reader import SeedReader
from pgy_spider.queue.source import NoLocalBound
from pgy_spider.seeds import Seed
from pgy_spider.seedsource import LocalSeedSource
from tests.support.ids import make_note_id
from tests.support.queue_member import Member, config, counts, settle_all, until


class Outcomes:
    """What a process's accounting is told about the seeds its reader settled at once."""

    def __init__(self) -> None:
        self.rejected: list[Seed] = []
        self.duplicates: list[Seed] = []
        self.fresh: list[Seed] = []

    def reject(self, seed: Seed) -> bool:
        self.rejected.append(seed)
        return True

    def duplicate(self, seed: Seed) -> None:
        self.duplicates.append(seed)

    def skip_fresh(self, seed: Seed) -> None:
        self.fresh.append(seed)


class Fresh:
    """A store that knows some notes as fresh (as MongoDB with PGY_REFRESH_HOURS)."""

    refresh_enabled = True

    def __init__(self, fresh: set[str]) -> None:
        self._fresh = fresh
        self.asked = 0

    async def find_fresh(self, note_ids: list[str]) -> set[str]:
        self.asked += 1
        return self._fresh & set(note_ids)


class KilledAfterCommit(Member):
    """A reader killed right after Redis committed its ``pushes``-th batch, before it could
    write that batch's rejected seeds to its failed file."""

    def __init__(self, cfg: Any, pushes: int) -> None:
        super().__init__(cfg)
        self.pushes_left = pushes

    async def push(self, *args: Any, **kwargs: Any) -> tuple[bytes, str]:
        result = await super().push(*args, **kwargs)
        self.pushes_left -= 1
        if self.pushes_left == 0:
            self.die()
            raise asyncio.CancelledError  # nothing after the commit runs
        return result


def reader(member: Member, path: Path, outcomes: Outcomes, fresh: Any = None) -> SeedReader:
    def local(cursor: tuple[int, int, int] | None) -> LocalSeedSource:
        async def no_url(url: str) -> str:
            raise AssertionError(url)

        return LocalSeedSource(
            inline="",
            files=[str(path)],
            ids_url=None,
            fetch_url=no_url,
            cursor=cursor,
            backlog=NoLocalBound(),
            read_ahead=1,
            check_time=True,
        )

    return SeedReader(
        member,
        source=local,
        source_bytes=lambda: path.stat().st_size,
        fresh=fresh,
        outcomes=outcomes,
        stopping=lambda: False,
    )


def seed_lines(path: Path) -> dict[str, Any]:
    lines = []
    for i in range(120):
        lines.append(make_note_id(i))
        if i % 10 == 4:
            lines.append(f"not-a-note-{i}")
        if i % 30 == 5:
            lines.append(make_note_id(i - 1))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"seeds": len(lines), "rejected": 12, "duplicates": 4, "notes": 120}


def test_the_reader_stays_within_the_bound_and_is_taken_over_from_its_cursor(
    tmp_path: Path, redis_url: str, run_name: str
) -> None:
    path = tmp_path / "seeds.txt"
    expected = seed_lines(path)
    fresh_ids = {make_note_id(i) for i in range(100, 110)}
    cfg = config(redis_url, run_name, claim_seconds=0.5, max_unsettled=20)
    keys = RunKeys(run_name)

    async def scenario() -> None:
        with redis.Redis.from_url(redis_url, protocol=2) as client:
            first, second, worker = KilledAfterCommit(cfg, 3), Member(cfg), Member(cfg)
            for member in (first, second, worker):
                assert await member.join(["file:x"], lambda: False)
            dying, standby = Outcomes(), Outcomes()
            reading = asyncio.ensure_future(reader(first, path, dying, Fresh(fresh_ids)).run())
            taking_over = asyncio.ensure_future(
                reader(second, path, standby, Fresh(fresh_ids)).run()
            )
            await until(lambda: _queued(client, keys, 20))
            await asyncio.sleep(0.3)
            # Two batches of 20 seeds in, then the reader waits for room.
            assert first.pushes_left == 1 and not reading.done()
            assert client.xlen(keys.stream) <= 20 + 20  # the bound, plus one batch
            assert first.is_reader and not second.is_reader
            taken = await worker.take(30, 100)
            await settle_all(worker, taken)  # room: it reads on, commits, and is killed
            await until(lambda: _ended(reading))
            records_left = client.llen(keys.rejects)
            assert records_left > 0  # committed, not yet in any failed file
            await until(lambda: _done(taking_over, worker, client, keys))
            await taking_over
            c = counts(client, run_name)
            assert c["seeds_read"] == expected["seeds"]
            assert c["rejected:invalid_id"] == expected["rejected"]
            assert c["duplicates"] == expected["duplicates"]
            assert c["skipped_fresh"] == len(fresh_ids)
            assert c["notes_written"] == expected["notes"] - len(fresh_ids)
            # Every rejected seed's record reached a failed file once: the dead reader's
            # last ones were written by the reader that took over.
            written = [s.raw for s in dying.rejected + standby.rejected]
            assert sorted(written) == sorted(f"not-a-note-{i}" for i in range(4, 120, 10))
            assert len(standby.rejected) >= records_left
            assert client.llen(keys.rejects) == 0
            assert client.hget(keys.meta, "reader_done") == b"1"
            await first.disconnect()
            for member in (second, worker):
                await member.close("finished")

    asyncio.run(scenario())


async def _ended(task: asyncio.Future[None]) -> bool:
    return task.done()


async def _queued(client: redis.Redis, keys: RunKeys, at_least: int) -> bool:
    return int(client.xlen(keys.stream)) >= at_least


async def _done(
    reading: asyncio.Future[None], worker: Member, client: redis.Redis, keys: RunKeys
) -> bool:
    """Keep settling what is queued until the reader is done and nothing is left."""
    taken = await worker.take(50, 50)
    await settle_all(worker, taken)
    return reading.done() and client.xlen(keys.stream) == 0
