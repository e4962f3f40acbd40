"""Reliability: several tokens — a refused one is retired and the crawl goes on with the next.

The summary reports calls per token under its fingerprint (never the token) and why each
retired token was retired; when every token is refused the crawl stops (exit 3) with the
undone notes pending, and the accounting still balances. The simulator's per-token call
counts are the reference.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pgy_spider.api import token_fingerprint
from tests.support.accounting import assert_accounted
from tests.support.crawl import CrawlResult, run_crawl
from tests.support.ids import make_note_ids
from tests.support.simulator import SimulatorClient

A, B, C = "tok-A-quota-91e2", "tok-B-balance-5d0c", "tok-C-good-77af"
FINGERPRINT = re.compile(r"tok-[0-9a-f]{8}")


def _crawl(
    tmp_path: Path,
    sim: SimulatorClient,
    seeds: list[str],
    token: str | None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    **settings: Any,
) -> CrawlResult:
    (tmp_path / "seeds.txt").write_text("\n".join(seeds) + "\n", encoding="utf-8")
    return run_crawl(
        tmp_path,
        "-a",
        "ids_file=seeds.txt",
        sim_url=sim.url,
        token=token,
        settings=settings,
        env=env,
        timeout=timeout,
    )


def _all_output(result: CrawlResult) -> str:
    parts = [result.stdout, result.stderr]
    parts += [
        p.read_text(encoding="utf-8", errors="replace")
        for p in result.workdir.rglob("*")
        if p.is_file() and p.name != "seeds.txt"
    ]
    return "\n".join(parts)


def _assert_tokens_reported(
    result: CrawlResult, sim: SimulatorClient, expected: dict[str, str | None]
) -> None:
    """Summary ``tokens``: one entry per token, by fingerprint, with the simulator's calls."""
    by_token = sim.stats()["by_token"]
    report = result.summary["tokens"]
    assert list(report) == [token_fingerprint(t) for t in expected]  # in the order given
    for token, retired in expected.items():
        fp = token_fingerprint(token)
        assert FINGERPRINT.fullmatch(fp)
        assert report[fp] == {"calls": by_token.get(token, 0), "retired": retired}
    assert sum(entry["calls"] for entry in report.values()) == result.summary["api_calls"]
    text = _all_output(result)
    for token in expected:
        assert token not in text


@pytest.mark.parametrize("concurrency", [1, 16])
def test_refused_tokens_are_retired_and_the_crawl_finishes_on_the_next(
    tmp_path: Path, sim: SimulatorClient, concurrency: int
) -> None:
    ids = make_note_ids(24)
    sim.configure(tokens=[A, B, C], token_codes={A: 303, B: 601})
    result = _crawl(
        tmp_path, sim, [*ids, ids[3], "junk"], f"{A},{B},{C}", CONCURRENT_REQUESTS=concurrency
    )
    assert result.returncode == 0, result
    summary = result.summary
    assert (summary["finish_reason"], summary["exit_code"]) == ("finished", 0)
    assert_accounted(result)
    assert (summary["notes_written"], summary["failed"], summary["pending"]) == (24, 0, 0)
    assert (summary["duplicates"], summary["rejected"]) == (1, 1)
    assert Counter(n["noteId"] for n in result.notes) == Counter(ids)
    stats = sim.stats()
    assert stats["success_by_note"] == dict.fromkeys(ids, 1)
    assert stats["by_token"][C] == 24  # every note was fetched with the good token
    if concurrency == 1:
        assert stats["by_token"] == {A: 1, B: 1, C: 24}
    else:  # only calls already in flight used a token after it was refused
        assert 1 <= stats["by_token"][A] <= concurrency
        assert 1 <= stats["by_token"][B] <= concurrency
    _assert_tokens_reported(
        result, sim, {A: "pgy_quota_exceeded", B: "pgy_insufficient_balance", C: None}
    )
    assert result.stats["pgy/tokens_retired/pgy_quota_exceeded"] == 1
    assert result.stats["pgy/tokens_retired/pgy_insufficient_balance"] == 1
    # The log says which token (by fingerprint) was retired and why, once each.
    for token, code in ((A, 303), (B, 601)):
        line = f"Token {token_fingerprint(token)} retired: the API answered {code}"
        assert result.stderr.count(line) == 1, result.stderr
    # A refused call is not a failed note: nothing in the failed file but the junk seed.
    assert [r.get("seed") for r in result.failed] == ["junk"]


