"""Reliability: the token never leaks — not to a log, a file, the stats or a database.

Each crawl runs with a distinctive token at DEBUG level, with the faults whose handling
is most likely to quote a URL (301, HTML 502, resets, timeouts, malformed JSON), with
JOBDIR, the HTTP cache, a log file and a feed. Then every byte written under the work
directory, stdout and stderr is searched for the token in every form it could take in a
URL (raw, percent-encoded, form-encoded).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from pymongo.database import Database

from pgy_spider.api import REGIONS, token_fingerprint
from tests.support.accounting import assert_accounted, assert_balanced
from tests.support.crawl import CrawlResult, parse_stats, read_jsonl, run_crawl
from tests.support.ids import make_note_ids, not_found_id
from tests.support.mongo import MongoTestDB
from tests.support.simulator import SimulatorClient

TOKEN = "sk-PGY-SECRET-7f3a9c"
# Characters that URL quoting changes, so the quoted form differs from the raw one.
SPECIAL_TOKEN = "sk-PGY+SECRET/7f3a9c=="
CN_BASE = REGIONS["cn"]
PLAIN_HTTP_WARNING = "is plain HTTP: the token travels unencrypted"
SLOW_SECONDS = 0.8
FAULTS = {
    "seed": 4,
    "rate_301": 0.15,
    "http502_html": 0.1,
    "reset": 0.1,
    "slow": 0.15,
    "slow_seconds": SLOW_SECONDS,
    "malformed": 0.1,
}


def token_pattern(token: str) -> re.Pattern[bytes]:
    """The token in any spelling a URL, a log or a file could hold: raw, or with any of its
    characters percent-encoded (either case of hex digits), or form-encoded."""
    parts = []
    for char in token:
        raw = re.escape(char.encode())
        escaped = quote(char, safe="").encode()
        if escaped == char.encode():
            parts.append(raw)
        else:
            hex_digits = escaped.decode()[1:]
            parts.append(b"(?:" + raw + b"|%(?i:" + hex_digits.encode() + b"))")
    return re.compile(b"".join(parts))


def leaks(token: str, root: Path, **texts: str) -> list[str]:
    """Where the token occurs: files under ``root`` (recursively, as bytes) and ``texts``."""
    pattern = token_pattern(token)
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and (match := pattern.search(path.read_bytes())):
            found.append(f"{path.relative_to(root)}: {match.group()!r}")
    for name, text in texts.items():
        if match := pattern.search(text.encode("utf-8", "surrogateescape")):
            found.append(f"{name}: {match.group()!r}")
    return found


def test_leak_scanner_finds_every_form(tmp_path: Path) -> None:
    """A scanner that finds nothing must be a scanner that would have found something."""
    low_escapes = quote(SPECIAL_TOKEN, safe="").replace("%2B", "%2b").replace("%2F", "%2f")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "cache.bin").write_bytes(b"\x80\x04" + low_escapes.encode())
    (tmp_path / "plain.log").write_text(f"url?token={quote_plus(SPECIAL_TOKEN)}")
    found = leaks(SPECIAL_TOKEN, tmp_path, stderr=f"x{SPECIAL_TOKEN}x", stdout="clean")
    assert [f.split(":")[0] for f in found] == ["a/b/cache.bin", "plain.log", "stderr"]
    assert leaks(TOKEN, tmp_path, stdout="sk-PGY-SECRET-7f3a9") == []


def _seeds(n: int) -> list[str]:
    ids = make_note_ids(n)
    # A duplicate, a rejected seed and a note the API does not have (201) too.
    return [*ids, ids[0], "not-a-note", not_found_id(0)]


def _crawl_with_everything(
    tmp_path: Path,
    token: str,
    seeds: list[str],
    *feed_args: str,
    sim_url: str | None,
    settings: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> CrawlResult:
    (tmp_path / "seeds.txt").write_text("\n".join(seeds) + "\n", encoding="utf-8")
    merged = {
        "LOG_LEVEL": "DEBUG",
        "LOG_FILE": "crawl.log",
        "JOBDIR": "job",
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_DIR": str(tmp_path / "httpcache"),
        "PGY_RETRY_TIMES": 2,
        "DOWNLOAD_TIMEOUT": 0.5,
        "PGY_PROGRESS_INTERVAL": 0.2,
        **(settings or {}),
    }
    result = run_crawl(
        tmp_path,
        "-a",
        "ids_file=seeds.txt",
        *feed_args,
        sim_url=sim_url,
        token=token,
        settings=merged,
        env=env,
    )
    # Slow answers finish (at the simulator) after the client gave up: let them, so they
    # do not land in the next test's counters.
    time.sleep(SLOW_SECONDS + 0.3)
    return result


def _log(result: CrawlResult) -> str:
    return (result.workdir / "crawl.log").read_text(encoding="utf-8")


def _assert_nothing_leaked(result: CrawlResult, token: str) -> None:
    assert leaks(token, result.workdir, stdout=result.stdout, stderr=result.stderr) == []
    summary = result.summary
    assert token not in json.dumps(summary)
    assert summary["tokens"].keys() == {token_fingerprint(token)}
    stats = parse_stats(_log(result))
    assert stats, "the closing stats dump is in the log file"
    assert not [k for k, v in stats.items() if token in k or token in str(v)]
    for record in read_jsonl(result.output / "failed.jsonl"):
        assert token not in json.dumps(record, ensure_ascii=False)


def _assert_faults_were_exercised(result: CrawlResult, sim: SimulatorClient, token: str) -> None:
    """The search above only means something if the token was used on faulty calls."""
    stats = sim.stats()
    assert stats["by_token"].get(token, 0) > 0, stats  # arrived intact, however quoted
    assert set(stats["by_token"]) == {token}
    for fault in ("301", "http502_html", "reset", "malformed"):
        assert stats["by_code"].get(fault, 0) > 0, (fault, stats["by_code"])
    log = _log(result)
    assert "DownloadTimeoutError" in log  # a slow answer really timed out
    assert " DEBUG: " in log and "Retrying <GET" in log
    assert result.summary["possibly_billed"] > 0
    # JOBDIR, the HTTP cache and the feeds were really written.
    assert (result.workdir / "job" / "pgy-state.json").is_file()
    assert (result.workdir / "job" / "pgy-seen.bin").is_file()
    assert any(p.is_file() for p in (result.workdir / "httpcache").rglob("*"))
    assert result.summary["notes_written"] > 0


@pytest.mark.parametrize(
    ("mode", "token", "feed_args"),
    [
        pytest.param("global", TOKEN, (), id="global-default-jsonl-feed"),
        pytest.param("global", SPECIAL_TOKEN, ("-O", "notes.csv"), id="global-csv-feed"),
        pytest.param("cn-base-url", TOKEN, ("-O", "notes.csv"), id="cn-base-url-csv-feed"),
        pytest.param("cn-proxy", SPECIAL_TOKEN, (), id="cn-via-proxy-default-jsonl-feed"),
    ],
)
def test_token_is_written_nowhere(
    tmp_path: Path,
    sim: SimulatorClient,
    mode: str,
    token: str,
    feed_args: tuple[str, ...],
) -> None:
    sim.configure(tokens=[token], **FAULTS)
    settings: dict[str, Any] = {}
    env: dict[str, str] = {}
    sim_url: str | None = sim.url
    if mode == "cn-base-url":
        settings["PGY_REGION"] = "cn"
    elif mode == "cn-proxy":
        # The real cn base URL, but every request goes through the simulator acting as a
        # plain HTTP proxy: no call leaves this machine.
        settings["PGY_REGION"] = "cn"
        sim_url = None
        env = {"http_proxy": sim.url, "HTTP_PROXY": sim.url, "no_proxy": "", "NO_PROXY": ""}
    result = _crawl_with_everything(
        tmp_path, token, _seeds(20), *feed_args, sim_url=sim_url, settings=settings, env=env
    )
    assert result.returncode == 0, result
    assert result.stderr.count("Traceback") == 0
    _assert_faults_were_exercised(result, sim, token)
    if feed_args:
        assert (tmp_path / "notes.csv").stat().st_size > 0
    else:
        assert result.notes
    _assert_nothing_leaked(result, token)

    summary = result.summary
    assert_balanced(summary)
    warnings = (result.stderr + _log(result)).count(PLAIN_HTTP_WARNING)
    if mode == "cn-proxy":
        assert summary["api_base"] == CN_BASE
        assert warnings == 1
    else:
        assert summary["api_base"] == sim.url
        assert warnings == 0  # the simulator is on loopback: nothing travels the network


@pytest.fixture
def silent_proxy() -> Iterator[str]:
    """A loopback "proxy" that accepts connections and never answers (every call times out)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize("token", [TOKEN, SPECIAL_TOKEN])
