"""``scrapy pgy_replay_spill``: real command processes against the real MongoDB-compatible
test server (``tests.support.mongo``), plus the plain module's reading of spill files.

Each test asserts what a user sees: the exit status, the printed counts and messages,
the documents in the database (read back with pymongo) and the spill file, untouched.
"""

from __future__ import annotations

import io
import signal
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from pgy_spider import mongo, spillreplay
from tests.support.mongo import MongoServer, MongoTestDB, temp_database, unique_db_name
from tests.support.spill import (
    T0,
    ReplayRun,
    make_item,
    note_id,
    run_replay,
    start_replay,
    write_spill,
)

pytestmark = pytest.mark.mongo

Doc = dict[str, Any]
NOTES = "notes"
COLLECTIONS = (NOTES, mongo.METRICS_COLLECTION, mongo.KOLS_COLLECTION)


def replay(workdir: Path, db: MongoTestDB, *args: str, **settings: Any) -> ReplayRun:
    return run_replay(
        workdir, *args, settings={"MONGO_URI": db.uri, "MONGO_DATABASE": db.name, **settings}
    )


def dump(server: MongoServer, db_name: str) -> dict[str, list[Doc]]:
    """Every document of the three collections, in a stable order."""
    with server.client(tz_aware=True) as client:
        db = client[db_name]
        return {name: list(db[name].find().sort("_id")) for name in COLLECTIONS}


def store(server: MongoServer, db_name: str, items: list[Doc]) -> None:
    """The crawl's own writes (what the pipeline does with a batch)."""
    with server.client(tz_aware=True) as client:
        plans = mongo.build_batch_writes(items, NOTES)
        result = mongo.write_batch(client[db_name], plans, retries=0, backoff_s=0)
    assert not result.failed_items, result.last_error


def assert_settled(run: ReplayRun, path: Path) -> None:
    assert run.returncode == 0, run
    assert f"Every line is settled: {path} may be removed" in run.stdout
    assert not run.error_lines and "Traceback" not in run.stderr


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- storing, as the crawl would, twice harmlessly -----------------------------------------


