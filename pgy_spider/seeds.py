"""Read seeds (note IDs, note URLs, share text) lazily from text, CSV and JSONL files.

Seed files can hold up to 10 million lines, so nothing here loads a file or a line
whole: files are read in binary with bounded ``readline`` calls, and every seed
carries the byte offset of its line so a paused crawl resumes exactly where it
stopped. Bad seeds are not dropped: they are yielded with a reject reason so the
caller can report them. No Scrapy imports.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import stat
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal, NamedTuple

import orjson

from pgy_spider.errors import UserError
from pgy_spider.noteid import parse_seed
from pgy_spider.reasons import INVALID_ID

__all__ = [
    "Seed",
    "SeedFileError",
    "SeedPos",
    "check_sources",
    "detect_format",
    "iter_inline",
    "iter_seeds",
]

SeedFormat = Literal["text", "csv", "jsonl"]

RAW_MAX_CHARS = 300  # Seed.raw is for reports; a 1 MB line must not travel on.
MAX_LINE_BYTES = 64 * 1024  # longer lines cannot be seeds: consumed in chunks, rejected
_SNIFF_BYTES = 64 * 1024

_BOM = b"\xef\xbb\xbf"
_utf8_decoder = codecs.getincrementaldecoder("utf-8")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# Column names (lower-cased) that hold the seed in a CSV header, best first.
_CSV_COLUMNS = ("noteid", "note_id", "id", "url", "link")
# JSONL object keys that hold the seed, best first.
_JSON_KEYS = ("noteId", "note_id", "url")

# A first CSV row is a header only if its chosen cell has neither of these:
# "noteId" or "链接" is a header; a truncated ID or a URL is a (rejected) seed
# that the user should see. No header name holds 16 hex digits in a row.
_HEXISH = re.compile(r"[0-9a-f]{16}", re.IGNORECASE)
_URLISH = re.compile(r"://|\b(?:www|xhslink|xiaohongshu|rednote)\.", re.IGNORECASE)


class SeedFileError(UserError):
    """A seed source cannot be used; the message says what is wrong and how to fix it."""


class SeedPos(NamedTuple):
    """Where a seed's line starts: resume reading exactly at this seed.

    ``file_index`` is -1 for inline ``ids`` values, whose ``offset`` is then the
    index of the value in the comma-separated list.
    """

    file_index: int
    offset: int


@dataclass(frozen=True, slots=True)
class Seed:
    raw: str  # the seed as given (stripped), at most RAW_MAX_CHARS characters
    note_id: str | None  # 24 lower-case hex, or None when rejected
    reason: str | None  # reject reason (pgy_spider.reasons.REJECT_REASONS), or None
    seq: int  # 0-based running number across all sources
    pos: SeedPos


# Hot-path constructors. SeedPos(...) goes through a Python-level __new__, and a
# frozen dataclass __init__ sets each field via object.__setattr__; together they
# were a third of the per-seed cost. These build the very same objects (a test
# checks equality with the public constructors) at about half the cost.
_new_pos = tuple.__new__
_SEED_SETTERS = tuple(getattr(Seed, name).__set__ for name in Seed.__slots__)
_new_object = object.__new__


def _new_seed(raw: str, note_id: str | None, reason: str | None, seq: int, pos: SeedPos) -> Seed:
    seed = _new_object(Seed)
    set_raw, set_note_id, set_reason, set_seq, set_pos = _SEED_SETTERS
    set_raw(seed, raw)
    set_note_id(seed, note_id)
    set_reason(seed, reason)
    set_seq(seed, seq)
    set_pos(seed, pos)
    return seed


def detect_format(name: str) -> SeedFormat:
    """Pick the seed format from a file name or URL by its suffix."""
    path = name.split("?", 1)[0].split("#", 1)[0].lower()
    if path.endswith(".csv"):
        return "csv"
    if path.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return "text"


# ---------------------------------------------------------------------------
# Validation before crawling


def check_sources(paths: Sequence[str]) -> list[str]:
    """Fail fast on unusable seed files; return one-line warnings (e.g. empty files).

    Raises SeedFileError for a missing path, a directory, a non-regular file, an
    unreadable file, a UTF-16 file, CR-only line endings or binary content.
    """
    warnings: list[str] = []
    for path in paths:
        warning = _check_source(path)
        if warning:
            warnings.append(warning)
    return warnings


def _check_source(path: str) -> str | None:
    if "://" in path:
        raise SeedFileError(
            f"seed file {path!r} is a URL: download it and pass the local file path"
        )
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SeedFileError(f"seed file {path!r} does not exist: check the ids_file path") from None
    except OSError as exc:
        raise SeedFileError(f"seed file {path!r} cannot be accessed ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise SeedFileError(f"seed file {path!r} is a directory: pass the path of a file inside it")
    if not stat.S_ISREG(st.st_mode):
        # Pipes and devices cannot be re-read or seeked, so a crawl could not resume.
        raise SeedFileError(
            f"seed file {path!r} is not a regular file (pipe or device): save the seeds to a file"
        )
    head = _read_head(path)
    _check_head(path, head)
    return _empty_warning(path, head, st.st_size)


def _read_head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(_SNIFF_BYTES)
    except PermissionError:
        raise SeedFileError(
            f"seed file {path!r} is not readable (permission denied): "
            "fix its permissions, e.g. chmod a+r"
        ) from None
    except OSError as exc:
        raise SeedFileError(f"seed file {path!r} cannot be read ({exc.strerror})") from None


def _check_head(path: str, head: bytes) -> None:
    # UTF-16 ("Unicode text" in Excel) is full of NULs; say what it is, not "binary".
    if head.startswith(_UTF16_BOMS):
        raise SeedFileError(f"seed file {path!r} is UTF-16 encoded: re-save it as UTF-8")
    if b"\0" in head:
        raise SeedFileError(
            f"seed file {path!r} looks binary (NUL bytes in its first 64 KiB): "
            "pass a text, CSV or JSONL file of note IDs (decompress archives first)"
        )
    # Old Mac-style line ends would make the whole file one (rejected) line.
    if b"\n" not in head and head.count(b"\r") > 1:
        raise SeedFileError(
            f"seed file {path!r} uses CR-only line endings: convert it to LF or CRLF line endings"
        )


def _empty_warning(path: str, head: bytes, size: int) -> str | None:
    if size == 0:
        return f"seed file {path!r} is empty: it contributes no seeds"
    # Only a file that fits in the head can be judged without reading it all.
    if size <= len(head) and not any(_is_seed_line(line) for line in head.splitlines()):
        return f"seed file {path!r} has only blank lines and comments: it contributes no seeds"
    return None


def _is_seed_line(line: bytes) -> bool:
    text = line.strip().removeprefix(_BOM).strip()
    return bool(text) and not text.startswith(b"#")


# ---------------------------------------------------------------------------
# Reading


def iter_seeds(
    paths: Sequence[str],
    start: SeedPos | None = None,
    start_seq: int = 0,
    *,
    check_time: bool = True,
) -> Iterator[Seed]:
    """Yield every seed of ``paths`` in order, valid and rejected alike.

    Pass a seed's ``pos`` as ``start`` and its ``seq`` as ``start_seq`` to resume
    at that seed (it is yielded again). Files are opened one at a time, lazily.
    """
    first_file, first_offset = start if start is not None else (0, 0)
    if not 0 <= first_file <= len(paths) or first_offset < 0:
        raise ValueError(f"resume position {start!r} is outside the {len(paths)} seed file(s)")
    seq = start_seq
    for file_index in range(first_file, len(paths)):
        offset = first_offset if file_index == first_file else 0
        # yield from (not a re-yielding loop): one generator hop less per seed.
        seq = yield from _iter_file(paths[file_index], file_index, offset, seq, check_time)


def iter_inline(values: str, start_seq: int = 0, *, check_time: bool = True) -> Iterator[Seed]:
    """Yield the seeds of a comma-separated ``ids`` argument (pos = (-1, value index))."""
    seq = start_seq
    for index, value in enumerate(values.split(",")):
        text = value.strip()
        if not text or text.startswith("#"):
            continue
        note_id, reason = parse_seed(text, check_time=check_time)
        yield Seed(text[:RAW_MAX_CHARS], note_id, reason, seq, SeedPos(-1, index))
        seq += 1


def _iter_file(
    path: str, file_index: int, offset: int, seq: int, check_time: bool
) -> Generator[Seed, None, int]:
    """Yield the seeds of one file from ``offset``; return the next seq."""
    fmt = detect_format(path)
    with open(path, "rb") as f:
        extract: _Extract | None = None  # None: plain text, the hot path
        note_id: str | None
        reason: str | None
        if fmt == "csv":
            extract, offset = _csv_extractor(f, path, offset, check_time)
        elif fmt == "jsonl":
            extract = _jsonl_extractor(check_time)
        _seek_line_start(f, path, offset)
        for line_offset, text, overlong in _lines(f, offset):
            if overlong:
                raw, note_id, reason = text, None, INVALID_ID
            elif extract is None:
                raw = text
                note_id, reason = parse_seed(text, check_time=check_time)
            else:
                raw, note_id, reason = extract(text)
            pos = _new_pos(SeedPos, (file_index, line_offset))
            yield _new_seed(raw[:RAW_MAX_CHARS], note_id, reason, seq, pos)
            seq += 1
    return seq


def _seek_line_start(f: BinaryIO, path: str, offset: int) -> None:
    """Seek to a resume offset, refusing one that is not at a line start.

    A mid-line offset means the file changed since the position was recorded;
    resuming there would silently skip or garble seeds.
    """
    if offset > 0:
        f.seek(offset - 1)
        at_line_start = f.read(1) == b"\n" or _is_bom_end(f, offset)
        if not at_line_start:
            raise SeedFileError(
                f"seed file {path!r} changed since the crawl was paused "
                f"(offset {offset} is not at a line start): restart the crawl without resuming"
            )
    f.seek(offset)


def _is_bom_end(f: BinaryIO, offset: int) -> bool:
    """Whether ``offset`` is just past a leading BOM (where a file's first seed starts)."""
    if offset != len(_BOM):
        return False
    f.seek(0)
    return f.read(len(_BOM)) == _BOM


def _lines(f: BinaryIO, offset: int) -> Iterator[tuple[int, str, bool]]:
    """Yield ``(line start offset, stripped text, overlong)`` for non-skipped lines.

    Blank lines and ``#`` comments are skipped. Offsets are counted here rather
    than with ``f.tell()``, which costs a syscall per line. An overlong line is
    consumed in bounded chunks and yielded with its decoded prefix as text.
    """
    readline = f.readline
    limit = MAX_LINE_BYTES + 1
    if offset == 0:
        # A UTF-8 BOM only ever starts a file; offsets stay true file offsets.
        bom = f.read(len(_BOM))
        if bom == _BOM:
            offset = len(_BOM)
        else:
            f.seek(0)
    while True:
        line = readline(limit)
        if not line:
            return
        start = offset
        offset += len(line)
        if len(line) == limit and not line.endswith(b"\n"):
            offset += _skip_rest_of_line(f)
            yield start, _decode_prefix(line[: RAW_MAX_CHARS * 4]).strip()[:RAW_MAX_CHARS], True
            continue
        text = _decode(line).strip()
        if text and text[0] != "#":
            yield start, text, False


def _skip_rest_of_line(f: BinaryIO) -> int:
    """Consume up to and including the next newline in bounded chunks; return bytes read."""
    skipped = 0
    while True:
        chunk = f.readline(MAX_LINE_BYTES)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _decode(line: bytes) -> str:
    # Seeds are ASCII, but the text around them (share text, CSV columns) may be
    # GBK or Latin-1; gb18030 is a superset of GBK and latin-1 never fails.
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return line.decode("gb18030")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _decode_prefix(prefix: bytes) -> str:
    """Decode a line prefix that may end inside a multi-byte UTF-8 character."""
    try:
        # Not final: an incomplete trailing character is dropped, not an error.
        return _utf8_decoder().decode(prefix)
    except UnicodeDecodeError:
        return _decode(prefix)


# An extractor turns one non-skipped line into (raw, note_id, reason).
_Extract = Callable[[str], tuple[str, str | None, str | None]]


def _jsonl_extractor(check_time: bool) -> _Extract:
    def extract(text: str) -> tuple[str, str | None, str | None]:
        value = _json_seed(text)
        if value is None:
            return text, None, INVALID_ID
        return (value.strip(), *parse_seed(value, check_time=check_time))

    return extract


def _json_seed(text: str) -> str | None:
    """The seed string of a JSONL line, or None if the line holds none."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    for key in _JSON_KEYS:
        value = obj.get(key)
        if isinstance(value, str):
            return value
    return None


def _csv_extractor(f: BinaryIO, path: str, offset: int, check_time: bool) -> tuple[_Extract, int]:
    """Choose the seed column from the first row; return the extractor and read offset.

    When the first row is a header, the returned offset is just past it. When
    resuming past the first row, the header is re-read first so the column is
    the same as in the original run.
    """
    first = next(_lines(f, 0), None)
    f.seek(0)
    if first is None:
        return _csv_column_extractor(0, check_time), offset
    first_offset, first_text, overlong = first
    if overlong:
        # A header is never 64 KiB long: this row is an (invalid) seed, reported as such.
        return _csv_column_extractor(0, check_time), offset
    column, is_header = _csv_header(_csv_cells(first_text), check_time)
    if is_header and offset <= first_offset:
        offset = first_offset + _line_length_at(f, first_offset)
    return _csv_column_extractor(column, check_time), offset


def _line_length_at(f: BinaryIO, offset: int) -> int:
    """Byte length (newline included) of the line starting at ``offset``."""
    f.seek(offset)
    length = len(line := f.readline(MAX_LINE_BYTES + 1))
    if not line.endswith(b"\n"):
        length += _skip_rest_of_line(f)
    return length


def _csv_header(cells: list[str], check_time: bool) -> tuple[int, bool]:
    """Return (seed column index, whether this first row is a header)."""
    names = [cell.strip().lower() for cell in cells]
    for wanted in _CSV_COLUMNS:
        if wanted in names:
            return names.index(wanted), True
    cell = cells[0] if cells else ""
    note_id, _reason = parse_seed(cell, check_time=check_time)
    looks_like_header = not _HEXISH.search(cell) and not _URLISH.search(cell)
    return 0, note_id is None and looks_like_header


def _csv_column_extractor(column: int, check_time: bool) -> _Extract:
    def extract(text: str) -> tuple[str, str | None, str | None]:
        cells = _csv_cells(text)
        cell = cells[column].strip() if column < len(cells) else ""
        return (cell, *parse_seed(cell, check_time=check_time))

    return extract


def _csv_cells(text: str) -> list[str]:
    # One seed per line: a quoted field spanning lines is not supported.
    return next(csv.reader([text]), [])
