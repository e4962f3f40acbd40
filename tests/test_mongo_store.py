"""MongoDB storage against a real server (``tests.support.mongo``): never mocked, never skipped."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo import monitoring
from pymongo.database import Database
from scrapy import Spider
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from pgy_spider import mongo
from pgy_spider.pipelines.mongo import MongoPipeline
from tests.support.mongo import MongoServer, MongoTestDB
from tests.support.spill import T0, make_item, note_id

pytestmark = pytest.mark.mongo

NOTES = "notes"

Db = Database[dict[str, Any]]


def store(db: Db, items: list[dict[str, Any]], read_first: bool | None = None) -> mongo.BatchResult:
    plans = mongo.build_batch_writes(items, NOTES)
    return mongo.write_batch(db, plans, retries=0, backoff_s=0, read_first=read_first)


@pytest.fixture(params=[True, False], ids=["read-first", "conditional"])
def read_first(request: pytest.FixtureRequest) -> bool:
    """Both ways of writing (see mongo.reads_before_writes), each on the real server."""
    return bool(request.param)


def by_id(docs: Iterable[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {doc["_id"]: doc for doc in docs}


COLLECTIONS = (NOTES, mongo.METRICS_COLLECTION, mongo.KOLS_COLLECTION)


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


@pytest.mark.parametrize("newest_first", [False, True])
def test_same_note_twice_in_one_batch_keeps_the_newest_fetch(
    mongo_database: Db, newest_first: bool, read_first: bool
) -> None:
    later = T0 + timedelta(minutes=5)
    items = [make_item(1, fetched=T0, likes=1), make_item(1, fetched=later, likes=2)]
    if newest_first:
        items.reverse()
    result = store(mongo_database, items, read_first)

    (doc,) = list(mongo_database[NOTES].find())
    assert (doc["likeNum"], doc["firstFetchedAt"], doc["lastFetchedAt"]) == (2, T0, later)
    assert mongo_database[mongo.METRICS_COLLECTION].count_documents({}) == 2
    older = 1 if newest_first else 0  # the batch index of the older fetch
    assert (result.notes_written, result.older_items, result.failed_items) == (1, {older}, set())
    assert result.notes_skipped_older == 1


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


# -- the newest fetch wins ------------------------------------------------------------


def test_older_fetch_never_overwrites_a_newer_note(mongo_database: Db, read_first: bool) -> None:
    """A late spill replay: 30 notes stored with a newer fetch, mixed with 10 new notes."""
    newer = T0 + timedelta(days=1)
    assert not store(
        mongo_database, [make_item(i, fetched=newer, likes=10) for i in range(30)]
    ).failed_items
    # Older and new notes alternate, so most commands hold both kinds: with conditional
    # filters FerretDB stops a command at its first duplicate key, and the notes after it
    # must still be written.
    items = []
    for i in range(30):
        items.append(make_item(i, fetched=T0, likes=1))
        if i % 3 == 0:
            items.append(make_item(100 + i, fetched=T0, likes=1))
    result = store(mongo_database, items, read_first)

    older = {n for n, item in enumerate(items) if item["noteId"] in {note_id(i) for i in range(30)}}
    assert result.older_items == older and result.notes_skipped_older == 30
    assert result.notes_written == 10
    assert (result.failed_items, result.failed_attempts, result.last_error) == (set(), 0, None)
    docs = by_id(mongo_database[NOTES].find())
    assert len(docs) == 40
    for i in range(30):  # the newer fetch stays; the first fetch is now the older one
        doc = docs[note_id(i)]
        assert (doc["likeNum"], doc["lastFetchedAt"], doc["firstFetchedAt"]) == (10, newer, T0)
    for i in range(0, 30, 3):
        doc = docs[note_id(100 + i)]
        assert (doc["likeNum"], doc["lastFetchedAt"], doc["firstFetchedAt"]) == (1, T0, T0)
    # The older fetches' metrics snapshots join the history, at their own fetch times.
    snapshots = list(mongo_database[mongo.METRICS_COLLECTION].find({"noteId": note_id(7)}))
    assert sorted((s["fetchedAt"], s["likeNum"]) for s in snapshots) == [(T0, 1), (newer, 10)]
    assert mongo_database[mongo.METRICS_COLLECTION].count_documents({}) == 70


def test_newer_fetch_still_overwrites_an_older_note(mongo_database: Db, read_first: bool) -> None:
    store(mongo_database, [make_item(1, fetched=T0, likes=1)], read_first)
    # A document without a date stamp (made by hand) is older than any fetch.
    mongo_database[NOTES].insert_one({"_id": note_id(2), "title": "by hand"})
    later = T0 + timedelta(hours=1)
    result = store(
        mongo_database, [make_item(i, fetched=later, likes=5) for i in (1, 2)], read_first
    )

    assert (result.notes_written, result.notes_skipped_older, result.failed_items) == (2, 0, set())
    docs = by_id(mongo_database[NOTES].find())
    assert (docs[note_id(1)]["likeNum"], docs[note_id(1)]["firstFetchedAt"]) == (5, T0)
    assert docs[note_id(2)]["title"] == make_item(2)["title"]
    assert docs[note_id(2)]["firstFetchedAt"] == docs[note_id(2)]["lastFetchedAt"] == later


def test_storing_the_same_fetch_again_changes_nothing(mongo_database: Db, read_first: bool) -> None:
    items = [make_item(i, likes=i) for i in range(30)]
    store(mongo_database, items, read_first)
    before = [list(mongo_database[name].find().sort("_id")) for name in COLLECTIONS]

    again = store(mongo_database, items, read_first)

    # Stored (the database holds this very fetch), neither skipped nor failed.
    assert (again.notes_written, again.notes_skipped_older, again.failed_items) == (30, 0, set())
    assert [list(mongo_database[name].find().sort("_id")) for name in COLLECTIONS] == before


def test_kols_keep_the_newest_fields_whatever_the_order(
    mongo_database: Db, read_first: bool
) -> None:
    newer = T0 + timedelta(days=2)
    store(mongo_database, [make_item(1, fetched=newer, fans=200, picture_price=None)], read_first)
    # Late: an older fetch of the same creator, with other fans and a known price.
    result = store(
        mongo_database, [make_item(2, fetched=T0, fans=100, picture_price=4000)], read_first
    )

    assert not result.failed_items and result.failed_attempts == 0
    (kol,) = list(mongo_database[mongo.KOLS_COLLECTION].find())
    assert (kol["fansNum"], kol["lastNoteId"]) == (200, note_id(1))
    assert "picturePrice" not in kol  # the older fetch changes nothing but firstSeenAt
    assert (kol["firstSeenAt"], kol["lastSeenAt"]) == (T0, newer)


def test_kol_last_seen_between_a_batch_s_fetches_gets_only_the_newer_ones(
    mongo_database: Db, read_first: bool
) -> None:
    middle = T0 + timedelta(hours=2)
    stored = make_item(1, fetched=middle, fans=200)
    stored["kol"]["videoPrice"] = 2222
    store(mongo_database, [stored], read_first)
    old = make_item(2, fetched=T0, fans=100)
    old["kol"]["videoPrice"] = 1111  # older than the stored 2222: must not win
    new = make_item(3, fetched=middle + timedelta(hours=2), fans=400, picture_price=None)
    new["kol"]["videoPrice"] = None  # null: keeps the stored value
    result = store(mongo_database, [old, new], read_first)

    assert not result.failed_items
    (kol,) = list(mongo_database[mongo.KOLS_COLLECTION].find())
    assert (kol["fansNum"], kol["videoPrice"], kol["picturePrice"]) == (400, 2222, 5000)
    assert (kol["firstSeenAt"], kol["lastSeenAt"]) == (T0, middle + timedelta(hours=2))
    assert kol["lastNoteId"] == note_id(3)


def test_duplicate_key_of_another_unique_index_is_a_failure_not_older(
    mongo_database: Db, read_first: bool
) -> None:
    """E11000 also comes from a unique index an analyst made: that note is not stored."""
    newer = T0 + timedelta(days=1)
    mongo_database[NOTES].create_index("title", unique=True, name="title_unique")
    store(mongo_database, [make_item(i, fetched=newer) for i in range(3)], read_first)
    taken = make_item(50, fetched=T0)
    taken["title"] = make_item(0)["title"]  # a new note whose title is already stored
    items = [taken, make_item(1, fetched=T0), make_item(51, fetched=T0), make_item(2)]
    result = store(mongo_database, items, read_first)

    assert result.failed_items == {0}
    assert result.older_items == {1, 3} and result.notes_skipped_older == 2
    assert result.notes_written == 1 and result.failed_attempts == 1
    assert result.last_error is not None and "E11000" in result.last_error
    assert set(by_id(mongo_database[NOTES].find())) == {note_id(i) for i in (0, 1, 2, 51)}


def test_a_document_the_server_rejects_fails_alone(mongo_database: Db, read_first: bool) -> None:
    items = [make_item(i) for i in range(30)]
    items[12]["$where"] = "1"  # no server stores a top-level field starting with $
    result = store(mongo_database, items, read_first)

    assert result.failed_items == {12} and result.notes_written == 29
    assert result.last_error is not None and "$where" in result.last_error
    notes = mongo_database[NOTES]
    assert notes.count_documents({}) == 29 and notes.find_one({"_id": note_id(12)}) is None
    # Its snapshot and creator are stored: a replay of the fixed line completes it.
    assert mongo_database[mongo.METRICS_COLLECTION].count_documents({}) == 30


def test_commands_over_the_size_limit_are_split(mongo_database: Db, read_first: bool) -> None:
    """25 large notes exceed one command's 16 MiB: bulk_write split them, so must we."""
    items = [make_item(i) for i in range(20)]
    for item in items:
        item["content"] = "长" * 300_000  # ~0.9 MB of UTF-8 each
    items[7]["content"] = "x" * (17 * 1024 * 1024)  # alone over the limit: cannot be stored
    result = store(mongo_database, items, read_first)

    assert result.failed_items == {7} and result.notes_written == 19
    assert result.last_error is not None and "too large" in result.last_error
    assert mongo_database[NOTES].count_documents({}) == 19


