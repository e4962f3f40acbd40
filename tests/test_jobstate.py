"""Unit tests of the resume state in JOBDIR: atomic, checkpointed, its format checked,
format 2 migrated."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from pgy_spider import jobstate
from pgy_spider.errors import ConfigError
from pgy_spider.jobstate import JobState, SeenJournal
from pgy_spider.ledger import Ledger


def _state() -> JobState:
    ledger = Ledger(sessions=1)
    ledger.issue(0, (0, 25), "a" * 24)
    ledger.reject(1, (0, 50), "invalid_id")
    ledger.issue(2, (0, 75), "b" * 24)
    ledger.settle_written(2)
    return JobState(ledger=ledger, outputs={"out/notes.jsonl": 1234}, started_at="t0", spent=7)


def test_state_round_trip(tmp_path: Path) -> None:
    journal = SeenJournal(str(tmp_path), 0)
    for key in (1, 2, 3):
        journal.append(key)
    jobstate.save(str(tmp_path), _state(), journal.flush())
    journal.close()
    assert jobstate.probe(str(tmp_path)) == jobstate.FORMAT
    loaded = jobstate.load(str(tmp_path))
    assert loaded is not None
    ledger = loaded.ledger
    assert ledger.outstanding == {0: "a" * 24} and ledger.cursor == (0, 75, 2)
    assert ledger.counts() == _state().ledger.counts()
    assert set(ledger.seen) == {1, 2, 3} and ledger.sessions == 1
    assert loaded.outputs == {"out/notes.jsonl": 1234} and loaded.spent == 7
    assert loaded.started_at == "t0"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["pgy-seen.bin", "pgy-state.json"]  # no temp file left
    assert jobstate.load(str(tmp_path / "nothing")) is None
    assert jobstate.probe(None) is None


def test_journal_records_past_the_checkpoint_are_dropped(tmp_path: Path) -> None:
    journal = SeenJournal(str(tmp_path), 0)
    for key in range(5):
        journal.append(key)
    journal.flush()
    jobstate.save(str(tmp_path), _state(), 3)  # the checkpoint knew of 3
    journal.close()
    loaded = jobstate.load(str(tmp_path))
    assert loaded is not None and set(loaded.ledger.seen) == {0, 1, 2}
    SeenJournal(str(tmp_path), 3).close()  # a resumed session's journal
    assert (tmp_path / jobstate.SEEN_FILE).stat().st_size == 3 * 12


def test_a_state_of_another_format_names_both_formats(tmp_path: Path) -> None:
    (tmp_path / jobstate.STATE_FILE).write_text('{"format": 9}', encoding="utf-8")
    with pytest.raises(jobstate.StateFormatError) as info:
        jobstate.probe(str(tmp_path))
    message = str(info.value)
    assert "format 9" in message and "formats 2 and 3" in message
    assert "delete" in message and "\n" not in message


def test_a_legacy_state_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / jobstate.LEGACY_STATE_FILE).write_bytes(
        pickle.dumps({"version": 1, "ledger": Ledger()})
    )
    with pytest.raises(jobstate.StateFormatError, match="format 1"):
        jobstate.load(str(tmp_path))


def test_a_format_2_state_is_migrated(tmp_path: Path) -> None:
    ledger = Ledger(sessions=1)
    ledger.issue(0, (0, 25), "a" * 24)
    ledger.seen.add(99)
    (tmp_path / jobstate.LEGACY_STATE_FILE).write_bytes(
        pickle.dumps({"version": 2, "ledger": ledger}, protocol=5)
    )
    assert jobstate.probe(str(tmp_path)) == jobstate.LEGACY_FORMAT
    loaded = jobstate.load(str(tmp_path))
    assert loaded is not None and loaded.migrated_from == 2
    assert loaded.ledger.outstanding == {0: "a" * 24} and set(loaded.ledger.seen) == {99}
    records = jobstate.write_journal(str(tmp_path), loaded.ledger.seen)
    jobstate.save(str(tmp_path), loaded, records)
    # Written in the new format, the old file is gone and never read again.
    assert not (tmp_path / jobstate.LEGACY_STATE_FILE).exists()
    again = jobstate.load(str(tmp_path))
    assert again is not None and again.migrated_from is None
    assert set(again.ledger.seen) == {99}


@pytest.mark.parametrize("content", [b"{torn", b"[1, 2]", b'{"format": 3, "counts": {}}'])
def test_an_unreadable_state_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / jobstate.STATE_FILE).write_bytes(content)
    with pytest.raises(ConfigError, match="cannot be read") as info:
        jobstate.load(str(tmp_path))
    assert "\n" not in str(info.value)
