"""The run's Lua scripts and the queue member, against a real Redis (no fakes).

Each test plays several members of one run in one event loop: a reader pushing batches,
workers taking, settling, dying (their heartbeats stopped) and claiming, and checks Redis's
own state (counts, the stream, the pending entries) after each step.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from pgy_spider.config import QueueConfig
from pgy_spider.queue import keys, scripts
from pgy_spider.queue.errors import RunMissing
from pgy_spider.queue.keys import DUPLICATE, FAILED, GROUP, WRITTEN
from pgy_spider.seeds import SeedFileError
from tests.support.ids import make_note_id
from tests.support.queue_member import (
    Member,
    client,
    config,
    counts,
    leased_reader,
    rejected,
    run,
    run_keys,
    seeds,
    settle_all,
    status,
    taken_meta,
    until,
)

__all__ = ["client"]  # a fixture


def test_a_push_dedups_run_wide_counts_once_and_a_replay_changes_nothing(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name)

    async def scenario() -> None:
        reader, state = await leased_reader(cfg)
        batch = [*seeds(0, 4), rejected("junk", 4), *seeds(1, 1, first_seq=5)]
        fresh = {make_note_id(2)}
        assert await reader.push(batch, 0, state.buckets, fresh, False) == (b"ok", "aafad")
        # The same batch again (a reply lost on the way): the stored outcome, nothing counted.
        assert await reader.push(batch, 0, state.buckets, fresh, False) == (b"ok", "aafad")
        assert counts(client, run_name) == {
            "seeds_read": 6,
            "rejected:invalid_id": 1,
            "duplicates": 1,
            "skipped_fresh": 1,
            "issued": 3,
        }
        # A later batch with notes of the first: duplicates run-wide.
        later = seeds(3, 3, first_seq=6)
        assert await reader.push(later, 6, state.buckets, set(), True) == (b"ok", "daa")
        assert client.xlen(reader.keys.stream) == 5
        [junk] = await reader.rejects_left()
        assert junk.raw == "junk"
        await reader.drop_rejects([junk])
        assert await reader.rejects_left() == []
        s = status(client, cfg)
        assert s["seeds_read"] == 9 and s["duplicates"] == 2 and s["pending"] == 5
        assert s["balanced"] is True and s["state"] == "running"
        assert s["reader"]["done"] is True and s["reader"]["holder"] is None
        await reader.close("finished")

    run(scenario())


def test_a_push_is_refused_without_the_lease_and_out_of_order(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name, claim_seconds=0.4)

    async def scenario() -> None:
        first, second = Member(cfg), Member(cfg)
        assert await first.join(["ids:1:x"], lambda: False)
        assert await second.join(["ids:1:x"], lambda: False)
        assert await first.take_lease() == 1
        assert await second.take_lease() == 0  # held by the first
        state = await first.reader_state(lambda: 100)
        assert (await first.push(seeds(0, 2), 0, state.buckets, set(), False))[0] == b"ok"
        # Not where the run is: refused, nothing counted.
        assert (await first.push(seeds(5, 2, 5), 5, state.buckets, set(), False)) == (
            b"stale",
            "2",
        )
        first.die()  # stops renewing its lease
        await until(lambda: _took(second))
        assert (await first.push(seeds(2, 2, 2), 2, state.buckets, set(), False))[0] == b"lost"
        state = await second.reader_state(lambda: 100)
        assert state.next_seq == 2 and state.cursor == (0, 25, 1)
        assert counts(client, run_name)["seeds_read"] == 2
        await second.close("finished")
        await first.disconnect()

    async def _took(member: Member) -> bool:
        return await member.take_lease() == 1

    run(scenario())


# -- workers: settle, claim, hand back ---------------------------------------------------------


async def _run_with(cfg: QueueConfig, count: int) -> Member:
    """A run with ``count`` notes queued and its reading done."""
    reader, state = await leased_reader(cfg, 100_000)
    assert (await reader.push(seeds(0, count), 0, state.buckets, set(), True))[0] == b"ok"
    return reader


def test_a_settle_counts_once_and_gives_the_place_in_flight_back_after_redis(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name)

    async def scenario() -> None:
        worker = await _run_with(cfg, 6)
        taken = await worker.take(10, 100)
        assert sorted(s.seq for s in taken) == list(range(6))
        request_meta = await taken_meta(worker, taken[0])
        worker.settle(request_meta, WRITTEN)
        assert worker.places.taken == 1  # not before Redis has the settle
        assert worker._flushing is not None
        await worker._flushing
        assert worker.places.taken == 0
        await settle_all(worker, taken[1:3], FAILED)
        await settle_all(worker, taken[3:4], DUPLICATE)
        c = counts(client, run_name)
        assert c["notes_written"] == 1 and c["failed:not_found"] == 2 and c["duplicates"] == 1
        assert c["settled"] == 4 and client.xlen(worker.keys.stream) == 2
        assert not await worker.run_finished()
        await settle_all(worker, taken[4:])
        assert await worker.run_finished()
        s = status(client, cfg)
        assert s["state"] == "finished" and s["finish_reason"] == "finished"
        assert s["balanced"] is True and s["pending"] == 0
        await worker.close("finished")

    run(scenario())


def test_a_dead_workers_notes_are_claimed_and_its_late_settle_counts_nothing(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name)

    async def scenario() -> None:
        reader = await _run_with(cfg, 5)
        dead = Member(cfg)
        assert await dead.join(None, lambda: False)
        taken = await dead.take(10, 100)
        assert len(taken) == 5
        assert await reader.claim(10) == []  # alive: nothing to take
        dead.die()
        await asyncio.sleep(cfg.claim_seconds + 0.3)
        claimed = await reader.claim(10)
        assert sorted(s.note_id for s in claimed) == sorted(s.note_id for s in taken)  # type: ignore[type-var]
        # The "dead" one was only slow: its settle comes late and counts nothing.
        await settle_all(dead, taken[:2])
        assert dead._stats.values["pgy/queue/late_settles"] == 2
        assert counts(client, run_name).get("notes_written", 0) == 0
        await settle_all(reader, claimed)
        c = counts(client, run_name)
        assert c["notes_written"] == 5 and c["settled"] == 5 and c["redeliveries"] == 5
        s = status(client, cfg)
        assert s["balanced"] and s["state"] == "finished" and s["redeliveries"] == 5
        await reader.close("finished")
        await dead.disconnect()

    run(scenario())


def test_a_live_worker_waiting_long_keeps_its_notes(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name, claim_seconds=1.0)

    async def scenario() -> None:
        reader = await _run_with(cfg, 4)
        slow = Member(cfg)
        assert await slow.join(None, lambda: False)
        taken = await slow.take(10, 100)
        # Three claim times of waiting (a long backoff, a 302 pause): its beats go on.
        for _ in range(10):
            await asyncio.sleep(0.3)
            assert await reader.claim(10) == []
        idle = client.xpending_range(reader.keys.stream, GROUP, "-", "+", 10)
        assert {e["consumer"].decode() for e in idle} == {slow.worker}
        # Re-claimed with every beat: never idle for a claim time, though taken 3 s ago.
        assert max(e["time_since_delivered"] for e in idle) < 1000
        await settle_all(slow, taken)
        c = counts(client, run_name)
        assert c.get("redeliveries", 0) == 0 and c["notes_written"] == 4
        await slow.close("finished")
        await reader.close("finished")

    run(scenario())


def test_a_stopping_worker_hands_its_notes_back_at_once(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name, claim_seconds=60)

    async def scenario() -> None:
        reader = await _run_with(cfg, 8)
        leaving = Member(cfg)
        assert await leaving.join(None, lambda: False)
        taken = await leaving.take(6, 100)
        await settle_all(leaving, taken[:2])
        # A read the stop cut short: delivered to it, its reply never seen.
        cut_short = client.xreadgroup(GROUP, leaving.worker, {leaving.keys.stream: ">"}, count=2)
        assert len(cut_short[0][1]) == 2
        await leaving.close("shutdown")
        assert leaving._stats.values["pgy/queue/handed_back"] == 6
        # No claim time to wait for: the others take them at once.
        again = await reader.take(10, 100)
        assert sorted(s.seq for s in again) == [*sorted(s.seq for s in taken[2:]), 6, 7]
        assert client.xlen(reader.keys.stream) == 6
        s = status(client, cfg)
        assert s["pending"] == 6 and s["balanced"] is True
        gone = next(w for w in s["workers"] if w["worker"] == leaving.worker)
        assert gone["state"] == "closed" and gone["finish_reason"] == "shutdown"
        await settle_all(reader, again)
        assert status(client, cfg)["state"] == "finished"
        await reader.close("finished")

    run(scenario())


def test_entries_a_worker_never_saw_go_back_to_the_run(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    """A stream read whose reply was lost leaves entries pending under a live worker that
    does not know them: its own heartbeat hands them back (no one else would take them)."""
    cfg = config(redis_url, run_name, claim_seconds=0.4)

    async def scenario() -> None:
        reader = await _run_with(cfg, 3)
        worker = Member(cfg)
        assert await worker.join(None, lambda: False)
        client.xreadgroup(GROUP, worker.worker, {worker.keys.stream: ">"}, count=3)
        await asyncio.sleep(cfg.claim_seconds + 0.2)
        assert await reader.claim(10) == []  # its owner is alive
        await worker.beat()
        assert counts(client, run_name)["handed_back"] == 3
        assert len(await reader.take(10, 100)) == 3
        await worker.close("finished")
        await reader.close("finished")

    run(scenario())


# -- joining -------------------------------------------------------------------------------------


def _lifetimes(client: redis.Redis, run_name: str) -> dict[str, int]:
    return {key.decode(): client.pttl(key) for key in run_keys(client, run_name)}


async def _finished_run(cfg: QueueConfig) -> None:
    """A run of 3 notes, every one settled, finished and closed by its only worker."""
    finisher = await _run_with(cfg, 3)
    await settle_all(finisher, await finisher.take(10, 100))
    assert await finisher.run_finished()
    await finisher.finish_run()
    await finisher.close("finished")


async def _late_joiner(cfg: QueueConfig) -> Member:
    """A worker scheduled once more for the finished run, its tokens' fingerprints published."""
    late = Member(cfg)
    assert await late.join(None, lambda: False)
    late.fingerprints = ["fp-of-its-token"]
    await late.look()
    return late


