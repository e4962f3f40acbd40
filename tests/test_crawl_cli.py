"""End-to-end: the command line as a user meets it.

User mistakes cost no API call and print one ``error:`` line (exit 2, no traceback); the
token can come from the setting, a file or the environment and never shows in any output;
feeds (-o/-O) in CSV, JSON and JSON lines; concurrency; output paths with placeholders.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tests.support.crawl import CrawlResult, read_jsonl, run_crawl
from tests.support.ids import make_note_id, make_note_ids
from tests.support.simulator import SimulatorClient

CJK = re.compile(r"[\u4e00-\u9fff]")


def _assert_user_error(result: CrawlResult, sim: SimulatorClient, *words: str) -> str:
    """One ``error:`` line naming the problem, exit 2, no traceback, no call, no outputs."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    line = errors[0]
    for word in words:
        assert word in line, line
    # Nothing of the crawl ran: no spider opened, no output files, no call.
    assert "Spider opened" not in result.stderr
    assert not result.output.exists()
    assert sim.stats()["calls"] == 0
    return line


# -- user errors ------------------------------------------------------------------------------


def test_missing_token(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(tmp_path, "-a", f"ids={make_note_id(0)}", sim_url=sim.url, token=None)
    _assert_user_error(result, sim, "token", "JUSTONEAPI_TOKEN", "PGY_TOKEN")


def test_unreadable_token_file(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids={make_note_id(0)}",
        sim_url=sim.url,
        token=None,
        settings={"PGY_TOKEN_FILE": "no-such-token.txt"},
    )
    _assert_user_error(result, sim, "PGY_TOKEN_FILE", "no-such-token.txt")


@pytest.mark.parametrize("where", ["setting", "env"])
def test_unknown_region(tmp_path: Path, sim: SimulatorClient, where: str) -> None:
    settings = {"PGY_REGION": "mars"} if where == "setting" else {}
    env = {"PGY_REGION": "mars"} if where == "env" else {}
    # No PGY_BASE_URL: the region is what picks the host.
    result = run_crawl(tmp_path, "-a", f"ids={make_note_id(0)}", settings=settings, env=env)
    _assert_user_error(result, sim, "PGY_REGION", "mars")


def test_bad_base_url(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(
        tmp_path, "-a", f"ids={make_note_id(0)}", settings={"PGY_BASE_URL": "ftp://example"}
    )
    _assert_user_error(result, sim, "PGY_BASE_URL")


def test_an_empty_event_loop_setting(tmp_path: Path, sim: SimulatorClient) -> None:
    # What a user tries first to run without uvloop: one line saying what to give instead.
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids={make_note_id(0)}",
        sim_url=sim.url,
        settings={"ASYNCIO_EVENT_LOOP": ""},
    )
    _assert_user_error(result, sim, "ASYNCIO_EVENT_LOOP", "asyncio.SelectorEventLoop")


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("DOWNLOADER_CLIENT_TLS_CIPHERS", "NO-SUCH-CIPHER", ("TLS_CIPHERS", "cipher list")),
        ("DOWNLOAD_TLS_MIN_VERSION", "TLSv9", ("DOWNLOAD_TLS_MIN_VERSION", "TLSv1.2")),
    ],
)
def test_tls_settings_that_make_no_tls_context(
    tmp_path: Path, sim: SimulatorClient, setting: str, value: str, words: tuple[str, ...]
) -> None:
    # The client builds its TLS context at its first TLS call: without this check every
    # note of the run failed as a transport error, exit 0.
    result = run_crawl(
        tmp_path, "-a", f"ids={make_note_id(0)}", sim_url=sim.url, settings={setting: value}
    )
    _assert_user_error(result, sim, *words)


def test_no_seeds_argument(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(tmp_path, sim_url=sim.url)
    _assert_user_error(result, sim, "no seeds", "ids_file", "ids_url")


def test_output_path_not_creatable(tmp_path: Path, sim: SimulatorClient) -> None:
    (tmp_path / "blocker").write_text("a file, not a directory", encoding="utf-8")
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids={make_note_id(0)}",
        sim_url=sim.url,
        settings={"PGY_FAILED_PATH": "blocker/failed.jsonl"},
    )
    assert result.returncode == 2, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "blocker" in errors[0]
    assert "Traceback" not in result.stderr
    assert sim.stats()["calls"] == 0


