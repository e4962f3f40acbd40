"""A compact exact set of 96-bit note IDs, for in-run deduplication of millions of seeds.

A Python ``set`` of ints costs ~80 bytes per ID (the int object plus its table slot):
81 MB for a million seeds, most of the memory budget of a big run. This set keeps each ID
in 12 bytes: 64 shards (by the key's hash), each a pair of sorted flat arrays (the low 64
bits and the high 32 bits of every key, ordered by (low, high)) plus a small dict of the
keys added since its last merge (each with where its lookup found it would go). A lookup
is a dict probe and a binary search in C (``bisect`` on an ``array``); a shard's new keys
are merged into its arrays once there are ``_MERGE_AT`` of them, which copies that one
shard (1/64 of the set): no doubling of the whole table at any point, so the peak is the
steady size. About 13 bytes per ID at 10 million. Plain module, picklable (the resume
state of older versions holds one).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

_LOW_MASK = (1 << 64) - 1
_MAX_KEY = 1 << 96
_SHARD_BITS = 6
SHARDS = 1 << _SHARD_BITS
_SHARD_MASK = SHARDS - 1
# New keys a shard holds in its Python set before they are merged into its arrays: ~100
# bytes each there, so at most SHARDS * _MERGE_AT * 100 B (~13 MB) in the sets; a merge
# copies the shard, so fewer merges of bigger batches cost less CPU.
_MERGE_AT = 2048


class _Shard:
    __slots__ = ("hi", "lo", "new")

    def __init__(self) -> None:
        self.lo = array("Q")  # low 64 bits, sorted by (lo, hi)
        self.hi = array("I")  # high 32 bits, same order
        # Keys not merged into the arrays yet -> where the lookup found they would go in
        # the arrays (bisect_left on ``lo``): the merge need not search again.
        self.new: dict[int, int] = {}

    def __getstate__(self) -> tuple[bytes, bytes, dict[int, int]]:
        return self.lo.tobytes(), self.hi.tobytes(), self.new

    def __setstate__(self, state: tuple[bytes, bytes, dict[int, int]]) -> None:
        lo, hi, self.new = state
        self.lo = array("Q")
        self.lo.frombytes(lo)
        self.hi = array("I")
        self.hi.frombytes(hi)

    def __len__(self) -> int:
        return len(self.lo) + len(self.new)

    def in_arrays(self, i: int, hi: int) -> bool:
        """Whether the arrays hold (lo, hi), ``i`` being the first index of that ``lo``."""
        los, his = self.lo, self.hi
        lo = los[i]
        # Equal low halves are rare (their high halves follow in order).
        while i < len(los) and los[i] == lo:
            if his[i] == hi:
                return True
            i += 1
        return False

    def merge(self) -> None:
        """Move the new keys into the sorted arrays: one copy of the shard."""
        pending = sorted((i, key & _LOW_MASK, key >> 64) for key, i in self.new.items())
        old_lo, old_hi = self.lo, self.hi
        # Byte views: array.frombytes() takes unsigned-byte buffers only.
        lo_view, hi_view = memoryview(old_lo).cast("B"), memoryview(old_hi).cast("B")
        new_lo, new_hi = array("Q"), array("I")
        n = len(old_lo)
        start = 0
        for at, lo, hi in pending:
            i = at
            while i < n and old_lo[i] == lo and old_hi[i] < hi:
                i += 1  # among equal low halves (rare), by the high half
            if i > start:
                new_lo.frombytes(lo_view[start * 8 : i * 8])
                new_hi.frombytes(hi_view[start * 4 : i * 4])
                start = i
            new_lo.append(lo)
            new_hi.append(hi)
        if start < n:
            new_lo.frombytes(lo_view[start * 8 :])
            new_hi.frombytes(hi_view[start * 4 :])
        lo_view.release()
        hi_view.release()
        self.lo, self.hi = new_lo, new_hi
        self.new = {}

    def __iter__(self) -> Iterator[int]:
        for lo, hi in zip(self.lo, self.hi, strict=True):
            yield (hi << 64) | lo
        yield from self.new


class CompactIdSet:
    __slots__ = ("_count", "_shards")

    def __init__(self, capacity: int = 0) -> None:
        # ``capacity`` (IDs expected) is accepted for callers that know it; the shards grow
        # by merging, so nothing is reserved ahead.
        del capacity
        self._shards = [_Shard() for _ in range(SHARDS)]
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        if not 0 <= key < _MAX_KEY:
            raise ValueError(f"not a 96-bit note ID key: {key!r}")
        shard = self._shards[hash(key) & _SHARD_MASK]
        if key in shard.new:
            return True
        lo = key & _LOW_MASK
        los = shard.lo
        i = bisect_left(los, lo)
        return i < len(los) and los[i] == lo and shard.in_arrays(i, key >> 64)

    def add(self, key: int) -> bool:
        """Add ``key``; True when it was not there yet."""
        # Inlined (no helper calls): this runs once per seed read.
        if not 0 <= key < _MAX_KEY:
            raise ValueError(f"not a 96-bit note ID key: {key!r}")
        shard = self._shards[hash(key) & _SHARD_MASK]
        new = shard.new
        if key in new:
            return False
        lo = key & _LOW_MASK
        los = shard.lo
        i = bisect_left(los, lo)
        if i < len(los) and los[i] == lo and shard.in_arrays(i, key >> 64):
            return False
        new[key] = i
        self._count += 1
        if len(new) >= _MERGE_AT:
            shard.merge()
        return True

    def __iter__(self) -> Iterator[int]:
        for shard in self._shards:
            yield from shard

    def __getstate__(self) -> dict[str, Any]:
        return {"shards": self._shards, "count": self._count}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):
            # Written by an older version (one open-addressing table, pickled as slots):
            # read its keys into shards.
            slots: dict[str, Any] = state[1]
            self._shards = [_Shard() for _ in range(SHARDS)]
            self._count = 0
            los, his = slots["_lo"], slots["_hi"]
            for i, used in enumerate(slots["_used"]):
                if used:
                    self.add((his[i] << 64) | los[i])
            return
        self._shards = state["shards"]
        self._count = state["count"]
