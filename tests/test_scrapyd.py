"""Scrapyd end to end: a real Scrapyd, the egg built and uploaded by scrapyd-deploy, jobs
scheduled through ``schedule.json`` against the API simulator.

What the README's "Deploy to Scrapyd" promises, checked here:

- the egg holds the package and its entry point, never the tests; ``scrapy list``
  works on upload with no token anywhere in the environment;
- a job's spider arguments (``ids``, ``ids_file`` on the host, ``ids_url``) and
  settings (``PGY_BASE_URL``, ``MONGO_URI``, per-job output templates) reach it; it
  writes its notes, failed and summary files and logs the ``pgy/...`` stats;
- ``%(name)s``/``%(job)s`` keep concurrent jobs' files apart;
- with ``items_dir`` set, Scrapyd's feed replaces ``PGY_FEED_URI``;
- the token (host environment or ``PGY_TOKEN_FILE``) is in no file Scrapyd wrote and
  in no answer or page it served.
"""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support import scrapyd as scrapyd_support
from tests.support.crawl import read_jsonl
from tests.support.ids import make_note_id, make_note_ids
from tests.support.mongo import MongoTestDB
from tests.support.scrapyd import ENV_TOKEN, PROJECT, SPIDER, ScrapydServer
from tests.support.simulator import SimulatorClient

# The Scrapyd fixtures, used by name below.
scrapyd_project = scrapyd_support.scrapyd_project
scrapyd = scrapyd_support.scrapyd
scrapyd_items = scrapyd_support.scrapyd_items
pytestmark = pytest.mark.scrapyd

FILE_TOKEN = "test-token-2"  # in a token file on the host, never in the environment
ALL_TOKENS = ("test-token", "test-token-2", "test-token-3")


def job_settings(server: ScrapydServer, sim: SimulatorClient, **extra: Any) -> dict[str, Any]:
    """Per-job output paths (one set of templates for every job) and the simulator."""
    out = server.out_dir
    return {
        "PGY_BASE_URL": sim.url,
        "PGY_RETRY_BACKOFF": 0,
        "PGY_RATE_LIMIT_DELAY": 0.05,
        "PGY_FEED_URI": f"{out}/%(name)s-%(job)s-notes.jsonl",
        "PGY_FAILED_PATH": f"{out}/%(name)s-%(job)s-failed.jsonl",
        "PGY_SUMMARY_PATH": f"{out}/%(name)s-%(job)s-summary.json",
        **extra,
    }


def outputs(server: ScrapydServer, job: str) -> tuple[Path, Path, Path]:
    """(notes, failed, summary) of ``job`` as the templates above name them."""
    stem = server.out_dir / f"{SPIDER}-{job}"
    return (
        stem.with_name(stem.name + "-notes.jsonl"),
        stem.with_name(stem.name + "-failed.jsonl"),
        stem.with_name(stem.name + "-summary.json"),
    )


