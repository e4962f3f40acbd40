"""Unit tests of the plain API-knowledge module (api) and the token sources (tokens)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgy_spider import api
from pgy_spider.errors import ConfigError
from pgy_spider.tokens import load_tokens


def test_regions_and_base_url_override() -> None:
    assert api.resolve_base_url(None, None) == "https://api.justoneapi.com"
    assert api.resolve_base_url("CN", None) == "http://47.117.133.51:30015"
    assert api.resolve_base_url("cn", "http://proxy.local:8080/") == "http://proxy.local:8080"
    with pytest.raises(ConfigError, match="PGY_REGION='mars'"):
        api.resolve_base_url("mars", None)
    with pytest.raises(ConfigError, match="not an http"):
        api.resolve_base_url(None, "ftp://x")


def test_url_has_no_token_until_sending() -> None:
    url = api.note_url("https://api.justoneapi.com", "65c0b3fc000000002c037a49")
    assert url == (
        "https://api.justoneapi.com/api/xiaohongshu-pgy/api/solar/note/noteId/detail/v1"
        "?noteId=65c0b3fc000000002c037a49"
    )
    assert "token" not in url
    assert api.with_token(url, "a b&c").endswith("&token=a%20b%26c")


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (0, api.Action.SUCCESS),
        (301, api.Action.RETRY),
        (500, api.Action.RETRY),
        (302, api.Action.RATE_LIMITED),
        (201, api.Action.NOT_FOUND),
        (400, api.Action.FAIL),
        (100, api.Action.TOKEN_FATAL),
        (303, api.Action.TOKEN_FATAL),
        (600, api.Action.TOKEN_FATAL),
        (601, api.Action.TOKEN_FATAL),
        (602, api.Action.TOKEN_FATAL),
        (999, api.Action.FAIL),
    ],
)
def test_code_policy(code: int, action: api.Action) -> None:
    assert api.action_for(code) is action


def test_failure_reasons() -> None:
    assert api.failure_reason(None) == "transport_error"
    assert api.failure_reason(201) == "not_found"
    assert api.failure_reason(400) == "bad_request"
    assert api.failure_reason(301) == "retries_exhausted"
    assert api.failure_reason(302) == "rate_limited"
    assert api.failure_reason(777) == "api_error"


def test_envelope_parsing() -> None:
    env = api.parse_envelope(b'{"code": 0, "message": null, "data": {"a": 1}, "requestId": "r1"}')
    assert env is not None and env.code == 0 and env.data == {"a": 1} and env.request_id == "r1"
    assert api.parse_envelope(b'{"code": "301"}').code == 301  # type: ignore[union-attr]
    assert api.parse_envelope(b"<html>502 Bad Gateway</html>") is None
    assert api.parse_envelope(b'{"code": 0, "data": {"no') is None
    assert api.parse_envelope(b"[1, 2]") is None
    assert api.parse_envelope(b'{"code": true}') is None
    assert api.parse_envelope(b'{"message": "no code"}') is None


def test_token_sources(tmp_path: Path) -> None:
    assert load_tokens("a, b,a", None, {}) == ["a", "b"]
    token_file = tmp_path / "token"
    token_file.write_text("\ufefffile-token\n", encoding="utf-8")
    assert load_tokens(None, str(token_file), {"JUSTONEAPI_TOKEN": "env"}) == ["file-token"]
    assert load_tokens(None, None, {"JUSTONEAPI_TOKEN": "x,y"}) == ["x", "y"]
    assert load_tokens(None, None, {"PGY_TOKEN_FILE": str(token_file)}) == ["file-token"]
    with pytest.raises(ConfigError, match="JUSTONEAPI_TOKEN"):
        load_tokens(None, None, {})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_tokens(None, str(tmp_path / "missing"), {})
