"""This process's own share of a run: the per-process counts of its summary.

Plain module. In a run across processes the ledger of each process counts what this
process did: the seeds it settled at once while it held the reader role (rejected,
duplicate, fresh) and the notes it took from the run's stream. Those arrive in no order
(entries of the stream, claimed entries of others), so there is no cursor: each seed
counts once per process by its sequence number. The run-wide counts are in Redis.
"""

from __future__ import annotations

from pgy_spider.ledger import Ledger


class ProcessShare(Ledger):
    def _read(self, seq: int, pos: tuple[int, int]) -> bool:
        self.seeds_read += 1
        return True

    def issue(self, seq: int, pos: tuple[int, int], note_id: str) -> bool:
        if seq in self.outstanding:
            return False  # delivered again while this process holds it: one request
        return super().issue(seq, pos, note_id)
