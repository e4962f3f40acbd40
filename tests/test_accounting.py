"""In-process tests of the run's accounting extension: ledger, failed file, summary, exit
status and resume state, driven the way the spider and Scrapy's item signals drive it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapy import signals
from scrapy.exceptions import DropItem
from twisted.python.failure import Failure

from pgy_spider import jobstate
from pgy_spider.extensions.accounting import RunAccounting
from pgy_spider.failures import DuplicateNote, FailureRecord
from pgy_spider.seeds import Seed, SeedPos
from tests.support.components import api_answer, note_request, project_crawler, runtime
from tests.support.ids import make_note_id, make_note_ids

_OPEN: list[RunAccounting] = []


@pytest.fixture(autouse=True)
def _close_files() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close_files()


def _accounting(tmp_path: Path, **settings: Any) -> tuple[RunAccounting, Any]:
    crawler = project_crawler(
        PGY_FAILED_PATH=str(tmp_path / "failed.jsonl"),
        PGY_SUMMARY_PATH=str(tmp_path / "summary.json"),
        **settings,
    )
    accounting = RunAccounting.from_crawler(crawler)
    _OPEN.append(accounting)
    return accounting, crawler


def _seed(seq: int, note_id: str | None, reason: str | None = None, raw: str = "") -> Seed:
    return Seed(raw or (note_id or "bad"), note_id, reason, seq, SeedPos(0, seq * 25))


def _close(crawler: Any, reason: str = "finished") -> dict[str, Any]:
    crawler.signals.send_catch_log(signals.spider_closed, spider=crawler.spider, reason=reason)
    path = Path(crawler.settings["PGY_SUMMARY_PATH"])
    summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return summary


def _failed(tmp_path: Path) -> list[dict[str, Any]]:
    text = (tmp_path / "failed.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _scraped(crawler: Any, seq: int) -> None:
    request = note_request(make_note_id(seq), seq)
    crawler.signals.send_catch_log(
        signals.item_scraped, item={}, response=api_answer(request), spider=crawler.spider
    )


def test_every_seed_in_one_place_and_a_balanced_summary(tmp_path: Path) -> None:
    accounting, crawler = _accounting(tmp_path)
    ids = make_note_ids(4)
    accounting.reject(_seed(0, None, "short_link", raw="http://xhslink.com/a"))
    for seq, note_id in enumerate(ids, start=1):
        assert not accounting.seen_before(note_id)
        assert accounting.issue(_seed(seq, note_id))
    assert accounting.seen_before(ids[0])
    accounting.duplicate(_seed(5, ids[0]))
    accounting.skip_fresh(_seed(6, make_note_id(9)))
    _scraped(crawler, 1)
    _scraped(crawler, 1)  # the same seq settles once
    accounting.settle_failed({"pgy_seq": 2}, FailureRecord(ids[1], 201, "not_found", 1, "req"))
    accounting.done_reading()
    assert accounting.pending == 2
    summary = _close(crawler, "finished")
    assert summary["seeds_read"] == 7 and summary["balanced"] is True
    assert summary["notes_written"] == 1 and summary["pending"] == 2
    assert summary["rejected_by_reason"] == {"short_link": 1}
    assert summary["failed_by_reason"] == {"not_found": 1}
    assert summary["duplicates"] == 1 and summary["skipped_fresh"] == 1
    assert summary["exit_code"] == 0 and summary["finish_reason"] == "finished"
    assert summary["resumed"] is False and summary["sessions"] == 1
    assert crawler.stats.get_value("pgy/exit_code") == 0
    assert crawler.stats.get_value("pgy/failed/not_found") == 1
    assert crawler.stats.get_value("pgy/rejected/short_link") == 1
    assert [r["reason"] for r in _failed(tmp_path)] == ["short_link", "not_found"]
    assert _failed(tmp_path)[0]["seed"] == "http://xhslink.com/a"
    assert "test-token" not in (tmp_path / "summary.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("exception", "reason", "bucket"),
    [
        (DuplicateNote("again"), None, "duplicates"),
        (DropItem("someone else's pipeline"), "dropped", "failed"),
    ],
)
def test_dropped_items_settle_their_seed(
    tmp_path: Path, exception: Exception, reason: str | None, bucket: str
) -> None:
    accounting, crawler = _accounting(tmp_path)
    accounting.issue(_seed(0, make_note_id(0)))
    request = note_request(make_note_id(0), 0)
    crawler.signals.send_catch_log(
        signals.item_dropped,
        item={},
        response=api_answer(request),
        exception=exception,
        spider=crawler.spider,
    )
    counts = accounting.counts()
    assert counts[bucket] == 1 and counts["pending"] == 0 and counts["balanced"]
    if reason:
        assert counts["failed_by_reason"] == {reason: 1}


def test_a_pipeline_error_fails_the_note(tmp_path: Path) -> None:
    accounting, crawler = _accounting(tmp_path)
    accounting.issue(_seed(0, make_note_id(0)))
    request = note_request(make_note_id(0), 0)
    crawler.signals.send_catch_log(
        signals.item_error,
        item={},
        response=api_answer(request),
        failure=Failure(KeyError("x")),
        spider=crawler.spider,
    )
    assert accounting.counts()["failed_by_reason"] == {"pipeline_error": 1}
    _close(crawler)
    assert _failed(tmp_path)[0]["message"] == "KeyError"


def test_a_named_stop_wins_over_finished_and_leaves_notes_pending(tmp_path: Path) -> None:
    accounting, crawler = _accounting(tmp_path)
    accounting.issue(_seed(0, make_note_id(0)))

    async def stop() -> None:
        runtime(crawler).stop("pgy_quota_exceeded")

    asyncio.run(stop())
    assert crawler.engine.closed == ["pgy_quota_exceeded"]
    summary = _close(crawler, "finished")
    assert summary["finish_reason"] == "pgy_quota_exceeded" and summary["exit_code"] == 3
    assert summary["pending"] == 1 and summary["balanced"]


def test_the_job_resumes_from_its_state(tmp_path: Path) -> None:
    jobdir = tmp_path / "job"
    accounting, crawler = _accounting(tmp_path, JOBDIR=str(jobdir))
    for seq in (0, 1):
        assert not accounting.seen_before(make_note_id(seq))
        accounting.issue(_seed(seq, make_note_id(seq)))
    _scraped(crawler, 0)
    _close(crawler, "shutdown")
    assert jobstate.state_path(str(jobdir)).is_file()

    resumed, crawler2 = _accounting(tmp_path, JOBDIR=str(jobdir))
    assert resumed.resumed and resumed.pending_notes() == [(1, make_note_id(1))]
    assert resumed.cursor == (0, 25, 1)
    assert resumed.seen_before(make_note_id(0))
    _scraped(crawler2, 1)
    resumed.done_reading()
    summary = _close(crawler2, "finished")
    assert summary["resumed"] is True and summary["sessions"] == 2
    assert summary["notes_written"] == 2 and summary["seeds_read"] == 2
    again, _ = _accounting(tmp_path, JOBDIR=str(jobdir))
    assert again.finished


def test_the_read_ahead_waits_until_a_note_settles(tmp_path: Path) -> None:
    accounting, crawler = _accounting(tmp_path)

    async def scenario() -> bool:
        accounting.issue(_seed(0, make_note_id(0)))
        accounting.issue(_seed(1, make_note_id(1)))
        waiter = asyncio.ensure_future(accounting.wait_for_room(2))
        await asyncio.sleep(0.01)
        blocked = not waiter.done()
        _scraped(crawler, 0)
        await asyncio.wait_for(waiter, 1)
        return blocked

    assert asyncio.run(scenario()) is True


def test_storage_failure_makes_exit_status_5(tmp_path: Path) -> None:
    from pgy_spider.storage import StorageOutcome

    class FailingStore:
        def outcome(self) -> StorageOutcome:
            return StorageOutcome("test", spilled=3, spill_path="spill.jsonl")

    accounting, crawler = _accounting(tmp_path)
    runtime(crawler).register_store(FailingStore())
    accounting.done_reading()
    summary = _close(crawler, "finished")
    assert summary["exit_code"] == 5 and summary["mongo_spill_path"] == "spill.jsonl"
