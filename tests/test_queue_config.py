"""A run across processes: its settings, its paths, the password masked, the seed
sources' identities, and the checks before any call (against a real Redis)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrapy.settings import Settings

from pgy_spider.config import PgyConfig, queue_config
from pgy_spider.errors import ConfigError, UserError
from pgy_spider.flight import InFlight
from pgy_spider.paths import RunPaths
from pgy_spider.preflight import preflight
from pgy_spider.queue import identity, keys
from pgy_spider.queue.member import QueueMember
from pgy_spider.queue.url import mask_url, mask_url_safely
from pgy_spider.seeds import SeedFileError
from tests.support.components import settings_dict
from tests.support.crawl import REPO
from tests.support.redis import RedisServer

URL = "redis://user:s3cret%2Fpw@q.example:6380/2"


def _config(settings: dict[str, Any], env: dict[str, str] | None = None) -> PgyConfig:
    return PgyConfig.from_settings({"PGY_TOKEN": "t", **settings}, env or {})


def _error(settings: dict[str, Any], env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        _config(settings, env)
    message = str(info.value)
    assert "\n" not in message and "s3cret" not in message
    return message


def test_unset_queue_url_is_one_process_as_before() -> None:
    assert _config({}).queue is None
    assert _config({"PGY_RUN": "daily"}).queue is None  # a run name alone changes nothing


def test_queue_settings_their_defaults_and_environment_fallbacks() -> None:
    queue = _config({}, {"PGY_QUEUE_URL": URL, "PGY_RUN": "daily-12-01"}).queue
    assert queue is not None
    assert (queue.url, queue.run) == (URL, "daily-12-01")
    assert queue.wait_seconds == 600 and queue.claim_seconds == 60
    assert queue.max_unsettled == 10_000
    assert queue.secrets == ("s3cret/pw",)
    assert "s3cret" not in repr(queue)
    given = _config(
        {"PGY_QUEUE_URL": "redis://h:1/0", "PGY_RUN": "r", "PGY_QUEUE_CLAIM_SECONDS": "5"},
        {"PGY_QUEUE_URL": URL, "PGY_RUN": "other"},
    ).queue
    assert given is not None and (given.url, given.run, given.claim_seconds) == (
        "redis://h:1/0",
        "r",
        5.0,
    )
    assert queue_config({"PGY_QUEUE_URL": URL, "PGY_RUN": "x"}, {}) is not None


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"PGY_QUEUE_URL": URL}, ["PGY_RUN", "-s PGY_RUN="]),
        ({"PGY_QUEUE_URL": URL, "PGY_RUN": "a b"}, ["PGY_RUN", "not a valid run name"]),
        ({"PGY_QUEUE_URL": URL, "PGY_RUN": "x{y}"}, ["not a valid run name"]),
        ({"PGY_QUEUE_URL": URL, "PGY_RUN": "r", "JOBDIR": "job"}, ["JOBDIR", "Redis"]),
        ({"PGY_QUEUE_URL": "http://user:s3cret@h:1", "PGY_RUN": "r"}, ["redis://"]),
        ({"PGY_QUEUE_URL": "redis://:s3cret@h:1/zero", "PGY_RUN": "r"}, ["database"]),
        ({"PGY_QUEUE_URL": "redis://:s3cret@h:port/0", "PGY_RUN": "r"}, ["not a valid URL"]),
        (
            {"PGY_QUEUE_URL": URL, "PGY_RUN": "r", "PGY_QUEUE_CLAIM_SECONDS": "0"},
            ["PGY_QUEUE_CLAIM_SECONDS"],
        ),
    ],
)
def test_wrong_queue_settings_are_one_clear_line(
    settings: dict[str, Any], words: list[str]
) -> None:
    message = _error(settings)
    for word in words:
        assert word in message, message


def test_the_password_is_masked_wherever_the_url_is_shown() -> None:
    assert mask_url(URL) == "redis://user:***@q.example:6380/2"
    assert mask_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert mask_url("redis://h:1/0") == "redis://h:1/0"
    assert "pw" not in mask_url_safely("redis://:pw@h:port/0")


def test_run_and_worker_placeholders_in_every_output_path() -> None:
    config = _config(
        {
            "PGY_QUEUE_URL": URL,
            "PGY_RUN": "daily",
            "PGY_FAILED_PATH": "out/%(run)s/%(worker)s-failed.jsonl",
            "PGY_SUMMARY_PATH": "out/%(run)s/%(worker)s-summary.json",
        }
    )
    started = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    paths = RunPaths.compute(config, "note_detail", started, "", "host-1-abc")
    assert paths.failed == "out/daily/host-1-abc-failed.jsonl"
    assert paths.summary == "out/daily/host-1-abc-summary.json"
    assert paths.params["run"] == "daily" and paths.params["worker"] == "host-1-abc"
    one = RunPaths.compute(_config({}), "note_detail", started, "")
    assert "run" not in one.params  # one process: nothing new


def test_worker_names_are_unique_and_fit_in_a_file_name() -> None:
    names = {keys.worker_name() for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9.-]{1,60}", name) for name in names)


def test_dedup_buckets_are_chosen_for_the_sources_size() -> None:
    assert keys.bucket_count(0) == 1
    assert keys.bucket_count(25 * 64_000) == 1001  # 64 IDs per bucket at most, on average
    ids = [f"{i:024x}" for i in range(50_000)]
    buckets = keys.bucket_count(25 * len(ids))
    fill: dict[int, int] = {}
    for note_id in ids:
        bucket = keys.bucket_of(note_id, buckets)
        fill[bucket] = fill.get(bucket, 0) + 1
    assert max(fill.values()) < 128  # Redis keeps each one a compact listpack


def test_redis_is_imported_only_in_a_run_across_processes() -> None:
    code = (
        "import sys\n"
        "import pgy_spider.settings, pgy_spider.commands.crawl, pgy_spider.commands.pgy_status\n"
        "import pgy_spider.spiders.note_detail, pgy_spider.extensions.accounting\n"
        "from tests.support.components import project_crawler, runtime\n"
        "assert runtime(project_crawler()).queue is None\n"
        "assert 'redis' not in sys.modules, sorted(m for m in sys.modules if 'redis' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# -- what a seed source is ------------------------------------------------------------------


def test_seed_sources_are_identified_by_content_not_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "seeds.txt").write_text("x\ny\n", encoding="utf-8")
    here = identity.source_identities("", [str(tmp_path / "a" / "seeds.txt")], None)
    there = identity.source_identities("", [str(tmp_path / "b" / "seeds.txt")], None)
    assert here == there and here[0].startswith("file:4:")
    (tmp_path / "b" / "seeds.txt").write_text("x\nz\n", encoding="utf-8")
    changed = identity.source_identities("", [str(tmp_path / "b" / "seeds.txt")], None)
    problem = identity.difference("daily", here, changed)
    assert problem is not None and "seed source 1" in problem and "PGY_RUN" in problem
    assert identity.source_identities("a,b", [], "https://h/s.txt")[0].startswith("ids:")
    assert identity.source_identities(" , ", [], None) == []
    # A huge file: its size, head and tail (not read whole).
    monkeypatch.setattr(identity, "WHOLE_UP_TO", 10)
    monkeypatch.setattr(identity, "PART", 4)
    big = tmp_path / "big.txt"
    big.write_bytes(b"0123456789abcdefghij")
    first = identity.file_identity(str(big))
    big.write_bytes(b"0123XXXXXXXXXXXXghij")
    assert identity.file_identity(str(big)) == first and ":ends:" in first
    big.write_bytes(b"0123456789abcdefghiK")
    assert identity.file_identity(str(big)) != first


# -- the checks before any call ------------------------------------------------------------


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    paths = {
        "PGY_FEED_URI": str(tmp_path / "out" / "notes.jsonl"),
        "PGY_FAILED_PATH": str(tmp_path / "out" / "failed.jsonl"),
        "PGY_SUMMARY_PATH": str(tmp_path / "out" / "summary.json"),
    }
    return Settings(settings_dict(**{**paths, **overrides}))


def _refused(settings: Settings, spargs: dict[str, Any]) -> str:
    with pytest.raises(UserError) as info:
        preflight(settings, spargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_preflight_creates_the_run_once_and_refuses_other_seeds(
    tmp_path: Path, redis_url: str, run_name: str
) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("65c0b3fc000000002c037a49\n", encoding="utf-8")
    settings = _settings(tmp_path, PGY_QUEUE_URL=redis_url, PGY_RUN=run_name)
    assert preflight(settings, {"ids_file": str(seeds)}) == []
    assert preflight(settings, {"ids_file": str(seeds)}) == []  # the same seeds: it joins
    assert preflight(settings, {}) == []  # no seeds: a worker, no "no seeds given"
    message = _refused(settings, {"ids": "65c0b3fc000000002c037a49"})
    assert "differ" in message and run_name in message


def test_preflight_says_when_redis_cannot_be_used(
    tmp_path: Path, secured_redis: RedisServer, run_name: str
) -> None:
    assert secured_redis.port is not None
    for url, why in (
        (f"redis://:wrong@127.0.0.1:{secured_redis.port}/0", "invalid"),
        ("redis://:pw-of-nobody@127.0.0.1:1/0", "127.0.0.1:1"),
    ):
        settings = _settings(tmp_path, PGY_QUEUE_URL=url, PGY_RUN=run_name)
        message = _refused(settings, {"ids": "65c0b3fc000000002c037a49"})
        assert "cannot use the queue" in message and why in message, message
        assert "wrong" not in message and "pw-of-nobody" not in message
        assert ":***@" in message
    good = _settings(tmp_path, PGY_QUEUE_URL=secured_redis.url, PGY_RUN=run_name)
    assert preflight(good, {"ids": "65c0b3fc000000002c037a49"}) == []


def test_the_ids_url_content_must_be_the_runs(redis_url: str, run_name: str) -> None:
    from pgy_spider.config import QueueConfig

    cfg = QueueConfig(redis_url, run_name, 1, 1, 100, 5, 1)

    async def scenario() -> None:
        members = [QueueMember(cfg, _Stats(), InFlight(1), dict, _no_stop) for _ in range(2)]
        for member in members:
            assert await member.join(["url:abc"], lambda: False)
        await members[0].check_url_content("file:10:aaaa")
        await members[1].check_url_content("file:10:aaaa")  # the same download: fine
        with pytest.raises(SeedFileError, match="ids_url"):
            await members[1].check_url_content("file:11:bbbb")
        for member in members:
            await member.close("finished")

    asyncio.run(scenario())


class _Stats:
    def get_stats(self) -> dict[str, Any]:
        return {}

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        pass


def _no_stop(reason: str, message: str) -> None:
    raise AssertionError(f"stopped: {reason}: {message}")