class _Commands(monitoring.CommandListener):
    """Every command the client sends (pymongo's command monitoring)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_read_first_filters_on_id_alone(mongo_server: MongoServer, mongo_db: MongoTestDB) -> None:
    """FerretDB 1.x uses an index only for ``{_id: value}``: any other filter (a
    conditional upsert, ``_id: {$in: ...}``) reads the whole collection for each update."""
    listener = _Commands()
    with mongo_server.client(tz_aware=True, event_listeners=[listener]) as client:
        db = client[mongo_db.name]
        store(db, [make_item(i, fetched=T0 + timedelta(days=1)) for i in range(30)])
        items = [make_item(i, fetched=T0) for i in range(30)]  # older: settled unwritten
        items += [make_item(i, user=f"u{i}") for i in range(40, 50)]
        items[35]["$where"] = "1"  # rejected: what ran is read back, by _id too
        listener.sent.clear()
        result = store(db, items, read_first=True)

    assert result.notes_skipped_older == 30 and result.failed_items == {35}
    assert result.notes_written == 9
    filters = [u["q"] for name, cmd in listener.sent if name == "update" for u in cmd["updates"]]
    filters += [cmd["filter"] for name, cmd in listener.sent if name == "find"]
    assert len(filters) > 40
    assert all(set(f) == {"_id"} and isinstance(f["_id"], str) for f in filters), filters


def test_writes_read_first_exactly_on_ferretdb_1(
    mongo_server: MongoServer, mongo_database: Db
) -> None:
    info = mongo_database.client.admin.command("buildInfo")
    on_ferretdb_1 = str(info.get("ferretdbVersion", "")).startswith("v1.")
    assert on_ferretdb_1 is {"ferretdb": True, "mongod": False}.get(
        mongo_server.kind, on_ferretdb_1
    )
    assert mongo.reads_before_writes(mongo_database) is on_ferretdb_1


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


def test_spill_writer_keeps_a_torn_last_line_apart(tmp_path: Path) -> None:
    path = tmp_path / "spill.jsonl"
    path.write_bytes(b'{"noteId": "65c0b3fc000000000000000a", "tit')  # a crash mid-line
    writer = mongo.SpillWriter(path)
    assert writer.write([make_item(1)]) == 1
    writer.close()
    torn, line = path.read_bytes().split(b"\n", 1)
    assert torn.endswith(b'"tit') and orjson.loads(line) == make_item(1)


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


def test_pipeline_counts_notes_skipped_as_older_apart_from_errors(
    mongo_db: MongoTestDB, mongo_database: Db, tmp_path: Path
) -> None:
    newer = T0 + timedelta(days=1)
    store(mongo_database, [make_item(i, fetched=newer, likes=9) for i in range(5)])
    pipeline = make_pipeline(*mongo_db, tmp_path)

    async def scenario() -> None:
        await pipeline.open_spider()
        for i in range(8):
            await pipeline.process_item(make_item(i, fetched=T0))
        await pipeline.close_spider()

    run(scenario())
    assert stat(pipeline, "skipped_older") == 5 and stat(pipeline, "notes_upserted") == 3
    assert stat(pipeline, "errors") == 0 and stat(pipeline, "spilled") == 0
    assert not (tmp_path / "spill-mongotest.jsonl").exists()
    assert mongo_database[NOTES].count_documents({"likeNum": 9}) == 5


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
