"""Run accounting: where every seed ended up, and what a resumed run must redo.

Plain module. Every seed read ends in exactly one bucket — rejected, duplicate,
skipped as fresh, written, failed — or is still *outstanding* (issued to the API,
not settled); at a stop the outstanding ones are *pending* and are re-issued first
when the job resumes. ``seeds_read`` always equals the sum of the buckets.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgy_spider.idset import CompactIdSet

STATE_FILE = "pgy-state.pickle"
STATE_VERSION = 2


@dataclass
class Ledger:
    seeds_read: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    skipped_fresh: int = 0
    notes_written: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    # seq -> note id of every note issued to the API and not settled yet.
    outstanding: dict[int, str] = field(default_factory=dict)
    # Keys (96-bit ints) of every distinct note id read in this run, for dedup.
    seen: CompactIdSet = field(default_factory=CompactIdSet)
    # (file_index, offset, seq) of the last seed fully handed over (settled or issued).
    cursor: tuple[int, int, int] | None = None
    sessions: int = 0
    finished: bool = False

    # -- settling ---------------------------------------------------------------

    def reject(self, reason: str) -> None:
        self.seeds_read += 1
        self.rejected[reason] += 1

    def duplicate(self) -> None:
        self.seeds_read += 1
        self.duplicates += 1

    def skip_fresh(self) -> None:
        self.seeds_read += 1
        self.skipped_fresh += 1

    def issue(self, seq: int, note_id: str) -> None:
        self.seeds_read += 1
        self.outstanding[seq] = note_id

    def settle_written(self, seq: int) -> bool:
        if self.outstanding.pop(seq, None) is None:
            return False
        self.notes_written += 1
        return True

    def settle_failed(self, seq: int, reason: str) -> bool:
        if self.outstanding.pop(seq, None) is None:
            return False
        self.failed[reason] += 1
        return True

    def settle_duplicate(self, seq: int) -> bool:
        """An issued note that turned out to be written already (safety net)."""
        if self.outstanding.pop(seq, None) is None:
            return False
        self.duplicates += 1
        return True

    # -- totals ---------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self.outstanding)

    @property
    def settled(self) -> int:
        return self.seeds_read - self.pending

    def balanced(self) -> bool:
        return self.seeds_read == (
            sum(self.rejected.values())
            + self.duplicates
            + self.skipped_fresh
            + self.notes_written
            + sum(self.failed.values())
            + self.pending
        )

    def counts(self) -> dict[str, Any]:
        return {
            "seeds_read": self.seeds_read,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "duplicates": self.duplicates,
            "skipped_fresh": self.skipped_fresh,
            "notes_written": self.notes_written,
            "failed": sum(self.failed.values()),
            "failed_by_reason": dict(sorted(self.failed.items())),
            "pending": self.pending,
            "balanced": self.balanced(),
        }

    # -- resume state -----------------------------------------------------------------

    def save(self, jobdir: str) -> None:
        """Write the state atomically: a crash mid-write leaves the previous state intact."""
        path = Path(jobdir)
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".pgy-state-")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump({"version": STATE_VERSION, "ledger": self}, fh, protocol=5)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path / STATE_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, jobdir: str) -> Ledger | None:
        path = Path(jobdir, STATE_FILE)
        if not path.exists():
            return None
        with path.open("rb") as fh:
            doc = pickle.load(fh)
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            return None
        ledger = doc["ledger"]
        return ledger if isinstance(ledger, cls) else None
