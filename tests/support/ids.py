"""Note ID factories for tests: valid, distinct IDs the simulator answers with a note."""

from __future__ import annotations

# Multiplier coprime with 0xFFFFFF, so scrambling the low part stays a bijection.
_LOW_MIX = 7919
SAMPLE_TS = 1707127804  # the API doc's sample note: 2024-02-05


def make_note_id(i: int, ts: int = SAMPLE_TS) -> str:
    """A realistic note ID (8 hex timestamp + 16 hex) unique per ``i``, never ending in ffffff.

    The simulator answers IDs ending in ``ffffff`` with 201 (not found), so the low 6 hex digits
    range over 0..0xFFFFFE only; the rest of ``i`` goes to the higher digits.
    """
    if i < 0 or not 0 <= ts <= 0xFFFFFFFF:
        raise ValueError(f"need i >= 0 and a 32-bit ts, got i={i}, ts={ts}")
    high, low = divmod(i, 0xFFFFFF)
    low = (low * _LOW_MIX + 0x2C037A) % 0xFFFFFF
    return f"{ts:08x}{high:010x}{low:06x}"


def make_note_ids(n: int, start: int = 0) -> list[str]:
    return [make_note_id(i) for i in range(start, start + n)]


def not_found_id(i: int, ts: int = SAMPLE_TS) -> str:
    """An ID the simulator answers with 201 (it ends in ffffff), unique per ``i``."""
    return f"{ts:08x}{i:010x}ffffff"