def test_keys_written_again_after_the_end_get_the_runs_lifetime_too(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name)
    run_keys_ = keys.RunKeys(run_name)

    async def scenario() -> None:
        await _finished_run(cfg)
        lifetimes = _lifetimes(client, run_name)
        assert run_keys_.tokens not in lifetimes  # every worker's tokens dropped at its close
        assert lifetimes and all(ttl > 0 for ttl in lifetimes.values()), lifetimes
        # A worker that joins the finished run (scheduled once more) writes its heartbeat and
        # its tokens' fingerprints: the tokens hash is a new key. It sees the end, as its seed
        # source does, and is then killed before it can close.
        late = await _late_joiner(cfg)
        assert await late.run_finished()
        await late.finish_run()
        late.die()
        await late.disconnect()

    run(scenario())
    lifetimes = _lifetimes(client, run_name)
    assert run_keys_.tokens in lifetimes
    assert all(0 < ttl <= 3_600_000 + 60_000 for ttl in lifetimes.values()), lifetimes


def test_a_late_joiner_killed_right_after_its_first_writes_leaves_no_key_for_good(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name)
    k = keys.RunKeys(run_name)

    async def scenario() -> None:
        await _finished_run(cfg)
        # Its heartbeat, info and tokens' fingerprints written, the late worker is killed
        # before it could look at the end of the run (KEEP_LIFETIME never runs).
        client.delete(k.beats, k.info)  # as after the last worker's fields were dropped
        late = await _late_joiner(cfg)
        await late.beat()
        late.die()
        await late.disconnect()

    run(scenario())
    lifetimes = _lifetimes(client, run_name)
    assert {k.tokens, k.beats, k.info} <= set(lifetimes), lifetimes
    assert all(0 < ttl <= 3_600_000 + 60_000 for ttl in lifetimes.values()), lifetimes


