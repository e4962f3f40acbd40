"""Reading a killed job's output files back: the outputs are the truth of what was done.

Plain module. A note is written to the feed (one write per note) before it counts as
written, and a failed seed to the failed file before it counts as failed; the resume state
records how long each file was at its last checkpoint. So when a job resumes after a
``kill -9``, what a file holds past that length is exactly the work done after the
checkpoint: :func:`repair` cuts a line the kill tore in half, and the ``scan_*`` functions
read back which notes were written or failed since.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

_BOM = b"\xef\xbb\xbf"
_NOTE_ID_COLUMN = "noteId"


@dataclass
class Tail:
    """What a file holds past its checkpoint length."""

    notes: set[str] = field(default_factory=set)  # note IDs written (a feed)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)  # note ID -> record
    rejects: int = 0  # rejected-seed records (failed file), in reading order
    torn: int = 0  # bytes of a torn last record that were cut off


def file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _truncate(path: str, size: int) -> int:
    before = file_size(path)
    if size < before:
        with open(path, "r+b") as fh:
            fh.truncate(size)
    return before - size


def _lines(data: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    """(offset of the line's end, line) for every line of ``data``, the last one included
    even without its newline. Only ``\\n`` ends a line: JSON lines may hold U+2028."""
    position = 0
    while position < len(data):
        end = data.find(b"\n", position)
        end = len(data) if end < 0 else end + 1
        yield start + end, data[position:end]
        position = end


def _read_from(path: str, offset: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read()


# -- JSON lines: the default feed, the failed file, the spill file ----------------------------


def repair_jsonl(path: str, checkpoint: int) -> Tail:
    """Cut a torn last line off ``path`` and read back every whole line past ``checkpoint``."""
    tail = Tail()
    if not Path(path).exists():
        return tail
    data = _read_from(path, checkpoint)
    good_end = checkpoint
    for end, line in _lines(data, checkpoint):
        if not line.endswith(b"\n"):
            break  # the kill tore this line: it was never counted
        good_end = end
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # not ours to judge; it counts for nothing
        if isinstance(record, dict):
            _take_record(tail, record)
    tail.torn = _truncate(path, good_end)
    return tail


def _take_record(tail: Tail, record: dict[str, Any]) -> None:
    note_id = record.get("noteId")
    if "reason" in record and "attempts" in record:  # a failed-file record
        if "seed" in record:
            tail.rejects += 1
        elif isinstance(note_id, str):
            tail.failed[note_id] = record
    elif isinstance(note_id, str):
        tail.notes.add(note_id)


# -- CSV: an -o notes.csv feed ----------------------------------------------------------------


def repair_csv(path: str, checkpoint: int) -> Tail:
    """The same for a CSV feed, whose records may span lines (quoted line breaks)."""
    tail = Tail()
    if not Path(path).exists():
        return tail
    column = _csv_note_column(path)
    data = _read_from(path, checkpoint)
    consumed = [checkpoint]
    newline_ended = [True]

    def lines() -> Iterator[str]:
        for end, line in _lines(data, checkpoint):
            consumed[0] = end
            newline_ended[0] = line.endswith(b"\n")
            yield line.decode("utf-8", errors="replace")

    good_end = checkpoint
    reader = csv.reader(lines(), strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            break  # a quoted field the kill cut short
        if not newline_ended[0]:
            break  # the last line has no line end: torn
        good_end = consumed[0]
        note_id = row[column] if column is not None and len(row) > column else ""
        if note_id and note_id != _NOTE_ID_COLUMN:
            tail.notes.add(note_id)
    if good_end <= len(_BOM) and Path(path).read_bytes()[:good_end] in (b"", _BOM):
        good_end = 0  # a BOM alone: the next session writes BOM and header again
    tail.torn = _truncate(path, good_end)
    return tail


def _csv_note_column(path: str) -> int | None:
    with open(path, "rb") as fh:
        first = fh.readline(1 << 20)
    text = first.removeprefix(_BOM).decode("utf-8", errors="replace")
    header = next(csv.reader([text]), [])
    return header.index(_NOTE_ID_COLUMN) if _NOTE_ID_COLUMN in header else None
