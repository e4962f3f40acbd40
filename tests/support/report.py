"""For the report tests: a known run (feed notes, a summary, the figures they must give),
and running ``scrapy pgy_report`` and reading its page.

The notes are real normalised notes (the recorded API response, changed field by field and
run through ``normalize_note``), so a renamed feed field breaks the report tests too.
Expected figures are worked out by hand in the comments next to the data.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from parsel import Selector

from pgy_spider.notes import normalize_note
from tests.support.crawl import crawl_env
from tests.support.ids import make_note_id
from tests.support.sample import load_sample_data

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SCRIPT_TITLE = '<script>alert("x")</script>'
EMOJI_TITLE = "春日穿搭🌸分享"
MARKUP_TITLE = "视频笔记 $100 & <b>bold</b>"
EVIL_CREATOR = "Bob<img src=x onerror=alert(1)>"


# Note i of these tests' data: the shared factory's i-th ID.
note_id = make_note_id


USER_A, USER_B, USER_C, USER_D = (f"62060e8c00000000100000{n:02x}" for n in range(1, 5))

CREATORS: dict[str, dict[str, Any]] = {
    USER_A: {"nickName": "阿花✨", "fansNum": 10_000, "picturePrice": 5_000, "videoPrice": 20_000},
    USER_B: {"nickName": EVIL_CREATOR, "fansNum": 0, "picturePrice": 1_000, "videoPrice": 1_000},
    USER_C: {"nickName": "小C", "fansNum": 2_000, "picturePrice": 0, "videoPrice": None},
    USER_D: {"nickName": "大D", "fansNum": 500, "picturePrice": 1_000, "videoPrice": 3_000},
}


def api_data(
    i: int,
    user: str,
    *,
    kind: int = 1,
    title: str = "",
    likes: int = 0,
    favs: int = 0,
    cmts: int = 0,
    imps: int = 0,
    link: str | None = None,
    creator: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The recorded response's ``data``, made into note *i* of *user*."""
    data = load_sample_data()
    data.update(
        noteId=note_id(i),
        noteLink=link if link is not None else f"https://www.xiaohongshu.com/explore/{note_id(i)}",
        userId=user,
        name=(creator or CREATORS[user])["nickName"],
        type=kind,
        title=title,
        likeNum=likes,
        favNum=favs,
        cmtNum=cmts,
        impNum=imps,
        readNum=0,
        shareNum=0,
        followCnt=0,
    )
    data["time"]["createTime"] = 1_707_127_804_000 + i * 86_400_000
    info = copy.deepcopy(data["userInfo"])
    info.update(userId=user, **(creator or CREATORS[user]))
    info["mEngagementNum"] = info["mengagementNum"] = None
    data["userInfo"] = info
    return data


def feed_note(i: int, user: str, fetched: datetime = T0, **kw: Any) -> dict[str, Any]:
    return normalize_note(api_data(i, user, **kw), requested_id=note_id(i), fetched_at=fetched)


def known_notes() -> list[dict[str, Any]]:
    """Feed lines, in feed order. Engagement = likes + favs + comments."""
    later = T0 + timedelta(minutes=5)
    return [
        # A (10,000 fans): pictures 160 and 440, video 1,300, one all-zero picture.
        feed_note(1, USER_A, title=SCRIPT_TITLE, likes=100, favs=50, cmts=10),
        feed_note(2, USER_A, title=EMOJI_TITLE, likes=300, favs=100, cmts=40),
        feed_note(3, USER_A, kind=2, title=MARKUP_TITLE, likes=1000, favs=200, cmts=100),
        feed_note(4, USER_A, title="全零", likes=0),  # metricsAllZero: left out, counted
        # B (0 fans): a picture of 50, with a javascript: link that must not become a link.
        feed_note(5, USER_B, title="坏链接", likes=50, link="javascript:alert(1)"),
        # C (2,000 fans, no picture price, no video price): picture 40, video 600.
        feed_note(6, USER_C, title="小C图文", likes=20, favs=10, cmts=10),
        feed_note(7, USER_C, kind=2, title="小C视频", likes=500, favs=100),
        # D (500 fans): video 20 (its later fetch; an older line of it follows), picture 0
        # with impressions (engagement 0 but not all-zero).
        feed_note(8, USER_D, later, kind=2, title="大D视频", likes=10, favs=5, cmts=5),
        feed_note(9, USER_D, title="大D图文", imps=99),
        feed_note(
            8,
            USER_D,
            T0,
            kind=2,
            title="大D视频(旧)",
            likes=1,
            creator={**CREATORS[USER_D], "fansNum": 400},
        ),
    ]