def test_a_stopped_runs_keys_written_again_keep_no_lifetime(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    # Not finished (stopped, or still going): nothing of it expires on its own.
    cfg = config(redis_url, run_name)
    k = keys.RunKeys(run_name)

    async def scenario() -> None:
        first = await _run_with(cfg, 3)
        other = Member(cfg)
        assert await other.join(None, lambda: False)
        other.fingerprints = ["fp-of-its-token"]
        await other.look()
        await other.beat()
        other.die()
        first.die()
        await other.disconnect()
        await first.disconnect()

    run(scenario())
    lifetimes = _lifetimes(client, run_name)
    assert {k.tokens, k.beats, k.info, k.meta} <= set(lifetimes), lifetimes
    assert all(ttl == -1 for ttl in lifetimes.values()), lifetimes


def test_a_run_whose_finisher_stopped_half_way_still_gets_its_lifetime(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name)
    k = keys.RunKeys(run_name)

    async def scenario() -> None:
        finisher = await _run_with(cfg, 3)
        other = Member(cfg)
        assert await other.join(None, lambda: False)
        await settle_all(finisher, await finisher.take(10, 100))
        # FINISH ran (the run is finished, its fixed keys have their lifetime), then the
        # process was killed: no lifetime for the dedup buckets, none for the meta hash.
        fixed = [key for key in k.all_fixed() if key not in (k.meta, k.stream)]
        first, buckets = await finisher.script("FINISH", [k.meta, k.stream, *fixed], [3_600_000])
        assert int(first) == 1 and int(buckets) > 0
        finisher.die()
        await finisher.disconnect()
        buckets_ = [key for key in run_keys(client, run_name) if b":seen:" in key]
        assert buckets_ and all(client.pttl(key) == -1 for key in [k.meta, *buckets_])
        await other.close("finished")

    run(scenario())
    lifetimes = _lifetimes(client, run_name)
    assert k.meta in lifetimes and any(":seen:" in key for key in lifetimes)
    assert all(ttl > 0 for ttl in lifetimes.values()), lifetimes
    assert lifetimes[k.meta] > 3_600_000  # the meta hash outlives the rest, as FINISH has it


def test_a_worker_without_seeds_waits_for_its_run_then_gives_up(
    redis_url: str, run_name: str
) -> None:
    async def scenario() -> None:
        joiner = Member(config(redis_url, run_name, wait_seconds=0.3))
        with pytest.raises(RunMissing, match="does not exist"):
            await joiner.join(None, lambda: False)
        await joiner.close("pgy_config_error")
        later = Member(config(redis_url, run_name, wait_seconds=5))
        waiting = asyncio.ensure_future(later.join(None, lambda: False))
        await asyncio.sleep(0.6)
        assert not waiting.done()
        creator = Member(config(redis_url, run_name))
        assert await creator.join(["ids:1:x"], lambda: False)
        assert await waiting is True
        await later.close("finished")
        await creator.close("finished")

    run(scenario())


def test_other_seed_sources_are_refused(redis_url: str, run_name: str) -> None:
    async def scenario() -> None:
        first = Member(config(redis_url, run_name))
        assert await first.join(["file:10:aaaa", "file:20:bbbb"], lambda: False)
        other = Member(config(redis_url, run_name))
        with pytest.raises(SeedFileError, match="seed source 2"):
            await other.join(["file:10:aaaa", "file:20:cccc"], lambda: False)
        fewer = Member(config(redis_url, run_name))
        with pytest.raises(SeedFileError, match="this process has 1"):
            await fewer.join(["file:10:aaaa"], lambda: False)
        same = Member(config(redis_url, run_name))
        assert await same.join(["file:10:aaaa", "file:20:bbbb"], lambda: False)
        for member in (first, same, other, fewer):
            await member.close("finished")

    run(scenario())


# -- what Redis holds ------------------------------------------------------------------------


def test_run_wide_dedup_takes_under_100_bytes_per_seed(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    count = 200_000
    cfg = config(redis_url, run_name)

    async def scenario() -> None:
        reader, state = await leased_reader(cfg, count * 25)  # a file of bare IDs
        for first in range(0, count, 500):
            batch = seeds(first, 500)
            fresh = {s.note_id for s in batch}  # nothing queued: the dedup set alone
            assert (await reader.push(batch, first, state.buckets, fresh, False))[0] == b"ok"  # type: ignore[arg-type]
        await reader.close("finished")

    run(scenario())
    buckets = list(client.scan_iter(match=keys.RunKeys(run_name).seen_pattern, count=1000))
    assert {client.object("encoding", key) for key in buckets} == {b"listpack"}
    used = sum(client.memory_usage(key, samples=0) or 0 for key in buckets)
    assert sum(client.hlen(key) for key in buckets) == count  # exact: every ID kept
    assert used / count <= 100, used / count


def test_the_scripts_never_trim_the_stream() -> None:
    """Trimming past pending entries makes Redis 7.0 drop them: a silent seed loss."""
    package = Path(scripts.__file__).parent
    for path in package.glob("*.py"):
        text = path.read_text(encoding="utf-8").upper()
        if path.name == "scripts.py":
            text = text.split('"""', 2)[2]  # past the docstring that explains why
        for word in ("XTRIM", "MAXLEN", "MINID"):
            assert word not in text, (path.name, word)


def test_dropping_written_rejects_again_drops_nothing_more(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    # The reader drops the records it wrote to its failed file; redis-py re-sends a command
    # whose reply was lost, and a second drop must not take records nobody has written yet.
    cfg = config(redis_url, run_name)

    async def scenario() -> None:
        reader, state = await leased_reader(cfg)
        batch = [rejected("a", 0), rejected("b", 1), rejected("c", 2)]
        assert (await reader.push(batch, 0, state.buckets, set(), True))[0] == b"ok"
        first_two = (await reader.rejects_left())[:2]
        await reader.drop_rejects(first_two)
        await reader.drop_rejects(first_two)  # the same call again
        assert [s.raw for s in await reader.rejects_left()] == ["c"]
        await reader.close("finished")

    run(scenario())
