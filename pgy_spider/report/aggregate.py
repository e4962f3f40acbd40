"""What the report says: the run's outcome, top notes and creators, cost per engagement.

Definitions (the README's "The HTML report" repeats them for users):

- engagement = likes + favourites + comments of a note;
- per 1,000 fans = engagement / the creator's fans x 1000 (creators with 0 or unknown fans
  have no such figure);
- a creator's engagement is the median engagement of their notes (a typical note, robust
  to one viral post), with the total shown beside it;
- cost per engagement = the creator's picture price over the median engagement of their
  picture notes, and the video price over that of their video notes; creators with 0 or
  unknown fans, no price (missing or 0) for that kind of note, or a median of 0 are left out;
- notes whose metrics are all 0 (the API's "not available") are left out of everything
  above and counted.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pgy_spider.report.model import CreatorSeen, NoteRow, as_datetime

__all__ = [
    "Collected",
    "CostRow",
    "CreatorRow",
    "NoteRank",
    "NotesAggregate",
    "RunOutcome",
    "billed_calls",
    "run_outcome",
]

NOTE_TYPES = ("picture", "video")


# -- the run --------------------------------------------------------------------


@dataclass
class RunOutcome:
    finish_reason: str | None
    exit_code: int | None
    start_time: datetime | None
    end_time: datetime | None
    duration_s: float | None
    seeds_read: int
    notes_written: int
    failed: int
    failed_by_reason: list[tuple[str, int]]
    rejected: int
    rejected_by_reason: list[tuple[str, int]]
    duplicates: int
    skipped_fresh: int
    pending: int
    balanced: bool | None
    requests_sent: int
    api_calls: int
    calls_by_code: list[tuple[str, int]]
    retries: int
    billed: int
    billed_source: str  # "summary" (its own count) or "codes" (0 + 201)
    possibly_billed: int
    budget: int | None
    notes_per_minute: float | None
    api_base: str | None
    resumed: bool
    sessions: int | None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _counts(value: Any) -> list[tuple[str, int]]:
    """A ``{name: count}`` object as (name, count) pairs, largest first."""
    if not isinstance(value, Mapping):
        return []
    pairs = [(str(k), _int(v)) for k, v in value.items() if _int(v)]
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))


def _code_order(code: str) -> tuple[int, int | str]:
    return (0, int(code)) if code.lstrip("-").isdigit() else (1, code)


def billed_calls(summary: Mapping[str, Any]) -> tuple[int, str]:
    """The billed calls: the summary's own ``billed`` when it has one, else codes 0 + 201."""
    billed = summary.get("billed")
    if isinstance(billed, int) and not isinstance(billed, bool):
        return billed, "summary"
    codes = summary.get("calls_by_code")
    codes = codes if isinstance(codes, Mapping) else {}
    return _int(codes.get("0")) + _int(codes.get("201")), "codes"


def run_outcome(summary: Mapping[str, Any]) -> RunOutcome:
    start = as_datetime(summary.get("start_time"))
    end = as_datetime(summary.get("end_time"))
    duration = (end - start).total_seconds() if start and end and end >= start else None
    notes = _int(summary.get("notes_written"))
    codes = summary.get("calls_by_code")
    calls_by_code = sorted(
        ((str(k), _int(v)) for k, v in (codes.items() if isinstance(codes, Mapping) else ())),
        key=lambda kv: _code_order(kv[0]),
    )
    billed, source = billed_calls(summary)
    budget = summary.get("budget")
    balanced = summary.get("balanced")
    sessions = summary.get("sessions")
    exit_code = summary.get("exit_code")
    return RunOutcome(
        finish_reason=str(summary["finish_reason"]) if summary.get("finish_reason") else None,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        start_time=start,
        end_time=end,
        duration_s=duration,
        seeds_read=_int(summary.get("seeds_read")),
        notes_written=notes,
        failed=_int(summary.get("failed")),
        failed_by_reason=_counts(summary.get("failed_by_reason")),
        rejected=_int(summary.get("rejected")),
        rejected_by_reason=_counts(summary.get("rejected_by_reason")),
        duplicates=_int(summary.get("duplicates")),
        skipped_fresh=_int(summary.get("skipped_fresh")),
        pending=_int(summary.get("pending")),
        balanced=balanced if isinstance(balanced, bool) else None,
        requests_sent=_int(summary.get("requests_sent")),
        api_calls=_int(summary.get("api_calls")),
        calls_by_code=[kv for kv in calls_by_code if kv[1]],
        retries=_int(summary.get("retries")),
        billed=billed,
        billed_source=source,
        possibly_billed=_int(summary.get("possibly_billed")),
        budget=_int(budget) or None,
        notes_per_minute=notes / (duration / 60) if duration else None,
        api_base=str(summary["api_base"]) if summary.get("api_base") else None,
        resumed=bool(summary.get("resumed")),
        sessions=sessions if isinstance(sessions, int) and not isinstance(sessions, bool) else None,
    )


