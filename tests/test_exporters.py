"""Feed exporters: Excel CSV (BOM once, columns, JSON cells, no runnable cells) and unescaped
JSON lines, also through Scrapy's own feed machinery in process (``tests.support.feeds``)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import scrapy
from scrapy.exporters import JsonLinesItemExporter

from pgy_spider.exporters import (
    CSV_FIELDS,
    FORMULA_STARTS,
    ExcelCsvItemExporter,
    OrjsonLinesItemExporter,
)
from pgy_spider.notes import NOTE_FIELDS
from tests.support.crawl import read_jsonl, run_crawl
from tests.support.feeds import EMOJI_TITLE, FORMULA_TEXTS, REPO_ROOT, note, read_csv, run_feeds
from tests.support.ids import make_note_id
from tests.support.sample import NOTE_ID
from tests.support.simulator import SimulatorClient

BOM = b"\xef\xbb\xbf"


def export(exporter_cls: type, items: list[Any], file: Any = None, **kwargs: Any) -> bytes:
    file = io.BytesIO() if file is None else file
    exporter = exporter_cls(file, **kwargs)
    exporter.start_exporting()
    for item in items:
        exporter.export_item(item)
    exporter.finish_exporting()
    return file.getvalue() if isinstance(file, io.BytesIO) else b""


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_starts_with_exactly_one_bom() -> None:
    data = export(ExcelCsvItemExporter, [note(), note()])
    assert data.startswith(BOM)
    assert data.count(BOM) == 1


def test_csv_columns_are_the_normalized_keys_without_raw() -> None:
    data = export(ExcelCsvItemExporter, [note()])
    header = next(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert header == list(CSV_FIELDS)
    assert tuple(name for name in NOTE_FIELDS if name != "raw") == CSV_FIELDS


def test_csv_values_round_trip() -> None:
    item = note()
    (row,) = read_csv(export(ExcelCsvItemExporter, [item]))
    assert row["noteId"] == NOTE_ID
    assert row["name"] == "曹操来了"
    assert row["title"] == EMOJI_TITLE
    assert row["content"] == item["content"]
    assert row["redId"] == ""  # None -> empty cell
    assert row["metricsAllZero"] == "true"
    assert row["likeNum"] == "0"  # 0 stays 0, not empty
    assert row["createTime"] == "1707127804000"
    assert row["createdAt"] == "2024-02-05T10:10:04Z"
    assert row["videoDuration"] == "23"


def test_csv_nested_values_are_compact_unescaped_json() -> None:
    item = note()
    (row,) = read_csv(export(ExcelCsvItemExporter, [item]))
    assert row["topics"] == '["电影狙击手","曹操来了","明星"]'
    assert json.loads(row["kol"]) == item["kol"]
    assert json.loads(row["imageUrls"]) == item["imageUrls"]
    assert "\\u" not in row["kol"] and "北京" in row["kol"]


def test_csv_booleans_and_none() -> None:
    (row,) = read_csv(export(ExcelCsvItemExporter, [note(metricsAllZero=False, kol=None)]))
    assert row["metricsAllZero"] == "false"
    assert row["kol"] == ""


def test_csv_ids_and_multiline_text_are_kept_exactly() -> None:
    ids = {"noteId": "650000000000000000e00012", "userId": "000123", "redId": "1234567890123456789"}
    content = '第一行\n第二行, "引号" 😀\r\n=SUM(A1)'  # a formula sign inside is harmless
    (row,) = read_csv(export(ExcelCsvItemExporter, [note(content=content, **ids)]))
    assert {key: row[key] for key in ids} == ids
    assert row["content"] == content


@pytest.mark.parametrize("text", FORMULA_TEXTS)
def test_csv_text_that_would_run_gets_a_leading_quote(text: str) -> None:
    item = note(title=text, content=text, name=text, kol={"nickName": text})
    (row,) = read_csv(export(ExcelCsvItemExporter, [item]))
    assert row["title"] == row["content"] == row["name"] == "'" + text
    assert json.loads(row["kol"]) == {"nickName": text}  # JSON text starts with "{": harmless


def test_csv_neutralises_by_type_never_numbers() -> None:
    item = note(likeNum=-5, impNum=0, videoDuration=-1.5, title="-5", redId="")
    (row,) = read_csv(export(ExcelCsvItemExporter, [item]))
    assert row["likeNum"] == "-5" and row["videoDuration"] == "-1.5"  # numbers: as they are
    assert row["title"] == "'-5"  # the same characters as text: neutralised
    assert row["redId"] == ""  # an empty string stays empty
    assert frozenset("=+-@\t\r") == FORMULA_STARTS


def test_csv_harmless_text_is_untouched() -> None:
    texts = ["周末探店😋", " =1+1", "'quoted", "1+1", "a=b", "#话题", "", "\n=1"]
    items = [note(title=text, noteId=f"{i:024x}") for i, text in enumerate(texts)]
    assert [row["title"] for row in read_csv(export(ExcelCsvItemExporter, items))] == texts


def test_csv_field_serializers_run_before_neutralising() -> None:
    item = NoteItem(noteId=NOTE_ID, topics=[], title="=cmd")
    (row,) = read_csv(export(ExcelCsvItemExporter, [item]))
    assert row["title"] == "'=CMD"


def test_json_lines_keep_formula_text_exactly() -> None:
    items = [note(title=text, noteId=f"{i:024x}") for i, text in enumerate(FORMULA_TEXTS)]
    lines = export(OrjsonLinesItemExporter, items).decode("utf-8").split("\n")[:-1]
    assert [json.loads(line)["title"] for line in lines] == list(FORMULA_TEXTS)


def test_csv_missing_keys_become_empty_cells() -> None:
    (row,) = read_csv(export(ExcelCsvItemExporter, [{"noteId": NOTE_ID, "title": "标题"}]))
    assert list(row) == list(CSV_FIELDS)
    assert row["title"] == "标题" and row["kol"] == "" and row["topics"] == ""


def test_csv_fields_to_export_overrides_columns() -> None:
    data = export(ExcelCsvItemExporter, [note()], fields_to_export=["noteId", "raw"])
    (row,) = read_csv(data)
    assert list(row) == ["noteId", "raw"]
    assert json.loads(row["raw"]) == note()["raw"]


def test_csv_without_items_is_empty() -> None:
    # Scrapy stores empty feeds (FEED_STORE_EMPTY): no BOM-only file, so a later append
    # still starts with BOM and header.
    assert export(ExcelCsvItemExporter, []) == b""


def test_csv_append_writes_bom_and_header_once(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    with path.open("wb") as file:  # -O / first -o run
        export(ExcelCsvItemExporter, [note()], file)
    with path.open("ab") as file:  # FileFeedStorage's mode for -o
        export(ExcelCsvItemExporter, [note(noteId="0" * 24), note(noteId="1" * 24)], file)
    data = path.read_bytes()
    assert data.startswith(BOM) and data.count(BOM) == 1
    assert data.decode("utf-8-sig").count("noteId,noteLink") == 1
    assert [row["noteId"] for row in read_csv(data)] == [NOTE_ID, "0" * 24, "1" * 24]


def test_csv_append_to_empty_file_writes_bom(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.touch()
    with path.open("ab") as file:
        export(ExcelCsvItemExporter, [note()], file)
    data = path.read_bytes()
    assert data.startswith(BOM) and len(read_csv(data)) == 1


def test_csv_ignores_non_utf8_encoding_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pgy_spider.exporters"):
        data = export(ExcelCsvItemExporter, [note()], encoding="gb18030")
    assert data.startswith(BOM) and read_csv(data)[0]["title"] == EMOJI_TITLE
    assert "ignoring encoding 'gb18030'" in caplog.text


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "utf-8-sig"])
def test_csv_utf8_encodings_give_one_bom(encoding: str) -> None:
    data = export(ExcelCsvItemExporter, [note()], encoding=encoding)
    assert data.count(BOM) == 1 and data.startswith(BOM)


class NoteItem(scrapy.Item):
    noteId = scrapy.Field()
    topics = scrapy.Field()
    title = scrapy.Field(serializer=str.upper)


def test_csv_scrapy_items_and_field_serializers() -> None:
    item = NoteItem(noteId=NOTE_ID, topics=["a", "b"], title="abc")
    (row,) = read_csv(export(ExcelCsvItemExporter, [item]))
    assert row["noteId"] == NOTE_ID and row["topics"] == '["a","b"]' and row["title"] == "ABC"


# --- JSON lines ----------------------------------------------------------------------------------


def test_scrapy_json_lines_with_utf8_encoding_is_already_unescaped() -> None:
    # Why there is no Utf8JsonLinesItemExporter: FEED_EXPORT_ENCODING = "utf-8" is enough.
    data = export(JsonLinesItemExporter, [note()], encoding="utf-8")
    assert b"\\u" not in data
    assert EMOJI_TITLE in data.decode("utf-8") and "曹操来了" in data.decode("utf-8")


def test_orjson_lines_one_unescaped_object_per_line() -> None:
    items = [note(), note(noteId="0" * 24)]
    data = export(OrjsonLinesItemExporter, items, encoding="utf-8")
    lines = data.decode("utf-8").splitlines()
    assert data.endswith(b"\n") and len(lines) == 2
    assert b"\\u" not in data and EMOJI_TITLE in lines[0]
    assert [json.loads(line) for line in lines] == items


def test_orjson_lines_match_scrapy_output_apart_from_spacing() -> None:
    extras = {
        "when": dt.datetime(2024, 2, 5, 10, 10, 4, tzinfo=dt.UTC),
        "day": dt.date(2024, 2, 5),
        "price": Decimal("19.90"),
        "tags": {"只有一个"},
        "huge": 2**70,  # beyond orjson's 64-bit integers: falls back to the stdlib
        "ratio": 0.1,
    }
    item = note(**extras)
    ours = export(OrjsonLinesItemExporter, [item], encoding="utf-8")
    scrapys = export(JsonLinesItemExporter, [item], encoding="utf-8")
    assert json.loads(ours) == json.loads(scrapys)
    assert b"\\u" not in ours


def test_orjson_lines_respects_fields_to_export_and_items() -> None:
    item = NoteItem(noteId=NOTE_ID, topics=["话题"], title="abc")
    data = export(OrjsonLinesItemExporter, [item], fields_to_export=["title", "noteId"])
    assert data == b'{"title":"ABC","noteId":"65c0b3fc000000002c037a49"}\n'


def test_orjson_lines_rejects_unknown_options() -> None:
    with pytest.raises(TypeError, match="ensure_ascii"):
        OrjsonLinesItemExporter(io.BytesIO(), ensure_ascii=True)


# --- through a real Scrapy crawl -----------------------------------------------------------------

SPIDER = """
    import scrapy
    from pgy_spider.notes import normalize_note
    from tests.support.sample import FETCHED_AT, NOTE_ID, sample_data

    class NotesSpider(scrapy.Spider):
        name = "notes"
        custom_settings = {
            "FEED_EXPORTERS": {
                "csv": "pgy_spider.exporters.ExcelCsvItemExporter",
                "jsonl": "pgy_spider.exporters.OrjsonLinesItemExporter",
            },
            "FEED_EXPORT_ENCODING": "utf-8",
            "TELNETCONSOLE_ENABLED": False,
            "LOG_LEVEL": "WARNING",
        }

        async def start(self):
            data = sample_data()
            data["title"] = "周末探店😋"
            yield normalize_note(data, requested_id=NOTE_ID, fetched_at=FETCHED_AT)
