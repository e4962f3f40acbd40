"""The benchmark's Redis helpers (bench/redisq.py) still drive the project's queue API.

``bench/redisq.py`` builds a ``QueueConfig`` and a ``QueueMember`` itself; when those change,
``make bench`` would fail only at its end (it did once). Small N here: correctness, no figures.
"""

from __future__ import annotations

from pathlib import Path

from bench.redisq import BenchRedis, check_run, dedup_memory


def test_the_dedup_memory_run_pushes_every_seed_and_measures_it(tmp_path: Path) -> None:
    bench_redis = BenchRedis(tmp_path)
    try:
        result = dedup_memory(bench_redis, 3_000)
        assert result.problem is None and result.ok
        assert result.keys >= 1 and result.dedup_bytes > 0
        assert 0 < result.bytes_per_seed < 100  # the benchmark's target, far from its figure
        with bench_redis.client() as client:
            assert list(client.scan_iter(match="pgy:*")) == []  # the run's keys are deleted
    finally:
        bench_redis.close()


def test_a_run_that_is_not_there_is_reported_not_raised(tmp_path: Path) -> None:
    bench_redis = BenchRedis(tmp_path)
    try:
        problem = check_run(bench_redis, "no-such-run", 10)
    finally:
        bench_redis.close()
    # The summary was asked for, with a valid config, and said the run is not there.
    assert problem is not None and problem.startswith("run no-such-run: ")
    assert "RunNotFound" in problem