# -- the collected notes -----------------------------------------------------------


# Creator fields as (fetch time, value): a later fetch's non-null value wins, as in kols.
_CREATOR_FIELDS = ("name", "fans", "picture_price", "video_price")


@dataclass(slots=True)
class Creator:
    """A creator's latest known name, fans and prices, with when each was seen."""

    user_id: str
    name: str | None = None
    fans: int | None = None
    picture_price: int | None = None
    video_price: int | None = None
    seen: list[float] = field(default_factory=lambda: [float("-inf")] * 4)

    def update(self, info: CreatorSeen, when: float) -> None:
        for index, name in enumerate(_CREATOR_FIELDS):
            value = getattr(info, name)
            if value is not None and when >= self.seen[index]:
                setattr(self, name, value)
                self.seen[index] = when

    def stored(self, doc: Mapping[str, Any]) -> None:
        """The creator as MongoDB's kols holds them (the latest over all notes) wins."""
        for name, key in zip(
            _CREATOR_FIELDS, ("nickName", "fansNum", "picturePrice", "videoPrice"), strict=True
        ):
            value = doc.get(key)
            if value is not None and not isinstance(value, bool):
                setattr(self, name, str(value) if name == "name" else _int(value))


@dataclass
class NoteRank:
    rank: int
    note: NoteRow
    creator: str | None
    fans: int | None
    per_1k_fans: float | None


@dataclass
class CreatorRow:
    rank: int
    user_id: str
    name: str | None
    fans: int | None
    notes: int
    total: int
    median: float
    per_1k_fans: float | None
    picture_price: int | None
    video_price: int | None


@dataclass
class CostRow:
    rank: int
    user_id: str
    name: str | None
    fans: int
    note_type: str
    price: int
    notes: int
    median: float
    cost_per_engagement: float


@dataclass
class LeftOut:
    """Why creators are missing from the cost-per-engagement table."""

    zero_fans: int = 0  # creators with 0 or unknown fans
    no_price: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NOTE_TYPES, 0))
    zero_median: int = 0  # creator/note-type pairs whose median engagement is 0


@dataclass
class Collected:
    notes: int  # distinct notes
    all_zero: int  # ... of which metrics all 0, left out of the rankings
    ranked: int
    repeated: int  # lines of the same note again (the latest fetch counts)
    by_type: dict[str, int]
    creators: int
    top_notes: list[NoteRank]
    top_notes_per_fans: list[NoteRank]
    top_creators: list[CreatorRow]
    top_creators_per_fans: list[CreatorRow]
    costs: list[CostRow]
    cost_left_out: LeftOut


def _per_1k(engagement: float, fans: int | None) -> float | None:
    return engagement / fans * 1000 if fans else None


