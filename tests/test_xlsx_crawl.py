"""End to end: ``scrapy crawl note_detail -O notes.xlsx`` against the simulator, the append
and resume refusals before any call, and untrusted text through Scrapy's feed machinery."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import openpyxl

from pgy_spider.jobstate import STATE_FILE
from pgy_spider.xlsxexport import CELL_MAX_CHARS
from tests.support.crawl import CrawlResult, read_jsonl, run_crawl
from tests.support.feeds import FORMULA_TEXTS, note, read_csv, run_feeds
from tests.support.ids import make_note_id, make_note_ids, not_found_id
from tests.support.simulator import SimulatorClient
from tests.support.xlsx import ALL_DIGIT_ID, EXPONENT_ID, HEADER, rows

NOT_FOUND_ID = not_found_id(0)  # the simulator answers 201


def _naive_utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=None)


def test_crawl_writes_a_workbook(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = [ALL_DIGIT_ID, EXPONENT_ID, *make_note_ids(6), NOT_FOUND_ID]
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        "-O",
        "notes.xlsx",
        "-O",
        "notes.jsonl",
        sim_url=sim.url,
    )
    assert result.returncode == 0, result
    assert sim.stats()["calls"] == len(ids)
    assert "Stored xlsx feed (8 items)" in result.stderr
    notes = {n["noteId"]: n for n in read_jsonl(tmp_path / "notes.jsonl")}
    assert set(notes) == set(ids) - {NOT_FOUND_ID}
    assert [f["noteId"] for f in result.failed] == [NOT_FOUND_ID]

    book = openpyxl.load_workbook(tmp_path / "notes.xlsx")
    assert book.sheetnames == ["notes", "creators"]
    sheet = book["notes"]
    assert [cell.value for cell in sheet[1]] == HEADER
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:AF9"
    seen = []
    for row in rows(sheet):
        note_id = row["noteId"]
        assert note_id.data_type == "s"  # all-digit and 6512e340… IDs included
        expected = notes[note_id.value]
        seen.append(note_id.value)
        for name in ("title", "content", "name", "userId", "noteLink", "createTimeText"):
            assert row[name].value == (expected[name] or None), name  # "" is an empty cell
        for name in ("likeNum", "impNum", "readNum", "createTime", "imageCount"):
            assert row[name].data_type == "n" and row[name].value == expected[name], name
        for name in ("createdAt", "updatedAt", "fetchedAt"):
            assert row[f"{name} (UTC)"].value == _naive_utc(expected[name]), name
        assert row["kol"].data_type == "s" and "\\u" not in row["kol"].value
    assert sorted(seen) == sorted(notes)

    creators = {row["userId"].value: row for row in rows(book["creators"])}
    assert set(creators) == {n["userId"] for n in notes.values()}
    assert sum(row["notesInFile"].value for row in creators.values()) == len(notes)
    for user_id, row in creators.items():
        kol = next(n["kol"] for n in notes.values() if n["userId"] == user_id)
        assert row["nickName"].value == kol["nickName"]
        assert row["fansNum"].value == kol["fansNum"]


def _assert_refused(result: CrawlResult, sim: SimulatorClient, *words: str) -> None:
    """Exit 2 with one ``error:`` line naming the problem, before any call or workbook."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    assert "Spider opened" not in result.stderr
    assert sim.stats()["calls"] == 0
    assert not list(result.workdir.glob("*.xlsx"))


def test_appending_to_a_workbook_is_refused_before_any_call(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    result = run_crawl(tmp_path, "-a", f"ids={make_note_id(0)}", "-o", "x.xlsx", sim_url=sim.url)
    _assert_refused(result, sim, "'x.xlsx'", "append", "-O x.xlsx")
    assert not result.output.exists()


def test_a_resumed_job_writing_a_workbook_is_refused_before_any_call(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    ids = "ids=" + ",".join(make_note_ids(3))
    first = run_crawl(tmp_path, "-a", ids, sim_url=sim.url, settings={"JOBDIR": "job"})
    assert first.returncode == 0, first
    assert (tmp_path / "job" / STATE_FILE).exists()
    sim.reset()
    result = run_crawl(
        tmp_path, "-a", ids, "-O", "notes.xlsx", sim_url=sim.url, settings={"JOBDIR": "job"}
    )
    _assert_refused(result, sim, "JOBDIR", "'notes.xlsx'", "-o notes.jsonl")
    # A new JOBDIR job may not write one either: a kill before the end would lose it all.
    fresh = run_crawl(
        tmp_path, "-a", ids, "-O", "notes.xlsx", sim_url=sim.url, settings={"JOBDIR": "job2"}
    )
    _assert_refused(fresh, sim, "notes.xlsx", "kill", "JOBDIR")
    # Without JOBDIR it is written.
    plain = run_crawl(tmp_path, "-a", ids, "-O", "notes.xlsx", sim_url=sim.url)
    assert plain.returncode == 0, plain
    assert openpyxl.load_workbook(tmp_path / "notes.xlsx")["notes"].max_row == 4


def test_feeds_in_process_keep_untrusted_text_literal_in_the_workbook(tmp_path: Path) -> None:
    long_content = "长文" * 20_000
    items = [note(title=text, noteId=f"{i:024x}") for i, text in enumerate(FORMULA_TEXTS)]
    items.append(note(noteId="f" * 24, title="控制\x07字符", content=long_content))
    paths = run_feeds(
        tmp_path,
        items,
        **{"notes.xlsx": "xlsx", "notes.jsonl": "jsonlines", "notes.csv": "csv"},
    )
    sheet = openpyxl.load_workbook(paths["xlsx"])["notes"]
    got = rows(sheet)
    # Exact, no leading '; a CR becomes a line feed, as for any text in the workbook.
    assert [row["title"].value for row in got[:-1]] == [
        t.replace("\r", "\n") for t in FORMULA_TEXTS
    ]
    assert all(row["title"].data_type == "s" for row in got)
    assert got[-1]["title"].value == "控制\ufffd字符"
    cut = got[-1]["content"].value
    assert len(cut) <= CELL_MAX_CHARS and cut.startswith("长文" * 1000) and "[cut: " in cut
    # The other feeds keep the whole text: JSON lines exactly, the CSV neutralised only.
    lines = read_jsonl(paths["jsonlines"])
    assert lines[-1]["content"] == long_content and lines[-1]["title"] == "控制\x07字符"
    assert [n["title"] for n in lines[:-1]] == list(FORMULA_TEXTS)
    csv_rows = read_csv(paths["csv"].read_bytes())
    assert csv_rows[-1]["content"] == long_content
    assert csv_rows[0]["title"] == "'" + FORMULA_TEXTS[0]
