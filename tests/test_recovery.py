"""Unit tests of reading a killed job's outputs back: torn lines cut, tails read."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pgy_spider import recovery
from tests.support.ids import make_note_ids

A, B, C = make_note_ids(3)


def _line(note_id: str, **extra: object) -> bytes:
    return (
        json.dumps(
            {"noteId": note_id, "title": "标题\u2028✨", **extra}, ensure_ascii=False
        ).encode()
        + b"\n"
    )


def test_a_torn_json_line_is_cut_and_the_tail_read(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    before = _line(A)
    path.write_bytes(before + _line(B) + _line(C)[:17])
    tail = recovery.repair_jsonl(str(path), len(before))
    assert tail.notes == {B} and tail.torn == 17
    assert path.read_bytes() == before + _line(B)


def test_nothing_past_the_checkpoint_means_an_empty_tail(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_bytes(_line(A))
    tail = recovery.repair_jsonl(str(path), path.stat().st_size)
    assert tail.notes == set() and tail.torn == 0
    assert recovery.repair_jsonl(str(tmp_path / "missing.jsonl"), 0).notes == set()


def test_the_failed_file_tail_tells_failures_from_rejects(tmp_path: Path) -> None:
    path = tmp_path / "failed.jsonl"
    records = [
        {
            "noteId": None,
            "code": None,
            "reason": "invalid_id",
            "attempts": 0,
            "requestId": None,
            "seed": "x",
        },
        {"noteId": A, "code": 201, "reason": "not_found", "attempts": 1, "requestId": "r"},
        {
            "noteId": None,
            "code": None,
            "reason": "short_link",
            "attempts": 0,
            "requestId": None,
            "seed": "y",
        },
    ]
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + b'{"noteId": "')
    tail = recovery.repair_jsonl(str(path), 0)
    assert tail.rejects == 2 and list(tail.failed) == [A] and tail.notes == set()
    assert tail.failed[A]["reason"] == "not_found" and tail.torn == len(b'{"noteId": "')


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def test_a_csv_record_torn_inside_a_quoted_line_break_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    header = b"\xef\xbb\xbf" + _csv([["noteId", "title", "content"]])
    first = _csv([[A, "=1+2", "line one\nline two"]])
    second = _csv([[B, "t", "多行\n内容"]])
    third = _csv([[C, "t", "cut here\nand"]])
    path.write_bytes(header + first + second + third[: third.index(b"\nand") + 1])
    tail = recovery.repair_csv(str(path), len(header + first))
    assert tail.notes == {B} and tail.torn > 0
    assert path.read_bytes() == header + first + second


def test_a_csv_tail_from_the_start_skips_the_header(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    content = b"\xef\xbb\xbf" + _csv([["title", "noteId"], ["a", A], ["b", B]])
    path.write_bytes(content + b"x,")
    tail = recovery.repair_csv(str(path), 0)
    assert tail.notes == {A, B} and path.read_bytes() == content


def test_a_csv_holding_only_its_bom_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(b"\xef\xbb\xbf")
    recovery.repair_csv(str(path), 0)
    assert path.read_bytes() == b""
