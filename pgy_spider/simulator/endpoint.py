"""The simulated endpoint: counters, per-token usage and the API's decision order.

One ``Simulator`` holds all mutable state; the HTTP layer (``server.py``) calls it once per API
call. Decisions run synchronously, so concurrent calls never race.
"""

from __future__ import annotations

import copy
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from pgy_spider.simulator.config import DEFAULT_CONFIG, validate_config
from pgy_spider.simulator.faults import Plan, pick
from pgy_spider.simulator.notes import invalid_note, is_note_id, note_pieces

API_PATH = "/api/xiaohongshu-pgy/api/solar/note/noteId/detail/v1"

MESSAGES: dict[int, str | None] = {
    0: None,
    100: "Invalid or inactive token",
    201: "No content available",
    301: "Collection failed. Please retry.",
    302: "Rate limit exceeded",
    303: "Daily quota exceeded",
    400: "Invalid parameters",
    500: "Internal server error",
    600: "Permission denied",
    601: "Insufficient balance",
    602: "Token spending cap reached",
}

# HTTP statuses declared by the 2026 OpenAPI definition; anything else is HTTP 200.
OPENAPI_STATUS = {400: 400, 100: 401, 600: 403, 601: 403, 602: 403, 302: 429, 303: 429}
OPENAPI_STATUS |= {500: 500, 301: 500}

BILLED_CODES = frozenset({0, 201})
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
MALFORMED_BODY = b'{"code": 0, "data": {oops'
# The envelope of a success around its note: what orjson.dumps writes for the same dict.
SUCCESS_OPEN = b'{"code":0,"message":' + orjson.dumps(MESSAGES[0]) + b',"data":'
# Stands for "the note itself" in a decision: its bytes are joined, not serialised per call.
THE_NOTE: Any = object()


@dataclass
class Stats:
    calls: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    by_note: Counter[str] = field(default_factory=Counter)
    success_by_note: Counter[str] = field(default_factory=Counter)
    by_token: Counter[str] = field(default_factory=Counter)
    billed: int = 0
    max_concurrency: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "by_code": dict(self.by_code),
            "by_note": dict(self.by_note),
            "success_by_note": dict(self.success_by_note),
            "by_token": dict(self.by_token),
            "billed": self.billed,
            "max_concurrency": self.max_concurrency,
        }

    def totals(self) -> dict[str, Any]:
        """``as_json`` without the per-note and per-token maps: cheap to poll during a run."""
        return {
            "calls": self.calls,
            "by_code": dict(self.by_code),
            "billed": self.billed,
            "max_concurrency": self.max_concurrency,
        }


class Answer(NamedTuple):
    status: int
    body: bytes
    reset: bool = False


def envelope(code: int, data: Any, record_time: str, request_id: str) -> bytes:
    """The JSON envelope of every answer."""
    return orjson.dumps(
        {
            "code": code,
            "message": MESSAGES.get(code, f"Error {code}"),
            "data": data,
            "recordTime": record_time,
            "requestId": request_id,
        }
    )


def success_body(note: Sequence[bytes], record_time: str, request_id: str) -> bytes:
    """``envelope(0, <the note>, ...)`` byte for byte, from the pieces of the note's JSON."""
    stamp = f',"recordTime":"{record_time}","requestId":"{request_id}"}}'.encode()
    return b"".join((SUCCESS_OPEN, *note, stamp))


