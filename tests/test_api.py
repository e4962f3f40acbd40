"""Unit tests of the plain API-knowledge modules: api, tokens, logmask, outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pgy_spider import api
from pgy_spider.handler import scrub_exception
from pgy_spider.logmask import SecretMaskingFilter
from pgy_spider.outputs import exit_code_for, format_path
from pgy_spider.tokens import NoTokenLeft, TokenPool, load_tokens


def test_regions_and_base_url_override() -> None:
    assert api.resolve_base_url(None, None) == "https://api.justoneapi.com"
    assert api.resolve_base_url("CN", None) == "http://47.117.133.51:30015"
    assert api.resolve_base_url("cn", "http://proxy.local:8080/") == "http://proxy.local:8080"
    with pytest.raises(api.ConfigError, match="PGY_REGION='mars'"):
        api.resolve_base_url("mars", None)
    with pytest.raises(api.ConfigError, match="not an http"):
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
    with pytest.raises(api.ConfigError, match="JUSTONEAPI_TOKEN"):
        load_tokens(None, None, {})
    with pytest.raises(api.ConfigError, match="cannot be read"):
        load_tokens(None, str(tmp_path / "missing"), {})


def test_token_pool_retires_in_order_and_reports_fingerprints_only() -> None:
    pool = TokenPool.of(["first-secret", "second-secret"])
    first = pool.current()
    assert first.token == "first-secret"
    pool.count_call(first.fingerprint)
    assert pool.retire(first.fingerprint, "pgy_quota_exceeded") is True
    assert pool.retire(first.fingerprint, "pgy_quota_exceeded") is False
    assert pool.current().token == "second-secret"
    assert not pool.exhausted
    pool.retire(pool.current().fingerprint, "pgy_insufficient_balance")
    assert pool.exhausted
    with pytest.raises(NoTokenLeft):
        pool.current()
    report = pool.report()
    assert "secret" not in repr(report)
    assert report[first.fingerprint] == {"calls": 1, "retired": "pgy_quota_exceeded"}


def test_secrets_masked_in_logs_and_exceptions() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "GET %s", ("u?token=s%2Fcret",), None
    )
    assert SecretMaskingFilter(("s/cret",)).filter(record)
    assert record.getMessage() == "GET u?token=***"
    try:
        try:
            raise ValueError("timeout on https://h/?token=s3cret")
        except ValueError as inner:
            raise RuntimeError("wrapped s3cret") from inner
    except RuntimeError as exc:
        scrub_exception(exc, ("s3cret",))
        assert "s3cret" not in str(exc) and "s3cret" not in str(exc.__cause__)


def test_exit_codes_and_path_templates() -> None:
    assert exit_code_for("finished", {}) == 0
    assert exit_code_for("pgy_quota_exceeded", {}) == 3
    assert exit_code_for("shutdown", {}) == 4
    assert exit_code_for("finished", {"pgy/mongo/spilled": 2}) == 5
    assert exit_code_for("pgy_seed_error", {}) == 2
    assert exit_code_for("cancelled", {}) == 1
    assert format_path("out/%(name)s-%(job)s.json", {"name": "n", "job": "j1"}) == "out/n-j1.json"
    assert format_path("out/%(unknown)s.json", {}) == "out/.json"
