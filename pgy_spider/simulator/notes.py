"""Deterministic note generation: the same noteId always yields the same note (modulo metrics).

Notes are shaped exactly like the recorded response of the real API (Chinese text and emoji, a
shared pool of creators, picture and video notes); the static part of each note is cached.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

CHINA_TZ = timezone(timedelta(hours=8))
HEX = frozenset("0123456789abcdef")
# The engagement figures: the only fields that change between two answers for one note.
METRIC_KEYS = ("impNum", "likeNum", "favNum", "cmtNum", "readNum", "shareNum", "followCnt")

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
    return _build_note(note_id)


def _build_note(note_id: str) -> tuple[dict[str, Any], dict[str, int]]:
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
        **dict.fromkeys(METRIC_KEYS, 0),
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
        note[key] = _grown(value, step)
    return note


def _grown(value: int, step: int) -> int:
    return value + step * (value // 20 + 1)


# --------------------------------------------------------------------------------------------
# The same note as JSON bytes, for the success path: only the metrics change between answers,
# so the rest is serialised once per note and each answer is a few bytes joined together.
# --------------------------------------------------------------------------------------------

_METRICS_JSON = b",".join(b'"%s":%%d' % key.encode() for key in METRIC_KEYS)


class NoteBytes(NamedTuple):
    head: bytes  # the note's JSON object up to its first metric (with the comma)
    metrics: tuple[int, ...]  # starting values, in METRIC_KEYS order
    tail: bytes  # from the comma after the last metric to the closing brace


@lru_cache(maxsize=200_000)
def note_bytes(note_id: str) -> NoteBytes:
    """The static JSON of ``render_note(note_id, ...)`` around its metrics (not cached twice:
    the dict form is built, cut and dropped)."""
    static, metrics = _build_note(note_id)
    keys = list(static)
    first = keys.index(METRIC_KEYS[0])
    last = first + len(METRIC_KEYS)
    # The metrics are one contiguous run of top-level keys, in METRIC_KEYS order.
    assert tuple(keys[first:last]) == METRIC_KEYS == tuple(metrics), keys
    head = orjson.dumps({k: static[k] for k in keys[:first]})[:-1] + b","
    tail = b"," + orjson.dumps({k: static[k] for k in keys[last:]})[1:]
    return NoteBytes(head, tuple(metrics.values()), tail)


def note_pieces(note_id: str, fetched_before: int, growth: bool) -> tuple[bytes, bytes, bytes]:
    """The JSON of ``render_note(note_id, fetched_before, growth)`` in three pieces (head,
    metrics, tail), to be joined with the rest of the answer in one copy."""
    parts = note_bytes(note_id)
    step = fetched_before if growth else 0
    values = tuple(_grown(v, step) for v in parts.metrics) if step else parts.metrics
    return parts.head, _METRICS_JSON % values, parts.tail


def note_json(note_id: str, fetched_before: int, growth: bool) -> bytes:
    """``orjson.dumps(render_note(note_id, fetched_before, growth))``, byte for byte."""
    return b"".join(note_pieces(note_id, fetched_before, growth))


def invalid_note(note_id: str) -> dict[str, Any]:
    """A code-0 payload a client must reject: wrong types and no noteId."""
    note = render_note(note_id, 0, False)
    del note["noteId"]
    note["likeNum"] = "lots"
    note["time"] = "yesterday"
    return note


def is_note_id(value: str) -> bool:
    return len(value) == 24 and HEX.issuperset(value)
