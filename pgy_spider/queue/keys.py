"""The names of a run's keys, the run-wide dedup buckets, and what a stream entry holds.

Plain module. Every key of run ``R`` is ``pgy:{R}:...``: the hash tag puts them all in one
slot, so each script may touch any of them (also on a Redis Cluster).

Run-wide dedup is exact: every note ID read is a field (its 12 bytes) of one of many small
hashes, chosen by the ID. Redis keeps a hash of at most ``hash-max-listpack-entries`` (128)
fields as one compact listpack, about 16 bytes per field, so the number of buckets is chosen
once per run from the size of its seed sources, for about :data:`BUCKET_FILL` IDs per bucket.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass

GROUP = "workers"  # the stream's one consumer group
# How an entry was settled, as the SETTLE script knows it: written, failed, duplicate.
WRITTEN, FAILED, DUPLICATE = "w", "f", "d"
# Expected IDs per dedup bucket: well below Redis's 128-field listpack limit even for the
# fullest bucket of a large run (the fill is Poisson-distributed around this).
BUCKET_FILL = 64
# The fewest bytes a line holding a valid seed takes (24 hex digits and a newline): the
# sources' size divided by it bounds the number of distinct notes from above.
MIN_SEED_LINE = 25
MAX_BUCKETS = 1 << 24
_MIX = 0x9E3779B97F4A7C15  # Fibonacci hashing: spreads IDs that share their low bits
_MASK64 = (1 << 64) - 1
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True, slots=True)
class RunKeys:
    run: str

    @property
    def prefix(self) -> str:
        return f"pgy:{{{self.run}}}:"

    @property
    def meta(self) -> str:
        """Hash: created, sources, buckets, cursor, next_seq, reader_done, stopped."""
        return self.prefix + "meta"

    @property
    def reader(self) -> str:
        """String with an expiry: the worker holding the reader lease."""
        return self.prefix + "reader"

    @property
    def stream(self) -> str:
        """Stream of the notes issued and not settled yet (fields ``n`` note ID, ``s`` seq)."""
        return self.prefix + "seeds"

    @property
    def counts(self) -> str:
        """Hash: the run-wide counts (the summary's keys)."""
        return self.prefix + "counts"

    @property
    def rejects(self) -> str:
        """List: rejected seeds committed but not yet written to a failed file."""
        return self.prefix + "rejects"

    @property
    def beats(self) -> str:
        """Hash: worker -> its last heartbeat (Redis time, ms)."""
        return self.prefix + "beats"

    @property
    def info(self) -> str:
        """Hash: worker -> JSON (host, pid, state, its calls so far)."""
        return self.prefix + "info"

    @property
    def pause(self) -> str:
        """Hash: the run's 302 pause: ``until`` (Redis time, ms) and ``level`` (its doubling)."""
        return self.prefix + "pause"

    @property
    def retired(self) -> str:
        """Hash: token fingerprint -> the reason it was retired (never a token)."""
        return self.prefix + "retired"

    @property
    def tokens(self) -> str:
        """Hash: worker -> the fingerprints of its tokens not retired, space-separated."""
        return self.prefix + "tokens"

    @property
    def budget(self) -> str:
        """Hash: ``spent``, ``held`` (units reserved run-wide), ``held:<worker>`` and
        ``batch:<worker>`` (the last settle batch applied, so a retried one counts once)."""
        return self.prefix + "budget"

    def seen(self, bucket: int) -> str:
        return f"{self.prefix}seen:{bucket}"

    @property
    def seen_pattern(self) -> str:
        return self.prefix.replace("{", "\\{").replace("}", "\\}") + "seen:*"

    def join_keys(self) -> list[str]:
        """The keys of the JOIN script: meta first, then every key a new run starts without."""
        return [
            self.meta,
            self.stream,
            self.counts,
            self.rejects,
            self.beats,
            self.info,
            self.reader,
            self.pause,
            self.retired,
            self.tokens,
            self.budget,
        ]

    def all_fixed(self) -> tuple[str, ...]:
        """Every key of the run except the dedup buckets."""
        return (
            self.meta,
            self.reader,
            self.stream,
            self.counts,
            self.rejects,
            self.beats,
            self.info,
            self.pause,
            self.retired,
            self.tokens,
            self.budget,
        )


def bucket_count(source_bytes: int) -> int:
    """Dedup buckets for seed sources of this many bytes (fixed for the run)."""
    most_notes = source_bytes // MIN_SEED_LINE + 1
    return max(1, min(MAX_BUCKETS, -(-most_notes // BUCKET_FILL)))


def id_bytes(note_id: str) -> bytes:
    """The 12 bytes of a (valid, lower-case) note ID."""
    return bytes.fromhex(note_id)


def bucket_of(note_id: str, buckets: int) -> int:
    key = int(note_id, 16)  # a valid ID (the reader only asks for those)
    folded = (key ^ (key >> 64)) & _MASK64
    return ((folded * _MIX) & _MASK64) % buckets


def worker_name() -> str:
    """This process's name in the run: host, pid and a random part (a restarted process with
    the same pid never takes a dead one's name, or its files through ``%(worker)s``)."""
    host = _UNSAFE.sub("-", socket.gethostname()).strip("-")[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def format_cursor(file_index: int, offset: int, seq: int) -> str:
    return f"{file_index}:{offset}:{seq}"


def parse_cursor(text: str | bytes | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    if isinstance(text, bytes):
        text = text.decode()
    file_index, offset, seq = (int(part) for part in text.split(":"))
    return file_index, offset, seq
