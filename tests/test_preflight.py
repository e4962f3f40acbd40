"""In-process tests of the checks made before any call: each problem is one clear line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scrapy.settings import Settings

from pgy_spider import jobstate
from pgy_spider.errors import ConfigError, UserError
from pgy_spider.preflight import preflight
from pgy_spider.seeds import SeedFileError
from tests.support.components import settings_dict
from tests.support.crawl import modules_loaded_by


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JUSTONEAPI_TOKEN", "PGY_TOKEN_FILE", "PGY_REGION", "MONGO_URI"):
        monkeypatch.delenv(name, raising=False)


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    paths = {
        "PGY_FEED_URI": str(tmp_path / "out" / "notes.jsonl"),
        "PGY_FAILED_PATH": str(tmp_path / "out" / "failed.jsonl"),
        "PGY_SUMMARY_PATH": str(tmp_path / "out" / "summary.json"),
    }
    return Settings(settings_dict(**{**paths, **overrides}))


def _seed_file(tmp_path: Path, text: str = "65c0b3fc000000002c037a49\n") -> str:
    path = tmp_path / "seeds.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _error(settings: Settings, spargs: dict[str, Any]) -> str:
    with pytest.raises(UserError) as info:
        preflight(settings, spargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_arguments_pass_and_create_nothing(tmp_path: Path) -> None:
    assert preflight(_settings(tmp_path), {"ids_file": _seed_file(tmp_path)}) == []
    assert not (tmp_path / "out").exists()


def test_no_token(tmp_path: Path) -> None:
    assert "no API token" in _error(_settings(tmp_path, PGY_TOKEN=None), {"ids": "x"})


def test_no_seeds(tmp_path: Path) -> None:
    assert "no seeds given" in _error(_settings(tmp_path), {"ids": " , "})


def test_ids_url_must_be_http(tmp_path: Path) -> None:
    assert "is not an http(s) URL" in _error(_settings(tmp_path), {"ids_url": "ftp://x/s.txt"})


def test_unreadable_seed_file(tmp_path: Path) -> None:
    with pytest.raises(SeedFileError, match="does not exist"):
        preflight(_settings(tmp_path), {"ids_file": str(tmp_path / "missing.txt")})


def test_empty_seed_file_is_a_warning(tmp_path: Path) -> None:
    warnings = preflight(_settings(tmp_path), {"ids_file": _seed_file(tmp_path, "")})
    assert len(warnings) == 1 and "is empty" in warnings[0]


def test_unwritable_output_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    settings = _settings(tmp_path, PGY_FAILED_PATH=str(blocker / "failed.jsonl"))
    message = _error(settings, {"ids": "65c0b3fc000000002c037a49"})
    assert "cannot write" in message and "failed.jsonl" in message


def test_a_state_of_another_format_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    (jobdir / jobstate.STATE_FILE).write_text('{"format": 99}', encoding="utf-8")
    settings = _settings(tmp_path, JOBDIR=str(jobdir))
    message = _error(settings, {"ids": "65c0b3fc000000002c037a49"})
    assert "format 99" in message and f"formats 2 and {jobstate.FORMAT}" in message
    assert not (tmp_path / "out").exists()


def test_mongodb_unreachable_is_a_user_error(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, MONGO_URI="mongodb://user:pw@127.0.0.1:9/?serverSelectionTimeoutMS=300"
    )
    message = _error(settings, {"ids": "65c0b3fc000000002c037a49"})
    assert "MongoDB unreachable" in message and "pw" not in message


def test_a_bad_number_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PGY_RETRY_TIMES"):
        preflight(_settings(tmp_path, PGY_RETRY_TIMES="x"), {"ids": "a"})


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", ["ASYNCIO_EVENT_LOOP is empty", "asyncio.SelectorEventLoop"]),
        ("uvloop", ["'uvloop'", "not a full path", "uvloop.Loop"]),
        ("no_such_module.Loop", ["'no_such_module.Loop'", "asyncio.SelectorEventLoop"]),
        ("asyncio.NoSuchLoop", ["'asyncio.NoSuchLoop'", "NoSuchLoop"]),
    ],
)
def test_an_event_loop_scrapy_cannot_load_is_one_line(
    tmp_path: Path, value: str, words: list[str]
) -> None:
    message = _error(_settings(tmp_path, ASYNCIO_EVENT_LOOP=value), {"ids": "a"})
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("value", [None, "asyncio.SelectorEventLoop", "uvloop.Loop"])
def test_a_loadable_event_loop_passes(tmp_path: Path, value: str | None) -> None:
    settings = _settings(tmp_path, ASYNCIO_EVENT_LOOP=value)
    assert preflight(settings, {"ids_file": _seed_file(tmp_path)}) == []


def test_the_crawl_command_module_imports_no_http_client() -> None:
    # Scrapy imports every command module for every `scrapy ...` (Scrapyd's `scrapy list`
    # on each upload, `scrapy pgy_status`): the preflight's TLS check imports the client
    # (aiohttp, ~0.2 s with its TLS contexts) only when a crawl is checked.
    client = ("aiohttp", "pgy_spider.apiclient")
    assert modules_loaded_by("pgy_spider.commands.crawl", client) == []