class Stamps:
    """``recordTime`` (UTC, ISO 8601 with milliseconds, as ``datetime.isoformat`` writes it)
    and ``requestId`` (128 random bits in hex) of each answer; the date and time of day are
    formatted once per second."""

    def __init__(self) -> None:
        self._ids = random.Random()  # request IDs must not consume the seeded fault draws
        self._second = -1
        self._prefix = ""

    def record_time(self) -> str:
        second, rest = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            when = datetime.fromtimestamp(second, UTC)
            self._second, self._prefix = second, when.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{rest // 1_000_000:03d}+00:00"

    def request_id(self) -> str:
        return f"{self._ids.getrandbits(128):032x}"


class Simulator:
    """All mutable state. Decisions run synchronously, so concurrent calls never race."""

    def __init__(self, startup: Mapping[str, Any]) -> None:
        self._startup = {**copy.deepcopy(DEFAULT_CONFIG), **validate_config(dict(startup))}
        self.reset()

    def reset(self) -> None:
        self.config: dict[str, Any] = copy.deepcopy(self._startup)
        self.plan = Plan.build(self.config)
        self.stats = Stats()
        if not hasattr(self, "in_flight"):
            self.in_flight = 0  # calls being answered: a reset does not forget them
        self._success_by_token: Counter[str] = Counter()
        self._fail_first_seen: Counter[str] = Counter()
        self._burst_left: int = self.config["burst_302"]
        self._faults = random.Random(self.config["seed"])
        # Latency jitter must not consume the seeded fault draws: its own generator.
        self._jitter = random.Random()
        self._stamps = Stamps()
        self._started = time.monotonic()
        # (seconds since the reset, token, code) of every call, with call_log on.
        self.calls: list[tuple[float, str, str]] = []

    def configure(self, update: Any) -> None:
        clean = validate_config(update)
        self.config.update(clean)
        self.plan = Plan.build(self.config)
        if "burst_302" in clean:
            self._burst_left = clean["burst_302"]
        if "seed" in clean:
            self._faults.seed(clean["seed"])

    # -- per-call entry points (called by the aiohttp handler) --

    def latency(self) -> float:
        """Seconds this call waits before it is answered: ``latency_ms`` plus a uniform
        draw in ``[0, latency_jitter_ms]``, so that answers come back out of order."""
        plan = self.plan
        if plan.jitter:
            return plan.latency + self._jitter.random() * plan.jitter
        return plan.latency

    def draw_http_fault(self) -> str | None:
        table = self.plan.http_faults
        return pick(table, self._faults.random()) if table else None

    def fault_answer(self, fault: str, token: str, raw_id: str) -> Answer:
        self._count(fault, token, _note_key(raw_id))
        if fault == "reset":
            return Answer(0, b"", reset=True)
        if fault == "http502_html":
            return Answer(502, HTML_502)
        if fault == "malformed":
            return Answer(200, MALFORMED_BODY)
        # "truncated": half of what a success would have looked like, without consuming state.
        note_id = raw_id.lower()
        if is_note_id(note_id):
            body = self._success(note_id, 0, False)
        else:
            body = self._envelope(400, None)
        return Answer(200, body[: len(body) // 2])

    def answer(self, token: str, raw_id: str) -> Answer:
        note_id = _note_key(raw_id)
        code, data = self._decide(token, note_id)
        self._count(str(code), token, note_id)
        stats = self.stats
        if data is THE_NOTE:  # before the count below: the metrics grow with earlier successes
            body = self._success(note_id, stats.success_by_note[note_id], self.plan.growth)
        else:
            body = self._envelope(code, data)
        if code == 0:
            self._success_by_token[token] += 1
            stats.success_by_note[note_id] += 1
        if code in BILLED_CODES:
            stats.billed += 1
        status = OPENAPI_STATUS.get(code, 200) if self.plan.openapi else 200
        return Answer(status, body)

    # -- internals --

    def _decide(self, token: str, note_id: str) -> tuple[int, Any]:
        plan = self.plan
        token_code = self._token_code(token)
        if token_code is not None:
            return token_code, None
        if not is_note_id(note_id):
            return 400, None
        if note_id in plan.not_found or note_id.endswith("ffffff"):
            return 201, None
        forced = self._deterministic_fault(note_id)
        if forced is None and plan.business_faults:
            forced = pick(plan.business_faults, self._faults.random())
        if forced:  # a forced 0 means "no fault": fall through to the normal success path
            return forced, None
        if note_id in plan.empty:
            return 0, None
        if note_id in plan.invalid:
            return 0, invalid_note(note_id)
        return 0, THE_NOTE

    def _token_code(self, token: str) -> int | None:
        """Explicit per-token overrides win over the unknown-token check, then usage limits."""
        plan = self.plan
        forced = plan.token_codes.get(token)
        if forced is not None:
            return forced or None  # forcing 0 marks the token valid, then limits still apply
        if token in plan.denied:
            return 600
        if token not in plan.tokens:
            return 100
        used = self._success_by_token[token]
        for allowed, code in plan.limits:
            if used >= allowed:
                return code
        return None

    def _deterministic_fault(self, note_id: str) -> int | None:
        plan = self.plan
        if plan.fail_first:
            seen = self._fail_first_seen[note_id]
            self._fail_first_seen[note_id] = seen + 1
            code = pick(plan.fail_first, seen)
            if code is not None:
                return code
        if self._burst_left > 0:
            self._burst_left -= 1
            return 302
        return plan.note_codes.get(note_id)

    def _count(self, code: str, token: str, note_id: str) -> None:
        stats = self.stats
        stats.calls += 1
        stats.by_code[code] += 1
        if self.config["call_log"]:
            self.calls.append((time.monotonic() - self._started, token, code))
        if note_id:
            stats.by_note[note_id] += 1
        if token:
            stats.by_token[token] += 1

    def _envelope(self, code: int, data: Any) -> bytes:
        stamps = self._stamps
        return envelope(code, data, stamps.record_time(), stamps.request_id())

    def _success(self, note_id: str, fetched_before: int, growth: bool) -> bytes:
        stamps = self._stamps
        note = note_pieces(note_id, fetched_before, growth)
        return success_body(note, stamps.record_time(), stamps.request_id())


def _note_key(raw_id: str) -> str:
    """Valid IDs are case-insensitive, so count and cache them in canonical lower case."""
    lowered = raw_id.lower()
    return lowered if is_note_id(lowered) else raw_id
