"""Unit tests of the exit statuses and the output path templates."""

from __future__ import annotations

from pgy_spider.api import FATAL_REASONS
from pgy_spider.exitcodes import exit_code_for
from pgy_spider.paths import format_path


def test_exit_codes() -> None:
    assert exit_code_for("finished") == 0
    assert exit_code_for("pgy_quota_exceeded") == 3
    assert exit_code_for("pgy_invalid_token") == 3
    assert exit_code_for("shutdown") == 4
    assert exit_code_for("finished", storage_failed=True) == 5
    assert exit_code_for("pgy_storage_error") == 5
    assert exit_code_for("pgy_seed_error") == 2
    assert exit_code_for("pgy_config_error") == 2
    assert exit_code_for("cancelled") == 1


def test_every_token_refusal_exits_3() -> None:
    assert {reason: exit_code_for(reason) for reason in FATAL_REASONS.values()} == dict.fromkeys(
        FATAL_REASONS.values(), 3
    )


def test_path_templates() -> None:
    assert format_path("out/%(name)s-%(job)s.json", {"name": "n", "job": "j1"}) == "out/n-j1.json"
    assert format_path("out/%(unknown)s.json", {}) == "out/.json"
    assert format_path("plain/path.json", {}) == "plain/path.json"
