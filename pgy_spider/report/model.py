"""One note as the report sees it: a few typed fields out of a feed line or a stored note.

A feed can hold millions of notes and every one is kept until the end (the latest fetch
of a note replaces an earlier one), so a :class:`NoteRow` holds only what the report
ranks by or shows, compactly: no ``raw``, no ``content``, a short title, a timestamp as a
float. The creator's fans and prices travel separately (:class:`CreatorSeen`) and are
folded into one record per creator. Engagement is likes + favourites + comments; a note
whose metrics are all 0 carries no engagement information (the API answers 0 for "not
available"), so it is flagged and left out of every ranking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

__all__ = ["CreatorSeen", "NoteRow", "as_datetime", "parse_note", "safe_link"]

METRIC_FIELDS: Final = ("impNum", "likeNum", "favNum", "cmtNum", "readNum", "shareNum", "followCnt")
_TITLE_CHARS: Final = 60
_NOTE_ID: Final = re.compile(r"^[0-9a-f]{24}$")
_TYPES: Final = {1: "picture", 2: "video", "picture": "picture", "video": "video"}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class NoteRow:
    note_id: str
    title: str
    note_type: str | None  # "picture", "video" or None (unknown)
    user_id: str | None
    link: str | None  # an http(s) URL, never another scheme (the text is untrusted)
    published: str | None  # YYYY-MM-DD (UTC)
    fetched_at: float  # epoch seconds: which of two lines of one note is the latest
    likes: int
    favs: int
    comments: int
    all_zero: bool

    @property
    def engagement(self) -> int:
        return self.likes + self.favs + self.comments


class CreatorSeen(NamedTuple):
    """The creator as one fetch saw them (None = the fetch did not say)."""

    user_id: str
    name: str | None
    fans: int | None
    picture_price: int | None
    video_price: int | None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def _optional_count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def as_datetime(value: Any) -> datetime | None:
    """An ISO-8601 string or a datetime, as an aware UTC datetime (naive = UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def safe_link(url: Any) -> str | None:
    """*url* if it is an http(s) URL: a ``javascript:`` link in note data must not be clickable."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    return url if url.lower().startswith(("https://", "http://")) else None


def _all_zero(note: dict[str, Any]) -> bool:
    flag = note.get("metricsAllZero")
    if isinstance(flag, bool):
        return flag
    return not any(_count(note.get(name)) for name in METRIC_FIELDS)


def parse_note(
    note: dict[str, Any], fetched_key: str = "fetchedAt"
) -> tuple[NoteRow, CreatorSeen | None] | None:
    """The report's view of one note (a feed line or a stored document); None without an ID."""
    note_id = _text(note.get("noteId") or note.get("_id"))
    if note_id is None:
        return None
    note_id = note_id.lower()
    kol = note.get("kol")
    if not isinstance(kol, dict):
        kol = {}
    title = _text(note.get("title")) or _text(note.get("content")) or ""
    link = safe_link(note.get("noteLink"))
    if link is None and _NOTE_ID.match(note_id):
        link = f"https://www.xiaohongshu.com/explore/{note_id}"
    note_type = note.get("noteType") or note.get("type")
    user_id = _text(kol.get("userId")) or _text(note.get("userId"))
    created = as_datetime(note.get("createdAt"))
    row = NoteRow(
        note_id=note_id,
        title=title[:_TITLE_CHARS],
        note_type=_TYPES.get(note_type) if isinstance(note_type, int | str) else None,
        user_id=user_id,
        link=link,
        published=created.strftime("%Y-%m-%d") if created else None,
        fetched_at=(as_datetime(note.get(fetched_key)) or _EPOCH).timestamp(),
        likes=_count(note.get("likeNum")),
        favs=_count(note.get("favNum")),
        comments=_count(note.get("cmtNum")),
        all_zero=_all_zero(note),
    )
    if user_id is None:
        return row, None
    creator = CreatorSeen(
        user_id=user_id,
        name=_text(kol.get("nickName")) or _text(note.get("name")),
        fans=_optional_count(kol.get("fansNum")),
        picture_price=_optional_count(kol.get("picturePrice")),
        video_price=_optional_count(kol.get("videoPrice")),
    )
    return row, creator