def test_every_token_refused_stops_with_pending_notes(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(10)
    sim.configure(tokens=[A, B], token_codes={A: 303, B: 601})  # C is unknown: 100
    result = _crawl(tmp_path, sim, [*ids, "junk"], f"{A},{B},{C}", CONCURRENT_REQUESTS=1)
    assert result.returncode == 3, result
    summary = result.summary
    assert summary["finish_reason"] == "pgy_invalid_token"  # why the last token went
    assert summary["exit_code"] == 3
    assert_accounted(result)
    assert summary["pending"] == len(ids)
    assert (summary["notes_written"], summary["failed"], summary["rejected"]) == (0, 0, 1)
    # One call per token, then no further call at all.
    assert sim.stats()["by_token"] == {A: 1, B: 1, C: 1}
    assert sim.stats()["calls"] == 3
    _assert_tokens_reported(
        result,
        sim,
        {A: "pgy_quota_exceeded", B: "pgy_insufficient_balance", C: "pgy_invalid_token"},
    )
    assert result.notes == []
    assert [r.get("seed") for r in result.failed] == ["junk"]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_tokens_used_up_one_after_another_mid_run(
    tmp_path: Path, sim: SimulatorClient, concurrency: int
) -> None:
    ids = make_note_ids(40)
    sim.configure(tokens=[A, B, C], quota=5)  # 5 successful calls per token and day
    result = _crawl(tmp_path, sim, ids, f"{A},{B},{C}", CONCURRENT_REQUESTS=concurrency)
    assert result.returncode == 3, result
    summary = result.summary
    assert summary["finish_reason"] == "pgy_quota_exceeded"
    assert_accounted(result)
    stats = sim.stats()
    # Every success was written, once; the rest is pending for the next day.
    assert summary["notes_written"] == stats["by_code"]["0"] == 15
    assert len(stats["success_by_note"]) == 15
    assert Counter(n["noteId"] for n in result.notes) == Counter(stats["success_by_note"])
    assert summary["failed"] == 0
    # The rest is pending (issued, not settled) or not read yet: the seeds are read ahead
    # of the calls, but when each answer comes back before the next seed is read (a fast
    # simulator on a loaded machine) the reader is only a call or two ahead.
    assert 15 < summary["seeds_read"] <= len(ids)
    assert summary["pending"] == summary["seeds_read"] - 15
    if concurrency == 1:  # one call in flight: the reader is far ahead
        assert summary["pending"] == len(ids) - 15
    _assert_tokens_reported(result, sim, dict.fromkeys((A, B, C), "pgy_quota_exceeded"))
    if concurrency == 1:
        assert stats["by_token"] == {A: 6, B: 6, C: 6}


def test_justoneapi_token_env_with_a_comma_list(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(6)
    sim.configure(tokens=[A, B], token_codes={A: 303})
    result = _crawl(
        tmp_path,
        sim,
        ids,
        token=None,  # no PGY_TOKEN: the environment variable is the source
        env={"JUSTONEAPI_TOKEN": f" {A} , {B} ,"},
        CONCURRENT_REQUESTS=1,
    )
    assert result.returncode == 0, result
    assert Counter(n["noteId"] for n in result.notes) == Counter(ids)
    assert sim.stats()["by_token"] == {A: 1, B: 6}
    assert_accounted(result)
    _assert_tokens_reported(result, sim, {A: "pgy_quota_exceeded", B: None})


def test_token_file_with_one_token_per_line(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(4)
    secrets = tmp_path.parent / f"{tmp_path.name}-secrets"  # outside the scanned work dir
    secrets.mkdir()
    (secrets / "token").write_text(f"{A}\n\n{B}\n", encoding="utf-8")
    sim.configure(tokens=[A, B], token_codes={A: 601})
    result = _crawl(
        tmp_path,
        sim,
        ids,
        token=None,
        env={"PGY_TOKEN_FILE": str(secrets / "token")},
        CONCURRENT_REQUESTS=1,
    )
    assert result.returncode == 0, result
    assert sim.stats()["by_token"] == {A: 1, B: 4}
    _assert_tokens_reported(result, sim, {A: "pgy_insufficient_balance", B: None})


def test_token_rotation_with_http_cache_enabled(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(4)
    sim.configure(tokens=[A, B], token_codes={A: 303})
    try:
        result = _crawl(
            tmp_path,
            sim,
            ids,
            f"{A},{B}",
            timeout=12,
            CONCURRENT_REQUESTS=1,
            HTTPCACHE_ENABLED=True,
            HTTPCACHE_DIR=str(tmp_path / "httpcache"),
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the crawl did not end within 12 s; simulator: {sim.stats()['by_code']}")
    assert result.returncode == 0, result
    assert Counter(n["noteId"] for n in result.notes) == Counter(ids)
    assert sim.stats()["by_token"] == {A: 1, B: 4}