"""


def run_spider(tmp_path: Path, *feed_args: str) -> None:
    (tmp_path / "notes_spider.py").write_text(textwrap.dedent(SPIDER), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("SCRAPY_SETTINGS_MODULE", None)  # runspider alone: no project settings
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "runspider", "notes_spider.py", *feed_args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_scrapy_feed_overwrite_then_append(tmp_path: Path) -> None:
    run_spider(tmp_path, "-O", "notes.csv", "-O", "notes.jsonl")
    run_spider(tmp_path, "-o", "notes.csv", "-o", "notes.jsonl")
    data = (tmp_path / "notes.csv").read_bytes()
    assert data.startswith(BOM) and data.count(BOM) == 1
    rows = read_csv(data)
    assert [row["title"] for row in rows] == ["周末探店😋", "周末探店😋"]  # header once
    lines = (tmp_path / "notes.jsonl").read_bytes().splitlines()
    assert len(lines) == 2 and b"\\u" not in lines[0]
    assert lines[0].startswith(b'{"noteId":"')  # compact: written by OrjsonLinesItemExporter
    assert json.loads(lines[0])["name"] == "曹操来了"


# --- in process, through Scrapy's feed machinery --------------------------------------------------


def test_feeds_in_process_neutralise_only_the_csv(tmp_path: Path) -> None:
    items = [note(title=text, noteId=f"{i:024x}") for i, text in enumerate(FORMULA_TEXTS)]
    items.append(note(title="周末探店😋", noteId="f" * 24, likeNum=-3))
    paths = run_feeds(tmp_path, items, **{"notes.csv": "csv", "notes.jsonl": "jsonlines"})
    rows = read_csv(paths["csv"].read_bytes())
    assert [row["title"] for row in rows] == ["'" + t for t in FORMULA_TEXTS] + ["周末探店😋"]
    assert rows[-1]["likeNum"] == "-3"
    assert [n["title"] for n in read_jsonl(paths["jsonlines"])] == [i["title"] for i in items]


def test_failed_file_keeps_a_rejected_formula_seed(tmp_path: Path, sim: SimulatorClient) -> None:
    good = make_note_id(0)
    result = run_crawl(
        tmp_path, "-a", f"ids==1+2,@SUM(A1),{good}", "-O", "notes.csv", sim_url=sim.url
    )
    assert result.returncode == 0, result
    assert sorted(r["seed"] for r in result.failed) == ["=1+2", "@SUM(A1)"]  # as given
    assert [row["noteId"] for row in read_csv((tmp_path / "notes.csv").read_bytes())] == [good]
    assert sim.stats()["calls"] == 1
