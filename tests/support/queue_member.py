"""Helpers of the in-process tests of the queue (tests/test_queue_member.py and the reader's,
the controls' tests): a member with in-memory stats, its config, seeds, settles, polling, counts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import redis

from pgy_spider import meta
from pgy_spider.config import QueueConfig
from pgy_spider.flight import InFlight
from pgy_spider.queue import keys
from pgy_spider.queue.keys import WRITTEN
from pgy_spider.queue.member import QueueMember
from pgy_spider.queue.status import run_status
from pgy_spider.seeds import Seed, SeedPos
from tests.support.ids import make_note_id

T = TypeVar("T")


class Stats:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get_stats(self) -> dict[str, Any]:
        return self.values

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self.values[key] = self.values.get(key, start) + count


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def config(url: str, run_name: str, **overrides: Any) -> QueueConfig:
    values: dict[str, Any] = {
        "url": url,
        "run": run_name,
        "wait_seconds": 1.0,
        "claim_seconds": 0.6,
        "max_unsettled": 10_000,
        "outage_seconds": 5.0,
        "ttl_hours": 1.0,
    }
    values.update(overrides)
    return QueueConfig(**values)


class Member(QueueMember):
    """A member with its own stats and places in flight, and the stops it asked for."""

    def __init__(self, cfg: QueueConfig, places: int = 64) -> None:
        self.stops: list[tuple[str, str]] = []
        self.places = InFlight(places)
        super().__init__(cfg, Stats(), self.places, dict, lambda r, m: self.stops.append((r, m)))

    def die(self) -> None:
        """As a SIGKILL would: no more heartbeats, nothing handed back."""
        assert self._beats is not None
        self._beats.cancel()
        if self._watch is not None:
            self._watch.cancel()
        self.closing = True

    async def disconnect(self) -> None:
        """What is left of a dead member: its connections closed, nothing else."""
        if self._client is not None:
            await self._client.aclose()


async def leased_reader(cfg: QueueConfig, file_size: int = 10_000) -> tuple[Member, Any]:
    """A member that joined the run with seeds and holds the reader's lease, and its state
    (the seed file ``file_size`` bytes long)."""
    reader = Member(cfg)
    assert await reader.join(["ids:1:x"], lambda: False)
    assert await reader.take_lease() == 1
    return reader, await reader.reader_state(lambda: file_size)


def seeds(start: int, count: int, first_seq: int | None = None) -> list[Seed]:
    seq = start if first_seq is None else first_seq
    return [
        Seed(make_note_id(i), make_note_id(i), None, seq + n, SeedPos(0, (seq + n) * 25))
        for n, i in enumerate(range(start, start + count))
    ]


def rejected(raw: str, seq: int, reason: str = "invalid_id") -> Seed:
    return Seed(raw, None, reason, seq, SeedPos(0, seq * 25))


async def taken_meta(member: Member, seed: Seed) -> dict[str, Any]:
    """The request meta of a call sent for ``seed``: it holds a place in flight."""
    request_meta: dict[str, Any] = {meta.SEQ: seed.seq}
    await member.places.take(request_meta)
    return request_meta


async def settle_all(member: Member, taken: list[Seed], kind: str = WRITTEN) -> None:
    for seed in taken:
        member.settle(await taken_meta(member, seed), kind, "not_found")
    while member._flushing is not None:
        await member._flushing


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.05)


def counts(client: redis.Redis, run_name: str) -> dict[str, int]:
    raw = client.hgetall(keys.RunKeys(run_name).counts)
    return {k.decode(): int(v) for k, v in raw.items()}


@pytest.fixture
def client(redis_url: str) -> Any:
    with redis.Redis.from_url(redis_url, protocol=2) as connection:
        yield connection


def status(client: redis.Redis, cfg: QueueConfig) -> dict[str, Any]:
    return run_status(client, cfg)


def run_keys(client: redis.Redis, run: str) -> list[bytes]:
    """Every key of the run in Redis (its dedup buckets too)."""
    return list(client.scan_iter(match=keys.RunKeys(run).prefix.replace("{", "\\{") + "*"))


# -- the reader's push -----------------------------------------------------------------------
