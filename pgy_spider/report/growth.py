"""Metric growth between fetches, from the ``note_metrics`` snapshots (one per fetch).

FerretDB 1.24 has no ``$group`` accumulators such as ``$first``/``$last``/``$min``/``$max``,
so snapshots are read with plain ``find()`` and folded here, one document at a time:
per note only the first and the last usable snapshot are kept, not the whole history.
A snapshot whose metrics are all 0 says nothing (the API's "not available") and is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pgy_spider.report.model import as_datetime

__all__ = ["Growth", "GrowthAggregate", "GrowthRow", "Snapshot", "series_of", "snapshot"]

_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    fetched_at: datetime
    likes: int
    favs: int
    comments: int

    @property
    def engagement(self) -> int:
        return self.likes + self.favs + self.comments


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def snapshot(doc: Mapping[str, Any]) -> Snapshot | None:
    """A usable snapshot, or None (no date, or every metric 0)."""
    when = as_datetime(doc.get("fetchedAt"))
    if when is None or doc.get("metricsAllZero") is True:
        return None
    return Snapshot(
        when, _count(doc.get("likeNum")), _count(doc.get("favNum")), _count(doc.get("cmtNum"))
    )


@dataclass
class GrowthRow:
    rank: int
    note_id: str
    title: str
    snapshots: int
    first: Snapshot
    last: Snapshot

    @property
    def growth(self) -> int:
        return self.last.engagement - self.first.engagement

    @property
    def days(self) -> float:
        return (self.last.fetched_at - self.first.fetched_at).total_seconds() / _DAY_S

    @property
    def per_day(self) -> float | None:
        return self.growth / self.days if self.days > 0 else None


@dataclass
class Growth:
    notes_with_snapshots: int
    fetched_more_than_once: int
    all_zero_snapshots: int
    rows: list[GrowthRow]
    # noteId -> engagement over time, for the chart (the top rows only)
    series: dict[str, list[tuple[datetime, int]]] = field(default_factory=dict)


class GrowthAggregate:
    def __init__(self) -> None:
        self._first: dict[str, Snapshot] = {}
        self._last: dict[str, Snapshot] = {}
        self._count: dict[str, int] = {}
        self._seen: set[str] = set()
        self.all_zero = 0

    def add(self, doc: Mapping[str, Any]) -> None:
        note_id = doc.get("noteId")
        if not isinstance(note_id, str):
            return
        self._seen.add(note_id)
        snap = snapshot(doc)
        if snap is None:
            self.all_zero += 1
            return
        self._count[note_id] = self._count.get(note_id, 0) + 1
        first = self._first.get(note_id)
        if first is None or snap.fetched_at < first.fetched_at:
            self._first[note_id] = snap
        last = self._last.get(note_id)
        if last is None or snap.fetched_at >= last.fetched_at:
            self._last[note_id] = snap

    def add_all(self, docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            self.add(doc)

    def result(self, top: int, title_of: Callable[[str], str]) -> Growth:
        multi = [note_id for note_id, n in self._count.items() if n >= 2]
        rows = [
            GrowthRow(
                0,
                note_id,
                "",
                self._count[note_id],
                self._first[note_id],
                self._last[note_id],
            )
            for note_id in multi
        ]
        rows.sort(key=lambda r: (-r.growth, r.note_id))
        rows = rows[:top]
        for rank, row in enumerate(rows, 1):
            row.rank = rank
            row.title = title_of(row.note_id)
        return Growth(len(self._seen), len(multi), self.all_zero, rows)


def series_of(docs: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[datetime, int]]]:
    """Engagement over time per note, in fetch order (usable snapshots only)."""
    series: dict[str, list[tuple[datetime, int]]] = {}
    for doc in docs:
        snap = snapshot(doc)
        note_id = doc.get("noteId")
        if snap is not None and isinstance(note_id, str):
            series.setdefault(note_id, []).append((snap.fetched_at, snap.engagement))
    for points in series.values():
        points.sort()
    return series