def test_empty_seed_file_is_a_warning(tmp_path: Path, sim: SimulatorClient) -> None:
    good = make_note_id(0)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "seeds.txt").write_text(good + "\n", encoding="utf-8")
    result = run_crawl(tmp_path, "-a", "ids_file=empty.txt,seeds.txt", sim_url=sim.url)
    assert result.returncode == 0, result
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "empty.txt" in warnings[0]
    assert [n["noteId"] for n in result.notes] == [good]


def test_blank_inline_ids_are_no_seeds(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(tmp_path, "-a", "ids= , ,", sim_url=sim.url)
    _assert_user_error(result, sim, "no seeds")


def test_ids_url_not_http(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(tmp_path, "-a", "ids_url=ftp://x", sim_url=sim.url)
    _assert_user_error(result, sim, "ftp://x")


# -- where the token comes from -----------------------------------------------------------------


def test_token_from_env(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(2)
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        token=None,
        env={"JUSTONEAPI_TOKEN": "test-token-2"},
    )
    assert result.returncode == 0, result
    assert sorted(n["noteId"] for n in result.notes) == sorted(ids)
    assert sim.stats()["by_token"] == {"test-token-2": 2}


@pytest.mark.parametrize("where", ["setting", "env"])
def test_token_from_file(tmp_path: Path, sim: SimulatorClient, where: str) -> None:
    ids = make_note_ids(2)
    token_file = tmp_path / "token.txt"
    token_file.write_text("\ufefftest-token-3\r\n", encoding="utf-8")  # Notepad-style
    settings = {"PGY_TOKEN_FILE": str(token_file)} if where == "setting" else {}
    env = {"PGY_TOKEN_FILE": str(token_file)} if where == "env" else {}
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        token=None,
        settings=settings,
        env={"JUSTONEAPI_TOKEN": "test-token", **env},  # the file wins over the env variable
    )
    assert result.returncode == 0, result
    assert len(result.notes) == 2
    assert sim.stats()["by_token"] == {"test-token-3": 2}
    assert "test-token-3" not in result.stderr


def test_several_tokens_from_env_and_file(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(3)
    result = run_crawl(
        tmp_path / "env",
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        token=None,
        settings={"CONCURRENT_REQUESTS": 1},
        env={"JUSTONEAPI_TOKEN": "revoked-token, test-token-2"},
    )
    assert result.returncode == 0, result
    assert len(result.notes) == 3
    assert sim.stats()["by_token"] == {"revoked-token": 1, "test-token-2": 3}

    sim.reset()
    token_file = tmp_path / "tokens.txt"
    token_file.write_text("revoked-token\ntest-token-3\n", encoding="utf-8")  # one per line
    result = run_crawl(
        tmp_path / "file",
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        token=None,
        settings={"PGY_TOKEN_FILE": str(token_file), "CONCURRENT_REQUESTS": 1},
    )
    assert result.returncode == 0, result
    assert len(result.notes) == 3
    assert sim.stats()["by_token"] == {"revoked-token": 1, "test-token-3": 3}
    retired = [t["retired"] for t in result.summary["tokens"].values()]
    assert retired == ["pgy_invalid_token", None]
    assert "revoked-token" not in result.stderr


def test_token_setting_wins_over_env(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids={make_note_id(0)}",
        sim_url=sim.url,
        token="test-token-2",
        env={"JUSTONEAPI_TOKEN": "test-token"},
    )
    assert result.returncode == 0, result
    assert sim.stats()["by_token"] == {"test-token-2": 1}


def test_token_never_logged_even_at_debug(tmp_path: Path, sim: SimulatorClient) -> None:
    secret = "Zq9+sec/ret=tok&x"  # characters that change when URL-quoted
    sim.configure(tokens=[secret], reset=0.4, seed=7, note_codes={make_note_id(3): 400})
    ids = make_note_ids(5)
    (tmp_path / "seeds.txt").write_text("\n".join([*ids, "bad-seed"]) + "\n", encoding="utf-8")
    result = run_crawl(
        tmp_path,
        "-a",
        "ids_file=seeds.txt",
        sim_url=sim.url,
        token=secret,
        settings={"LOG_LEVEL": "DEBUG", "PGY_RETRY_TIMES": 10},
    )
    assert result.stats["finish_reason"] == "finished", result
    # The token did reach the API (every call was accepted) ...
    stats = sim.stats()
    assert stats["by_token"] == {secret: stats["calls"]}
    assert stats["by_code"].get("reset", 0) > 0  # transport errors were logged too
    assert len(result.notes) == 4
    assert "DEBUG" in result.stderr  # the debug log really was on
    # ... and appears nowhere: not raw, not URL-quoted, in no log line and no output file.
    texts = [result.stdout, result.stderr]
    texts += [p.read_text(encoding="utf-8") for p in result.output.rglob("*") if p.is_file()]
    for text in texts:
        for form in {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}:
            assert form not in text


def test_token_not_in_log_file(tmp_path: Path, sim: SimulatorClient) -> None:
    sim.configure(reset=0.4, seed=7, note_codes={make_note_id(2): 500})
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(make_note_ids(5)),
        sim_url=sim.url,
        settings={"LOG_FILE": "crawl.log", "LOG_LEVEL": "DEBUG", "PGY_RETRY_TIMES": 3},
    )
    assert result.returncode == 0, result
    log = (tmp_path / "crawl.log").read_text(encoding="utf-8")
    assert "Dumping Scrapy stats" in log
    assert "Gave up retrying" in log  # the error paths were logged
    assert sim.stats()["by_code"].get("reset", 0) > 0
    assert "test-token" not in log
    assert "test-token" not in result.stderr


def test_token_in_no_file_with_jobdir_and_http_cache(tmp_path: Path, sim: SimulatorClient) -> None:
    secret = "Zq9+sec/ret=tok&x"
    sim.configure(tokens=[secret], not_found_ids=[make_note_id(1)])
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(make_note_ids(3)),
        sim_url=sim.url,
        token=secret,
        settings={
            "JOBDIR": "job",
            "HTTPCACHE_ENABLED": True,
            "HTTPCACHE_DIR": str(tmp_path / "cache"),
        },
    )
    assert result.returncode == 0, result
    assert "HttpCacheMiddleware" in result.stderr
    assert len(result.notes) == 2
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("job" in p.parts for p in files)
    assert any("cache" in p.relative_to(tmp_path).parts for p in files)
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    for path in files:
        data = path.read_bytes()
        for form in forms:
            assert form.encode() not in data, path