def test_cn_region_timeouts_warn_once_and_leak_nothing(
    tmp_path: Path, silent_proxy: str, token: str
) -> None:
    """PGY_REGION=cn, no PGY_BASE_URL: plain HTTP to a non-loopback host, every call timing
    out (the timeout message quotes the URL the token was added to)."""
    ids = make_note_ids(3)
    (tmp_path / "seeds.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    env = {"http_proxy": silent_proxy, "HTTP_PROXY": silent_proxy, "no_proxy": "", "NO_PROXY": ""}
    result = run_crawl(
        tmp_path,
        "-a",
        "ids_file=seeds.txt",
        token=token,
        settings={
            "PGY_REGION": "cn",
            "DOWNLOAD_TIMEOUT": 0.5,
            "PGY_RETRY_TIMES": 0,
            "LOG_LEVEL": "DEBUG",
        },
        env=env,
    )
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if PLAIN_HTTP_WARNING in line]
    assert len(warnings) == 1, warnings
    assert f"API base {CN_BASE} is plain HTTP" in warnings[0]
    assert " WARNING: " in warnings[0]
    summary = result.summary
    assert summary["api_base"] == CN_BASE
    assert summary["failed_by_reason"] == {"transport_error": 3}
    assert summary["possibly_billed"] == 3  # sent, then no answer: maybe billed
    assert result.stats["pgy/transport/DownloadTimeoutError"] == 3
    assert_accounted(result)
    assert leaks(token, result.workdir, stdout=result.stdout, stderr=result.stderr) == []
    assert summary["tokens"] == {token_fingerprint(token): {"calls": 0, "retired": None}}


