"""Turn what users hold (bare IDs, note URLs, share text) into Xiaohongshu note IDs.

Every call to the note-detail endpoint is paid for, so a seed that cannot succeed
(a short link, a user-profile URL, a malformed or impossible ID) is rejected here,
before any request is made. This module sits on the hot path of multi-million-seed
crawls: regexes are precompiled and a bare 24-hex ID never reaches the slow path.
No Scrapy imports, so it is cheap to import and test.
"""

from __future__ import annotations

import re
from time import time as _clock

from pgy_spider import reasons

__all__ = [
    "int_to_note_id",
    "note_id_to_int",
    "parse_seed",
]

# Note IDs are ObjectId-shaped: the first 8 hex digits are the creation time in
# Unix seconds. Xiaohongshu launched in 2013, and an ID more than 2 days in the
# future is corrupt (2 days absorbs any clock skew between us and their servers).
# The bounds are compared as 8-char lower-case hex strings: for fixed-width
# lower-case hex, string order is numeric order, and it skips an int() per seed.
_MIN_CREATE_HEX = "50e22700"  # 2013-01-01T00:00:00Z = 1356998400
_MAX_FUTURE_S = 2 * 86_400
# The upper bound moves with the clock; recomputing it per seed would cost more
# than the rest of the fast path, and a bound up to a minute stale is harmless.
_UPPER_REFRESH_S = 60.0
_upper_hex = ""
_upper_valid_until = float("-inf")

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")

# A note URL anywhere in the text (share text wraps it in prose). The lookbehinds
# stop look-alike hosts ("evilxiaohongshu.com", "m.xiaohongshu.com") and foreign
# schemes ("ftp://") from matching; they are ASCII-only on purpose because share
# text often glues Chinese characters directly onto the URL. The lookahead makes
# a 25th hex digit (or any other ID character) a non-match instead of a truncation.
_NOTE_URL = re.compile(
    r"(?:(?<![A-Za-z0-9+.-])https?://|(?<![A-Za-z0-9.@/:_-]))"
    r"(?:www\.)?"
    r"(?:xiaohongshu\.com/(?:explore|discovery/item)|rednote\.com/explore)"
    r"/([0-9a-f]{24})(?![0-9a-z_])",
    re.IGNORECASE,
)

# Short links resolve only by following a redirect or via a separate billed
# endpoint, so they are a distinct reject reason the user can act on.
_SHORT_LINK = re.compile(r"(?<![a-z0-9-])xhslink\.(?:com|cn)(?![a-z0-9-])", re.IGNORECASE)

# Copy-paste from chat apps and spreadsheets leaves these invisible characters
# around IDs; str.strip() does not remove them.
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"

_MAX_NOTE_INT = 1 << 96


def parse_seed(
    raw: str, *, check_time: bool = True, now: float | None = None
) -> tuple[str | None, str | None]:
    """Return ``(note_id, None)`` for a usable seed, else ``(None, reason)``.

    ``note_id`` is always 24 lower-case hex characters. ``now`` (Unix seconds)
    defaults to the current time and only matters when ``check_time`` is set.
    """
    text = raw.strip()
    # Fast path: the overwhelmingly common seed is a bare ID.
    if len(text) == 24 and _HEX24.fullmatch(text):
        note_id = text.lower()
    else:
        found = _find_note_id(text)
        if found is None:
            if _SHORT_LINK.search(text):
                return None, reasons.SHORT_LINK
            return None, reasons.INVALID_ID
        note_id = found
    if check_time:
        # Inlined cache hit: a helper call here would cost more than the check.
        if now is None and _clock() < _upper_valid_until:
            upper = _upper_hex
        else:
            upper = _max_create_hex(now)
        if not _MIN_CREATE_HEX <= note_id[:8] <= upper:
            return None, reasons.INVALID_ID
    return note_id, None


def _find_note_id(text: str) -> str | None:
    """Slow path: a bare ID wrapped in invisible characters, or a note URL in text."""
    bare = text.strip(_INVISIBLE).strip()
    if len(bare) == 24 and _HEX24.fullmatch(bare):
        return bare.lower()
    match = _NOTE_URL.search(text)
    return match.group(1).lower() if match else None


def _max_create_hex(now: float | None) -> str:
    """Hex of the latest plausible creation time (now + 2 days)."""
    global _upper_hex, _upper_valid_until
    if now is not None:
        return _ts_hex(now + _MAX_FUTURE_S)
    wall = _clock()
    if wall >= _upper_valid_until:
        _upper_hex = _ts_hex(wall + _MAX_FUTURE_S)
        _upper_valid_until = wall + _UPPER_REFRESH_S
    return _upper_hex


def _ts_hex(ts: float) -> str:
    # Clamped to 8 digits so the string comparison stays a numeric one.
    return format(min(max(int(ts), 0), 0xFFFFFFFF), "08x")


def note_id_to_int(note_id: str) -> int:
    """Pack a note ID into a 96-bit int: a much smaller dedup-set key than the str."""
    # int(x, 16) alone would also accept "0x..", "_" and signs, which would not
    # round-trip through int_to_note_id.
    if len(note_id) != 24 or not _HEX24.fullmatch(note_id):
        raise ValueError(f"not a 24-hex note id: {note_id!r}")
    return int(note_id, 16)


def int_to_note_id(n: int) -> str:
    """Inverse of :func:`note_id_to_int` (always 24 lower-case hex characters)."""
    if not 0 <= n < _MAX_NOTE_INT:
        raise ValueError(f"not a 96-bit note id integer: {n!r}")
    return format(n, "024x")
