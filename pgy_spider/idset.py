"""A compact exact set of 96-bit note IDs, for in-run deduplication of millions of seeds.

A Python ``set`` of ints costs ~80 bytes per ID (the int object plus its table slot):
81 MB for a million seeds, most of the memory budget of a big run. This table keeps
each ID in 12 bytes of flat arrays (open addressing, linear probing, load <= 2/3):
about 25 bytes per ID. Plain module, picklable (the resume state holds it).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

_LOW_MASK = (1 << 64) - 1
_MAX_KEY = 1 << 96
_MIN_CAPACITY = 1 << 10


class CompactIdSet:
    __slots__ = ("_count", "_hi", "_lo", "_mask", "_used")

    def __init__(self, capacity: int = _MIN_CAPACITY) -> None:
        size = _MIN_CAPACITY
        while size < capacity:
            size <<= 1
        self._alloc(size)
        self._count = 0

    def _alloc(self, size: int) -> None:
        self._lo = array("Q", bytes(8 * size))
        self._hi = array("I", bytes(4 * size))
        self._used = bytearray(size)
        self._mask = size - 1

    def __len__(self) -> int:
        return self._count

    def _slot(self, key: int) -> int:
        """The slot holding ``key``, or the empty slot where it would go."""
        if not 0 <= key < _MAX_KEY:
            raise ValueError(f"not a 96-bit note ID key: {key!r}")
        lo, hi = key & _LOW_MASK, key >> 64
        mask, used, los, his = self._mask, self._used, self._lo, self._hi
        i = hash(key) & mask
        while used[i]:
            if los[i] == lo and his[i] == hi:
                return i
            i = (i + 1) & mask
        return i

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and self._used[self._slot(key)] == 1

    def add(self, key: int) -> bool:
        """Add ``key``; True when it was not there yet."""
        i = self._slot(key)
        if self._used[i]:
            return False
        self._lo[i], self._hi[i], self._used[i] = key & _LOW_MASK, key >> 64, 1
        self._count += 1
        if self._count * 3 > len(self._used) * 2:
            self._grow()
        return True

    def _grow(self) -> None:
        # Re-insert from the old arrays directly: no list of a million ints at the peak.
        old_lo, old_hi, old_used = self._lo, self._hi, self._used
        self._alloc(len(old_used) * 2)
        mask, used, los, his = self._mask, self._used, self._lo, self._hi
        for j, flag in enumerate(old_used):
            if flag:
                lo, hi = old_lo[j], old_hi[j]
                i = hash((hi << 64) | lo) & mask
                while used[i]:
                    i = (i + 1) & mask
                los[i], his[i], used[i] = lo, hi, 1

    def __iter__(self) -> Iterator[int]:
        los, his = self._lo, self._hi
        for i, flag in enumerate(self._used):
            if flag:
                yield (his[i] << 64) | los[i]
