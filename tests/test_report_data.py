"""The report's numbers (plain modules): inputs, the run's outcome, rankings, costs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgy_spider.report.aggregate import NotesAggregate, billed_calls, run_outcome
from pgy_spider.report.inputs import InputError, iter_feed, load_summary, parse_since, read_note_ids
from pgy_spider.report.model import parse_note, safe_link
from tests.support.report import (
    EXPECTED_COSTS,
    EXPECTED_CREATORS,
    EXPECTED_CREATORS_PER_FANS,
    EXPECTED_ENGAGEMENT,
    EXPECTED_PER_FANS,
    EXPECTED_TOP_NOTES,
    KNOWN_SUMMARY,
    NOTE_INDEX,
    known_notes,
    note_id,
    write_json_array,
    write_jsonl,
    write_summary,
)


def collect(notes: list[dict], top: int = 20):
    agg = NotesAggregate()
    for note in notes:
        agg.add(parse_note(note))
    return agg.result(top)


# -- the run --------------------------------------------------------------------


def test_run_outcome_figures() -> None:
    run = run_outcome(KNOWN_SUMMARY)
    assert run.notes_written == 9
    assert run.failed == 4 and run.rejected == 3 and run.pending == 2
    assert run.failed_by_reason == [("not_found", 3), ("retries_exhausted", 1)]
    assert run.rejected_by_reason == [("invalid_id", 2), ("short_link", 1)]
    assert run.calls_by_code == [("0", 9), ("201", 3), ("301", 6), ("500", 1)]
    assert (run.billed, run.billed_source) == (12, "codes")
    assert run.duration_s == 120.0
    assert run.notes_per_minute == pytest.approx(4.5)
    assert run.possibly_billed == 1 and run.balanced is True


def test_billed_prefers_the_summary_own_count() -> None:
    assert billed_calls({**KNOWN_SUMMARY, "billed": 15}) == (15, "summary")
    assert billed_calls({"calls_by_code": {"0": 2, "201": 1, "302": 7}}) == (3, "codes")
    assert billed_calls({}) == (0, "codes")


def test_calls_by_code_sorted_numerically_and_odd_values_ignored() -> None:
    run = run_outcome(
        {"calls_by_code": {"500": 1, "0": 3, "1000": 2, "x": "y"}, "notes_written": "?"}
    )
    assert run.calls_by_code == [("0", 3), ("500", 1), ("1000", 2)]
    assert run.notes_written == 0 and run.duration_s is None and run.notes_per_minute is None


# -- the notes ------------------------------------------------------------------


def test_top_notes_by_engagement_leave_out_all_zero_notes() -> None:
    data = collect(known_notes())
    assert (data.notes, data.all_zero, data.ranked, data.repeated) == (9, 1, 8, 1)
    assert data.by_type == {"picture": 6, "video": 3}
    assert data.creators == 4
    assert [r.note.note_id for r in data.top_notes] == EXPECTED_TOP_NOTES
    assert {NOTE_INDEX[r.note.note_id]: r.note.engagement for r in data.top_notes} == (
        EXPECTED_ENGAGEMENT
    )
    assert note_id(4) not in {r.note.note_id for r in data.top_notes}


def test_a_note_seen_twice_counts_with_its_latest_fetch() -> None:
    data = collect(known_notes())
    (row,) = [r for r in data.top_notes if r.note.note_id == note_id(8)]
    assert (row.note.engagement, row.note.title, row.fans) == (20, "大D视频", 500)
    # The same lines in the other order give the same answer.
    again = collect(list(reversed(known_notes())))
    (row,) = [r for r in again.top_notes if r.note.note_id == note_id(8)]
    assert (row.note.engagement, row.fans) == (20, 500)


def test_top_notes_per_thousand_fans() -> None:
    data = collect(known_notes())
    got = [(NOTE_INDEX[r.note.note_id], r.per_1k_fans) for r in data.top_notes_per_fans]
    assert got == [(i, pytest.approx(v)) for i, v in EXPECTED_PER_FANS]


def test_top_creators_by_median_engagement_and_per_fans() -> None:
    data = collect(known_notes())
    assert [(c.user_id, c.median, c.total) for c in data.top_creators] == EXPECTED_CREATORS
    assert [c.rank for c in data.top_creators] == [1, 2, 3, 4]
    got = [(c.user_id, c.per_1k_fans) for c in data.top_creators_per_fans]
    assert got == [(u, pytest.approx(v)) for u, v in EXPECTED_CREATORS_PER_FANS]


def test_cost_per_engagement_and_who_is_left_out() -> None:
    data = collect(known_notes())
    got = [(c.user_id, c.note_type, c.cost_per_engagement) for c in data.costs]
    assert got == [(u, t, pytest.approx(v)) for u, t, v in EXPECTED_COSTS]
    left = data.cost_left_out
    assert (left.zero_fans, left.no_price, left.zero_median) == (1, {"picture": 1, "video": 1}, 1)


def test_top_limits_every_ranking() -> None:
    data = collect(known_notes(), top=2)
    assert [r.note.note_id for r in data.top_notes] == EXPECTED_TOP_NOTES[:2]
    assert len(data.top_notes_per_fans) == len(data.top_creators) == len(data.costs) == 2


def test_unsafe_links_are_dropped() -> None:
    assert safe_link("javascript:alert(1)") is None
    assert safe_link(" JAVASCRIPT:alert(1)") is None
    assert safe_link("data:text/html,<script>") is None
    assert (
        safe_link("https://www.xiaohongshu.com/explore/x")
        == "https://www.xiaohongshu.com/explore/x"
    )
    parsed = parse_note(known_notes()[4])
    assert (
        parsed is not None and parsed[0].link == f"https://www.xiaohongshu.com/explore/{note_id(5)}"
    )


# -- the inputs -----------------------------------------------------------------


def test_jsonl_and_json_array_feeds_read_alike(tmp_path: Path) -> None:
    notes = known_notes()
    lines = list(iter_feed(str(write_jsonl(tmp_path / "notes.jsonl", notes))))
    array = list(iter_feed(str(write_json_array(tmp_path / "notes.json", notes))))
    assert lines == array
    assert [n["noteId"] for n in lines] == [n["noteId"] for n in notes]
    assert lines[0]["title"] == notes[0]["title"]


def test_json_feed_appended_twice_is_read_whole(tmp_path: Path) -> None:
    # `-o notes.json` over two runs leaves two arrays back to back.
    notes = known_notes()
    first = write_json_array(tmp_path / "a.json", notes[:3]).read_bytes()
    second = write_json_array(tmp_path / "b.json", notes[3:]).read_bytes()
    (tmp_path / "notes.json").write_bytes(first + second)
    assert len(list(iter_feed(str(tmp_path / "notes.json")))) == len(notes)


def test_feed_with_bom_blank_lines_and_unicode_line_separators(tmp_path: Path) -> None:
    note = known_notes()[1]
    note["title"] = "一\u2028二\u0085三"
    path = tmp_path / "notes.jsonl"
    write_jsonl(path, [note, known_notes()[2]])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\n\n", 1))
    got = list(iter_feed(str(path)))
    assert [n["title"] for n in got] == ["一\u2028二\u0085三", known_notes()[2]["title"]]


def test_empty_feed_has_no_notes(tmp_path: Path) -> None:
    (tmp_path / "notes.jsonl").write_bytes(b"")
    assert list(iter_feed(str(tmp_path / "notes.jsonl"))) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"noteId": "a"}\n{"noteId": \n', "line 2 is not valid JSON"),
        (b'{"noteId": "a"}\n[1, 2]\n', "line 2 is not a JSON object"),
        (b'[{"noteId": "a"}, {"noteId": ', "is not valid JSON after item 1"),
        (b'[{"noteId": "a"}, 3]', "item 2 is not a JSON object"),
        (b"noteId,title\n65c0b3fc000000002c037a49,x\n", "neither JSON lines nor a JSON array"),
    ],
)
def test_broken_feeds_name_the_problem(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "feed"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        list(iter_feed(str(path)))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"summary .* does not exist"):
        load_summary(str(tmp_path / "summary.json"))
    with pytest.raises(InputError, match=r"feed .* does not exist"):
        iter_feed(str(tmp_path / "notes.jsonl"))
    with pytest.raises(InputError, match=r"feed .* is a directory"):
        iter_feed(str(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "not a JSON object")],
)
def test_broken_summaries(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "summary.json").write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_summary(str(tmp_path / "summary.json"))


def test_summary_round_trip(tmp_path: Path) -> None:
    assert load_summary(str(write_summary(tmp_path / "s.json"))) == KNOWN_SUMMARY


def test_ids_file_and_since(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{note_id(1)}\nhttps://www.xiaohongshu.com/explore/{note_id(2)}\nnope\n")
    assert read_note_ids(str(ids)) == {note_id(1), note_id(2)}
    with pytest.raises(InputError, match=r"--ids-file: .* does not exist"):
        read_note_ids(str(tmp_path / "missing.txt"))
    assert parse_since("2026-03-01").isoformat() == "2026-03-01T00:00:00+00:00"
    assert parse_since("2026-03-01T10:00+08:00").isoformat() == "2026-03-01T02:00:00+00:00"
    with pytest.raises(InputError, match="--since 'yesterday' is not a date"):
        parse_since("yesterday")
