"""The run's shared controls in process, against a real Redis (no fakes): the 302 pause, the
retired tokens and the budget of several members of one run, as each would see them.

Each test plays several workers of one run in one event loop; what one does reaches the
others through Redis alone (their polls, :meth:`QueueMember.look`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from pgy_spider import reasons
from pgy_spider.api import token_fingerprint
from pgy_spider.queue.budget import RedisBudget
from pgy_spider.queue.keys import RunKeys
from pgy_spider.queue.pause import RedisRatePause
from pgy_spider.queue.tokens import RedisTokenVault
from tests.support.queue_member import Member, config, run, until


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, protocol=2) as connection:
        yield connection


async def joined(cfg: Any, count: int) -> list[Member]:
    members = [Member(cfg) for _ in range(count)]
    for member in members:
        assert await member.join(["ids:1:x"], lambda: False)
    return members


def test_a_302_pauses_every_worker_with_the_doubling_of_one_process(
    redis_url: str, run_name: str
) -> None:
    cfg = config(redis_url, run_name)

    async def scenario() -> None:
        first, second = await joined(cfg, 2)
        pauses = [RedisRatePause(0.3, 1.0, m) for m in (first, second)]
        assert pauses[0].paused_until() == pauses[1].paused_until() == 0
        assert await pauses[0].rate_limited() == 0.3
        # A 302 of the other worker inside the run's pause: a straggler, nothing longer.
        assert await pauses[1].rate_limited() is None
        await second.look()
        assert pauses[1].paused_until() > time.monotonic()
        await until(lambda: _after(pauses[1]))
        # The next burst, wherever it is seen, doubles; a success anywhere starts over.
        assert await pauses[1].rate_limited() == 0.6
        await first.look()
        assert pauses[0].paused_until() > time.monotonic()
        await until(lambda: _after(pauses[0]))
        assert await pauses[0].rate_limited() == 1.0  # capped at the longest
        await until(lambda: _after(pauses[0]))
        await second.look()
        pauses[1].succeeded()
        await second.look()
        assert await pauses[0].rate_limited() == 0.3
        for member in (first, second):
            await member.close("finished")

    async def _after(pause: RedisRatePause) -> bool:
        return time.monotonic() >= pause.paused_until()

    run(scenario())


def test_a_worker_that_got_a_302_sends_nothing_until_redis_says_how_long_to_pause(
    redis_url: str, run_name: str
) -> None:
    cfg = config(redis_url, run_name)

    async def scenario() -> None:
        (member,) = await joined(cfg, 1)
        pause = RedisRatePause(0.3, 1.0, member)
        asking = asyncio.ensure_future(pause.rate_limited())
        await asyncio.sleep(0)  # the PAUSE script is on its way to Redis
        assert pause.paused_until() == math.inf
        assert await asking == 0.3
        assert time.monotonic() < pause.paused_until() <= time.monotonic() + 0.3
        await member.close("finished")

    run(scenario())


def test_a_token_retired_on_one_worker_is_retired_on_every_worker_that_holds_it(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name)
    shared, own, other = "tok-shared-SECRET-1", "tok-own-SECRET-2", "tok-other-SECRET-3"

    async def scenario() -> None:
        first, second, third = await joined(cfg, 3)
        vaults = [
            RedisTokenVault([shared, own], first),
            RedisTokenVault([shared], second),
            RedisTokenVault([other], third),
        ]
        for member in (first, second, third):
            await member.look()
        assert await vaults[0].retire(token_fingerprint(shared), reasons.QUOTA_EXCEEDED)
        assert vaults[0].current().token == own
        await second.look()  # the second held only that one: it stops, the run goes on
        await until(lambda: _stopped(second))
        assert second.stops == [
            (reasons.QUOTA_EXCEEDED, f"Stopping the crawl: {reasons.QUOTA_EXCEEDED} "
             "(no further API calls)")
        ]  # fmt: skip
        assert vaults[1].report()[token_fingerprint(shared)]["retired"] == reasons.QUOTA_EXCEEDED
        await second.close(reasons.QUOTA_EXCEEDED)
        assert not client.hget(RunKeys(run_name).meta, "stopped")
        # The last usable tokens of the run retired: the whole run stops.
        assert await vaults[2].retire(token_fingerprint(other), reasons.INVALID_TOKEN)
        assert not client.hget(RunKeys(run_name).meta, "stopped")  # the first has one
        assert await vaults[0].retire(token_fingerprint(own), reasons.INSUFFICIENT_BALANCE)
        assert client.hget(RunKeys(run_name).meta, "stopped") == b"pgy_insufficient_balance"
        await third.look()
        assert third.stops and third.stops[-1][0] == reasons.INSUFFICIENT_BALANCE
        assert "every worker" in third.stops[-1][1]
        # Redis holds fingerprints, never a token.
        dumped = b"".join(client.dump(key) or b"" for key in client.scan_iter(match="pgy:*"))
        for token in (shared, own, other):
            assert token.encode() not in dumped
        for member in (first, third):
            await member.close(reasons.INSUFFICIENT_BALANCE)

    async def _stopped(member: Member) -> bool:
        await asyncio.sleep(0)
        return bool(member.stops)

    run(scenario())


def test_the_budget_is_the_runs_and_a_dead_workers_units_count_as_spent(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name, claim_seconds=0.6)
    budget_key = RunKeys(run_name).budget

    async def scenario() -> None:
        first, second = await joined(cfg, 2)
        budgets = [RedisBudget(4, m) for m in (first, second)]
        assert await budgets[0].reserve() and await budgets[0].reserve()
        assert await budgets[1].reserve() and await budgets[1].reserve()
        # All four units on the wire: a reservation waits for an answer.
        waiting = asyncio.ensure_future(budgets[1].reserve())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        budgets[0].settle(billable=False)  # a 302: its unit comes back
        assert await asyncio.wait_for(waiting, 5)
        budgets[0].settle(billable=True)
        await first.closers[0]()
        assert int(client.hget(budget_key, "spent")) == 1
        assert int(client.hget(budget_key, "held")) == 3
        # The second dies with three calls on the wire: the first waits for them only
        # until the second shows no sign of life, then counts them as spent.
        second.die()
        assert await budgets[0].reserve() is False
        assert int(client.hget(budget_key, "spent")) == 4
        assert await budgets[0].reserve() is False
        assert budgets[0].exhausted
        assert client.hget(RunKeys(run_name).meta, "stopped") == reasons.BUDGET_EXHAUSTED.encode()
        # A settle sent twice (its answer lost) counts once; units taken for dead count once.
        await first.close(reasons.BUDGET_EXHAUSTED)
        await second.disconnect()
        values = {k.decode(): int(v) for k, v in client.hgetall(budget_key).items()}
        assert values["spent"] == 4 and values["held"] == 0

    run(scenario())


def test_a_settle_batch_sent_twice_counts_once(
    redis_url: str, run_name: str, client: redis.Redis
) -> None:
    cfg = config(redis_url, run_name)
    budget_key = RunKeys(run_name).budget

    async def scenario() -> None:
        (member,) = await joined(cfg, 1)
        budget = RedisBudget(10, member)
        for _ in range(3):
            assert await budget.reserve()
        args = [member.worker, 1, 2, 1]
        for _ in range(2):  # redis-py sends a call again when its connection broke
            await member.script("SPEND", [budget_key], args)
        values = {k.decode(): int(v) for k, v in client.hgetall(budget_key).items()}
        assert values["spent"] == 1 and values["held"] == 1
        await member.close("finished")
        assert int(client.hget(budget_key, "spent")) == 2  # the unit still held: spent

    run(scenario())