def test_replay_stores_everything_as_the_crawl_would_and_twice_is_harmless(
    tmp_path: Path, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    items = [
        make_item(i, fetched=T0 + timedelta(minutes=i), likes=i, user=f"user-{i % 4}")
        for i in range(30)
    ]
    # The default PATH: PGY_MONGO_SPILL_PATH, %(name)s filled in as the crawl does.
    spill = write_spill(tmp_path / "output" / "note_detail-spill.jsonl", items)
    before = spill.read_bytes()
    settings = {"PGY_MONGO_SPILL_PATH": "output/%(name)s-spill.jsonl", "PGY_MONGO_BATCH_SIZE": 8}

    first = replay(tmp_path, mongo_db, **settings)

    assert_settled(first, Path("output/note_detail-spill.jsonl"))
    assert first.counts == {"lines": 30, "stored": 30, "skipped_older": 0, "not_stored": 0}
    stored = dump(mongo_server, mongo_db.name)
    # Exactly what the crawl's writes make of the same notes, in a database of their own.
    with temp_database(mongo_server, unique_db_name("reference")) as reference:
        store(mongo_server, reference.name, items)
        assert stored == dump(mongo_server, reference.name)
    notes = {doc["_id"]: doc for doc in stored[NOTES]}
    assert set(notes) == {note_id(i) for i in range(30)}
    assert notes[note_id(7)]["lastFetchedAt"] == T0 + timedelta(minutes=7)
    snapshots = {doc["noteId"]: doc for doc in stored[mongo.METRICS_COLLECTION]}
    assert len(snapshots) == 30
    assert snapshots[note_id(7)]["fetchedAt"] == T0 + timedelta(minutes=7)  # its own time
    assert {kol["_id"] for kol in stored[mongo.KOLS_COLLECTION]} == {f"user-{i}" for i in range(4)}

    second = replay(tmp_path, mongo_db, str(spill))  # by mistake: changes nothing

    assert_settled(second, spill)
    assert second.counts == {"lines": 30, "stored": 30, "skipped_older": 0, "not_stored": 0}
    assert dump(mongo_server, mongo_db.name) == stored
    assert spill.read_bytes() == before  # never changed, never deleted


# -- the newest fetch wins ----------------------------------------------------------


def test_late_replay_keeps_the_newer_fetches_and_counts_the_older_ones(
    tmp_path: Path, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    newer = T0 + timedelta(days=1)
    store(
        mongo_server,
        mongo_db.name,
        [make_item(i, fetched=newer, likes=50, fans=2000, picture_price=None) for i in range(6)],
    )
    crawled = dump(mongo_server, mongo_db.name)
    spilled = [make_item(i, fetched=T0, likes=5, fans=100, picture_price=7) for i in range(10)]
    spill = write_spill(tmp_path / "spill.jsonl", spilled)

    run = replay(tmp_path, mongo_db, str(spill))

    assert_settled(run, spill)
    assert run.counts == {"lines": 10, "stored": 4, "skipped_older": 6, "not_stored": 0}
    after = dump(mongo_server, mongo_db.name)
    notes = {doc["_id"]: doc for doc in after[NOTES]}
    for old in crawled[NOTES]:  # the newer fetch stays; the first fetch is the older one
        assert notes[old["_id"]] == {**old, "firstFetchedAt": T0}
    assert {notes[note_id(i)]["likeNum"] for i in range(6, 10)} == {5}
    (kol,) = after[mongo.KOLS_COLLECTION]
    (crawled_kol,) = crawled[mongo.KOLS_COLLECTION]
    assert kol == {**crawled_kol, "firstSeenAt": T0}  # fans 2000, no price: the newer fetch
    # Every fetch's snapshot is in the history, at its own time.
    times = sorted((s["noteId"], s["fetchedAt"]) for s in after[mongo.METRICS_COLLECTION])
    assert times == sorted(
        [(note_id(i), T0) for i in range(10)] + [(note_id(i), newer) for i in range(6)]
    )


def test_notes_that_cannot_be_stored_exit_5_apart_from_the_older_ones(
    tmp_path: Path, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    """A real duplicate key (an analyst's unique index) is not "skipped as older"."""
    with mongo_server.client() as client:
        client[mongo_db.name][NOTES].create_index("title", unique=True, name="title_unique")
    store(
        mongo_server, mongo_db.name, [make_item(i, fetched=T0 + timedelta(days=1)) for i in (0, 1)]
    )
    taken = make_item(20)
    taken["title"] = make_item(0)["title"]
    spill = write_spill(tmp_path / "spill.jsonl", [make_item(1), taken, make_item(21)])
    before = spill.read_bytes()

    run = replay(tmp_path, mongo_db, str(spill))

    assert run.returncode == 5, run
    assert run.counts == {"lines": 3, "stored": 1, "skipped_older": 1, "not_stored": 1}
    (failed, kept) = run.error_lines
    assert failed.startswith(f"error: 1 notes could not be stored: {note_id(20)} (line 2); ")
    assert "E11000" in failed
    assert kept.startswith(f"error: 1 lines not stored: {spill} is kept as it is")
    assert "may be removed" not in run.stdout and "Traceback" not in run.stderr
    assert spill.read_bytes() == before

    # The cause fixed, the same command stores the rest: nothing twice.
    with mongo_server.client() as client:
        client[mongo_db.name][NOTES].drop_index("title_unique")
    again = replay(tmp_path, mongo_db, str(spill))
    assert_settled(again, spill)
    assert again.counts == {"lines": 3, "stored": 2, "skipped_older": 1, "not_stored": 0}
    with mongo_server.client() as client:
        assert client[mongo_db.name][NOTES].count_documents({}) == 4


# -- damaged files ------------------------------------------------------------------


def test_torn_last_line_is_reported_and_skipped(
    tmp_path: Path, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    torn = f'{{"noteId": "{note_id(9)}", "title": "标题'.encode()  # a crash mid-write
    spill = write_spill(tmp_path / "spill.jsonl", [make_item(i) for i in range(3)], tail=torn)
    # MONGO_URI from the environment, as the crawl reads it.
    run = run_replay(
        tmp_path,
        str(spill),
        settings={"MONGO_DATABASE": mongo_db.name},
        env={"MONGO_URI": mongo_db.uri},
    )

    assert_settled(run, spill)
    assert run.counts == {"lines": 4, "stored": 3, "skipped_older": 0, "not_stored": 0}
    assert run.stderr.splitlines() == [
        f"warning: line 4, the last, is cut short (the crawl stopped while writing it): "
        f"skipped (note {note_id(9)}: it is in the run's feed)"
    ]
    with mongo_server.client() as client:
        assert client[mongo_db.name][NOTES].count_documents({}) == 3


def test_unreadable_lines_in_the_middle_are_named_and_not_stored(
    tmp_path: Path, mongo_server: MongoServer, mongo_db: MongoTestDB
) -> None:
    spill = tmp_path / "spill.jsonl"
    write_spill(spill, [make_item(0)])
    no_time = make_item(2)
    del no_time["fetchedAt"]  # it would count as fetched now and beat every newer fetch
    with spill.open("ab") as fh:
        fh.write(b"{not json\n\n[1, 2]\n")
        fh.write(orjson.dumps(no_time) + b"\n")
    with spill.open("ab") as fh:
        fh.write(orjson.dumps(make_item(1)) + b"\n")

    run = replay(tmp_path, mongo_db, str(spill))

    assert run.returncode == 5, run
    assert run.counts == {"lines": 5, "stored": 2, "skipped_older": 0, "not_stored": 3}
    assert run.error_lines == [
        "error: line 2 is not a spilled note (not JSON (unexpected character, expected a "
        "string key)): not stored",
        "error: line 4 is not a spilled note (not a JSON object): not stored",
        "error: line 5 is not a spilled note (no valid fetchedAt): not stored",
        f"error: 3 lines not stored: {spill} is kept as it is; fix the cause and run this "
        "command again (what is stored is not stored twice)",
    ]
    with mongo_server.client() as client:
        assert client[mongo_db.name][NOTES].count_documents({}) == 2


# -- one line and exit 2 --------------------------------------------------------------


def assert_one_error_line(run: ReplayRun, *parts: str) -> str:
    assert run.returncode == 2, run
    assert run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith("error: ")
    for part in parts:
        assert part in line, line
    return line


def test_missing_or_unreadable_file_exits_2(tmp_path: Path, mongo_db: MongoTestDB) -> None:
    assert_one_error_line(replay(tmp_path, mongo_db, "gone.jsonl"), "gone.jsonl: no such file")
    (tmp_path / "output" / "mongo-spill.jsonl").mkdir(parents=True)  # the default path
    assert_one_error_line(replay(tmp_path, mongo_db), "output/mongo-spill.jsonl: is a directory")


def test_mongodb_down_exits_2_with_the_password_masked(tmp_path: Path) -> None:
    spill = write_spill(tmp_path / "spill.jsonl", [make_item(0)])
    uri = f"mongodb://analyst:hunter2secret@127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=500"
    run = run_replay(tmp_path, str(spill), settings={"MONGO_URI": uri})

    line = assert_one_error_line(
        run, "MongoDB unreachable at mongodb://analyst:***@127.0.0.1:", "fix MONGO_URI"
    )
    assert "hunter2secret" not in run.stdout + run.stderr and "Traceback" not in line


def test_without_mongo_uri_exits_2(tmp_path: Path) -> None:
    spill = write_spill(tmp_path / "spill.jsonl", [make_item(0)])
    assert_one_error_line(run_replay(tmp_path, str(spill)), "MONGO_URI is not set")


@pytest.mark.parametrize("placeholder", ["%(time)s", "%(job)s"])
def test_a_spill_path_per_run_requires_path(
    tmp_path: Path, mongo_db: MongoTestDB, placeholder: str
) -> None:
    template = f"output/mongo-spill-{placeholder}.jsonl"
    run = replay(tmp_path, mongo_db, PGY_MONGO_SPILL_PATH=template)
    assert_one_error_line(run, f"PGY_MONGO_SPILL_PATH={template} names a new file", "PATH")


# -- interrupted, or the server lost midway -----------------------------------------------


def test_ctrl_c_exits_4_without_a_traceback(tmp_path: Path, mongo_db: MongoTestDB) -> None:
    # Long enough to be still writing when the signal comes, even on a fast mongod.
    spill = write_spill(tmp_path / "spill.jsonl", [make_item(i) for i in range(20_000)])
    proc = start_replay(
        tmp_path,
        str(spill),
        settings={"MONGO_URI": mongo_db.uri, "MONGO_DATABASE": mongo_db.name},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("Replaying ")  # connected: now writing
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 4, stderr
    assert stderr.splitlines() == [
        "interrupted: what was stored stays stored; run the command again to finish"
    ]
    assert stdout == ""


def test_server_lost_midway_counts_the_rest_as_not_tried(
    restartable_mongo_server: MongoServer, restartable_db: MongoTestDB
) -> None:
    server = restartable_mongo_server
    lines = b"".join(orjson.dumps(make_item(i)) + b"\n" for i in range(7))
    with server.client(serverSelectionTimeoutMS=300) as client:
        db = client[restartable_db.name]
        mongo.reads_before_writes(db)  # asked while the server is up, as at start
        server.stop()
        try:
            report = spillreplay.replay(
                db, NOTES, io.BytesIO(lines), batch_size=3, retries=1, backoff_s=0
            )
        finally:
            server.start()
    assert (report.lines, report.stored, report.not_stored, report.untried) == (7, 0, 7, 4)
    assert report.lost_at == 1 and report.failed_notes == [(n, note_id(n - 1)) for n in (1, 2, 3)]
    _, err = spillreplay.describe(report, Path("spill.jsonl"))
    assert "error: MongoDB was lost at line 1: 4 lines after it were not tried" in err


def test_a_read_error_midway_is_reported_and_not_settled(mongo_database: Any) -> None:
    # Reading /proc/self/mem at offset 0 fails with EIO: a real I/O error from the kernel.
    with Path("/proc/self/mem").open("rb") as fh:
        report = spillreplay.replay(mongo_database, NOTES, fh, batch_size=2, retries=0, backoff_s=0)
    assert report.read_error == "Input/output error" and not report.settled
    _, err = spillreplay.describe(report, Path("spill.jsonl"))
    assert err == [
        "error: spill.jsonl could not be read past line 0 (Input/output error)",
        "error: lines not stored: spill.jsonl is kept as it is; fix the cause and run this "
        "command again (what is stored is not stored twice)",
    ]


# -- the plain module ---------------------------------------------------------------


def test_spill_path_is_the_setting_unless_given() -> None:
    settings = {"MONGO_URI": "mongodb://h/"}  # PGY_MONGO_SPILL_PATH unset: the default
    config = spillreplay.read_config(None, settings, "note_detail", {})
    assert config.path == Path("output/mongo-spill.jsonl")
    assert spillreplay.spill_path(None, "s/%(name)s.jsonl", "nd") == Path("s/nd.jsonl")
    assert spillreplay.spill_path("mine.jsonl", "%(time)s.jsonl", "nd") == Path("mine.jsonl")
    with pytest.raises(spillreplay.ReplayError, match="names a new file for every run"):
        spillreplay.spill_path(None, "out/%(job)s.jsonl", "nd")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"noteId": "a", "fetchedAt": "2026-03-01T08:00:00Z"}', ""),
        (b'{"noteId": "a", "fetchedAt": "yesterday"}', "no valid fetchedAt"),
        (b'{"noteId": 7, "fetchedAt": "2026-03-01T08:00:00Z"}', "no noteId"),
        (
            b'{"noteId": "a", "fetchedAt": "2026-03-01T08:00:00Z", "kol": [1]}',
            "kol is not an object",
        ),
        (b'"a string"', "not a JSON object"),
        (b'{"noteId": "\xff"}', "not JSON (str is not valid UTF-8)"),
    ],
)
def test_parse_line(line: bytes, why: str) -> None:
    item, reason = spillreplay.parse_line(line)
    assert reason == why and (item is None) == bool(why)
