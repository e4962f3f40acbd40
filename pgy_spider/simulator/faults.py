"""Fault plans: the live configuration turned into cheap per-call lookups and weighted draws."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pgy_spider.simulator.config import BUSINESS_RATES, HTTP_FAULTS

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """The live config turned into cheap lookups, rebuilt only when the config changes."""

    tokens: frozenset[str]
    latency: float
    jitter: float  # seconds: the most a call's latency varies on top of ``latency``
    slow_seconds: float
    denied: frozenset[str]
    token_codes: dict[str, int]
    limits: tuple[tuple[int, int], ...]  # (calls allowed, code answered after), in order
    not_found: frozenset[str]
    fail_first: tuple[tuple[int, int], ...]  # (cumulative call count, code)
    note_codes: dict[str, int]
    http_faults: tuple[tuple[float, str], ...]  # (cumulative probability, fault)
    business_faults: tuple[tuple[float, int], ...]  # (cumulative probability, code)
    growth: bool
    empty: frozenset[str]
    invalid: frozenset[str]
    openapi: bool

    @classmethod
    def build(cls, cfg: Mapping[str, Any]) -> Plan:
        limits = [(cfg[k], code) for k, code in (("balance", 601), ("spend_cap", 602))]
        limits.append((cfg["quota"], 303))
        fail_first = [(n, int(code)) for code, n in cfg["fail_first"].items()]
        business = [(cfg[k], code) for k, code in BUSINESS_RATES.items()]
        business += [(rate, int(code)) for code, rate in cfg["rate_codes"].items()]
        return cls(
            tokens=frozenset(cfg["tokens"]),
            latency=cfg["latency_ms"] / 1000.0,
            jitter=cfg["latency_jitter_ms"] / 1000.0,
            slow_seconds=cfg["slow_seconds"],
            denied=frozenset(cfg["permission_denied_tokens"]),
            token_codes=dict(cfg["token_codes"]),
            limits=tuple((n, code) for n, code in limits if n is not None),
            not_found=frozenset(cfg["not_found_ids"]),
            fail_first=cumulative(fail_first),
            note_codes=dict(cfg["note_codes"]),
            http_faults=cumulative([(cfg[name], name) for name in HTTP_FAULTS]),
            business_faults=cumulative(business),
            growth=cfg["metrics_growth"],
            empty=frozenset(cfg["empty_data_ids"]),
            invalid=frozenset(cfg["invalid_data_ids"]),
            openapi=cfg["http_status_mode"] == "openapi",
        )


def cumulative(pairs: list[tuple[Any, T]]) -> tuple[tuple[Any, T], ...]:
    """Running totals of the weights, dropping zero weights so an idle fault costs nothing."""
    out: list[tuple[Any, T]] = []
    total: Any = 0
    for weight, value in pairs:
        if weight:
            total += weight
            out.append((total, value))
    return tuple(out)


def pick(table: tuple[tuple[Any, T], ...], point: float) -> T | None:
    for bound, value in table:
        if point < bound:
            return value
    return None
