"""The benchmark's child environment (bench/variants.py)."""

from __future__ import annotations

import pytest

from bench import variants


def test_children_write_bytecode_and_ignore_the_callers_project_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With PYTHONDONTWRITEBYTECODE the warm-up could not leave .pyc files behind and every
    # start-up measured would include compiling the project's modules.
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("SCRAPY_SETTINGS_MODULE", "elsewhere.settings")
    monkeypatch.setenv("JUSTONEAPI_TOKEN", "a-real-token")
    env = variants.base_env()
    assert not {"PYTHONDONTWRITEBYTECODE", "SCRAPY_SETTINGS_MODULE", "JUSTONEAPI_TOKEN"} & set(env)
    assert env["PYTHONHASHSEED"] == "0"
