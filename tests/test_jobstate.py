"""Unit tests of the resume state in JOBDIR: atomic, read once, its format checked."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from pgy_spider import jobstate
from pgy_spider.errors import ConfigError
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


def test_state_of_another_format_names_both_formats(tmp_path: Path) -> None:
    (tmp_path / jobstate.STATE_FILE).write_bytes(pickle.dumps({"version": 1, "ledger": Ledger()}))
    with pytest.raises(jobstate.StateFormatError) as info:
        jobstate.load(str(tmp_path))
    message = str(info.value)
    assert "format 1" in message and f"format {jobstate.FORMAT}" in message
    assert "delete" in message and "\n" not in message


def test_unreadable_state_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / jobstate.STATE_FILE).write_bytes(b"\x80\x05 torn")
    with pytest.raises(ConfigError, match="cannot be read"):
        jobstate.load(str(tmp_path))