def test_plain_http_base_warns(tmp_path: Path, sim: SimulatorClient) -> None:
    # 0.0.0.0 reaches the local simulator but is not a loopback name: the warning must show.
    url = sim.url.replace("127.0.0.1", "0.0.0.0")
    result = run_crawl(tmp_path, "-a", f"ids={make_note_id(0)}", sim_url=url)
    assert result.returncode == 0, result
    assert "plain HTTP" in result.stderr
    assert "test-token" not in result.stderr
    assert len(result.notes) == 1


# -- feeds ----------------------------------------------------------------------------------------


def _feed_run(tmp_path: Path, sim: SimulatorClient, *feed_args: str, n: int = 3) -> CrawlResult:
    ids = make_note_ids(n)
    result = run_crawl(tmp_path, "-a", "ids=" + ",".join(ids), *feed_args, sim_url=sim.url)
    assert result.returncode == 0, result
    assert sim.stats()["calls"] == n
    return result


def test_csv_feed_for_excel(tmp_path: Path, sim: SimulatorClient) -> None:
    result = _feed_run(tmp_path, sim, "-O", "notes.csv")
    path = tmp_path / "notes.csv"
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    assert data.count(b"\xef\xbb\xbf") == 1
    assert b"\\u" not in data
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        rows = list(reader)
    assert sorted(r["noteId"] for r in rows) == sorted(make_note_ids(3))
    assert len(header) == len(set(header))
    assert "raw" not in header  # the bulky raw payload is left out of the CSV
    for column in ("noteId", "title", "likeNum", "kol", "imageUrls", "topics", "createdAt"):
        assert column in header
    for row in rows:
        # Chinese intact, nested values as JSON text, one scalar per cell.
        assert CJK.search(row["content"])
        kol = json.loads(row["kol"])
        assert isinstance(kol, dict)
        assert CJK.search(json.dumps(kol, ensure_ascii=False))
        urls = json.loads(row["imageUrls"])
        assert isinstance(urls, list)
        assert all(u.startswith("http") for u in urls)
        assert isinstance(json.loads(row["topics"]), list)
        assert row["likeNum"].isdigit()
    # -O replaces the default feed: no JSON-lines file next to it.
    assert not (result.output / "notes.jsonl").exists()


def test_json_feed(tmp_path: Path, sim: SimulatorClient) -> None:
    result = _feed_run(tmp_path, sim, "-o", "notes.json")
    text = (tmp_path / "notes.json").read_text(encoding="utf-8")
    assert "\\u" not in text
    assert CJK.search(text)
    notes = json.loads(text)
    assert isinstance(notes, list)
    assert sorted(n["noteId"] for n in notes) == sorted(make_note_ids(3))
    assert not (result.output / "notes.jsonl").exists()


