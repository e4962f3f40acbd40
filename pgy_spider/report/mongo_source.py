"""Reading the collected data from MongoDB: notes, creators and metrics snapshots.

Only ``find()`` with ``$in``/``$gte`` filters and projections, streamed from the cursor
(no ``$group``: FerretDB 1.24 lacks its accumulators); the folding happens in Python.
ID lists go to the server in chunks so a big ``--ids-file`` stays within command limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from pgy_spider.mongo import KOLS_COLLECTION, METRICS_COLLECTION
from pgy_spider.notes import METRIC_FIELDS

__all__ = ["read_kols", "read_notes", "read_snapshots"]

Doc = dict[str, Any]
CHUNK = 500

NOTE_PROJECTION = dict.fromkeys(
    (
        "noteId",
        "title",
        "content",
        "noteType",
        "type",
        "userId",
        "name",
        "noteLink",
        "createdAt",
        "lastFetchedAt",
        *METRIC_FIELDS,
        "metricsAllZero",
        "kol",
    ),
    True,
)
KOL_PROJECTION = dict.fromkeys(("nickName", "fansNum", "picturePrice", "videoPrice"), True)
SNAPSHOT_PROJECTION = dict.fromkeys(
    ("_id", "noteId", "fetchedAt", "likeNum", "favNum", "cmtNum", "metricsAllZero"), True
)


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _find(collection: Collection[Doc], query: Doc, projection: Doc) -> Iterator[Doc]:
    with collection.find(query, projection=projection) as cursor:
        yield from cursor


def read_notes(
    db: Database[Doc], collection: str, since: datetime | None, ids: set[str] | None
) -> Iterator[Doc]:
    """Stored notes fetched at or after *since* (if given) among *ids* (if given)."""
    base: Doc = {"lastFetchedAt": {"$gte": since}} if since else {}
    notes = db[collection]
    if ids is None:
        yield from _find(notes, base, NOTE_PROJECTION)
        return
    for chunk in _chunks(ids):
        yield from _find(notes, {**base, "_id": {"$in": chunk}}, NOTE_PROJECTION)


def read_kols(db: Database[Doc], user_ids: Iterable[str]) -> dict[str, Doc]:
    """The stored creators (latest fans and prices) among *user_ids*."""
    found: dict[str, Doc] = {}
    for chunk in _chunks(user_ids):
        for doc in _find(db[KOLS_COLLECTION], {"_id": {"$in": chunk}}, KOL_PROJECTION):
            found[str(doc["_id"])] = doc
    return found


def read_snapshots(
    db: Database[Doc], since: datetime | None, note_ids: set[str] | None
) -> Iterator[Doc]:
    """Metrics snapshots taken at or after *since*, of *note_ids* (all notes if None)."""
    base: Doc = {"fetchedAt": {"$gte": since}} if since else {}
    snapshots = db[METRICS_COLLECTION]
    if note_ids is None:
        yield from _find(snapshots, base, SNAPSHOT_PROJECTION)
        return
    for chunk in _chunks(note_ids):
        yield from _find(snapshots, {**base, "noteId": {"$in": chunk}}, SNAPSHOT_PROJECTION)
