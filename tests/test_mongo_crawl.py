"""End-to-end MongoDB storage: real `scrapy crawl note_detail` processes against the API
simulator and the real MongoDB-compatible test server (``tests.support.mongo``).

Every test asserts on what a user would look at: the documents in the database (read back
with pymongo), the summary, the stats in the log, the exit status and the simulator's own
call counts (what would have been paid for).
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pgy_spider import mongo
from tests.support.accounting import assert_balanced
from tests.support.crawl import CrawlResult, finish_crawl, run_crawl, start_crawl
from tests.support.ids import make_note_id, make_note_ids
from tests.support.mongo import MongoServer, MongoTestDB
from tests.support.simulator import SimulatorClient
from tests.support.spill import ReplayRun, run_replay

pytestmark = pytest.mark.mongo

Doc = dict[str, Any]
NOTES = "notes"
SECRET_TOKEN = "sk-PGY-MONGO-SECRET-4d2e9b"


# -- helpers ---------------------------------------------------------------------------


def write_seeds(path: Path, ids: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(ids) + "\n", encoding="utf-8")
    return path


def crawl(
    workdir: Path,
    seeds: list[str],
    sim: SimulatorClient,
    db: MongoTestDB,
    *,
    uri: str | None = None,
    token: str = "test-token",
    env: dict[str, str] | None = None,
    **settings: Any,
) -> CrawlResult:
    """A crawl of *seeds* storing into *db*; ``uri=""`` leaves the MONGO_URI setting out."""
    seeds_path = write_seeds(workdir / "seeds.txt", seeds)
    uri_setting = {} if uri == "" else {"MONGO_URI": uri or db.uri}
    return run_crawl(
        workdir,
        "-a",
        f"ids_file={seeds_path}",
        sim_url=sim.url,
        token=token,
        env=env,
        settings={
            **uri_setting,
            "MONGO_DATABASE": db.name,
            "PGY_PROGRESS_INTERVAL": 0,
            **settings,
        },
    )


def read_all(server: MongoServer, db_name: str, collection: str) -> list[Doc]:
    with server.client(tz_aware=True) as client:
        return list(client[db_name][collection].find())


def by_id(docs: list[Doc]) -> dict[Any, Doc]:
    return {doc["_id"]: doc for doc in docs}


def is_bson_date(value: Any) -> bool:
    """A BSON date comes back as an aware datetime from a tz_aware client (never a str)."""
    return isinstance(value, datetime) and value.tzinfo is not None


def assert_clean_finish(result: CrawlResult, notes: int) -> None:
    assert result.returncode == 0, result
    summary = result.summary
    assert summary["exit_code"] == 0 and summary["finish_reason"] == "finished"
    assert_balanced(summary)
    assert summary["mongo_spill_path"] is None
    assert result.stats["pgy/mongo/notes_upserted"] == notes
    assert result.stats["pgy/mongo/spilled"] == 0
    assert result.stats["pgy/mongo/errors"] == 0
    assert "pgy/mongo/spill_path" not in result.stats
    assert not (result.output / "mongo-spill.jsonl").exists()
    assert "Traceback" not in result.stderr


# -- two runs: upsert, metrics history, kols --------------------------------------------


def test_two_runs_upsert_in_place_and_accumulate_metrics(
    tmp_path: Path, sim: SimulatorClient, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    ids = make_note_ids(12)

    run1 = crawl(tmp_path / "run1", ids, sim, mongo_db, PGY_REFRESH_HOURS=0)
    assert_clean_finish(run1, 12)
    assert run1.summary["notes_written"] == 12 and run1.summary["skipped_fresh"] == 0
    notes1 = by_id(read_all(mongo_server, mongo_db.name, NOTES))
    kols1 = by_id(read_all(mongo_server, mongo_db.name, mongo.KOLS_COLLECTION))
    # Make every creator's fans and prices stale: run 2 must overwrite them with the latest.
    with mongo_server.client() as client:
        client[mongo_db.name][mongo.KOLS_COLLECTION].update_many(
            {}, {"$set": {"fansNum": -1, "picturePrice": -1, "videoPrice": -1}}
        )

    run2 = crawl(tmp_path / "run2", ids, sim, mongo_db, PGY_REFRESH_HOURS=0)
    assert_clean_finish(run2, 12)
    assert run2.summary["notes_written"] == 12 and run2.summary["skipped_fresh"] == 0
    assert run2.stats["pgy/skipped_fresh"] == 0

    # PGY_REFRESH_HOURS=0: every note was fetched (and paid for) in both runs.
    stats = sim.stats()
    assert stats["calls"] == 24 and stats["by_note"] == dict.fromkeys(ids, 2)

    # notes: one document per note, updated in place.
    notes = read_all(mongo_server, mongo_db.name, NOTES)
    assert len(notes) == 12
    assert sorted(doc["_id"] for doc in notes) == sorted(ids)
    assert all(doc["_id"] == doc["noteId"] for doc in notes)
    assert Counter(doc["noteId"] for doc in notes).most_common(1)[0][1] == 1
    feed1 = {note["noteId"]: note for note in run1.notes}
    feed2 = {note["noteId"]: note for note in run2.notes}
    assert set(feed1) == set(feed2) == set(ids)
    for doc in notes:
        first, note1, note2 = notes1[doc["_id"]], feed1[doc["_id"]], feed2[doc["_id"]]
        for name in ("firstFetchedAt", "lastFetchedAt", "createdAt", "updatedAt"):
            assert is_bson_date(doc[name]), (name, doc[name])
        assert "fetchedAt" not in doc
        assert doc["firstFetchedAt"] == first["firstFetchedAt"] == first["lastFetchedAt"]
        assert doc["firstFetchedAt"] == mongo.to_datetime(note1["fetchedAt"])
        assert doc["lastFetchedAt"] == mongo.to_datetime(note2["fetchedAt"])
        assert doc["lastFetchedAt"] > doc["firstFetchedAt"]
        assert doc["createdAt"] == mongo.to_datetime(note2["createdAt"])
        # The document holds the latest fetch (simulator metrics_growth: values rise).
        assert doc["likeNum"] == note2["likeNum"] > note1["likeNum"] == first["likeNum"]
        assert (doc["title"], doc["userId"], doc["raw"]) == (
            note2["title"],
            note2["userId"],
            note2["raw"],
        )

    # note_metrics: one snapshot per fetch, two per note, every metric growing.
    snapshots: dict[str, list[Doc]] = defaultdict(list)
    for snap in read_all(mongo_server, mongo_db.name, mongo.METRICS_COLLECTION):
        snapshots[snap["noteId"]].append(snap)
    assert set(snapshots) == set(ids)
    for note_id, snaps in snapshots.items():
        assert len(snaps) == 2, note_id
        older, newer = sorted(snaps, key=lambda s: s["fetchedAt"])
        assert all(is_bson_date(s["fetchedAt"]) for s in snaps)
        assert older["fetchedAt"] == mongo.to_datetime(feed1[note_id]["fetchedAt"])
        assert newer["fetchedAt"] == mongo.to_datetime(feed2[note_id]["fetchedAt"])
        for metric in mongo.METRIC_FIELDS:
            assert older[metric] == feed1[note_id][metric], (note_id, metric)
            assert newer[metric] == feed2[note_id][metric], (note_id, metric)
            assert newer[metric] > older[metric], (note_id, metric)

    # kols: one document per distinct creator, keyed by userId, with the latest fields.
    creators: dict[str, list[str]] = defaultdict(list)
    for note in run2.notes:
        creators[note["kol"]["userId"]].append(note["noteId"])
    assert len(creators) < len(ids), "the seeds should share at least one creator"
    kols = by_id(read_all(mongo_server, mongo_db.name, mongo.KOLS_COLLECTION))
    assert set(kols) == set(creators) == set(kols1)
    for user_id, kol_doc in kols.items():
        note_kol = feed2[creators[user_id][0]]["kol"]
        expected = {k: v for k, v in note_kol.items() if v is not None}
        assert {k: kol_doc.get(k) for k in expected} == expected, user_id
        assert kol_doc["fansNum"] >= 0 and kol_doc["fansNum"] == note_kol["fansNum"]
        assert kol_doc["lastNoteId"] in creators[user_id]
        assert kol_doc["firstSeenAt"] == kols1[user_id]["firstSeenAt"]
        assert is_bson_date(kol_doc["lastSeenAt"])
        assert kol_doc["lastSeenAt"] > kol_doc["firstSeenAt"]
        assert kol_doc["lastSeenAt"] >= mongo.to_datetime(feed2[creators[user_id][0]]["fetchedAt"])


# -- freshness: skipped_fresh saves paid calls ----------------------------------------


def test_second_run_skips_fresh_notes_and_fetches_only_new_ones(
    tmp_path: Path, sim: SimulatorClient, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    stored = make_note_ids(10)
    new = make_note_ids(3, 100)

    run1 = crawl(tmp_path / "run1", stored, sim, mongo_db)  # default PGY_REFRESH_HOURS (24)
    assert_clean_finish(run1, 10)
    calls_after_run1 = sim.stats()["calls"]
    assert calls_after_run1 == 10
    before = by_id(read_all(mongo_server, mongo_db.name, NOTES))

    # The new IDs are mixed in among the stored ones.
    seeds = [new[0], *stored[:5], new[1], *stored[5:], new[2]]
    run2 = crawl(tmp_path / "run2", seeds, sim, mongo_db)
    assert_clean_finish(run2, 3)

    stats = sim.stats()
    assert stats["calls"] == calls_after_run1 + 3  # zero calls for the ten stored notes
    assert stats["by_note"] == {**dict.fromkeys(stored, 1), **dict.fromkeys(new, 1)}
    summary = run2.summary
    assert summary["seeds_read"] == 13
    assert summary["skipped_fresh"] == 10
    assert summary["notes_written"] == 3
    assert summary["requests_sent"] == summary["api_calls"] == 3
    assert_balanced(summary)
    assert run2.stats["pgy/skipped_fresh"] == 10
    assert run2.stats["pgy/requests_sent"] == 3
    assert sorted(note["noteId"] for note in run2.notes) == sorted(new)

    after = by_id(read_all(mongo_server, mongo_db.name, NOTES))
    assert set(after) == set(stored) | set(new)
    for note_id in stored:  # untouched: not fetched again
        assert after[note_id]["lastFetchedAt"] == before[note_id]["lastFetchedAt"]
        assert after[note_id]["likeNum"] == before[note_id]["likeNum"]
    for note_id in new:
        assert after[note_id]["firstFetchedAt"] == after[note_id]["lastFetchedAt"]
    metrics = read_all(mongo_server, mongo_db.name, mongo.METRICS_COLLECTION)
    assert Counter(s["noteId"] for s in metrics) == Counter(stored + new)


def test_notes_older_than_refresh_hours_are_fetched_again(
    tmp_path: Path, sim: SimulatorClient, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    ids = make_note_ids(5)
    assert_clean_finish(crawl(tmp_path / "run1", ids, sim, mongo_db), 5)
    stale = ids[:2]
    with mongo_server.client(tz_aware=True) as client:
        notes = client[mongo_db.name][NOTES]
        for note_id in stale:  # as if fetched 30 hours ago
            doc = notes.find_one({"_id": note_id})
            assert doc is not None
            aged = doc["lastFetchedAt"] - timedelta(hours=30)
            notes.update_one({"_id": note_id}, {"$set": {"lastFetchedAt": aged}})

    run2 = crawl(tmp_path / "run2", ids, sim, mongo_db)  # default: 24 hours
    assert_clean_finish(run2, 2)
    assert run2.summary["skipped_fresh"] == 3 and run2.summary["notes_written"] == 2
    assert sim.stats()["by_note"] == {**dict.fromkeys(ids, 1), **dict.fromkeys(stale, 2)}

    run3 = crawl(tmp_path / "run3", ids, sim, mongo_db, PGY_REFRESH_HOURS=48)
    assert_clean_finish(run3, 0)
    assert run3.summary["skipped_fresh"] == 5 and run3.summary["requests_sent"] == 0
    assert sim.stats()["calls"] == 7


def test_uri_from_environment_and_own_collection_name(
    tmp_path: Path, sim: SimulatorClient, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    ids = make_note_ids(3)
    env = {"MONGO_URI": mongo_db.uri}
    for run in ("run1", "run2"):
        result = crawl(
            tmp_path / run, ids, sim, mongo_db, uri="", env=env, MONGO_COLLECTION="xhs_notes"
        )
        assert_clean_finish(result, 3 if run == "run1" else 0)
    assert result.summary["skipped_fresh"] == 3  # freshness reads the same collection
    assert sim.stats()["calls"] == 3
    with mongo_server.client() as client:
        db = client[mongo_db.name]
        assert sorted(db.list_collection_names()) == sorted(
            ["xhs_notes", mongo.METRICS_COLLECTION, mongo.KOLS_COLLECTION]
        )
        assert sorted(doc["_id"] for doc in db["xhs_notes"].find()) == sorted(ids)
        assert {"userId_1", "createdAt_-1"} <= set(db["xhs_notes"].index_information())


def test_crawl_creates_the_indexes(
    tmp_path: Path, sim: SimulatorClient, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    result = crawl(tmp_path, make_note_ids(2), sim, mongo_db)
    assert_clean_finish(result, 2)
    with mongo_server.client() as client:
        db = client[mongo_db.name]
        notes_keys = {tuple(i["key"].items()) for i in db[NOTES].list_indexes()}
        metrics_keys = {
            tuple(i["key"].items()) for i in db[mongo.METRICS_COLLECTION].list_indexes()
        }
    assert (("userId", 1),) in notes_keys
    assert (("createdAt", -1),) in notes_keys  # the note's creation time
    assert (("noteId", 1), ("fetchedAt", 1)) in metrics_keys


def test_token_is_in_no_document_of_any_collection(
    tmp_path: Path, sim: SimulatorClient, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    sim.configure(tokens=[SECRET_TOKEN])
    ids = make_note_ids(4)
    for run in ("run1", "run2"):  # an insert, then an update of every document
        result = crawl(tmp_path / run, ids, sim, mongo_db, token=SECRET_TOKEN, PGY_REFRESH_HOURS=0)
        assert_clean_finish(result, 4)
    assert sim.stats()["by_token"] == {SECRET_TOKEN: 8}
    with mongo_server.client() as client:
        db = client[mongo_db.name]
        names = sorted(db.list_collection_names())
        assert {NOTES, mongo.METRICS_COLLECTION, mongo.KOLS_COLLECTION} <= set(names)
        documents = 0
        for name in names:
            for doc in db[name].find():
                documents += 1
                text = json.dumps(doc, default=str, ensure_ascii=False)
                assert SECRET_TOKEN not in text, (name, doc["_id"])
                assert "SECRET" not in text, (name, doc["_id"])  # nor any part of it
            for index in db[name].list_indexes():
                assert SECRET_TOKEN not in json.dumps(dict(index), default=str)
    assert documents >= 4 + 8  # notes + snapshots (+ kols)


# -- the server down at start, or dying mid-run ------------------------------------------


def test_server_down_at_start_stops_before_any_call(
    tmp_path: Path,
    sim: SimulatorClient,
    restartable_mongo_server: MongoServer,
    restartable_db: MongoTestDB,
) -> None:
    server = restartable_mongo_server
    server.stop()
    try:
        started = time.monotonic()
        result = crawl(tmp_path, make_note_ids(3), sim, restartable_db)
        elapsed = time.monotonic() - started
    finally:
        server.start()

    assert result.returncode == 2, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "MongoDB" in errors[0] and server.uri.split("?")[0] in errors[0]
    assert result.stderr.strip() == errors[0]  # that line is all: no banner, no log
    assert "Traceback" not in result.stderr + result.stdout
    assert sim.stats()["calls"] == 0
    assert not (result.output / "notes.jsonl").exists()
    assert elapsed < 30
    with server.client() as client:
        assert restartable_db.name not in client.list_database_names()


def test_password_in_uri_is_masked_when_down_at_start(
    tmp_path: Path, sim: SimulatorClient, mongo_db: MongoTestDB
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"mongodb://analyst:hunter2secret@127.0.0.1:{port}/?serverSelectionTimeoutMS=500"
    result = crawl(tmp_path, [make_note_id(0)], sim, mongo_db, uri=uri)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: MongoDB unreachable at mongodb://analyst:***@")
    assert "hunter2secret" not in result.stderr + result.stdout
    assert sim.stats()["calls"] == 0


def test_server_down_at_start_error_says_how_to_fix(
    tmp_path: Path,
    sim: SimulatorClient,
    restartable_mongo_server: MongoServer,
    restartable_db: MongoTestDB,
) -> None:
    server = restartable_mongo_server
    server.stop()
    try:
        result = crawl(
            tmp_path,
            [make_note_id(0)],
            sim,
            restartable_db,
            uri=f"{server.uri}&serverSelectionTimeoutMS=500",
        )
    finally:
        server.start()
    assert result.returncode == 2, result
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    # The fix: start the server, or point MONGO_URI (setting or environment) elsewhere.
    assert "MONGO_URI" in line, line


def crawl_while_server_dies(
    workdir: Path,
    ids: list[str],
    sim: SimulatorClient,
    server: MongoServer,
    db: MongoTestDB,
    *,
    stop_after: int,
) -> tuple[CrawlResult, int]:
    """A crawl of *ids* during which the server is killed once *stop_after* notes are stored.

    Returns the result and how many notes were stored when the server was killed. The
    server is running again when this returns, whatever happened.
    """
    # Two calls at a time, 150 ms each: 40 notes take about three seconds.
    sim.configure(latency_ms=150)
    seeds_path = write_seeds(workdir / "seeds.txt", ids)
    proc = start_crawl(
        workdir,
        "-a",
        f"ids_file={seeds_path}",
        sim_url=sim.url,
        settings={
            # A short server selection so a failed batch costs half a second, not five.
            "MONGO_URI": f"{server.uri}&serverSelectionTimeoutMS=500",
            "MONGO_DATABASE": db.name,
            "CONCURRENT_REQUESTS": 2,
            "PGY_MONGO_BATCH_SIZE": 4,
            "PGY_MONGO_FLUSH_SECONDS": 0.2,
            "PGY_MONGO_RETRIES": 1,
            "PGY_MONGO_RETRY_BACKOFF": 0.05,
            "PGY_PROGRESS_INTERVAL": 0,
        },
    )
    stored_when_stopped = 0
    try:
        deadline = time.monotonic() + 60
        with server.client() as client:
            notes = client[db.name][NOTES]
            creators = client[db.name][mongo.KOLS_COLLECTION]
            # Not before the creators' collection exists too: FerretDB 1.24 (SQLite) does not
            # recover a collection whose creation a SIGKILL cut short (every later write to it
            # fails "table ... already exists"), a fault of the test server, not the crawl's.
            while (
                stored_when_stopped < stop_after or creators.estimated_document_count() == 0
            ) and proc.poll() is None:
                assert time.monotonic() < deadline, "no notes reached MongoDB"
                time.sleep(0.05)
                stored_when_stopped = notes.count_documents({})
        # SIGKILL: a dead server. (On SIGTERM FerretDB keeps serving open connections
        # until their clients leave, so the crawl would never notice.)
        server.stop(kill=True)
        result = finish_crawl(proc, workdir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        server.start()
        sim.configure(latency_ms=0)
    return result, stored_when_stopped


def replay_spill(workdir: Path, db: MongoTestDB, spill_file: Path) -> ReplayRun:
    """``scrapy pgy_replay_spill`` (as the README describes), expected to settle every line."""
    run = run_replay(
        workdir, str(spill_file), settings={"MONGO_URI": db.uri, "MONGO_DATABASE": db.name}
    )
    assert run.returncode == 0, run
    assert f"Every line is settled: {spill_file} may be removed" in run.stdout
    assert spill_file.exists()  # the user removes it, never the command
    return run


def test_server_dying_mid_run_spills_the_rest_and_exits_5(
    tmp_path: Path,
    sim: SimulatorClient,
    restartable_mongo_server: MongoServer,
    restartable_db: MongoTestDB,
) -> None:
    server = restartable_mongo_server
    ids = make_note_ids(40)
    result, stored_when_stopped = crawl_while_server_dies(
        tmp_path, ids, sim, server, restartable_db, stop_after=8
    )

    assert stored_when_stopped >= 8
    assert sim.stats()["calls"] == 40
    assert result.returncode == 5, result
    summary = result.summary
    assert summary["exit_code"] == 5 and result.stats["pgy/exit_code"] == 5
    assert summary["notes_written"] == 40
    assert_balanced(summary)
    assert sorted(note["noteId"] for note in result.notes) == sorted(ids)  # the feed has all

    spill_path = summary["mongo_spill_path"]
    assert spill_path and spill_path == result.stats["pgy/mongo/spill_path"]
    spill_file = tmp_path / spill_path
    spilled = mongo.read_spill(spill_file)
    spilled_ids = [item["noteId"] for item in spilled]
    assert spilled, "nothing was spilled: the server stopped too late"
    assert len(spilled_ids) == len(set(spilled_ids)) == result.stats["pgy/mongo/spilled"]
    assert not result.stats.get("pgy/mongo/lost")
    feed = {note["noteId"]: note for note in result.notes}
    for item in spilled:  # the whole normalized note, ready to be stored later
        assert item == feed[item["noteId"]]

    # Nothing lost: every note of the feed is in the database or in the spill file.
    in_db = {doc["_id"] for doc in read_all(server, restartable_db.name, NOTES)}
    assert len(in_db) >= stored_when_stopped
    assert in_db | set(spilled_ids) == set(ids)
    assert set(ids) - in_db <= set(spilled_ids)

    errors = [line for line in result.stderr.splitlines() if " ERROR: " in line]
    assert any("MongoDB" in line and spill_path in line for line in errors), errors
    assert "Traceback" not in result.stderr
    assert "test-token" not in spill_file.read_text(encoding="utf-8")

    # Replaying the spill (as the README describes) stores the rest, one document per note.
    first = replay_spill(tmp_path, restartable_db, spill_file)
    lines = len(spilled)
    assert first.counts == {"lines": lines, "stored": lines, "skipped_older": 0, "not_stored": 0}
    second = replay_spill(tmp_path, restartable_db, spill_file)  # twice by mistake: harmless
    assert second.counts == first.counts
    with server.client(tz_aware=True) as client:
        db = client[restartable_db.name]
        assert sorted(doc["_id"] for doc in db[NOTES].find()) == sorted(ids)
        snapshots = Counter(s["noteId"] for s in db[mongo.METRICS_COLLECTION].find())
        assert set(snapshots) == set(ids) and max(snapshots.values()) == 1


def test_late_spill_replay_does_not_undo_a_newer_fetch(
    tmp_path: Path,
    sim: SimulatorClient,
    restartable_mongo_server: MongoServer,
    restartable_db: MongoTestDB,
) -> None:
    server = restartable_mongo_server
    ids = make_note_ids(24, 200)
    result, _ = crawl_while_server_dies(
        tmp_path / "run1", ids, sim, server, restartable_db, stop_after=4
    )
    assert result.returncode == 5, result
    spill_file = tmp_path / "run1" / result.summary["mongo_spill_path"]
    spilled = mongo.read_spill(spill_file)
    spilled_ids = [item["noteId"] for item in spilled]
    assert spilled_ids

    # The user re-crawls the spilled notes before replaying the spill: newer fetches.
    run2 = crawl(tmp_path / "run2", spilled_ids, sim, restartable_db, PGY_REFRESH_HOURS=0)
    assert_clean_finish(run2, len(spilled_ids))
    newer = by_id(read_all(server, restartable_db.name, NOTES))
    newer_kols = by_id(read_all(server, restartable_db.name, mongo.KOLS_COLLECTION))

    run = replay_spill(tmp_path / "run1", restartable_db, spill_file)  # the older fetches, late

    lines = len(spilled)
    assert run.counts == {"lines": lines, "stored": 0, "skipped_older": lines, "not_stored": 0}
    after = by_id(read_all(server, restartable_db.name, NOTES))
    spilled_at = {item["noteId"]: mongo.fetched_at(item) for item in spilled}
    for note_id in spilled_ids:
        # The newer fetch stays whole; only firstFetchedAt goes back to the spilled fetch.
        assert after[note_id] == {**newer[note_id], "firstFetchedAt": spilled_at[note_id]}
        assert after[note_id]["lastFetchedAt"] > spilled_at[note_id]
    assert {i: after[i]["likeNum"] for i in spilled_ids} == {
        i: newer[i]["likeNum"] for i in spilled_ids
    }
    # Both fetches are in the metrics history, each at its own time.
    snapshots: dict[str, list[datetime]] = defaultdict(list)
    for snap in read_all(server, restartable_db.name, mongo.METRICS_COLLECTION):
        snapshots[snap["noteId"]].append(snap["fetchedAt"])
    for note_id in spilled_ids:
        assert sorted(snapshots[note_id]) == [spilled_at[note_id], newer[note_id]["lastFetchedAt"]]
    # The creators keep run 2's fields; firstSeenAt is the earliest sighting.
    sightings: dict[str, list[datetime]] = defaultdict(list)
    for item in spilled:
        user_id = mongo.kol_user_id(item)
        assert user_id is not None
        sightings[user_id].append(spilled_at[item["noteId"]])
    kols = by_id(read_all(server, restartable_db.name, mongo.KOLS_COLLECTION))
    assert set(kols) == set(newer_kols)
    for user_id, kol in kols.items():
        earliest = min([newer_kols[user_id]["firstSeenAt"], *sightings[user_id]])
        assert kol == {**newer_kols[user_id], "firstSeenAt": earliest}
