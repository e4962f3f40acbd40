"""The compact ID set behaves like a set of 96-bit ints, through growth and pickling."""

from __future__ import annotations

import pickle
import random

import pytest

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