def test_jsonl_feed_replaces_default(tmp_path: Path, sim: SimulatorClient) -> None:
    (tmp_path / "x.jsonl").write_text('{"old": true}\n', encoding="utf-8")
    result = _feed_run(tmp_path, sim, "-O", "x.jsonl")
    notes = read_jsonl(tmp_path / "x.jsonl")
    assert sorted(n["noteId"] for n in notes) == make_note_ids(3)  # -O replaced the old line
    for note in notes:
        # Normalised: the ID's creation time as ISO UTC, the untouched API data kept in raw.
        assert note["createdAt"] == "2024-02-05T10:10:04Z"
        assert note["createTime"] == 1707127804000
        assert note["raw"]["noteId"] == note["noteId"]
        assert note["noteType"] in ("picture", "video")
    assert not (result.output / "notes.jsonl").exists()
    # The run's own files are still written where they always are.
    assert result.summary["notes_written"] == 3


def test_csv_feed_appended_by_a_second_run(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b = make_note_ids(2)
    for note in (a, b):
        result = run_crawl(tmp_path, "-a", f"ids={note}", "-o", "notes.csv", sim_url=sim.url)
        assert result.returncode == 0, result
    data = (tmp_path / "notes.csv").read_bytes()
    assert data.count(b"\xef\xbb\xbf") == 1  # one BOM, at the start
    with (tmp_path / "notes.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "noteId"
    assert [r[0] for r in rows[1:]] == [a, b]  # one header line, then both runs' rows


def test_placeholder_paths_leave_no_stray_directories(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids={make_note_id(0)}",
        sim_url=sim.url,
        settings={
            "PGY_FAILED_PATH": "runs/%(name)s/failed.jsonl",
            "PGY_SUMMARY_PATH": "runs/%(time)s/summary.json",
        },
    )
    assert result.returncode == 0, result
    made = {p.name for p in (tmp_path / "runs").iterdir()}
    # The failed file's directory and the summary's, nothing else.
    others = made - {"note_detail"}
    assert "note_detail" in made
    assert len(others) == 1, made
    (start,) = others
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d[+-]\d\d-\d\d", start), made


def test_feed_uri_placeholders_match_the_summary(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids={make_note_id(0)}",
        "-a",
        "_job=job42",
        sim_url=sim.url,
        settings={
            "PGY_FEED_URI": "runs/%(name)s-%(time)s.jsonl",
            "PGY_SUMMARY_PATH": "runs/%(name)s-%(time)s.json",
            "PGY_FAILED_PATH": "runs/%(job)s-failed.jsonl",
        },
    )
    assert result.returncode == 0, result
    feeds = list((tmp_path / "runs").glob("note_detail-*.jsonl"))
    summaries = list((tmp_path / "runs").glob("note_detail-*.json"))
    assert len(feeds) == 1
    assert len(summaries) == 1
    assert feeds[0].stem == summaries[0].stem  # one run, one %(time)s
    assert [n["noteId"] for n in read_jsonl(feeds[0])] == [make_note_id(0)]
    assert (tmp_path / "runs" / "job42-failed.jsonl").exists()
    assert not (result.output / "notes.jsonl").exists()


def test_default_feed_is_replaced_by_a_new_run(tmp_path: Path, sim: SimulatorClient) -> None:
    first = run_crawl(tmp_path, "-a", f"ids={make_note_id(0)}", sim_url=sim.url)
    assert first.returncode == 0, first
    second = run_crawl(tmp_path, "-a", f"ids={make_note_id(1)}", sim_url=sim.url)
    assert second.returncode == 0, second
    assert [n["noteId"] for n in second.notes] == [make_note_id(1)]


# -- concurrency -----------------------------------------------------------------------------------


def test_concurrent_requests_beyond_per_domain_default(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    ids = make_note_ids(40)
    sim.configure(latency_ms=300)
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        settings={"CONCURRENT_REQUESTS": 20},
    )
    assert result.returncode == 0, result
    assert len(result.notes) == 40
    stats = sim.stats()
    assert stats["calls"] == 40
    # Scrapy's per-domain default (8) would cap this: every call goes to one host.
    assert stats["max_concurrency"] > 8
    assert stats["max_concurrency"] <= 20
    # The spider raised the per-domain limit to CONCURRENT_REQUESTS (Scrapy 2.19 does not
    # enforce per-domain limits reliably, so the peak alone would not show it).
    assert _overridden_setting(result, "CONCURRENT_REQUESTS_PER_DOMAIN") == "20"


def test_concurrent_requests_lower_limit_is_kept(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(6)
    sim.configure(latency_ms=100)
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        settings={"CONCURRENT_REQUESTS": 2},
    )
    assert result.returncode == 0, result
    assert sim.stats()["max_concurrency"] == 2


def _overridden_setting(result: CrawlResult, name: str) -> str:
    """A setting's value in force, from Scrapy's "Overridden settings" log dump."""
    _, _, dump = result.stderr.partition("Overridden settings:")
    match = re.search(rf"'{name}': '?([^',}}]+)'?", dump)
    assert match, dump[:2000]
    return match.group(1)


def test_explicit_per_domain_setting_is_kept(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids={make_note_id(0)}",
        sim_url=sim.url,
        settings={"CONCURRENT_REQUESTS": 20, "CONCURRENT_REQUESTS_PER_DOMAIN": 3},
    )
    assert result.returncode == 0, result
    assert _overridden_setting(result, "CONCURRENT_REQUESTS_PER_DOMAIN") == "3"


@pytest.mark.xfail(
    strict=True,
    reason="Scrapy 2.19 bug, not product code: Downloader._process_queue() schedules "
    "_wait_for_download() as an asyncio task, and the request joins slot.transferring only "
    "when the task runs, so the loop dispatches every queued request at once and "
    "CONCURRENT_REQUESTS_PER_DOMAIN is not enforced (only CONCURRENT_REQUESTS is)",
)
def test_explicit_per_domain_limit_is_enforced(tmp_path: Path, sim: SimulatorClient) -> None:
    sim.configure(latency_ms=100)
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(make_note_ids(12)),
        sim_url=sim.url,
        settings={"CONCURRENT_REQUESTS": 20, "CONCURRENT_REQUESTS_PER_DOMAIN": 3},
    )
    assert result.returncode == 0, result
    assert sim.stats()["max_concurrency"] <= 3


def test_progress_lines(tmp_path: Path, sim: SimulatorClient) -> None:
    sim.configure(latency_ms=100)
    ids = make_note_ids(10)
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        settings={"PGY_PROGRESS_INTERVAL": 0.3, "CONCURRENT_REQUESTS": 1},
    )
    assert result.returncode == 0, result
    progress = [line for line in result.stderr.splitlines() if "Progress:" in line]
    assert len(progress) >= 2, result.stderr
    assert re.search(r"Progress: \d+/10 seeds read settled", progress[-1])

    off = run_crawl(
        tmp_path / "off",
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        settings={"PGY_PROGRESS_INTERVAL": 0, "CONCURRENT_REQUESTS": 1},
    )
    assert off.returncode == 0, off
    assert "Progress:" not in off.stderr


