"""The ledger: where every seed of a run ended up, and what a resumed run must redo.

Plain module; the run's accounting (:mod:`pgy_spider.extensions.accounting`) keeps it and
:mod:`pgy_spider.jobstate` saves it in ``JOBDIR``. Every seed read ends in exactly one
bucket — rejected, duplicate, skipped as fresh, written, failed — or is still
*outstanding* (issued to the API, not settled); at a stop the outstanding ones are
*pending* and are re-issued first when the job resumes. ``seeds_read`` always equals the
sum of the buckets. Every operation is keyed by the seed's sequence number, so doing it
twice never counts twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pgy_spider.idset import CompactIdSet


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

    # -- reading: each seed once, in order, keyed by its sequence number ------------

    def _read(self, seq: int, pos: tuple[int, int]) -> bool:
        """Move the cursor past seed ``seq``; False when it was read already."""
        if self.cursor is not None and seq <= self.cursor[2]:
            return False
        self.cursor = (pos[0], pos[1], seq)
        self.seeds_read += 1
        return True

    def reject(self, seq: int, pos: tuple[int, int], reason: str) -> bool:
        if not self._read(seq, pos):
            return False
        self.rejected[reason] += 1
        return True

    def duplicate(self, seq: int, pos: tuple[int, int]) -> bool:
        if not self._read(seq, pos):
            return False
        self.duplicates += 1
        return True

    def skip_fresh(self, seq: int, pos: tuple[int, int]) -> bool:
        if not self._read(seq, pos):
            return False
        self.skipped_fresh += 1
        return True

    def issue(self, seq: int, pos: tuple[int, int], note_id: str) -> bool:
        if not self._read(seq, pos):
            return False
        self.outstanding[seq] = note_id
        return True

    # -- settling: an issued seed once, keyed by its sequence number ------------------

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