class NotesAggregate:
    """Collects notes one at a time (a feed is streamed), then ranks them.

    Every note is kept until the end (a later line of the same note replaces it), as a
    compact :class:`NoteRow`; repeated strings (creators, dates) are stored once.
    """

    def __init__(self) -> None:
        self._notes: dict[str, NoteRow] = {}
        self._creators: dict[str, Creator] = {}
        self._strings: dict[str, str] = {}
        self.repeated = 0

    def _shared(self, text: str | None) -> str | None:
        return None if text is None else self._strings.setdefault(text, text)

    def add(self, parsed: tuple[NoteRow, CreatorSeen | None] | None) -> None:
        if parsed is None:
            return
        row, seen = parsed
        if seen is not None:
            creator = self._creators.get(seen.user_id)
            if creator is None:
                creator = self._creators[seen.user_id] = Creator(seen.user_id)
            creator.update(seen, row.fetched_at)
        known = self._notes.get(row.note_id)
        if known is not None:
            self.repeated += 1
            if known.fetched_at > row.fetched_at:
                return
        row.user_id = self._shared(row.user_id)
        row.published = self._shared(row.published)
        self._notes[row.note_id] = row

    def add_all(self, parsed: Iterable[tuple[NoteRow, CreatorSeen | None] | None]) -> None:
        for item in parsed:
            self.add(item)

    @property
    def note_ids(self) -> set[str]:
        return set(self._notes)

    @property
    def user_ids(self) -> set[str]:
        return set(self._creators)

    def result(
        self, top: int, known_creators: Mapping[str, Mapping[str, Any]] | None = None
    ) -> Collected:
        creators = self._creators
        for user_id, doc in (known_creators or {}).items():
            if user_id in creators:
                creators[user_id].stored(doc)
        engagements: dict[str, dict[str | None, list[int]]] = {}
        rows = self._notes.values()
        ranked = [row for row in rows if not row.all_zero]
        for row in ranked:
            if row.user_id is not None:
                by_type = engagements.setdefault(row.user_id, {})
                by_type.setdefault(row.note_type, []).append(row.engagement)

        def creator_of(row: NoteRow) -> Creator | None:
            return creators.get(row.user_id) if row.user_id else None

        def rank(row: NoteRow, position: int) -> NoteRank:
            creator = creator_of(row)
            fans = creator.fans if creator else None
            name = creator.name if creator else None
            return NoteRank(position, row, name, fans, _per_1k(row.engagement, fans))

        by_engagement = heapq.nsmallest(top, ranked, key=lambda r: (-r.engagement, r.note_id))
        rated = ((row, rank(row, 0).per_1k_fans) for row in ranked)
        by_rate = heapq.nsmallest(
            top,
            ((row, per) for row, per in rated if per is not None),
            key=lambda rp: (-rp[1], rp[0].note_id),
        )
        creator_rows = [
            self._creator_row(creators[user_id], by_type)
            for user_id, by_type in engagements.items()
        ]
        top_creators = heapq.nsmallest(
            top, creator_rows, key=lambda c: (-c.median, -c.total, c.user_id)
        )
        top_rates = heapq.nsmallest(
            top,
            (c for c in creator_rows if c.per_1k_fans is not None),
            key=lambda c: (-(c.per_1k_fans or 0.0), c.user_id),
        )
        costs, left_out = self._costs(creators, engagements)
        return Collected(
            notes=len(rows),
            all_zero=len(rows) - len(ranked),
            ranked=len(ranked),
            repeated=self.repeated,
            by_type={t: sum(1 for row in rows if row.note_type == t) for t in NOTE_TYPES},
            creators=len(creators),
            top_notes=[rank(row, i) for i, row in enumerate(by_engagement, 1)],
            top_notes_per_fans=[rank(row, i) for i, (row, _) in enumerate(by_rate, 1)],
            top_creators=_reranked(top_creators),
            top_creators_per_fans=_reranked(top_rates),
            costs=costs[:top],
            cost_left_out=left_out,
        )

    def title(self, note_id: str) -> str:
        row = self._notes.get(note_id)
        return row.title if row else ""

    @staticmethod
    def _creator_row(creator: Creator, by_type: Mapping[str | None, list[int]]) -> CreatorRow:
        values = [e for type_values in by_type.values() for e in type_values]
        median = float(statistics.median(values))
        return CreatorRow(
            rank=0,
            user_id=creator.user_id,
            name=creator.name,
            fans=creator.fans,
            notes=len(values),
            total=sum(values),
            median=median,
            per_1k_fans=_per_1k(median, creator.fans),
            picture_price=creator.picture_price,
            video_price=creator.video_price,
        )

    @staticmethod
    def _costs(
        creators: Mapping[str, Creator], engagements: Mapping[str, Mapping[str | None, list[int]]]
    ) -> tuple[list[CostRow], LeftOut]:
        left_out = LeftOut()
        rows: list[CostRow] = []
        # Creators with only all-zero notes are not here: nothing to say about them.
        for user_id, by_type in engagements.items():
            creator = creators[user_id]
            if not creator.fans or creator.fans <= 0:
                left_out.zero_fans += 1
                continue
            for note_type in NOTE_TYPES:
                values = by_type.get(note_type)
                if not values:
                    continue
                price = creator.picture_price if note_type == "picture" else creator.video_price
                if not price or price <= 0:
                    left_out.no_price[note_type] += 1
                    continue
                median = float(statistics.median(values))
                if median <= 0:
                    left_out.zero_median += 1
                    continue
                rows.append(
                    CostRow(
                        rank=0,
                        user_id=creator.user_id,
                        name=creator.name,
                        fans=creator.fans,
                        note_type=note_type,
                        price=price,
                        notes=len(values),
                        median=median,
                        cost_per_engagement=price / median,
                    )
                )
        rows.sort(key=lambda r: (r.cost_per_engagement, r.user_id, r.note_type))
        for rank, row in enumerate(rows, 1):
            row.rank = rank
        return rows, left_out


def _reranked(rows: list[CreatorRow]) -> list[CreatorRow]:
    """Copies numbered 1..n (the same creator can rank differently in two tables)."""
    return [CreatorRow(**{**row.__dict__, "rank": rank}) for rank, row in enumerate(rows, 1)]
