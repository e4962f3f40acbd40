"""End-to-end: the controls every process of a run shares, with several real ``scrapy crawl``
processes, one Redis and the simulator.

The 302 pause (the simulator's call log: what the other workers sent during it), retired
tokens (a worker left without one, the whole run without one, and resumed with a new one),
the run-wide budget across a worker killed with SIGKILL (the simulator's billed count), Redis
killed with SIGKILL and restarted (waited out; longer than ``PGY_QUEUE_OUTAGE_SECONDS``: exit 5
and resumed), and the lifetime of a run's keys (a finished run expires, a stopped one never).
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Any

import redis

from pgy_spider import reasons
from pgy_spider.api import token_fingerprint
from pgy_spider.queue.keys import RunKeys
from pgy_spider.queue.member import WATCH_INTERVAL
from tests.support.accounting import assert_accounted
from tests.support.crawl import CrawlResult, finish_crawl
from tests.support.queue_crawl import (
    CONCURRENCY,
    _no_crawl_left_running,
    check_calls,
    check_run,
    copy_seeds,
    feed_notes,
    held_by,
    pgy_status,
    queue_settings,
    seed_file,
    start,
    wait_for,
    worker_of,
)
from tests.support.queue_member import run_keys
from tests.support.redis import RedisServer
from tests.support.simulator import SimulatorClient

__all__ = ["_no_crawl_left_running"]  # every crawl a test started is ended after it

SEEDS = ("-a", "ids_file=seeds.txt")


def status_of(tmp_path: Path, url: str, run: str) -> dict[str, Any]:
    code, status, stderr = pgy_status(tmp_path / "status", url, run)
    assert code == 0, stderr
    return status  # type: ignore[no-any-return]


def assert_no_token_in_redis(client: redis.Redis, run: str, tokens: tuple[str, ...]) -> None:
    """Every key and value of the run: fingerprints only, never a token."""
    keys = run_keys(client, run)
    assert keys
    for key in keys:
        blob = key + (client.dump(key) or b"")
        for token in tokens:
            assert token.encode() not in blob, key


def calls_by(sim: SimulatorClient, token: str) -> int:
    return int(sim.stats()["by_token"].get(token, 0))


def finished_ok(*pairs: tuple[Any, Path]) -> list[CrawlResult]:
    results = [finish_crawl(proc, workdir) for proc, workdir in pairs]
    for result in results:
        assert result.returncode == 0, result
        assert_accounted(result)
    return results


# -- the 302 pause -------------------------------------------------------------------------------


def test_a_302_seen_by_one_worker_pauses_the_others_within_one_poll(
    tmp_path: Path, sim: SimulatorClient, redis_url: str, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 2500)
    pause = 3.0
    settings = queue_settings(
        redis_url,
        run_name,
        CONCURRENT_REQUESTS=4,
        PGY_RATE_LIMIT_DELAY=pause,
        PGY_RATE_LIMIT_MAX_DELAY=pause,
    )
    sim.configure(latency_ms=20, call_log=True)
    first = start(tmp_path / "a", *SEEDS, sim_url=sim.url, settings=settings)
    second = start(tmp_path / "b", sim_url=sim.url, token="test-token-2", settings=settings)
    wait_for(
        lambda: calls_by(sim, "test-token") >= 100 and calls_by(sim, "test-token-2") >= 100,
        first,
        second,
    )
    sim.configure(burst_302=1)  # the next call, whoever makes it, is answered 302
    results = finished_ok((first, tmp_path / "a"), (second, tmp_path / "b"))
    log = sim.calls()
    limited = [c for c in log if c["code"] == "302"]
    assert len(limited) == 1
    t0, seen_by = limited[0]["t"], limited[0]["token"]
    other = "test-token-2" if seen_by == "test-token" else "test-token"
    # What the other worker sent per second before the 302: the calls one poll lets through.
    rate = sum(1 for c in log if c["token"] == other and t0 - 1.0 <= c["t"] < t0)
    assert rate > 20
    during = [c for c in log if c["token"] == other and t0 < c["t"] < t0 + pause]
    # Only its calls already on their way (CONCURRENT_REQUESTS) and those of one poll (two,
    # for a loaded machine); without the shared pause it would have sent `rate * pause`.
    allowed = 4 + math.ceil(rate * WATCH_INTERVAL * 2)
    assert len(during) <= allowed < rate * pause / 2, (len(during), allowed, rate)
    own = [c for c in log if c["token"] == seen_by and t0 < c["t"] < t0 + pause]
    assert len(own) <= 4  # its own calls already past the pause check
    assert "pausing API calls for 3.0s" in results[0].stderr + results[1].stderr
    check_run(status_of(tmp_path, redis_url, run_name), expected)
    check_calls(sim, expected, kills=0)


# -- retired tokens ------------------------------------------------------------------------------


def test_a_token_refused_on_one_host_is_retired_on_all_and_a_worker_without_one_stops(
    tmp_path: Path, sim: SimulatorClient, redis_server: RedisServer, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 2000, not_found=5)
    # A claim time longer than the test: only a hand-back gives a stopped worker's notes away.
    settings = queue_settings(redis_server.url, run_name, PGY_QUEUE_CLAIM_SECONDS=600)
    sim.configure(latency_ms=50, token_codes={"test-token-3": 100})
    first = start(
        tmp_path / "a", *SEEDS, sim_url=sim.url, token="test-token-3,test-token", settings=settings
    )
    wait_for(lambda: calls_by(sim, "test-token") >= 30, first)
    refused = calls_by(sim, "test-token-3")
    assert 1 <= refused <= CONCURRENCY
    # A worker holding the token retired elsewhere never sends a call with it.
    second = start(
        tmp_path / "b", sim_url=sim.url, token="test-token-3,test-token-2", settings=settings
    )
    wait_for(lambda: calls_by(sim, "test-token-2") >= 40, first, second)
    assert calls_by(sim, "test-token-3") == refused
    with redis_server.client() as client:
        name = worker_of(client, run_name, second.pid)
        # Its last token refused: it stops (exit 3), its notes go back at once, the run goes on.
        sim.configure(token_codes={"test-token-3": 100, "test-token-2": 303})
        stopped = finish_crawl(second, tmp_path / "b")
        assert stopped.returncode == 3, stopped
        assert held_by(client, run_name, name) == 0
        assert "the other workers of run" in stopped.stderr
        summary = assert_accounted(stopped)
        assert summary["finish_reason"] == reasons.QUOTA_EXCEEDED
        survivor = finished_ok((first, tmp_path / "a"))[0]
        assert_no_token_in_redis(client, run_name, sim.tokens)
    assert "Traceback" not in stopped.stderr + survivor.stderr
    status = status_of(tmp_path, redis_server.url, run_name)
    check_run(status, expected)
    assert status["handed_back"] > 0
    retired = {fp: t["retired"] for fp, t in status["tokens"].items()}
    assert retired[token_fingerprint("test-token-3")] == reasons.INVALID_TOKEN
    assert retired[token_fingerprint("test-token-2")] == reasons.QUOTA_EXCEEDED
    assert retired[token_fingerprint("test-token")] is None
    check_calls(sim, expected, kills=0)
    notes = feed_notes([stopped, survivor])
    assert set(notes) == expected["notes"] and max(notes.values()) == 1


def test_no_token_left_anywhere_stops_the_run_and_a_new_token_resumes_it(
    tmp_path: Path, sim: SimulatorClient, redis_server: RedisServer, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 600, not_found=4)
    settings = queue_settings(redis_server.url, run_name)
    sim.configure(latency_ms=30)
    first = start(tmp_path / "a", *SEEDS, sim_url=sim.url, settings=settings)
    second = start(tmp_path / "b", sim_url=sim.url, token="test-token-2", settings=settings)
    wait_for(lambda: sim.stats()["calls"] >= 120, first, second)
    sim.configure(token_codes={"test-token": 601, "test-token-2": 601})
    stopped = [finish_crawl(first, tmp_path / "a"), finish_crawl(second, tmp_path / "b")]
    for result in stopped:
        assert result.returncode == 3, result
        assert "Traceback" not in result.stderr
        assert assert_accounted(result)["finish_reason"] == reasons.INSUFFICIENT_BALANCE
    status = status_of(tmp_path, redis_server.url, run_name)
    assert status["state"] == f"stopped:{reasons.INSUFFICIENT_BALANCE}", status
    assert status["pending"] > 0 and status["balanced"] is True
    # A stopped run never expires on its own; pgy_status says how old it is.
    assert status["expires_in_seconds"] is None and status["age_seconds"] > 0
    with redis_server.client() as client:
        assert all(client.pttl(key) == -1 for key in run_keys(client, run_name))
    # The same commands with a usable token resume the run where it stopped.
    before = sim.stats()
    fresh = {"token": "test-token-3", "sim_url": sim.url, "settings": settings}
    both = {"token": "test-token-2,test-token-3", "sim_url": sim.url, "settings": settings}
    copy_seeds(tmp_path / "a" / "seeds.txt", tmp_path / "a2")  # new dirs: new feeds
    resumed = finished_ok(
        (start(tmp_path / "a2", *SEEDS, **fresh), tmp_path / "a2"),
        (start(tmp_path / "b2", **both), tmp_path / "b2"),
    )
    after = sim.stats()
    # The retired tokens stay retired for the run: not one more call with them.
    assert after["by_token"]["test-token"] == before["by_token"]["test-token"]
    assert after["by_token"]["test-token-2"] == before["by_token"]["test-token-2"]
    status = status_of(tmp_path, redis_server.url, run_name)
    check_run(status, expected)
    check_calls(sim, expected, kills=0)
    notes = feed_notes([*stopped, *resumed])
    assert set(notes) == expected["notes"] and max(notes.values()) == 1
    # A finished run's keys expire after PGY_RUN_TTL_HOURS (72): pgy_status still has it
    # the next morning.
    assert 71 * 3600 < status["expires_in_seconds"] <= 72 * 3600 + 60
    with redis_server.client() as client:
        ttls = [client.pttl(key) for key in run_keys(client, run_name)]
        assert ttls and all(71 * 3_600_000 < ttl <= 72 * 3_600_000 + 60_000 for ttl in ttls)
        assert_no_token_in_redis(client, run_name, sim.tokens)


# -- the budget ----------------------------------------------------------------------------------


def test_the_budget_counts_the_whole_run_across_a_worker_killed(
    tmp_path: Path, sim: SimulatorClient, redis_server: RedisServer, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 600)
    budget = 250
    settings = queue_settings(redis_server.url, run_name, PGY_MAX_BILLED_CALLS=budget)
    sim.configure(latency_ms=40)
    first = start(tmp_path / "a", *SEEDS, sim_url=sim.url, settings=settings)
    second = start(tmp_path / "b", sim_url=sim.url, settings=settings)
    with redis_server.client() as client:
        wait_for(lambda: client.hlen(RunKeys(run_name).info) == 2, first, second)
        name = worker_of(client, run_name, second.pid)
        wait_for(
            lambda: sim.stats()["calls"] >= 80 and held_by(client, run_name, name) > 0,
            first,
            second,
        )
        second.send_signal(signal.SIGKILL)
        killed = finish_crawl(second, tmp_path / "b")
        assert killed.returncode == -signal.SIGKILL
    spent = finish_crawl(first, tmp_path / "a")
    assert spent.returncode == 3, spent
    assert assert_accounted(spent)["finish_reason"] == reasons.BUDGET_EXHAUSTED
    assert "The budget is spent" in spent.stderr
    # Never past the cap, the dead worker's calls in flight included.
    assert sim.stats()["billed"] <= budget
    status = status_of(tmp_path, redis_server.url, run_name)
    assert status["state"] == f"stopped:{reasons.BUDGET_EXHAUSTED}", status
    assert status["billed"] == budget and status["budget_held"] == 0
    assert status["pending"] > 0 and status["balanced"] is True
    # The same command with a larger budget resumes the run.
    larger = {**settings, "PGY_MAX_BILLED_CALLS": 5000}
    copy_seeds(tmp_path / "a" / "seeds.txt", tmp_path / "a2")  # a new dir: a new feed
    resumed = finished_ok(
        (start(tmp_path / "a2", *SEEDS, sim_url=sim.url, settings=larger), tmp_path / "a2"),
    )
    status = status_of(tmp_path, redis_server.url, run_name)
    check_run(status, expected, redeliveries=None)
    check_calls(sim, expected, kills=1)
    notes = feed_notes([killed, spent, *resumed])
    assert set(notes) == expected["notes"]
    assert sum(1 for c in notes.values() if c > 1) <= CONCURRENCY


# -- Redis restarted -----------------------------------------------------------------------------


def test_redis_killed_and_restarted_is_waited_for_and_nothing_is_lost(
    tmp_path: Path, sim: SimulatorClient, restartable_redis: RedisServer, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 900, not_found=5)
    settings = queue_settings(restartable_redis.url, run_name)
    sim.configure(latency_ms=20)
    first = start(tmp_path / "a", *SEEDS, sim_url=sim.url, settings=settings)
    second = start(tmp_path / "b", sim_url=sim.url, settings=settings)
    wait_for(lambda: sim.stats()["calls"] >= 200, first, second)
    restartable_redis.kill()
    calls_at_kill = sim.stats()["calls"]
    # Calls go on only while their notes can be settled: at most the places in flight.
    time.sleep(2.0)
    assert sim.stats()["calls"] - calls_at_kill <= 2 * CONCURRENCY
    restartable_redis.start()
    results = finished_ok((first, tmp_path / "a"), (second, tmp_path / "b"))
    for result in results:
        assert "Lost the queue at" in result.stderr and "is back after" in result.stderr
    status = status_of(tmp_path, restartable_redis.url, run_name)
    check_run(status, expected, redeliveries=0)
    # appendfsync always: nothing settled was lost, so nothing was paid twice.
    check_calls(sim, expected, kills=0)
    notes = feed_notes(results)
    assert set(notes) == expected["notes"] and max(notes.values()) == 1


def test_redis_away_longer_than_the_outage_allowance_stops_with_exit_5_and_resumes(
    tmp_path: Path, sim: SimulatorClient, restartable_redis: RedisServer, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 700)
    settings = queue_settings(restartable_redis.url, run_name, PGY_QUEUE_OUTAGE_SECONDS=1.5)
    sim.configure(latency_ms=20)
    first = start(tmp_path / "a", *SEEDS, sim_url=sim.url, settings=settings)
    second = start(tmp_path / "b", sim_url=sim.url, settings=settings)
    wait_for(lambda: sim.stats()["calls"] >= 150, first, second)
    restartable_redis.kill()
    stopped = [finish_crawl(first, tmp_path / "a"), finish_crawl(second, tmp_path / "b")]
    for result in stopped:
        assert result.returncode == 5, result
        assert "Traceback" not in result.stderr
        assert "PGY_QUEUE_OUTAGE_SECONDS" in result.stderr
        assert assert_accounted(result)["finish_reason"] == reasons.QUEUE_ERROR
    restartable_redis.start()
    copy_seeds(tmp_path / "a" / "seeds.txt", tmp_path / "a2")  # new dirs: new feeds
    resumed = finished_ok(
        (start(tmp_path / "a2", *SEEDS, sim_url=sim.url, settings=settings), tmp_path / "a2"),
        (start(tmp_path / "b2", sim_url=sim.url, settings=settings), tmp_path / "b2"),
    )
    status = status_of(tmp_path, restartable_redis.url, run_name)
    check_run(status, expected, redeliveries=None)
    # The calls of notes not settled when Redis went: those in flight, once per worker.
    check_calls(sim, expected, kills=2)
    notes = feed_notes([*stopped, *resumed])
    assert set(notes) == expected["notes"]


def test_a_finished_runs_keys_expire_after_pgy_run_ttl_hours(
    tmp_path: Path, sim: SimulatorClient, redis_server: RedisServer, run_name: str
) -> None:
    expected = seed_file(tmp_path / "a" / "seeds.txt", 100)
    # 18 s (the meta hash as long again): the same path as the default 72 h, and long enough
    # that the keys outlive the pgy_status process below on a loaded machine.
    settings = queue_settings(redis_server.url, run_name, PGY_RUN_TTL_HOURS=0.005)
    finished_ok(
        (start(tmp_path / "a", *SEEDS, sim_url=sim.url, settings=settings), tmp_path / "a"),
        (start(tmp_path / "b", sim_url=sim.url, settings=settings), tmp_path / "b"),
    )
    check_run(status_of(tmp_path, redis_server.url, run_name), expected)
    with redis_server.client() as client:
        assert run_keys(client, run_name)
        wait_for(lambda: not run_keys(client, run_name), timeout=90)
    code, _, stderr = pgy_status(tmp_path / "status", redis_server.url, run_name)
    assert code == 2 and "does not exist" in stderr
