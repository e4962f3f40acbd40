"""Redis for the runs across processes: the server, each run's check, and the dedup's memory.

- ``BenchRedis``: ``REDIS_URL`` from the environment if set (used as is, never stopped), else
  a ``redis-server`` started the way the tests start one (``tests/support/redis.py``: a free
  loopback port, its own data directory, ``appendonly yes``).
- ``check_run``: after a measured run, the run-wide summary (what ``scrapy pgy_status``
  prints) must say finished, balanced, N notes written, nothing pending; then the run's keys
  are deleted so that every run starts on an empty server.
- ``dedup_memory``: the reader's atomic pushes of S distinct seeds (batches of 500, as the
  reader sends them, none queued: the dedup alone), then ``MEMORY USAGE`` of the run's dedup
  keys and the growth of ``used_memory``, per seed.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

BATCH = 500  # the reader's batch


class BenchRedis:
    def __init__(self, data_dir: Path) -> None:
        from tests.support import redis as support

        self._support = support
        env_url = os.environ.get("REDIS_URL")
        if env_url:
            self.server = support.RedisServer(env_url)
        else:
            self.server = support.RedisServer.local(data_dir)
        self.url: str = self.server.url
        self._guard(self.server.start)
        with self.client() as client:
            client.ping()
            self.version = str(client.info("server")["redis_version"])

    def _guard(self, call: Any) -> Any:
        # The tests' helpers report failure with pytest.fail (a BaseException): make it an error.
        try:
            return call()
        except self._support.pytest.fail.Exception as exc:
            raise RuntimeError(str(exc)) from None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, protocol=2)

    def delete_run(self, run: str) -> None:
        with self.client() as client:
            keys = list(client.scan_iter(match=f"pgy:{{{run}}}:*", count=1000))
            if keys:
                client.delete(*keys)

    def close(self) -> None:
        self.server.stop()


def _config(url: str, run: str) -> Any:
    from pgy_spider.config import QueueConfig

    return QueueConfig(
        url=url,
        run=run,
        wait_seconds=1.0,
        claim_seconds=60.0,
        max_unsettled=BATCH,
        outage_seconds=0.0,
        ttl_hours=0.0,
    )


def check_run(bench_redis: BenchRedis, run: str, notes: int) -> str | None:
    """A problem with the run's summary, or None; the run's keys are deleted either way."""
    from pgy_spider.queue.status import run_status

    try:
        with bench_redis.client() as client:
            status = run_status(client, _config(bench_redis.url, run))
    except Exception as exc:
        return f"run {run}: no run-wide summary ({type(exc).__name__}: {exc})"
    finally:
        bench_redis.delete_run(run)
    wanted = {"state": "finished", "balanced": True, "pending": 0, "notes_written": notes}
    got = {k: status.get(k) for k in wanted}
    return None if got == wanted else f"run {run}: pgy_status says {got}, expected {wanted}"


@dataclass
class DedupMemory:
    seeds: int
    ok: bool
    dedup_bytes: int  # MEMORY USAGE of the run's dedup keys
    used_memory_growth: int  # INFO used_memory after − before
    keys: int
    encodings: list[str]
    wall_s: float
    problem: str | None = None

    @property
    def bytes_per_seed(self) -> float:
        return self.dedup_bytes / self.seeds if self.seeds else 0.0

    @property
    def used_per_seed(self) -> float:
        return self.used_memory_growth / self.seeds if self.seeds else 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "bytes_per_seed": self.bytes_per_seed,
            "used_memory_per_seed": self.used_per_seed,
        }


def dedup_memory(bench_redis: BenchRedis, seeds: int) -> DedupMemory:
    """The run-wide dedup of ``seeds`` distinct note IDs, pushed by a reader as in a run."""
    from bench.ids import make_note_id
    from pgy_spider.queue import keys as queue_keys

    run = f"bench-dedup-{os.getpid()}-{int(time.time())}"
    with bench_redis.client() as client:
        client.execute_command("MEMORY", "PURGE")
        before = int(client.info("memory")["used_memory"])
    started = time.monotonic()
    try:
        asyncio.run(_push_all(bench_redis.url, run, [make_note_id(i) for i in range(seeds)]))
    except Exception as exc:
        bench_redis.delete_run(run)
        problem = f"{type(exc).__name__}: {exc}"
        return DedupMemory(seeds, False, 0, 0, 0, [], time.monotonic() - started, problem)
    wall = time.monotonic() - started
    try:
        with bench_redis.client() as client:
            after = int(client.info("memory")["used_memory"])
            pattern = queue_keys.RunKeys(run).seen_pattern
            buckets = list(client.scan_iter(match=pattern, count=1000))
            used = sum(int(client.memory_usage(k, samples=0) or 0) for k in buckets)
            kept = sum(int(client.hlen(k)) for k in buckets)
            encodings = sorted({client.object("encoding", k).decode() for k in buckets})
    finally:
        bench_redis.delete_run(run)
    problem = None if kept == seeds else f"the dedup holds {kept:,} IDs, expected {seeds:,}"
    return DedupMemory(
        seeds, problem is None, used, after - before, len(buckets), encodings, wall, problem
    )


async def _push_all(url: str, run: str, ids: list[str]) -> None:
    """One reader of a run: join, take the lease, push every seed in batches; no worker."""
    from pgy_spider.flight import InFlight
    from pgy_spider.queue.member import QueueMember
    from pgy_spider.seeds import Seed, SeedPos
    from tests.support.queue_member import Stats  # the queue tests' in-memory stats

    reader = QueueMember(_config(url, run), Stats(), InFlight(64), dict, lambda r, m: None)
    if not await reader.join([f"ids:{len(ids)}:bench"], lambda: False):
        raise RuntimeError("the reader could not join its run")
    if await reader.take_lease() != 1:
        raise RuntimeError("the reader did not get the lease")
    line = len(ids[0]) + 1
    state = await reader.reader_state(lambda: len(ids) * line)  # a file of bare IDs
    for first in range(0, len(ids), BATCH):
        batch = [
            Seed(i, i, None, seq, SeedPos(0, seq * line))
            for seq, i in enumerate(ids[first : first + BATCH], start=first)
        ]
        fresh = {s.note_id for s in batch if s.note_id}  # nothing queued: the dedup alone
        answer = await reader.push(batch, first, state.buckets, fresh, False)
        if answer[0] != b"ok":
            raise RuntimeError(f"push at {first} answered {answer!r}")
    await reader.close("finished")
