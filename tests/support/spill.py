"""Spill files and ``scrapy pgy_replay_spill``: items as the MongoDB pipeline receives (and
spills) them, writing spill files, and running the real command in a process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

T0 = datetime(2026, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)


def note_id(i: int) -> str:
    return f"65c0b3fc{i:016x}"


def make_item(
    i: int,
    *,
    fetched: datetime = T0,
    likes: int = 1,
    user: str = "user-1",
    fans: int | None = 1000,
    picture_price: int | None = 5000,
) -> dict[str, Any]:
    """A normalized item with the keys the pipeline receives (values trimmed to the point)."""
    return {
        "noteId": note_id(i),
        "noteLink": f"https://www.xiaohongshu.com/explore/{note_id(i)}",
        "type": 1,
        "title": f"标题 {i} ✨",
        "content": "#话题[话题]#",
        "userId": user,
        "name": "创作者😀",
        "redId": "red-1",
        "headPhoto": "https://example.invalid/h.jpg",
        "createTime": 1707127804000,
        "createdAt": "2024-02-05T10:10:04Z",
        "updatedAt": "2024-02-05T10:10:04+00:00",
        "userUpdatedAt": None,
        "likeNum": likes,
        "favNum": 2,
        "cmtNum": 3,
        "shareNum": 4,
        "readNum": 5,
        "impNum": 6,
        "followCnt": 7,
        "metricsAllZero": False,
        "imageUrls": ["https://example.invalid/1.jpg"],
        "kol": {
            "userId": user,
            "nickName": "创作者😀",
            "fansNum": fans,
            "picturePrice": picture_price,
            "videoPrice": 9000,
            "contentTags": [{"taxonomy1Tag": "美妆", "taxonomy2Tags": ["护肤"]}],
        },
        "fetchedAt": fetched.isoformat().replace("+00:00", "Z"),
        "raw": {"noteId": note_id(i), "likeNum": likes, "nested": {"list": [1, None]}},
    }
