"""Offline simulator of Just One API's "Xiaohongshu PGY - Note Details (V1)" endpoint.

Tests, the README demo and the benchmark run against this server instead of the paid API, so it
reproduces the contract in ``/work/shared/api/note-detail-v1.md``: the JSON envelope, the business
codes, billing, quotas and the transport-level failures a real client meets. It must never be the
bottleneck of a benchmark, hence one aiohttp process, cached note bodies, orjson and no logging on
the request path.

Run ``python -m pgy_spider.simulator --help``. Once listening it prints exactly one line,
``PGY_SIMULATOR_URL=http://HOST:PORT``, to stdout.

Admin routes (never delayed, never counted): ``GET /_sim/stats``, ``GET|POST /_sim/config`` and
``POST /_sim/reset``. ``GET /seeds/<relpath>`` serves ``--seeds-dir`` when given.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import hashlib
import random
import signal
import socket
import struct
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiohttp import web

API_PATH = "/api/xiaohongshu-pgy/api/solar/note/noteId/detail/v1"

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
}

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
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
MALFORMED_BODY = b'{"code": 0, "data": {oops'
CHINA_TZ = timezone(timedelta(hours=8))
T = TypeVar("T")
HEX = frozenset("0123456789abcdef")


# --------------------------------------------------------------------------------------------
# Configuration: validated on every update so a typo in a test fails loudly with HTTP 400.
# --------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Plan:
    """The live config turned into cheap lookups, rebuilt only when the config changes."""

    tokens: frozenset[str]
    latency: float
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
            slow_seconds=cfg["slow_seconds"],
            denied=frozenset(cfg["permission_denied_tokens"]),
            token_codes=dict(cfg["token_codes"]),
            limits=tuple((n, code) for n, code in limits if n is not None),
            not_found=frozenset(cfg["not_found_ids"]),
            fail_first=_cumulative(fail_first),
            note_codes=dict(cfg["note_codes"]),
            http_faults=_cumulative([(cfg[name], name) for name in HTTP_FAULTS]),
            business_faults=_cumulative(business),
            growth=cfg["metrics_growth"],
            empty=frozenset(cfg["empty_data_ids"]),
            invalid=frozenset(cfg["invalid_data_ids"]),
            openapi=cfg["http_status_mode"] == "openapi",
        )


def _cumulative(pairs: list[tuple[Any, T]]) -> tuple[tuple[Any, T], ...]:
    """Running totals of the weights, dropping zero weights so an idle fault costs nothing."""
    out: list[tuple[Any, T]] = []
    total: Any = 0
    for weight, value in pairs:
        if weight:
            total += weight
            out.append((total, value))
    return tuple(out)


def _pick(table: tuple[tuple[Any, T], ...], point: float) -> T | None:
    for bound, value in table:
        if point < bound:
            return value
    return None


# --------------------------------------------------------------------------------------------
# Deterministic note generation: the same noteId always yields the same note (modulo metrics).
# --------------------------------------------------------------------------------------------

TOPICS = (
    "穿搭",
    "好物分享",
    "护肤",
    "美食探店",
    "旅行攻略",
    "健身打卡",
    "家居好物",
    "读书笔记",
    "宝藏小店",
    "平价彩妆",
    "通勤穿搭",
    "减脂餐",
    "露营",
    "咖啡",
    "数码测评",
    "萌宠日常",
)
TITLE_HEADS = ("谁懂啊", "终于找到了", "挖到宝了", "真心推荐", "后悔没早点买", "亲测有效", "")
TITLE_TAILS = (
    "这个{t}也太绝了",
    "{t}一周实测分享",
    "{t}新手必看攻略",
    "被问爆的{t}清单",
    "人均50的{t}",
    "{t}避雷指南",
)
SENTENCES = (
    "今天给大家分享一下最近的心头好",
    "用了一个月真实感受都在这里了",
    "性价比真的很高姐妹们冲",
    "细节满满拍照超级出片",
    "周末和朋友一起去的体验感拉满",
    "评论区告诉我你们还想看什么",
    "记得点赞收藏不迷路",
)
EMOJI = ("✨", "💖", "🔥", "🌸", "😍", "👍", "🍰", "📷", "🌿", "💯")
NAMES = (
    "小鹿",
    "橘子",
    "阿May",
    "糯米团",
    "芒果",
    "Lily",
    "可乐",
    "豆豆",
    "柚子",
    "七七",
    "大王",
    "甜心",
)
NAME_TAILS = ("的日常", "爱分享", "酱", "不吃香菜", "在路上", "同学", "呀", "")
LOCATIONS = ("北京", "上海", "广州", "深圳", "杭州", "成都", "重庆", "武汉", "南京", "西安")
TAXONOMY = {
    "时尚": ["穿搭", "配饰"],
    "美妆": ["护肤", "彩妆"],
    "美食": ["探店", "家常菜"],
    "出行": ["旅行", "户外"],
    "生活记录": ["日常", "家居"],
    "文化艺术": ["科普", "读书"],
}
KOL_POOL_SIZE = 50
ASPECTS = ((1080, 1440), (1080, 1920), (1080, 1080), (1440, 1080))


def _digest(*parts: str) -> bytes:
    return hashlib.blake2b("/".join(parts).encode(), digest_size=32).digest()


def _rng(*parts: str) -> random.Random:
    return random.Random(int.from_bytes(_digest(*parts), "big"))


# Real file IDs use the base32 alphabet 0-9a-v; a table of digit pairs encodes 10 bits per lookup,
# several times cheaper than rng.choices or base64.b32hexencode on this hot path.
_B32 = "0123456789abcdefghijklmnopqrstuv"
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)


def _file_id(rng: random.Random) -> str:
    bits = rng.getrandbits(180)
    return (
        "1040g" + "".join([_B32_PAIRS[(bits >> shift) & 1023] for shift in range(0, 180, 10)])[:35]
    )


def _make_kol(index: int) -> dict[str, Any]:
    """One creator of the shared pool; ``index`` fixes every field so runs are reproducible."""
    rng = _rng("kol", str(index))
    user_id = f"{rng.randrange(0x5A000000, 0x66000000):08x}{rng.getrandbits(64):016x}"
    nick = rng.choice(NAMES) + rng.choice(NAME_TAILS) + (rng.choice(EMOJI) if index % 3 else "")
    avatar = (
        f"https://sns-avatar-qc.xhscdn.com/avatar/{_file_id(rng)}?imageView2/2/w/120/format/jpg"
    )
    fans = int(rng.lognormvariate(11, 1.3))
    engagement = max(1, fans // rng.randint(80, 400))
    tag1 = rng.choice(list(TAXONOMY))
    return {
        "nickName": nick,
        "avatar": avatar,
        "userId": user_id,
        "advertiserId": None,
        "fansNum": fans,
        "cooperType": rng.choice((0, 1, 1, 2)),
        "priceState": 1,
        "pictureState": rng.choice((0, 1)),
        "picturePrice": rng.choice((0, 5000, 20000, 80000)),
        "videoState": 1,
        "videoPrice": rng.choice((10000, 50000, 200000, 500000)),
        "userType": rng.choice((1, 2)),
        "operateState": 1,
        "currentLevel": rng.randint(1, 4),
        "location": rng.choice(LOCATIONS),
        "contentTags": [{"taxonomy1Tag": tag1, "taxonomy2Tags": rng.sample(TAXONOMY[tag1], 1)}],
        "featureTags": None,
        "personalTags": None,
        "gender": rng.choice(("男", "女", "女")),
        "isCollect": False,
        "clickMidNum": engagement * rng.randint(10, 40),
        "interMidNum": engagement,
        "pictureInCart": None,
        "videoInCart": None,
        "kolType": 0,
        "mengagementNum": engagement + rng.randint(0, engagement),
        "mEngagementNum": 0,  # mirrors mengagementNum, set below
    }


def _kol_pool() -> tuple[dict[str, Any], ...]:
    pool = []
    for i in range(KOL_POOL_SIZE):
        kol = _make_kol(i)
        kol["mEngagementNum"] = kol["mengagementNum"]
        pool.append(kol)
    return tuple(pool)


KOLS = _kol_pool()


def _text(rng: random.Random, kol: Mapping[str, Any]) -> tuple[str, str]:
    topics = rng.sample(TOPICS, rng.randint(2, 4))
    title = rng.choice(TITLE_HEADS) + rng.choice(TITLE_TAILS).format(t=topics[0])
    if rng.random() < 0.1:
        title = ""  # real titles may be empty, as in the published sample
    elif rng.random() < 0.6:
        title += rng.choice(EMOJI)
    body = "，".join(rng.sample(SENTENCES, rng.randint(2, 4))) + rng.choice(EMOJI)
    tags = " ".join(f"#{t}[话题]#" for t in [*topics, str(kol["nickName"])[:4]])
    return title, f"{body}{rng.choice(EMOJI)} {tags}"


def _image(rng: random.Random) -> dict[str, Any]:
    file_id = "spectrum/" + _file_id(rng)
    width, height = rng.choice(ASPECTS)
    return {
        "fileId": file_id,
        "url": f"http://ci.xiaohongshu.com/{file_id}?imageView2/2/w/1080/format/jpg",
        "original": f"http://ci.xiaohongshu.com/{file_id}",
        "width": width,
        "height": height,
        "latitude": None,
        "longitude": None,
        "traceId": file_id,
        "sticker": None,
        "imageExtraInfo": None,
    }


def _video(rng: random.Random, created: int) -> dict[str, Any]:
    key = f"stream/110/258/{rng.getrandbits(200):050x}_258.mp4"
    width, height = rng.choice(ASPECTS)
    return {
        "id": str(rng.randrange(10**8, 10**9)),
        "videoKey": key,
        "originVideoKey": "spectrum/" + _file_id(rng),
        "meta": {
            "width": width,
            "height": height,
            "duration": rng.randint(8, 300),
            "videoId": str(rng.randrange(10**17, 10**18)),
        },
        "gifKey": "",
        "videoUrl": f"http://v.xiaohongshu.com/{key}?sign={rng.getrandbits(128):032x}"
        f"&t={created + 86400 * 30:x}",
        "gifUrl": "",
        "videoKeyList": [],
        "hasFragments": False,
        "thumbnail": f"110/0/{rng.getrandbits(184):046x}_0.webp",
        "firstFrame": None,
        "volume": 0,
        "chapters": None,
        "redGifInfo": None,
    }


def _xsec_token(note_id: str) -> str:
    raw = base64.urlsafe_b64encode(_digest("xsec", note_id)).decode().rstrip("=")
    return f"AB{raw}="


def _base_metrics(rng: random.Random) -> dict[str, int]:
    """Plausible engagement: impressions > reads > likes > favourites > comments > shares."""
    imp = int(rng.lognormvariate(9, 1.5)) + 100
    read = imp * rng.randint(10, 40) // 100
    like = read * rng.randint(3, 15) // 100
    return {
        "impNum": imp,
        "likeNum": like,
        "favNum": like * rng.randint(10, 60) // 100,
        "cmtNum": like * rng.randint(2, 15) // 100,
        "readNum": read,
        "shareNum": like * rng.randint(1, 10) // 100,
        "followCnt": like * rng.randint(0, 5) // 100,
    }


@lru_cache(maxsize=200_000)
def base_note(note_id: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The note's static fields and its starting metrics. Callers must not mutate the result."""
    rng = _rng("note", note_id)
    kol = KOLS[rng.randrange(KOL_POOL_SIZE)]  # a shared pool, so creators recur across notes
    created = int(note_id[:8], 16)
    is_video = rng.random() < 0.35
    title, content = _text(rng, kol)
    images = [_image(rng) for _ in range(1 if is_video else rng.randint(1, 9))]
    updated = created + rng.randint(0, 3 * 86400)
    note: dict[str, Any] = {
        "noteId": note_id,
        "noteLink": f"https://www.xiaohongshu.com/explore/{note_id}"
        f"?xsec_token={_xsec_token(note_id)}&xsec_source=pc_pgy",
        "userId": kol["userId"],
        "headPhoto": kol["avatar"],
        "name": kol["nickName"],
        "redId": None,
        "type": 2 if is_video else 1,
        "atUserList": None,
        "title": title,
        "content": content,
        "imagesList": images,
        "videoInfo": _video(rng, created) if is_video else None,
        "time": {
            "createTime": created * 1000,
            "updateTime": updated * 1000,
            "userUpdateTime": created * 1000,
        },
        "createTime": datetime.fromtimestamp(created, CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
        **dict.fromkeys(("impNum", "likeNum", "favNum", "cmtNum", "readNum", "shareNum"), 0),
        "followCnt": 0,
        "reportBrandUserId": None,
        "reportBrandName": None,
        "featureTags": None,
        "userInfo": kol,
        "compClickData": None,
    }
    return note, _base_metrics(rng)


def render_note(note_id: str, fetched_before: int, growth: bool) -> dict[str, Any]:
    """The note as answered now; with ``growth`` every metric rises with each earlier success."""
    static, metrics = base_note(note_id)
    note = dict(static)  # shallow copy: only top-level metric keys differ between calls
    step = fetched_before if growth else 0
    for key, value in metrics.items():
        note[key] = value + step * (value // 20 + 1)
    return note


def invalid_note(note_id: str) -> dict[str, Any]:
    """A code-0 payload a client must reject: wrong types and no noteId."""
    note = render_note(note_id, 0, False)
    del note["noteId"]
    note["likeNum"] = "lots"
    note["time"] = "yesterday"
    return note


def is_note_id(value: str) -> bool:
    return len(value) == 24 and HEX.issuperset(value)


# --------------------------------------------------------------------------------------------
# The simulator: counters, per-token usage and the decision order of the brief.
# --------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    reset: bool = False


class Simulator:
    """All mutable state. Decisions run synchronously, so concurrent calls never race."""

    def __init__(self, startup: Mapping[str, Any]) -> None:
        self._startup = {**copy.deepcopy(DEFAULT_CONFIG), **validate_config(dict(startup))}
        self.reset()

    def reset(self) -> None:
        self.config: dict[str, Any] = copy.deepcopy(self._startup)
        self.plan = Plan.build(self.config)
        self.stats = Stats()
        self.in_flight = 0
        self._success_by_token: Counter[str] = Counter()
        self._fail_first_seen: Counter[str] = Counter()
        self._burst_left: int = self.config["burst_302"]
        self._faults = random.Random(self.config["seed"])
        self._ids = random.Random()  # request IDs must not consume the seeded fault draws

    def configure(self, update: Any) -> None:
        clean = validate_config(update)
        self.config.update(clean)
        self.plan = Plan.build(self.config)
        if "burst_302" in clean:
            self._burst_left = clean["burst_302"]
        if "seed" in clean:
            self._faults.seed(clean["seed"])

    # -- per-call entry points (called by the aiohttp handler) --

    def draw_http_fault(self) -> str | None:
        table = self.plan.http_faults
        return _pick(table, self._faults.random()) if table else None

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
        data = render_note(note_id, 0, False) if is_note_id(note_id) else None
        body = self._envelope(0 if data else 400, data)
        return Answer(200, body[: len(body) // 2])

    def answer(self, token: str, raw_id: str) -> Answer:
        note_id = _note_key(raw_id)
        code, data = self._decide(token, note_id)
        self._count(str(code), token, note_id)
        if code == 0:
            self._success_by_token[token] += 1
            self.stats.success_by_note[note_id] += 1
        if code in BILLED_CODES:
            self.stats.billed += 1
        status = OPENAPI_STATUS.get(code, 200) if self.plan.openapi else 200
        return Answer(status, self._envelope(code, data))

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
            forced = _pick(plan.business_faults, self._faults.random())
        if forced:  # a forced 0 means "no fault": fall through to the normal success path
            return forced, None
        if note_id in plan.empty:
            return 0, None
        if note_id in plan.invalid:
            return 0, invalid_note(note_id)
        return 0, render_note(note_id, self.stats.success_by_note[note_id], plan.growth)

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
            code = _pick(plan.fail_first, seen)
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
        if note_id:
            stats.by_note[note_id] += 1
        if token:
            stats.by_token[token] += 1

    def _envelope(self, code: int, data: Any) -> bytes:
        return orjson.dumps(
            {
                "code": code,
                "message": MESSAGES.get(code, f"Error {code}"),
                "data": data,
                "recordTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "requestId": f"{self._ids.getrandbits(128):032x}",
            }
        )


def _note_key(raw_id: str) -> str:
    """Valid IDs are case-insensitive, so count and cache them in canonical lower case."""
    lowered = raw_id.lower()
    return lowered if is_note_id(lowered) else raw_id


# --------------------------------------------------------------------------------------------
# HTTP layer.
# --------------------------------------------------------------------------------------------

SIM_KEY = web.AppKey("simulator", Simulator)


def _abort(request: web.Request) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a crashed upstream proxy would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _to_response(request: web.Request, answer: Answer) -> web.Response:
    if answer.reset:
        _abort(request)
        # aiohttp notices the closed transport and silently drops this response.
        return web.Response(status=499)
    if answer.status == 502:
        return web.Response(status=502, body=answer.body, content_type="text/html")
    return web.Response(status=answer.status, body=answer.body, headers=JSON_HEADERS)


async def api_handler(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    sim.in_flight += 1
    sim.stats.max_concurrency = max(sim.stats.max_concurrency, sim.in_flight)
    try:
        if sim.plan.latency:
            await asyncio.sleep(sim.plan.latency)
        query = request.query
        token = query.get("token", "")
        note_id = query.get("noteId", "")
        fault = sim.draw_http_fault()
        if fault == "slow":
            await asyncio.sleep(sim.plan.slow_seconds)
        elif fault is not None:
            return _to_response(request, sim.fault_answer(fault, token, note_id))
        return _to_response(request, sim.answer(token, note_id))
    finally:
        sim.in_flight -= 1


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), headers=JSON_HEADERS)


async def stats_handler(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].stats.as_json())


async def get_config_handler(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].config)


async def post_config_handler(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    try:
        sim.configure(orjson.loads(await request.read()))
    except (ConfigError, orjson.JSONDecodeError) as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(sim.config)


async def reset_handler(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    sim.reset()
    return _json(sim.config)


def make_app(startup: Mapping[str, Any], seeds_dir: Path | None = None) -> web.Application:
    app = web.Application()
    app[SIM_KEY] = Simulator(startup)
    app.router.add_get(API_PATH, api_handler)
    app.router.add_get("/_sim/stats", stats_handler)
    app.router.add_get("/_sim/config", get_config_handler)
    app.router.add_post("/_sim/config", post_config_handler)
    app.router.add_post("/_sim/reset", reset_handler)
    if seeds_dir is not None:
        app.router.add_static("/seeds", seeds_dir)
    return app


# --------------------------------------------------------------------------------------------
# CLI.
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pgy_spider.simulator", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tokens", default="demo-token", help="comma-separated valid tokens")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random fault draws")
    parser.add_argument("--quota", type=int, default=None, help="successful calls per token")
    parser.add_argument("--config", default=None, help="initial config, as POST /_sim/config")
    parser.add_argument("--seeds-dir", type=Path, default=None, help="served under /seeds/")
    args = parser.parse_args(argv)
    try:
        args.startup = startup_config(args)
    except (ConfigError, orjson.JSONDecodeError) as exc:
        parser.error(f"--config: {exc}")
    if args.seeds_dir is not None and not args.seeds_dir.is_dir():
        parser.error(f"--seeds-dir: not a directory: {args.seeds_dir}")
    return args


def startup_config(args: argparse.Namespace) -> dict[str, Any]:
    """CLI flags first, then --config on top: the JSON is the more specific statement."""
    cfg: dict[str, Any] = {
        "tokens": args.tokens,
        "latency_ms": args.latency_ms,
        "seed": args.seed,
        "quota": args.quota,
    }
    if args.config:
        cfg.update(orjson.loads(args.config))
    return validate_config(cfg)


async def serve(args: argparse.Namespace) -> None:
    runner = web.AppRunner(
        make_app(args.startup, args.seeds_dir), access_log=None, shutdown_timeout=1.0
    )
    await runner.setup()
    # Handlers go in before the URL line: a caller may signal as soon as it has read it.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, args.host, args.port).start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"PGY_SIMULATOR_URL=http://{shown}:{port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
