"""``scrapy pgy_report --mongo`` over a known database on the real test server (FerretDB)."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from matplotlib.ft2font import FT2Font
from parsel import Selector
from pymongo.database import Database

from pgy_spider import mongo
from pgy_spider.report.build import ReportOptions, mongo_report
from pgy_spider.report.fonts import find_chart_fonts
from tests.support.mongo import MongoTestDB
from tests.support.report import (
    EXPECTED_ENGAGEMENT,
    NOTE_INDEX,
    T0,
    USER_A,
    cells,
    feed_note,
    known_notes,
    noise,
    note_id,
    pgy_report,
)

pytestmark = pytest.mark.mongo

T1 = T0 + timedelta(days=2)
NOTES = "notes"


def store(db: Database[dict[str, Any]], items: list[dict[str, Any]]) -> None:
    """Through the crawl's own MongoDB writes (notes, note_metrics, kols)."""
    result = mongo.write_batch(db, mongo.build_batch_writes(items, NOTES), retries=0, backoff_s=0)
    assert not result.failed_items, result.last_error


@pytest.fixture
def known_db(mongo_db: MongoTestDB, mongo_database: Database[dict[str, Any]]) -> MongoTestDB:
    """The known run stored at T0, then notes 1, 2 and 4 fetched again at T1 (2 days on).

    Engagement at T0 as in tests.support.report; at T1: note 1 160 -> 300,
    note 2 440 -> 1,440, note 4 all-zero -> 10, and creator A has 12,000 fans.
    """
    lines = known_notes()
    store(mongo_database, [lines[-1]])  # note 8's older fetch first, as a run would
    store(mongo_database, lines[:-1])
    a = {"nickName": "阿花✨", "fansNum": 12_000, "picturePrice": 5_000, "videoPrice": 20_000}
    store(
        mongo_database,
        [
            feed_note(
                1, USER_A, T1, title=lines[0]["title"], likes=200, favs=80, cmts=20, creator=a
            ),
            feed_note(
                2, USER_A, T1, title=lines[1]["title"], likes=900, favs=400, cmts=140, creator=a
            ),
            feed_note(4, USER_A, T1, title="全零", likes=10, creator=a),
        ],
    )
    return mongo_db


def report(db: MongoTestDB, **options: Any) -> dict[str, Any]:
    opts = ReportOptions(output="unused.html", mongo_uri=db.uri, database=db.name, **options)
    return mongo_report(opts, find_chart_fonts())


def test_collected_data_uses_latest_fetches_and_stored_creators(known_db: MongoTestDB) -> None:
    data = report(known_db)["data"]
    assert (data.notes, data.all_zero, data.creators) == (9, 0, 4)
    engagement = {**EXPECTED_ENGAGEMENT, 1: 300, 2: 1440, 4: 10}
    assert {NOTE_INDEX[r.note.note_id]: r.note.engagement for r in data.top_notes} == engagement
    assert [r.note.note_id for r in data.top_notes[:2]] == [note_id(2), note_id(3)]
    # Note 3 was only fetched at T0 (10,000 fans then); kols knows creator A's 12,000.
    (n3,) = [r for r in data.top_notes if r.note.note_id == note_id(3)]
    assert (n3.fans, n3.per_1k_fans) == (12_000, pytest.approx(1300 / 12))
    (a,) = [c for c in data.top_creators if c.user_id == USER_A]
    assert (a.notes, a.median, a.total, a.fans) == (4, 800.0, 3050, 12_000)
    costs = [(c.user_id, c.note_type, c.cost_per_engagement) for c in data.costs[:2]]
    assert costs == [
        (USER_A, "video", pytest.approx(20_000 / 1300)),
        (USER_A, "picture", pytest.approx(5_000 / 300)),
    ]


def test_growth_between_fetches(known_db: MongoTestDB) -> None:
    context = report(known_db)
    growth = context["growth"]
    assert (
        growth.notes_with_snapshots,
        growth.fetched_more_than_once,
        growth.all_zero_snapshots,
    ) == (9, 3, 1)
    got = [
        (r.note_id, r.snapshots, r.first.engagement, r.last.engagement, r.growth)
        for r in growth.rows
    ]
    assert got == [
        (note_id(2), 2, 440, 1440, 1000),
        (note_id(1), 2, 160, 300, 140),
        (note_id(8), 2, 1, 20, 19),
    ]
    assert growth.rows[0].per_day == pytest.approx(500.0)
    assert growth.rows[0].title == "春日穿搭🌸分享"
    assert [v for _, v in growth.series[note_id(2)]] == [440, 1440]
    svg = base64.b64decode(context["charts"]["growth"].split(",", 1)[1]).decode()
    cjk_path = find_chart_fonts().cjk_path
    assert cjk_path is not None
    assert f'<path id="{FT2Font(cjk_path).postscript_name}-' in svg  # the legend's Chinese titles
    assert "creators" in context["charts"] and context["run"] is None


def test_since_scopes_notes_and_snapshots(known_db: MongoTestDB) -> None:
    context = report(known_db, since=T1 - timedelta(hours=1))
    data, growth = context["data"], context["growth"]
    assert {r.note.note_id for r in data.top_notes} == {note_id(1), note_id(2), note_id(4)}
    assert (growth.notes_with_snapshots, growth.fetched_more_than_once) == (3, 0)


def test_ids_file_scopes_notes(known_db: MongoTestDB, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{note_id(1)}\n{note_id(3)}\n{note_id(99)}\n", encoding="utf-8")
    context = report(known_db, ids_file=str(ids))
    assert {r.note.note_id for r in context["data"].top_notes} == {note_id(1), note_id(3)}
    assert [r.note_id for r in context["growth"].rows] == [note_id(1)]


def test_the_command_over_mongodb(known_db: MongoTestDB, tmp_path: Path) -> None:
    proc = pgy_report(
        tmp_path,
        "--mongo",
        "-s",
        f"MONGO_DATABASE={known_db.name}",
        "-o",
        "db.html",
        env={"MONGO_URI": known_db.uri},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "db.html" and noise(proc.stderr) == []
    page = Selector(text=(tmp_path / "db.html").read_text(encoding="utf-8"))
    assert page.css("#run").get() is None  # the run's outcome is not in MongoDB
    assert page.css("#data-notes::text").get() == "9"
    assert page.css("#growth-multi::text").get() == "3"
    rows = cells(page, "growth-table")
    assert [(row[1], row[7]) for row in rows] == [
        ("春日穿搭🌸分享", "1,000"),
        ('<script>alert("x")</script>', "140"),
        ("大D视频", "19"),
    ]
    assert "&lt;script&gt;" in (tmp_path / "db.html").read_text(encoding="utf-8")


def test_unreachable_mongodb_exits_2(tmp_path: Path) -> None:
    uri = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
    proc = pgy_report(tmp_path, "--mongo", env={"MONGO_URI": uri})
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: MongoDB unreachable at mongodb://127.0.0.1:9/")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
