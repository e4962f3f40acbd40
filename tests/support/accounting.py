"""Checks shared by the end-to-end tests: every seed accounted for, once."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.support.crawl import CrawlResult


def assert_balanced(summary: dict[str, Any]) -> None:
    """The summary's identity, computed here (not only read from ``balanced``)."""
    settled = (
        summary["rejected"]
        + summary["duplicates"]
        + summary["skipped_fresh"]
        + summary["notes_written"]
        + summary["failed"]
        + summary["pending"]
    )
    assert summary["seeds_read"] == settled, summary
    if summary["finish_reason"] == "finished":
        assert summary["all_seeds_read"] is True, summary
    assert summary["balanced"] is True, summary
    assert sum(summary["rejected_by_reason"].values()) == summary["rejected"]
    assert sum(summary["failed_by_reason"].values()) == summary["failed"]


def assert_accounted(result: CrawlResult) -> dict[str, Any]:
    """The identity, and agreement of the feed, the failed file and the stats with it."""
    s = result.summary
    assert_balanced(s)
    assert result.stats.get("pgy/balanced") is True
    assert len(result.notes) == s["notes_written"]
    rejected = [r for r in result.failed if "seed" in r]
    failed = [r for r in result.failed if "seed" not in r]
    assert Counter(r["reason"] for r in rejected) == Counter(s["rejected_by_reason"])
    assert Counter(r["reason"] for r in failed) == Counter(s["failed_by_reason"])
    # No note is both written and failed, and none is written or failed twice.
    written = Counter(n["noteId"] for n in result.notes)
    gave_up = Counter(r["noteId"] for r in failed)
    assert max(written.values(), default=1) == 1, written
    assert max(gave_up.values(), default=1) == 1, gave_up
    assert not set(written) & set(gave_up)
    assert "Unhandled error" not in result.stderr, result
    assert result.stats.get("log_count/CRITICAL", 0) == 0
    return s
