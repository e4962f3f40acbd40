"""Unit tests of the run's configuration: defaults, environment fallbacks, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgy_spider import default_settings
from pgy_spider.config import PgyConfig
from pgy_spider.errors import ConfigError


def _config(settings: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> PgyConfig:
    return PgyConfig.from_settings({"PGY_TOKEN": "t", **(settings or {})}, env or {})


def test_defaults_come_from_the_one_defaults_module() -> None:
    config = _config()
    assert config.base_url == "https://api.justoneapi.com"
    assert config.retry_times == default_settings.PGY_RETRY_TIMES == 5
    assert config.rate_limit_delay == default_settings.PGY_RATE_LIMIT_DELAY
    assert config.failed_path == "output/failed.jsonl"
    assert config.feed_uri == "output/notes.jsonl"
    assert config.id_time_check is True and config.mongo is None and config.jobdir is None
    assert config.inner_download_handler == default_settings.PGY_INNER_DOWNLOAD_HANDLER


def test_the_settings_module_takes_every_default() -> None:
    from pgy_spider import settings

    for name, value in default_settings.defaults().items():
        assert getattr(settings, name) == value, name


def test_environment_fallbacks(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n", encoding="utf-8")
    env = {
        "PGY_REGION": "cn",
        "MONGO_URI": "mongodb://db:27017/",
        "PGY_TOKEN_FILE": str(token_file),
        "JUSTONEAPI_TOKEN": "from-env",
    }
    config = PgyConfig.from_settings({}, env)
    assert config.tokens == ("from-file",)  # the file wins over JUSTONEAPI_TOKEN
    assert config.base_url == "http://47.117.133.51:30015" and config.plain_http_remote
    assert config.mongo is not None and config.mongo.uri == "mongodb://db:27017/"
    assert config.mongo.database == "pgy" and config.mongo.refresh_enabled
    # Settings win over the environment.
    config = PgyConfig.from_settings(
        {"PGY_TOKEN": "s", "PGY_REGION": "global", "MONGO_URI": "mongodb://other/"}, env
    )
    assert config.tokens == ("s",) and config.base_url == "https://api.justoneapi.com"
    assert config.mongo is not None and config.mongo.uri == "mongodb://other/"


def test_tokens_and_uri_never_in_the_repr() -> None:
    config = _config({"PGY_TOKEN": "very-secret", "MONGO_URI": "mongodb://u:pw@h/"})
    assert "very-secret" not in repr(config) and "pw@" not in repr(config)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PGY_RETRY_TIMES": "many"}, "PGY_RETRY_TIMES='many' is not an integer"),
        ({"PGY_RETRY_BACKOFF": -1}, "PGY_RETRY_BACKOFF=-1 must be 0 or more"),
        ({"CONCURRENT_REQUESTS": 0}, "CONCURRENT_REQUESTS=0 must be greater than 0"),
        ({"PGY_GC_THRESHOLD": "lots"}, "PGY_GC_THRESHOLD='lots' is not an integer"),
        ({"PGY_GC_THRESHOLD": -1}, "PGY_GC_THRESHOLD=-1 must be 0 or more"),
        ({"PGY_ID_TIME_CHECK": "maybe"}, "PGY_ID_TIME_CHECK='maybe' is not a boolean"),
        ({"PGY_REGION": "mars"}, "PGY_REGION='mars' is not a known region"),
        ({"PGY_BASE_URL": "ftp://x"}, "is not an http(s) URL"),
        ({"PGY_FAILED_PATH": " "}, "PGY_FAILED_PATH is empty"),
        (
            {"MONGO_URI": "mongodb://h/", "PGY_MONGO_BATCH_SIZE": 0},
            "PGY_MONGO_BATCH_SIZE=0 must be greater than 0",
        ),
    ],
)
def test_a_wrong_value_is_one_clear_line(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(settings)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_no_token_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no API token"):
        PgyConfig.from_settings({}, {})


def test_loopback_http_is_not_a_plain_http_warning() -> None:
    assert not _config({"PGY_BASE_URL": "http://127.0.0.1:8080"}).plain_http_remote
    assert not _config({"PGY_BASE_URL": "https://proxy.example"}).plain_http_remote
    assert _config({"PGY_BASE_URL": "http://proxy.example"}).plain_http_remote
