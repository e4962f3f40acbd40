"""Note IDs for the benchmark: the test suite's ``make_note_id`` scheme, and the seed files."""

from __future__ import annotations

import random
from pathlib import Path

try:  # the one definition, shared with the tests (needs pytest, a dev requirement)
    from tests.support.simulator import make_note_id
except ImportError:  # pragma: no cover - a checkout without tests/: the same scheme, copied
    _LOW_MIX = 7919

    def make_note_id(i: int, ts: int = 1707127804) -> str:
        high, low = divmod(i, 0xFFFFFF)
        low = (low * _LOW_MIX + 0x2C037A) % 0xFFFFFF
        return f"{ts:08x}{high:010x}{low:06x}"


# Seeds that must be rejected (invalid_id / short_link) in the memory run's seed file.
INVALID_SEEDS = (
    "not-a-note-id",
    "65c0b3fc000000002c037a4",  # 23 hex digits
    "65c0b3fc000000002c037a49zz",
    "https://www.xiaohongshu.com/user/profile/5f0e2a8f000000000101d0c4",
    "http://xhslink.com/a/AbCdEf",
    "00000000000000002c037a49",  # created in 1970
)


def write_ids(path: Path, count: int, offset: int = 0) -> list[str]:
    """Write ``count`` distinct valid IDs (one a line) and return them."""
    ids = [make_note_id(offset + i) for i in range(count)]
    path.write_text("".join(f"{note_id}\n" for note_id in ids), encoding="utf-8")
    return ids


def write_memory_seeds(
    path: Path, total: int, duplicate_share: float = 0.1, invalid_every: int = 10_000, seed: int = 0
) -> dict[str, int]:
    """A ``total``-line seed file: distinct valid IDs, ~``duplicate_share`` repeats of earlier
    ones (anywhere later in the file) and one invalid line every ``invalid_every`` lines.

    Returns the expected accounting: ``distinct``, ``duplicates``, ``invalid``.
    """
    rng = random.Random(seed)
    distinct = duplicates = invalid = 0
    with path.open("w", encoding="utf-8") as f:
        for line_no in range(total):
            if invalid_every and line_no % invalid_every == invalid_every - 1:
                f.write(INVALID_SEEDS[invalid % len(INVALID_SEEDS)] + "\n")
                invalid += 1
            elif distinct and rng.random() < duplicate_share:
                f.write(make_note_id(rng.randrange(distinct)) + "\n")
                duplicates += 1
            else:
                f.write(make_note_id(distinct) + "\n")
                distinct += 1
    return {"distinct": distinct, "duplicates": duplicates, "invalid": invalid}
