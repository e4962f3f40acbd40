"""Unit tests of the run ledger: every seed in one bucket; the resume state round-trips."""

from __future__ import annotations

from pathlib import Path

from pgy_spider.ledger import Ledger


def test_every_seed_lands_in_exactly_one_bucket() -> None:
    ledger = Ledger()
    ledger.reject("invalid_id")
    ledger.duplicate()
    ledger.skip_fresh()
    for seq in range(3, 8):
        ledger.issue(seq, f"id{seq}")
    assert ledger.settle_written(3)
    assert not ledger.settle_written(3)  # settling twice never counts twice
    assert ledger.settle_failed(4, "not_found")
    assert ledger.settle_duplicate(5)
    assert ledger.pending == 2 and ledger.seeds_read == 8
    counts = ledger.counts()
    assert counts["balanced"] is True
    assert (
        counts["rejected"]
        + counts["duplicates"]
        + counts["skipped_fresh"]
        + counts["notes_written"]
        + counts["failed"]
        + counts["pending"]
        == counts["seeds_read"]
    )
    assert counts["failed_by_reason"] == {"not_found": 1}
    assert counts["duplicates"] == 2


def test_state_round_trip_is_atomic(tmp_path: Path) -> None:
    ledger = Ledger()
    ledger.issue(0, "a")
    ledger.seen.add(42)
    ledger.cursor = (0, 25, 0)
    ledger.save(str(tmp_path))
    loaded = Ledger.load(str(tmp_path))
    assert loaded is not None
    assert (
        loaded.outstanding == {0: "a"} and set(loaded.seen) == {42} and loaded.cursor == (0, 25, 0)
    )
    assert [p.name for p in tmp_path.iterdir()] == ["pgy-state.pickle"]  # no temp file left
    assert Ledger.load(str(tmp_path / "nothing")) is None