# -- output paths ----------------------------------------------------------------------


def test_failed_and_summary_paths_with_placeholders(tmp_path: Path, sim: SimulatorClient) -> None:
    good = make_note_id(0)
    result = run_crawl(
        tmp_path,
        "-a",
        f"ids={good},not-a-note",
        sim_url=sim.url,
        settings={
            "PGY_FAILED_PATH": "runs/%(name)s/failed.jsonl",
            "PGY_SUMMARY_PATH": "runs/%(name)s-%(time)s.json",
        },
    )
    assert result.stats["finish_reason"] == "finished", result
    failed = read_jsonl(tmp_path / "runs" / "note_detail" / "failed.jsonl")
    assert [(f["seed"], f["reason"]) for f in failed] == [("not-a-note", "invalid_id")]
    summaries = list((tmp_path / "runs").glob("note_detail-*.json"))
    assert len(summaries) == 1, summaries
    name = summaries[0].name
    # %(time)s is the start time, file-name safe (no ':').
    assert re.fullmatch(r"note_detail-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d[+-]\d\d-\d\d\.json", name)
    summary: dict[str, Any] = json.loads(summaries[0].read_text(encoding="utf-8"))
    assert summary["failed_path"] == "runs/note_detail/failed.jsonl"
    assert summary["notes_written"] == 1
    assert summary["rejected"] == 1
    assert summary["start_time"][:19].replace(":", "-") == name[len("note_detail-") :][:19]
    # Nothing was written to the default places.
    assert not (result.output / "summary.json").exists()
    assert not (result.output / "failed.jsonl").exists()
    assert [n["noteId"] for n in result.notes] == [good]