def read_json(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def assert_exit_ok(server: ScrapydServer, job: str) -> None:
    line = server.exit_line(job)
    assert "Process finished" in line, line  # exit status 0; "Process died" otherwise


def assert_no_token(server: ScrapydServer, *tokens: str) -> None:
    server.page("jobs")  # the web page listing jobs, kept with the other answers
    for token in tokens:
        assert server.find_secret(token) == [], f"{token} leaked"


def test_egg_holds_the_package_and_no_tests(scrapyd: ScrapydServer) -> None:
    assert scrapyd.get("listspiders.json", project=PROJECT)["spiders"] == [SPIDER]
    with zipfile.ZipFile(scrapyd.egg()) as egg:
        names = egg.namelist()
        entry_points = egg.read("EGG-INFO/entry_points.txt").decode()
    assert "pgy_spider/settings.py" in names
    assert "pgy_spider/spiders/note_detail.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]
    assert "[scrapy]" in entry_points
    assert "settings = pgy_spider.settings" in entry_points


def test_scheduled_job_writes_notes_failed_summary_and_stats(
    scrapyd: ScrapydServer, sim: SimulatorClient, tmp_path: Path
) -> None:
    a, b, c, d = (make_note_id(i) for i in range(100, 104))
    seeds = tmp_path / "host" / "seeds.txt"  # a file on the Scrapyd host
    seeds.parent.mkdir()
    seeds.write_text(
        f"{c}\nnot-a-note\nhttps://www.xiaohongshu.com/explore/{d}?xsec_source=pc\n{a}\n",
        encoding="utf-8",
    )
    job = scrapyd.schedule({"ids": f"{a},{b}", "ids_file": str(seeds)}, job_settings(scrapyd, sim))
    finished = scrapyd.wait(job)[job]
    assert_exit_ok(scrapyd, job)

    notes_path, failed_path, summary_path = outputs(scrapyd, job)
    assert sorted(n["noteId"] for n in read_jsonl(notes_path)) == sorted([a, b, c, d])
    assert [(f["reason"], f["seed"]) for f in read_jsonl(failed_path)] == [
        ("invalid_id", "not-a-note")
    ]
    summary = read_json(summary_path)
    assert summary["finish_reason"] == "finished"
    assert summary["exit_code"] == 0
    assert summary["seeds_read"] == 6
    assert summary["duplicates"] == 1
    assert summary["notes_written"] == 4
    assert summary["rejected_by_reason"] == {"invalid_id": 1}
    assert summary["failed_path"] == str(failed_path)
    assert summary["api_base"] == sim.url
    # The token of the Scrapyd host's environment, once per distinct valid ID.
    stats = sim.stats()
    assert stats["by_note"] == {a: 1, b: 1, c: 1, d: 1}
    assert stats["by_token"] == {ENV_TOKEN: 4}

    # The job log (logs_dir/<project>/<spider>/<job>.log) has the pgy/ stats.
    assert finished["log_url"] == f"/logs/{PROJECT}/{SPIDER}/{job}.log"
    assert finished["items_url"] is None  # no items_dir: PGY_FEED_URI holds the notes
    job_stats = scrapyd.job_stats(job)
    assert job_stats["pgy/notes_written"] == 4
    assert job_stats["pgy/code/0"] == 4
    assert job_stats["pgy/exit_code"] == 0
    assert job_stats["pgy/api_calls"] == 4
    log = scrapyd.page(finished["log_url"].lstrip("/"))
    assert "'pgy/notes_written': 4" in log
    assert_no_token(scrapyd, *ALL_TOKENS)


def test_ids_url_csv_seeds_fetched_by_the_job(scrapyd: ScrapydServer, sim: SimulatorClient) -> None:
    ids = make_note_ids(3, 200)
    rows = [f"笔记 {n},https://www.xiaohongshu.com/explore/{i}" for n, i in enumerate(ids)]
    (sim.seeds_dir / "x.csv").write_text(
        "\n".join(["title,link", *rows, "坏的,not-a-note", ""]), encoding="utf-8"
    )
    job = scrapyd.schedule({"ids_url": f"{sim.url}/seeds/x.csv"}, job_settings(scrapyd, sim))
    scrapyd.wait(job)
    assert_exit_ok(scrapyd, job)
    notes_path, failed_path, summary_path = outputs(scrapyd, job)
    assert sorted(n["noteId"] for n in read_jsonl(notes_path)) == sorted(ids)
    assert [f["reason"] for f in read_jsonl(failed_path)] == ["invalid_id"]
    summary = read_json(summary_path)
    assert (summary["seeds_read"], summary["notes_written"]) == (4, 3)
    assert sim.stats()["by_note"] == dict.fromkeys(ids, 1)
    assert scrapyd.job_stats(job)["pgy/notes_written"] == 3
    assert f"Seeds fetched from {sim.url}/seeds/x.csv" in scrapyd.job_log(job)
    assert_no_token(scrapyd, *ALL_TOKENS)


def test_token_file_on_the_host_wins_over_the_environment(
    scrapyd: ScrapydServer, sim: SimulatorClient, tmp_path: Path
) -> None:
    token_file = tmp_path / "secrets" / "justoneapi-token"  # outside everything Scrapyd shows
    token_file.parent.mkdir()
    token_file.write_text(FILE_TOKEN + "\n", encoding="utf-8")
    ids = make_note_ids(2, 300)
    settings = job_settings(scrapyd, sim, PGY_TOKEN_FILE=token_file)
    job = scrapyd.schedule({"ids": ",".join(ids)}, settings)
    scrapyd.wait(job)
    assert_exit_ok(scrapyd, job)
    notes_path, _, summary_path = outputs(scrapyd, job)
    assert sorted(n["noteId"] for n in read_jsonl(notes_path)) == sorted(ids)
    assert sim.stats()["by_token"] == {FILE_TOKEN: 2}  # not the environment's test-token-3
    assert read_json(summary_path)["tokens"].keys() == {_fingerprint(FILE_TOKEN)}
    assert_no_token(scrapyd, *ALL_TOKENS)


def test_time_template_names_every_output_with_the_run_start(
    scrapyd: ScrapydServer, sim: SimulatorClient
) -> None:
    out = scrapyd.out_dir / "stamped"
    settings = job_settings(
        scrapyd,
        sim,
        PGY_FEED_URI=f"{out}/%(name)s-%(time)s-%(job)s-notes.jsonl",
        PGY_FAILED_PATH=f"{out}/%(name)s-%(time)s-%(job)s-failed.jsonl",
        PGY_SUMMARY_PATH=f"{out}/%(name)s-%(time)s-%(job)s-summary.json",
    )
    job = scrapyd.schedule({"ids": make_note_id(350)}, settings)
    scrapyd.wait(job)
    assert_exit_ok(scrapyd, job)
    names = sorted(p.name for p in out.glob(f"{SPIDER}-*-{job}-*"))
    assert [n.rsplit("-", 1)[1] for n in names] == ["failed.jsonl", "notes.jsonl", "summary.json"]
    stamps = {n.removeprefix(f"{SPIDER}-").split(f"-{job}-")[0] for n in names}
    assert len(stamps) == 1, names  # one run, one %(time)s (its start), in all three
    start = read_json(out / names[2])["start_time"]
    assert stamps == {_parse(start).replace(microsecond=0).isoformat().replace(":", "-")}


def test_concurrent_jobs_with_the_same_templates_keep_their_own_files(
    scrapyd: ScrapydServer, sim: SimulatorClient
) -> None:
    # Slow answers and one request at a time: both jobs (max_proc = 2) run side by side.
    sim.configure(latency_ms=250)
    shared = make_note_ids(3, 400)
    (sim.seeds_dir / "shared.txt").write_text("\n".join(shared) + "\n", encoding="utf-8")
    own = {
        "first": make_note_ids(5, 410),
        "second": make_note_ids(5, 420),
    }
    settings = job_settings(scrapyd, sim, CONCURRENT_REQUESTS=1)
    jobs = {
        key: scrapyd.schedule(
            {"ids": ",".join([*ids, "bad-" + key]), "ids_url": f"{sim.url}/seeds/shared.txt"},
            settings,
        )
        for key, ids in own.items()
    }
    finished = scrapyd.wait(*jobs.values())
    first, second = (finished[jobs[k]] for k in ("first", "second"))
    assert _parse(first["start_time"]) < _parse(second["end_time"])
    assert _parse(second["start_time"]) < _parse(first["end_time"])  # they overlapped

    for key, job in jobs.items():
        assert_exit_ok(scrapyd, job)
        notes_path, failed_path, summary_path = outputs(scrapyd, job)
        assert sorted(n["noteId"] for n in read_jsonl(notes_path)) == sorted(own[key] + shared)
        assert [f["seed"] for f in read_jsonl(failed_path)] == ["bad-" + key]
        summary = read_json(summary_path)
        assert summary["notes_written"] == 8
        assert summary["failed_path"] == str(failed_path)
        assert scrapyd.job_stats(job)["pgy/notes_written"] == 8
    assert sim.stats()["by_note"] == {
        **dict.fromkeys(shared, 2),
        **dict.fromkeys(own["first"] + own["second"], 1),
    }
    assert_no_token(scrapyd, *ALL_TOKENS)


def test_mongo_uri_setting_stores_the_notes(
    scrapyd: ScrapydServer,
    sim: SimulatorClient,
    mongo_db: MongoTestDB,
    mongo_database: Any,
) -> None:
    ids = make_note_ids(3, 500)
    settings = job_settings(scrapyd, sim, MONGO_URI=mongo_db.uri, MONGO_DATABASE=mongo_db.name)
    job = scrapyd.schedule({"ids": ",".join(ids)}, settings)
    scrapyd.wait(job)
    assert_exit_ok(scrapyd, job)
    stored = {doc["_id"] for doc in mongo_database["notes"].find({}, projection={"_id": True})}
    assert stored == set(ids)
    notes_path, _, _ = outputs(scrapyd, job)
    assert sorted(n["noteId"] for n in read_jsonl(notes_path)) == sorted(ids)
    assert_no_token(scrapyd, *ALL_TOKENS)


def test_items_dir_feed_replaces_pgy_feed_uri(
    scrapyd_items: ScrapydServer, sim: SimulatorClient, tmp_path: Path
) -> None:
    """Scrapyd with ``items_dir`` passes ``-s FEEDS={<items_dir>/<project>/<spider>/<job>.jl:
    jsonlines}``: that is the job's only feed (PGY_FEED_URI is not written); the failed
    and summary files still go where their settings say. This server has no token in
    its environment: the job reads a token file."""
    token_file = tmp_path / "secrets" / "token"
    token_file.parent.mkdir()
    token_file.write_text(FILE_TOKEN, encoding="utf-8")
    ids = make_note_ids(3, 600)
    settings = job_settings(scrapyd_items, sim, PGY_TOKEN_FILE=token_file)
    job = scrapyd_items.schedule({"ids": ",".join(ids)}, settings)
    finished = scrapyd_items.wait(job)[job]
    assert_exit_ok(scrapyd_items, job)

    items = scrapyd_items.items_file(job)
    assert finished["items_url"] == f"/items/{PROJECT}/{SPIDER}/{job}.jl"
    assert sorted(n["noteId"] for n in read_jsonl(items)) == sorted(ids)
    raw = items.read_text(encoding="utf-8")
    assert "\\u" not in raw  # FEED_EXPORT_ENCODING applies to Scrapyd's feed too
    notes_path, failed_path, summary_path = outputs(scrapyd_items, job)
    assert not notes_path.exists()
    assert failed_path.exists()
    assert read_json(summary_path)["notes_written"] == 3
    assert sim.stats()["by_token"] == {FILE_TOKEN: 3}
    assert_no_token(scrapyd_items, *ALL_TOKENS)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _fingerprint(token: str) -> str:
    from pgy_spider.api import token_fingerprint

    return token_fingerprint(token)


def test_token_in_schedule_json_would_leak(scrapyd: ScrapydServer, sim: SimulatorClient) -> None:
    """Why the README forbids ``setting=PGY_TOKEN=...``: Scrapyd writes every job's
    arguments to its own log (and shows them in listjobs.json while pending). This also
    proves the leak check above finds what it looks for."""
    canary = "leak-canary-6c1f0e"  # not a token the simulator accepts: the API refuses it
    settings = job_settings(scrapyd, sim, PGY_TOKEN=canary)
    job = scrapyd.schedule({"ids": make_note_id(700)}, settings)
    scrapyd.wait(job)
    assert str(scrapyd.daemon_log) in scrapyd.find_secret(canary)


def test_user_error_stops_the_job_before_any_call(
    scrapyd: ScrapydServer, sim: SimulatorClient, tmp_path: Path
) -> None:
    """A token file missing on the host: exit status 2, no API call, and the one-line
    reason where the Scrapyd operator can read it (today the preflight prints it to
    stderr, which Scrapyd copies to its own log, not to the job log)."""
    missing = tmp_path / "no-such-token-file"
    settings = job_settings(scrapyd, sim, PGY_TOKEN_FILE=missing)
    job = scrapyd.schedule({"ids": make_note_id(701)}, settings)
    scrapyd.wait(job)
    assert "exitstatus=2" in scrapyd.exit_line(job)
    assert sim.stats()["calls"] == 0
    message = f"PGY_TOKEN_FILE {str(missing)!r} cannot be read"
    daemon_log = scrapyd.daemon_log.read_text(encoding="utf-8", errors="replace")
    assert message in scrapyd.job_log(job) + daemon_log