def test_plain_http_base_url_on_a_remote_host_warns_once(tmp_path: Path) -> None:
    """PGY_BASE_URL on plain HTTP to a non-loopback host (TEST-NET-1: never routed)."""
    ids = make_note_ids(2)
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        sim_url="http://192.0.2.1:30015",
        token=TOKEN,
        settings={"DOWNLOAD_TIMEOUT": 0.5, "PGY_RETRY_TIMES": 0, "LOG_LEVEL": "DEBUG"},
    )
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    assert result.stderr.count(PLAIN_HTTP_WARNING) == 1
    assert result.summary["failed_by_reason"] == {"transport_error": 2}
    assert leaks(TOKEN, result.workdir, stdout=result.stdout, stderr=result.stderr) == []


@pytest.mark.mongo
def test_token_never_stored_in_mongodb(
    tmp_path: Path,
    sim: SimulatorClient,
    mongo_db: MongoTestDB,
    mongo_database: Database[dict[str, Any]],
) -> None:
    sim.configure(tokens=[SPECIAL_TOKEN], **FAULTS)
    result = _crawl_with_everything(
        tmp_path,
        SPECIAL_TOKEN,
        _seeds(20),
        sim_url=sim.url,
        settings={"MONGO_URI": mongo_db.uri, "MONGO_DATABASE": mongo_db.name},
    )
    assert result.returncode == 0, result
    _assert_faults_were_exercised(result, sim, SPECIAL_TOKEN)
    _assert_nothing_leaked(result, SPECIAL_TOKEN)
    written = result.summary["notes_written"]
    names = mongo_database.list_collection_names()
    assert "notes" in names
    assert mongo_database["notes"].count_documents({}) == written
    pattern = token_pattern(SPECIAL_TOKEN)
    documents = 0
    for name in names:
        for doc in mongo_database[name].find({}):
            documents += 1
            text = json.dumps(doc, default=str, ensure_ascii=False).encode()
            assert not pattern.search(text), (name, doc.get("_id"))
        for index in mongo_database[name].list_indexes():
            assert not pattern.search(json.dumps(dict(index), default=str).encode())
    assert documents >= written
