"""MongoDB storage against a real server (``tests.support.mongo``): never mocked, never skipped."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from scrapy import Spider
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from pgy_spider import mongo
from pgy_spider.pipelines.mongo import MongoPipeline
from tests.support.mongo import MongoServer, MongoTestDB

pytestmark = pytest.mark.mongo

NOTES = "notes"
T0 = datetime(2026, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)

Db = Database[dict[str, Any]]


def note_id(i: int) -> str:
    return f"65c0b3fc{i:016x}"


def make_item(
    i: int,
    *,
    fetched: datetime = T0,
    likes: int = 1,
    user: str = "user-1",
    fans: int | None = 1000,
    picture_price: int | None = 5000,
) -> dict[str, Any]:
    """A normalized item with the keys the pipeline receives (values trimmed to the point)."""
    return {
        "noteId": note_id(i),
        "noteLink": f"https://www.xiaohongshu.com/explore/{note_id(i)}",
        "type": 1,
        "title": f"标题 {i} ✨",
        "content": "#话题[话题]#",
        "userId": user,
        "name": "创作者😀",
        "redId": "red-1",
        "headPhoto": "https://example.invalid/h.jpg",
        "createTime": 1707127804000,
        "createdAt": "2024-02-05T10:10:04Z",
        "updatedAt": "2024-02-05T10:10:04+00:00",
        "userUpdatedAt": None,
        "likeNum": likes,
        "favNum": 2,
        "cmtNum": 3,
        "shareNum": 4,
        "readNum": 5,
        "impNum": 6,
        "followCnt": 7,
        "metricsAllZero": False,
        "imageUrls": ["https://example.invalid/1.jpg"],
        "kol": {
            "userId": user,
            "nickName": "创作者😀",
            "fansNum": fans,
            "picturePrice": picture_price,
            "videoPrice": 9000,
            "contentTags": [{"taxonomy1Tag": "美妆", "taxonomy2Tags": ["护肤"]}],
        },
        "fetchedAt": fetched.isoformat().replace("+00:00", "Z"),
        "raw": {"noteId": note_id(i), "likeNum": likes, "nested": {"list": [1, None]}},
    }


def store(db: Db, items: list[dict[str, Any]]) -> mongo.BatchResult:
    plans = mongo.build_batch_writes(items, NOTES)
    return mongo.write_batch(db, plans, retries=0, backoff_s=0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- plain module -----------------------------------------------------------------


def test_mask_uri_hides_only_the_password() -> None:
    assert mongo.mask_uri("mongodb://bob:s3cr%40t@h:1/db?x=1") == "mongodb://bob:***@h:1/db?x=1"
    assert mongo.mask_uri("mongodb+srv://bob:pw@c.example/") == "mongodb+srv://bob:***@c.example/"
    assert mongo.mask_uri("mongodb://h:1/") == "mongodb://h:1/"


def test_check_reachable_passes_on_live_server(mongo_uri: str) -> None:
    mongo.check_reachable(mongo_uri, timeout_s=5)


def test_check_reachable_closed_port_is_one_masked_line() -> None:
    uri = f"mongodb://bob:hunter2@127.0.0.1:{closed_port()}/"
    started = time.monotonic()
    with pytest.raises(mongo.MongoUnavailable) as info:
        mongo.check_reachable(uri, timeout_s=0.5)
    message = str(info.value)
    assert time.monotonic() - started < 5
    assert message.startswith("MongoDB unreachable at mongodb://bob:***@127.0.0.1:")
    assert "hunter2" not in message
    assert "\n" not in message and len(message) < 400
    assert "Topology Description" not in message


def test_check_reachable_bad_uri() -> None:
    with pytest.raises(mongo.MongoUnavailable, match="not usable"):
        mongo.check_reachable("mongodb://", timeout_s=0.5)


def test_upsert_never_duplicates_and_keeps_first_fetch(mongo_database: Db) -> None:
    first = [make_item(i, fetched=T0, likes=1) for i in range(3)]
    later = T0 + timedelta(hours=30)
    second = [make_item(i, fetched=later, likes=10) for i in range(3)]

    assert store(mongo_database, first).notes_written == 3
    result = store(mongo_database, second)

    assert result.notes_written == 3 and not result.failed_items
    docs = list(mongo_database[NOTES].find().sort("_id"))
    assert [d["_id"] for d in docs] == [note_id(i) for i in range(3)]
    for doc in docs:
        assert doc["firstFetchedAt"] == T0
        assert doc["lastFetchedAt"] == later
        assert doc["likeNum"] == 10
        assert doc["createdAt"] == datetime(2024, 2, 5, 10, 10, 4, tzinfo=UTC)
        assert doc["updatedAt"] == datetime(2024, 2, 5, 10, 10, 4, tzinfo=UTC)
        assert doc["title"].endswith("✨") and doc["raw"]["nested"] == {"list": [1, None]}
        assert "fetchedAt" not in doc


def test_same_note_twice_in_one_batch_keeps_the_later_fetch(mongo_database: Db) -> None:
    later = T0 + timedelta(minutes=5)
    store(mongo_database, [make_item(1, fetched=T0, likes=1), make_item(1, fetched=later, likes=2)])

    (doc,) = list(mongo_database[NOTES].find())
    assert (doc["likeNum"], doc["firstFetchedAt"], doc["lastFetchedAt"]) == (2, later, later)
    assert mongo_database[mongo.METRICS_COLLECTION].count_documents({}) == 2


def test_metrics_snapshots_accumulate_and_replay_is_harmless(mongo_database: Db) -> None:
    fetches = [T0 + timedelta(days=d) for d in range(3)]
    for day, when in enumerate(fetches):
        store(mongo_database, [make_item(1, fetched=when, likes=100 + day)])
    store(mongo_database, [make_item(1, fetched=fetches[-1], likes=102)])  # a retried batch

    snapshots = list(mongo_database[mongo.METRICS_COLLECTION].find().sort("fetchedAt"))
    assert [s["fetchedAt"] for s in snapshots] == fetches
    assert [s["likeNum"] for s in snapshots] == [100, 101, 102]
    expected = {"noteId", "fetchedAt", "metricsAllZero", *mongo.METRIC_FIELDS}
    assert set(snapshots[0]) - {"_id"} == expected
    assert snapshots[0]["impNum"] == 6 and snapshots[0]["followCnt"] == 7


def test_kols_upserted_by_user_with_latest_fans_and_prices(mongo_database: Db) -> None:
    later = T0 + timedelta(days=1)
    store(mongo_database, [make_item(1, fans=100), make_item(2, fans=150, user="user-2")])
    # A null price in a later response does not wipe the known one.
    store(mongo_database, [make_item(3, fetched=later, fans=200, picture_price=None)])

    kols = {d["_id"]: d for d in mongo_database[mongo.KOLS_COLLECTION].find()}
    assert set(kols) == {"user-1", "user-2"}
    kol = kols["user-1"]
    assert kol["userId"] == "user-1" and kol["nickName"] == "创作者😀"
    assert (kol["fansNum"], kol["picturePrice"], kol["videoPrice"]) == (200, 5000, 9000)
    assert (kol["firstSeenAt"], kol["lastSeenAt"]) == (T0, later)
    assert kol["lastNoteId"] == note_id(3)
    assert kols["user-2"]["fansNum"] == 150


def test_find_fresh_uses_the_cutoff(mongo_database: Db) -> None:
    now = datetime.now(UTC)
    store(mongo_database, [make_item(1, fetched=now - timedelta(hours=30))])
    store(mongo_database, [make_item(2, fetched=now - timedelta(hours=1))])
    notes = mongo_database[NOTES]
    cutoff = now - timedelta(hours=24)

    ids = [note_id(1), note_id(2), note_id(99)]
    assert mongo.find_fresh(notes, ids, cutoff) == {note_id(2)}
    assert mongo.find_fresh(notes, ids, now - timedelta(hours=48)) == {note_id(1), note_id(2)}
    assert mongo.find_fresh(notes, [], cutoff) == set()


def test_indexes_are_idempotent(mongo_database: Db) -> None:
    first = mongo.ensure_indexes(mongo_database, NOTES)
    # An equivalent index under another name (made by hand) is not an error either.
    mongo_database[mongo.METRICS_COLLECTION].drop_index("noteId_1_fetchedAt_1")
    mongo_database[mongo.METRICS_COLLECTION].create_index(
        [("noteId", 1), ("fetchedAt", 1)], name="by_hand"
    )
    assert mongo.ensure_indexes(mongo_database, NOTES) == first

    note_keys = {tuple(v["key"]) for v in mongo_database[NOTES].index_information().values()}
    assert {(("userId", 1),), (("createdAt", -1),)} <= note_keys


def test_spill_writer_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "spill.jsonl"
    writer = mongo.SpillWriter(path)
    assert not path.exists()  # nothing spilled, no file
    writer.write([make_item(1)])
    writer.write([make_item(2), make_item(3)])
    writer.close()
    assert [item["noteId"] for item in mongo.read_spill(path)] == [note_id(i) for i in (1, 2, 3)]
    assert mongo.read_spill(path)[0] == make_item(1)


# -- pipeline -------------------------------------------------------------------------


class _Spider(Spider):
    name = "mongotest"


def make_pipeline(uri: str, db_name: str, tmp_path: Path, **settings: Any) -> MongoPipeline:
    crawler = get_crawler(
        _Spider,
        {
            "PGY_TOKEN": "test-token",
            "MONGO_URI": uri,
            "MONGO_DATABASE": db_name,
            "PGY_MONGO_SPILL_PATH": str(tmp_path / "spill-%(name)s.jsonl"),
            **settings,
        },
    )
    crawler.spider = _Spider()
    return MongoPipeline.from_crawler(crawler)


def stat(pipeline: MongoPipeline, name: str) -> Any:
    return pipeline.stats.get_value(f"pgy/mongo/{name}")


async def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def run(coro: Awaitable[None]) -> None:
    async def main() -> None:
        await coro

    asyncio.run(main())


def test_pipeline_not_configured_without_uri(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MONGO_URI", raising=False)
    with pytest.raises(NotConfigured):
        make_pipeline("", "x", tmp_path)


def test_pipeline_reads_uri_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MONGO_URI", "mongodb://from-env:27017/")
    pipeline = make_pipeline("", "x", tmp_path)
    assert pipeline.uri == "mongodb://from-env:27017/"
    assert pipeline.spill_path == tmp_path / "spill-mongotest.jsonl"


def test_spill_path_placeholders(tmp_path: Path) -> None:
    template = str(tmp_path / "%(name)s-%(time)s-%(job)s.jsonl")
    pipeline = make_pipeline("mongodb://h/", "x", tmp_path, PGY_MONGO_SPILL_PATH=template)
    name = pipeline.spill_path.name
    assert name.startswith("mongotest-") and name.endswith("-.jsonl") and ":" not in name

    class _JobSpider(_Spider):
        name = "n"
        _job = "j1"  # Scrapyd's job id, given as the spider argument _job

    crawler = get_crawler(
        _JobSpider,
        {"PGY_TOKEN": "t", "MONGO_URI": "mongodb://h/", "PGY_MONGO_SPILL_PATH": template},
    )
    crawler.spider = _JobSpider()
    name = MongoPipeline.from_crawler(crawler).spill_path.name
    assert name.startswith("n-") and name.endswith("-j1.jsonl") and ":" not in name


def test_pipeline_flushes_by_size(
    mongo_db: MongoTestDB, mongo_database: Db, tmp_path: Path
) -> None:
    pipeline = make_pipeline(
        *mongo_db, tmp_path, PGY_MONGO_BATCH_SIZE=2, PGY_MONGO_FLUSH_SECONDS=60
    )
    notes = mongo_database[NOTES]

    async def scenario() -> None:
        await pipeline.open_spider()
        for i in range(5):
            assert await pipeline.process_item(make_item(i)) == make_item(i)
        await wait_until(lambda: notes.count_documents({}) == 4)
        await asyncio.sleep(0.2)
        assert notes.count_documents({}) == 4  # the fifth waits for its batch or close
        await pipeline.close_spider()

    run(scenario())
    assert notes.count_documents({}) == 5
    assert stat(pipeline, "batches") == 3 and stat(pipeline, "notes_upserted") == 5
    assert stat(pipeline, "spilled") == 0 and stat(pipeline, "spill_path") is None


def test_pipeline_flushes_by_age(mongo_db: MongoTestDB, mongo_database: Db, tmp_path: Path) -> None:
    pipeline = make_pipeline(
        *mongo_db, tmp_path, PGY_MONGO_BATCH_SIZE=100, PGY_MONGO_FLUSH_SECONDS=0.2
    )
    notes = mongo_database[NOTES]

    async def scenario() -> None:
        await pipeline.open_spider()
        for i in range(3):
            await pipeline.process_item(make_item(i))
        await wait_until(lambda: notes.count_documents({}) == 3, timeout=5)
        await pipeline.close_spider()

    run(scenario())
    assert stat(pipeline, "batches") == 1


def test_pipeline_flushes_at_close(
    mongo_db: MongoTestDB, mongo_database: Db, tmp_path: Path
) -> None:
    spill = tmp_path / "not-yet" / "spill.jsonl"
    pipeline = make_pipeline(
        *mongo_db, tmp_path, PGY_MONGO_BATCH_SIZE=100, PGY_MONGO_SPILL_PATH=str(spill)
    )
    notes = mongo_database[NOTES]

    async def scenario() -> None:
        await pipeline.open_spider()
        for i in range(7):
            await pipeline.process_item(make_item(i))
        assert notes.count_documents({}) == 0
        await pipeline.close_spider()

    run(scenario())
    assert notes.count_documents({}) == 7
    assert mongo_database[mongo.METRICS_COLLECTION].count_documents({}) == 7
    assert mongo_database[mongo.KOLS_COLLECTION].count_documents({}) == 1
    assert not spill.parent.exists()  # a clean run leaves no stray directory


def test_pipeline_open_fails_on_unwritable_spill_path(mongo_uri: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    spill = tmp_path / "a-file" / "spill.jsonl"
    pipeline = make_pipeline(mongo_uri, "x", tmp_path, PGY_MONGO_SPILL_PATH=str(spill))

    async def scenario() -> None:
        with pytest.raises(PermissionError, match="PGY_MONGO_SPILL_PATH"):
            await pipeline.open_spider()
        await pipeline.close_spider()

    run(scenario())


def test_pipeline_refetching_many_stored_notes_in_one_batch(
    mongo_db: MongoTestDB, mongo_database: Db, tmp_path: Path
) -> None:
    """Over 100 updates of stored notes in one batch: one bulk command would hang FerretDB."""
    later = T0 + timedelta(days=1)
    pipelines = []
    for when, likes in ((T0, 1), (later, 2)):
        pipeline = make_pipeline(*mongo_db, tmp_path, PGY_MONGO_BATCH_SIZE=500)
        pipelines.append(pipeline)

        async def scenario(p: MongoPipeline = pipeline, w: datetime = when, n: int = likes) -> None:
            await p.open_spider()
            for i in range(240):
                await p.process_item(make_item(i, fetched=w, likes=n))
            await p.close_spider()

        run(scenario())

    assert [stat(p, "notes_upserted") for p in pipelines] == [240, 240]
    assert [stat(p, "spilled") for p in pipelines] == [0, 0]
    notes = mongo_database[NOTES]
    assert notes.count_documents({}) == 240
    assert (
        notes.count_documents({"likeNum": 2, "firstFetchedAt": T0, "lastFetchedAt": later}) == 240
    )


def test_pipeline_find_fresh(mongo_db: MongoTestDB, mongo_database: Db, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store(mongo_database, [make_item(1, fetched=now - timedelta(hours=2))])
    store(mongo_database, [make_item(2, fetched=now - timedelta(hours=30))])
    ids = [note_id(1), note_id(2), note_id(3), note_id(1)]
    found: dict[str, set[str]] = {}

    async def scenario(name: str, pipeline: MongoPipeline) -> None:
        await pipeline.open_spider()
        found[name] = await pipeline.find_fresh(ids)
        await pipeline.close_spider()

    run(scenario("24h", make_pipeline(*mongo_db, tmp_path)))
    run(scenario("off", make_pipeline(*mongo_db, tmp_path, PGY_REFRESH_HOURS=0)))
    run(scenario("48h", make_pipeline(*mongo_db, tmp_path, PGY_REFRESH_HOURS=48)))
    assert found == {"24h": {note_id(1)}, "off": set(), "48h": {note_id(1), note_id(2)}}


def test_pipeline_open_fails_fast_when_unreachable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"mongodb://bob:hunter2@127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=300"
    pipeline = make_pipeline(uri, "x", tmp_path)

    async def scenario() -> None:
        with pytest.raises(mongo.MongoUnavailable):
            await pipeline.open_spider()
        await pipeline.close_spider()  # Scrapy closes what it opened: must not fail

    with caplog.at_level(logging.ERROR):
        run(scenario())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "MongoDB unreachable at mongodb://bob:***@" in errors[0]
    assert "hunter2" not in caplog.text


def test_pipeline_spills_when_server_stops_midway(
    restartable_mongo_server: MongoServer,
    restartable_db: MongoTestDB,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = restartable_mongo_server
    uri = f"{server.uri}&serverSelectionTimeoutMS=300"
    pipeline = make_pipeline(
        uri,
        restartable_db.name,
        tmp_path,
        PGY_MONGO_BATCH_SIZE=2,
        PGY_MONGO_RETRIES=2,
        PGY_MONGO_RETRY_BACKOFF=0.01,
        PGY_MONGO_FLUSH_SECONDS=0.1,
    )
    gaps: list[float] = []

    async def ticker() -> None:
        """Measures how long the event loop goes without running us: writes must not stall it."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    pipeline.outage_probe_seconds = 0.5
    stored: list[int] = []

    async def scenario() -> None:
        await pipeline.open_spider()
        for i in range(2):
            await pipeline.process_item(make_item(i))
        await wait_until(lambda: stat(pipeline, "notes_upserted") == 2)
        server.stop()
        tick = asyncio.create_task(ticker())
        for i in range(2, 7):  # the first batch is retried, the others spilled untried
            await pipeline.process_item(make_item(i))
        await wait_until(lambda: stat(pipeline, "spilled") == 5)
        tick.cancel()
        server.start()  # back: the next batch after the probe interval is stored again
        await asyncio.sleep(0.6)
        for i in range(7, 9):
            await pipeline.process_item(make_item(i))
        await wait_until(lambda: stat(pipeline, "notes_upserted") == 4)
        stored.append(stat(pipeline, "notes_upserted"))
        await pipeline.close_spider()

    try:
        with caplog.at_level(logging.ERROR):
            run(scenario())
    finally:
        server.ensure_running()

    spill_path = tmp_path / "spill-mongotest.jsonl"
    spilled = mongo.read_spill(spill_path)
    assert sorted(item["noteId"] for item in spilled) == [note_id(i) for i in range(2, 7)]
    assert spilled[0] == make_item(2)
    assert stored == [4]
    assert stat(pipeline, "spilled") == 5 and stat(pipeline, "spill_path") == str(spill_path)
    assert stat(pipeline, "errors") > 0 and stat(pipeline, "batch_retries") == 2
    assert sum("spilled to" in r.getMessage() for r in caplog.records) == 3  # one per batch
    assert max(gaps) < 0.25, f"event loop stalled for {max(gaps):.2f}s"

    # Feeding the spill file back stores everything, still one document per note.
    replay = make_pipeline(server.uri, restartable_db.name, tmp_path / "replay")

    async def replay_scenario() -> None:
        await replay.open_spider()
        for item in spilled:
            await replay.process_item(item)
        await replay.close_spider()

    run(replay_scenario())
    with server.client() as client:
        assert client[restartable_db.name][NOTES].count_documents({}) == 9
    assert stat(replay, "spilled") == 0
