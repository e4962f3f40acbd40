"""The compact ID set behaves like a set of 96-bit ints, through merges of its shards and
pickling (its own and that of earlier versions)."""

from __future__ import annotations

import pickle
import random
import sys
import types
from array import array

import pytest

from pgy_spider import idset
from pgy_spider.idset import CompactIdSet
from pgy_spider.noteid import note_id_to_int


def test_matches_a_python_set_through_growth() -> None:
    rng = random.Random(7)
    keys = [rng.getrandbits(96) for _ in range(20_000)] + [0, (1 << 96) - 1, 1 << 64]
    keys += keys[:5000]  # repeats
    compact, reference = CompactIdSet(), set()
    for key in keys:
        assert compact.add(key) == (key not in reference)
        reference.add(key)
    assert len(compact) == len(reference)
    assert set(compact) == reference
    assert all(k in compact for k in reference)
    assert not any(rng.getrandbits(96) | (1 << 95) in compact for _ in range(1000))


def test_pickles_and_rejects_bad_keys() -> None:
    ids = CompactIdSet()
    key = note_id_to_int("65c0b3fc000000002c037a49")
    ids.add(key)
    copy = pickle.loads(pickle.dumps(ids))
    assert key in copy and len(copy) == 1
    assert "65c0b3fc000000002c037a49" not in copy  # only int keys
    with pytest.raises(ValueError, match="96-bit"):
        ids.add(1 << 96)


def _same_shard(keys: list[int], shard: int = 0) -> list[int]:
    return [k for k in keys if hash(k) & (idset.SHARDS - 1) == shard]


def test_shard_merges_keep_order_and_ties_of_low_halves(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small batches: many merges into one shard, keys added between and equal to the merged
    # ones, and keys whose low 64 bits are equal (ordered by their high 32 bits).
    monkeypatch.setattr(idset, "_MERGE_AT", 3)
    rng = random.Random(11)
    low = rng.getrandbits(64)
    ties = _same_shard([(hi << 64) | low for hi in range(5000)])[:40]
    spread = _same_shard([rng.getrandbits(96) for _ in range(20_000)])[:300]
    edges = _same_shard([0, 1, (1 << 96) - 1, (1 << 64) - 1, 1 << 64, 64, 128])
    keys = ties[::2] + spread + edges + ties[1::2] + ties[::-1]
    rng.shuffle(keys)
    compact, reference = CompactIdSet(), set()
    for key in keys:
        assert compact.add(key) == (key not in reference)
        reference.add(key)
        assert key in compact
    assert len(compact) == len(reference) and set(compact) == reference
    assert all(not compact.add(k) for k in reference)
    absent = [(hi << 64) | low for hi in range(5000, 5100)] + [low + 1, 2, (1 << 96) - 2]
    assert not any(k in compact for k in absent if k not in reference)


def test_a_merge_exactly_at_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idset, "_MERGE_AT", 4)
    keys = _same_shard(list(range(0, 64 * 40, 64)))
    ids = CompactIdSet()
    for key in keys[:4]:  # the 4th add merges them all into the arrays
        ids.add(key)
    assert set(ids) == set(keys[:4]) and len(ids) == 4
    assert not ids.add(keys[0]) and keys[4] not in ids
    for key in keys:
        ids.add(key)
    assert sorted(ids) == sorted(keys) and len(ids) == len(keys)


def test_pickles_with_merged_and_pending_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idset, "_MERGE_AT", 5)
    rng = random.Random(3)
    keys = {rng.getrandbits(96) for _ in range(2000)}
    ids = CompactIdSet()
    for key in keys:
        ids.add(key)
    copy = pickle.loads(pickle.dumps(ids))
    assert set(copy) == keys and len(copy) == len(keys)
    extra = rng.getrandbits(96) | (1 << 95)
    assert copy.add(extra) and extra not in ids


def test_reads_the_pickle_of_the_single_table_of_earlier_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Format-2 resume states hold the set as the earlier version pickled it: one
    # open-addressing table (low/high arrays and a used flag per slot) as slot state.
    keys = [0, 5, (7 << 64) | 9, (1 << 96) - 1]
    size = 8
    lo, hi, used = array("Q", bytes(8 * size)), array("I", bytes(4 * size)), bytearray(size)
    for slot, key in zip((1, 3, 4, 6), keys, strict=True):
        lo[slot], hi[slot], used[slot] = key & ((1 << 64) - 1), key >> 64, 1
    earlier = types.ModuleType("pgy_spider.idset")
    namespace = {"__slots__": ("_count", "_hi", "_lo", "_mask", "_used")}
    namespace["__module__"] = "pgy_spider.idset"
    earlier_cls = type("CompactIdSet", (), namespace)
    earlier.CompactIdSet = earlier_cls  # type: ignore[attr-defined]
    table = earlier_cls()
    table._count, table._hi, table._lo, table._mask, table._used = 4, hi, lo, size - 1, used
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "pgy_spider.idset", earlier)
        data = pickle.dumps(table, protocol=4)
    loaded = pickle.loads(data)
    assert isinstance(loaded, CompactIdSet)
    assert sorted(loaded) == sorted(keys) and len(loaded) == 4
    assert loaded.add(6) and not loaded.add(5)
