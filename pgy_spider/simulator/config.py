"""The simulator's configuration: defaults, and validation of every update.

Validated on every update (``--config``, ``POST /_sim/config``) so that a typo in a test fails
loudly with HTTP 400 instead of silently configuring nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HTTP_FAULTS = ("reset", "slow", "http502_html", "truncated", "malformed")
# Fixed order of the named business-fault rates; ``rate_codes`` entries are drawn after them.
BUSINESS_RATES = {
    "rate_301": 301,
    "rate_302": 302,
    "rate_500": 500,
    "rate_303": 303,
    "rate_601": 601,
}

DEFAULT_CONFIG: dict[str, Any] = {
    "tokens": ["demo-token"],
    "latency_ms": 0.0,
    "latency_jitter_ms": 0.0,  # each call waits latency_ms plus up to this much more
    "seed": 0,
    "quota": None,
    "balance": None,
    "spend_cap": None,
    **dict.fromkeys(HTTP_FAULTS, 0.0),
    "slow_seconds": 5.0,
    "permission_denied_tokens": [],
    "token_codes": {},
    "not_found_ids": [],
    "fail_first": {},
    "burst_302": 0,
    "note_codes": {},
    **dict.fromkeys(BUSINESS_RATES, 0.0),
    "rate_codes": {},
    "metrics_growth": True,
    "empty_data_ids": [],
    "invalid_data_ids": [],
    "http_status_mode": "legacy",
    # Keep a log of every call (GET /_sim/calls): when it came, with which token, what it
    # was answered. Off by default: a long benchmark would hold millions of entries.
    "call_log": False,
}


class ConfigError(ValueError):
    """An invalid configuration update (unknown key or wrong value)."""


def _number(key: str, value: Any, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{key}: expected a non-negative number, got {value!r}")
    if upper is not None and value > upper:
        raise ConfigError(f"{key}: expected a number in 0..{upper}, got {value!r}")
    return float(value)


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key}: expected a non-negative integer, got {value!r}")
    return value


def _optional_int(key: str, value: Any) -> int | None:
    return None if value is None else _int(key, value)


def _code(key: str, value: Any) -> int:
    """A business code given as int or numeric string (JSON object keys are always strings)."""
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{key}: expected an integer code, got {value!r}")


def _str_list(key: str, value: Any) -> list[str]:
    # A comma string is accepted too, so the CLI's --tokens form also works in JSON.
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
    return list(value)


def _mapping(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a JSON object, got {value!r}")
    return value


def _str_to_code(key: str, value: Any) -> dict[str, int]:
    return {str(k): _code(f"{key}[{k}]", v) for k, v in _mapping(key, value).items()}


def _code_to_count(key: str, value: Any) -> dict[str, int]:
    items = _mapping(key, value).items()
    return {str(_code(key, k)): _int(f"{key}[{k}]", v) for k, v in items}


def _code_to_rate(key: str, value: Any) -> dict[str, float]:
    items = _mapping(key, value).items()
    return {str(_code(key, k)): _number(f"{key}[{k}]", v, 1.0) for k, v in items}


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _status_mode(key: str, value: Any) -> str:
    if value not in ("legacy", "openapi"):
        raise ConfigError(f"{key}: expected 'legacy' or 'openapi', got {value!r}")
    return str(value)


def _seed(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    return value


def _rate(key: str, value: Any) -> float:
    return _number(key, value, 1.0)


def _lower_ids(key: str, value: Any) -> list[str]:
    return [v.lower() for v in _str_list(key, value)]


def _lower_note_codes(key: str, value: Any) -> dict[str, int]:
    return {k.lower(): v for k, v in _str_to_code(key, value).items()}


VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "tokens": _str_list,
    "latency_ms": _number,
    "latency_jitter_ms": _number,
    "seed": _seed,
    "quota": _optional_int,
    "balance": _optional_int,
    "spend_cap": _optional_int,
    **dict.fromkeys(HTTP_FAULTS, _rate),
    "slow_seconds": _number,
    "permission_denied_tokens": _str_list,
    "token_codes": _str_to_code,
    "not_found_ids": _lower_ids,
    "fail_first": _code_to_count,
    "burst_302": _int,
    "note_codes": _lower_note_codes,
    **dict.fromkeys(BUSINESS_RATES, _rate),
    "rate_codes": _code_to_rate,
    "metrics_growth": _bool,
    "empty_data_ids": _lower_ids,
    "invalid_data_ids": _lower_ids,
    "http_status_mode": _status_mode,
    "call_log": _bool,
}
assert VALIDATORS.keys() == DEFAULT_CONFIG.keys()


def validate_config(update: Any) -> dict[str, Any]:
    """Return ``update`` normalised, or raise ConfigError naming the first bad key."""
    if not isinstance(update, dict):
        raise ConfigError("config must be a JSON object")
    unknown = sorted(set(update) - VALIDATORS.keys())
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
    return {key: VALIDATORS[key](key, value) for key, value in update.items()}
