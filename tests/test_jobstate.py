"""Unit tests of the resume state in JOBDIR: atomic, read once, its format checked."""

from __future__ import annotations

from pathlib import Path

from pgy_spider import jobstate
from pgy_spider.ledger import Ledger


def test_state_round_trip_is_atomic(tmp_path: Path) -> None:
    ledger = Ledger()
    ledger.issue(0, (0, 25), "a")
    ledger.seen.add(42)
    jobstate.save(str(tmp_path), ledger)
    loaded = jobstate.load(str(tmp_path))
    assert loaded is not None
    assert (
        loaded.outstanding == {0: "a"} and set(loaded.seen) == {42} and loaded.cursor == (0, 25, 0)
    )
    assert [p.name for p in tmp_path.iterdir()] == ["pgy-state.pickle"]  # no temp file left
    assert jobstate.load(str(tmp_path / "nothing")) is None
    assert jobstate.load(None) is None