# The figures known_notes() must give (see the comments above).
NOTE_INDEX = {note_id(i): i for i in range(1, 10)}  # a known note's ID -> its i
EXPECTED_TOP_NOTES = [note_id(i) for i in (3, 7, 2, 1, 5, 6, 8, 9)]
EXPECTED_ENGAGEMENT = {3: 1300, 7: 600, 2: 440, 1: 160, 5: 50, 6: 40, 8: 20, 9: 0}
# per 1,000 fans: 7: 600/2000 = 300; 3: 130; 2: 44; 8: 20/500 = 40; 6: 20; 1: 16; 9: 0; 5: no fans
EXPECTED_PER_FANS = [(7, 300.0), (3, 130.0), (2, 44.0), (8, 40.0), (6, 20.0), (1, 16.0), (9, 0.0)]
# creators by median: A [160, 440, 1300] -> 440 (total 1,900); C [40, 600] -> 320;
# B [50] -> 50; D [20, 0] -> 10
EXPECTED_CREATORS = [
    (USER_A, 440.0, 1900),
    (USER_C, 320.0, 640),
    (USER_B, 50.0, 50),
    (USER_D, 10.0, 20),
]
# median per 1,000 fans: C 320/2000 -> 160; A 440/10000 -> 44; D 10/500 -> 20; B has 0 fans
EXPECTED_CREATORS_PER_FANS = [(USER_C, 160.0), (USER_A, 44.0), (USER_D, 20.0)]
# cost per engagement: A video 20,000/1,300; A picture 5,000/median(160, 440)=300;
# D video 3,000/20. Left out: B (0 fans), C (no picture price, no video price),
# D's pictures (median 0).
EXPECTED_COSTS = [
    (USER_A, "video", 20_000 / 1300),
    (USER_A, "picture", 5_000 / 300),
    (USER_D, "video", 3_000 / 20),
]

KNOWN_SUMMARY: dict[str, Any] = {
    "spider": "note_detail",
    "finish_reason": "finished",
    "exit_code": 0,
    "start_time": "2026-03-01T08:00:00+00:00",
    "end_time": "2026-03-01T08:02:00+00:00",  # 2 minutes: 9 notes -> 4.5 per minute
    "api_base": "http://127.0.0.1:1",
    "seeds_read": 20,
    "rejected": 3,
    "rejected_by_reason": {"invalid_id": 2, "short_link": 1},
    "duplicates": 2,
    "skipped_fresh": 0,
    "notes_written": 9,
    "failed": 4,
    "failed_by_reason": {"not_found": 3, "retries_exhausted": 1},
    "pending": 2,
    "balanced": True,
    "requests_sent": 20,
    "api_calls": 19,
    "calls_by_code": {"0": 9, "201": 3, "301": 6, "500": 1},  # billed: 9 + 3 = 12
    "retries": 6,
    "possibly_billed": 1,
    "tokens": {"tok-1a2b3c4d": {"calls": 19, "retired": None}},
    "failed_path": "output/failed.jsonl",
    "mongo_spill_path": None,
    "resumed": False,
    "sessions": 1,
    "jobdir": None,
}


def write_jsonl(path: Path, notes: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(note) + b"\n" for note in notes))
    return path


def write_json_array(path: Path, notes: list[dict[str, Any]]) -> Path:
    """As Scrapy's JSON feed exporter writes it: one item per line inside [ ... ]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b",\n".join(orjson.dumps(note) for note in notes)
    path.write_bytes(b"[\n" + body + b"\n]")
    return path


def write_summary(path: Path, summary: dict[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(summary or KNOWN_SUMMARY, option=orjson.OPT_INDENT_2))
    return path


def write_known_run(directory: Path) -> tuple[Path, Path]:
    """``output/summary.json`` and ``output/notes.jsonl`` of the known run under *directory*."""
    out = directory / "output"
    return write_summary(out / "summary.json"), write_jsonl(out / "notes.jsonl", known_notes())


# -- running the command and reading its page ---------------------------------------


def pgy_report(
    workdir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "pgy_report", *args],
        cwd=workdir,
        env=crawl_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def cells(page: Selector, table: str) -> list[list[str]]:
    """The text of each cell of each data row of table #*table*."""
    rows = page.css(f"table#{table} tr")[1:]
    return [["".join(td.css("::text").getall()).strip() for td in row.css("td")] for row in rows]


def noise(stderr: str) -> list[str]:
    """Lines on stderr a user would read as trouble (matplotlib's one-off "building the
    font cache" notice on a fresh machine is not)."""
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and "building the font cache" not in line
    ]
