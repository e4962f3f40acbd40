"""Unit tests of the local token vault: order, retirement, report, masking."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pgy_spider.handler import scrub_exception
from pgy_spider.logmask import SecretMaskingFilter
from pgy_spider.vault import LocalTokenVault, NoTokenLeft


def test_tokens_retire_in_order_and_report_fingerprints_only() -> None:
    vault = LocalTokenVault(["first-secret", "second-secret"])
    first = vault.current()
    assert first.token == "first-secret"
    vault.count_call(first.fingerprint)
    assert asyncio.run(vault.retire(first.fingerprint, "pgy_quota_exceeded")) is True
    assert asyncio.run(vault.retire(first.fingerprint, "pgy_quota_exceeded")) is False
    assert vault.current().token == "second-secret"
    assert not vault.exhausted
    asyncio.run(vault.retire(vault.current().fingerprint, "pgy_insufficient_balance"))
    assert vault.exhausted
    with pytest.raises(NoTokenLeft):
        vault.current()
    report = vault.report()
    assert "secret" not in repr(report)
    assert report[first.fingerprint] == {"calls": 1, "retired": "pgy_quota_exceeded"}


def test_retiring_an_unknown_fingerprint_changes_nothing() -> None:
    vault = LocalTokenVault(["only"])
    assert asyncio.run(vault.retire("tok-00000000", "pgy_invalid_token")) is False
    assert vault.current().token == "only" and not vault.exhausted


def test_mask_hides_raw_and_url_quoted_tokens() -> None:
    vault = LocalTokenVault(["s/cret"])
    assert vault.mask("a s/cret b s%2Fcret c") == "a *** b *** c"


def test_log_mask_is_installed_once_on_the_root_handlers_only() -> None:
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ("scrapy.core.engine", "x")}
    try:
        vault = LocalTokenVault(["s3cret"])
        vault.install_log_mask()
        vault.install_log_mask()
        masks = [f for f in handler.filters if isinstance(f, SecretMaskingFilter)]
        assert len(masks) == 1
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "t=%s", ("s3cret",), None)
        assert masks[0].filter(record) and record.getMessage() == "t=***"
        # Only masking: no logger's level is touched.
        assert {n: logging.getLogger(n).level for n in levels} == levels
    finally:
        root.removeHandler(handler)


def test_secrets_masked_in_log_records_and_exceptions() -> None:
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
