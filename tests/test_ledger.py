"""Unit tests of the run ledger: every seed in one bucket, each at most once."""

from __future__ import annotations

from pgy_spider.ledger import Ledger

POS = (0, 0)


def test_every_seed_lands_in_exactly_one_bucket() -> None:
    ledger = Ledger()
    assert ledger.reject(0, POS, "invalid_id")
    assert ledger.duplicate(1, POS)
    assert ledger.skip_fresh(2, POS)
    for seq in range(3, 8):
        assert ledger.issue(seq, POS, f"id{seq}")
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


def test_a_seed_is_read_once_and_moves_the_cursor() -> None:
    ledger = Ledger()
    assert ledger.issue(0, (1, 10), "a")
    assert ledger.cursor == (1, 10, 0)
    # Reading seq 0 again (or anything before the cursor) counts nothing.
    assert not ledger.reject(0, (1, 10), "invalid_id")
    assert not ledger.duplicate(0, (1, 10))
    assert not ledger.issue(0, (1, 10), "a")
    assert ledger.seeds_read == 1 and ledger.cursor == (1, 10, 0)
    assert ledger.reject(1, (1, 40), "short_link")
    assert ledger.cursor == (1, 40, 1) and ledger.counts()["rejected_by_reason"] == {
        "short_link": 1
    }


def test_settling_an_unknown_seq_counts_nothing() -> None:
    ledger = Ledger()
    assert not ledger.settle_written(9)
    assert not ledger.settle_failed(9, "not_found")
    assert not ledger.settle_duplicate(9)
    assert ledger.counts()["notes_written"] == 0 and ledger.balanced()
