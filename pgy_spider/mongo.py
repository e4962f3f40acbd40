"""MongoDB storage for fetched notes, with no Scrapy in it.

Everything here is plain pymongo so it can be tested against a real server without a
crawler: the pipeline (``pgy_spider.pipelines.mongo``) only decides *when* to call it and
on which thread, and ``pgy_spider.spillreplay`` feeds a spill file through the same writes.

Layout:

- ``<notes>`` (``MONGO_COLLECTION``): one document per note, ``_id`` = noteId, holding its
  newest fetch; ``firstFetchedAt`` is the earliest fetch, ``lastFetchedAt`` the newest.
- ``note_metrics``: one snapshot per successful fetch (engagement counts + ``fetchedAt``).
- ``kols``: one document per creator, ``_id`` = userId, with the newest fans and prices.

Every write is keyed by a deterministic ``_id`` and is idempotent, so replaying a batch (a
retry after a network error, or a spill file fed back in) never duplicates anything. The
newest fetch wins whatever order the writes arrive in: a note or creator upsert only
applies over an older stored document (see :func:`newest_write`), so a spill replayed
after a newer crawl leaves the newer data in place. The commands used (``update`` with
``$set``, ``$min``, ``$setOnInsert`` and ``$not``, ``createIndexes``, ``find`` with
``_id: {$in: [...]}``) behave the same on MongoDB and on FerretDB 1.24 (SQLite backend),
which the tests run against; where their replies differ, :func:`_execute` reads back.
"""

from __future__ import annotations

import logging
import os
import re
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
)

from pgy_spider.errors import StorageUnavailable

logger = logging.getLogger(__name__)

METRICS_COLLECTION = "note_metrics"
KOLS_COLLECTION = "kols"

METRIC_FIELDS = ("likeNum", "favNum", "cmtNum", "shareNum", "readNum", "impNum", "followCnt")
# Item fields holding ISO-8601 strings that become BSON datetimes, so analysts can query by date.
DATETIME_FIELDS = ("createdAt", "updatedAt", "userUpdatedAt")
# Creator fields taken from the note itself when userInfo lacks them.
NOTE_CREATOR_FIELDS = ("redId", "headPhoto")

# createIndexes answers these when an equivalent index already exists under another
# name or with other options (e.g. one an analyst made by hand): that is not our failure.
_INDEX_CONFLICT_CODES = frozenset({85, 86})  # IndexOptionsConflict, IndexKeySpecsConflict

Doc = dict[str, Any]

# Operations per update command. Small on purpose: FerretDB 1.24 (SQLite backend) holds
# one SQLite connection per *matched* update until the whole command ends, from a pool of
# 100 per database, so a single command re-updating ~100 stored notes deadlocks the server
# (see internal/handler/msg_update.go, `defer closer.Close()` inside the loop). 25 leaves
# room for a few concurrent writers; on MongoDB the extra round trips cost next to nothing.
MAX_OPS_PER_COMMAND = 25


class MongoUnavailable(StorageUnavailable):
    """MongoDB cannot be used: the message is one line, with any password masked."""


# -- URIs and error messages --------------------------------------------------

_USERINFO_RE = re.compile(r"^(mongodb(?:\+srv)?://)([^@/]*)@", re.IGNORECASE)


def mask_uri(uri: str) -> str:
    """The URI as it may be logged: ``mongodb://user:***@host/...``."""
    match = _USERINFO_RE.match(uri)
    if not match or ":" not in match.group(2):
        return uri
    user = match.group(2).split(":", 1)[0]
    return f"{match.group(1)}{user}:***@{uri[match.end() :]}"


def _password(uri: str) -> str | None:
    match = _USERINFO_RE.match(uri)
    if not match or ":" not in match.group(2):
        return None
    return match.group(2).split(":", 1)[1] or None


_CONFIGURED_TIMEOUTS_RE = re.compile(r" \(configured timeouts: [^)]*\)")


def short_error(exc: BaseException, uri: str | None = None) -> str:
    """One line describing *exc*, without pymongo's multi-kilobyte topology dump."""
    text = str(exc) or type(exc).__name__
    # ServerSelectionTimeoutError appends ", Timeout: 5.0s, Topology Description: <...>".
    text = text.split(", Timeout: ", 1)[0]
    text = _CONFIGURED_TIMEOUTS_RE.sub("", text)
    text = " ".join(text.split())  # one line, whatever the driver put in it
    if uri and (password := _password(uri)):
        text = text.replace(password, "***")
    return text[:300]


def uri_options(uri: str) -> set[str]:
    """Lower-cased names of the options given in *uri*'s query string (no DNS lookup)."""
    query = uri.split("?", 1)[1] if "?" in uri else ""
    return {part.split("=", 1)[0].lower() for part in query.split("&") if part}


# -- connecting -----------------------------------------------------------------


def client_options(
    uri: str, timeout_s: float, socket_timeout_s: float | None = None
) -> dict[str, Any]:
    """Our client defaults, leaving alone whatever the user set in the URI.

    pymongo lets keyword arguments override URI options, so a timeout is only passed when
    the URI has none: a user who wrote ``serverSelectionTimeoutMS`` in MONGO_URI keeps it.
    The driver's own 30 s selection default would stall every failed batch far too long,
    and its default of no socket timeout lets a server that accepts a command but never
    answers it hang the crawl's shutdown forever.
    """
    given = uri_options(uri)
    wanted = {
        "serverSelectionTimeoutMS": timeout_s,
        "connectTimeoutMS": timeout_s,
        "socketTimeoutMS": socket_timeout_s,
    }
    options: dict[str, Any] = {"tz_aware": True, "appname": "pgy-spider"}
    for name, seconds in wanted.items():
        if seconds is not None and name.lower() not in given:
            options[name] = max(int(seconds * 1000), 1)
    return options


def connect(
    uri: str, timeout_s: float = 5.0, socket_timeout_s: float | None = None
) -> MongoClient[Doc]:
    """A client for *uri* (no I/O yet); an unusable URI raises :class:`MongoUnavailable`."""
    try:
        return MongoClient(uri, **client_options(uri, timeout_s, socket_timeout_s))
    except (ConfigurationError, ValueError, TypeError) as exc:
        raise MongoUnavailable(
            f"MONGO_URI {mask_uri(uri)} is not usable: {short_error(exc, uri)}"
        ) from exc


CRAWL_UNREACHABLE_FIX = "start the server or fix MONGO_URI (unset it to write feeds only)"


def check_reachable(uri: str, timeout_s: float = 5.0, fix: str = CRAWL_UNREACHABLE_FIX) -> None:
    """Ping the server within *timeout_s*, or raise :class:`MongoUnavailable` (whose
    message ends with *fix*).

    Called before the crawl starts, so that a dead database stops the run before any
    paid API call is made.
    """
    client = connect(uri, timeout_s)
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        # from None: the message says it all; the driver's chained error would only add
        # a multi-line topology dump to the traceback Scrapy prints.
        raise MongoUnavailable(
            f"MongoDB unreachable at {mask_uri(uri)}: {short_error(exc, uri)}; {fix}"
        ) from None
    finally:
        client.close()


# -- indexes --------------------------------------------------------------------


def index_plan(notes_collection: str) -> dict[str, list[IndexModel]]:
    """The indexes each collection needs, with fixed names so re-creating them is a no-op."""
    return {
        notes_collection: [
            IndexModel([("userId", ASCENDING)], name="userId_1"),
            IndexModel([("createdAt", DESCENDING)], name="createdAt_-1"),
        ],
        METRICS_COLLECTION: [
            IndexModel(
                [("noteId", ASCENDING), ("fetchedAt", ASCENDING)], name="noteId_1_fetchedAt_1"
            ),
        ],
        KOLS_COLLECTION: [],  # keyed by _id = userId
    }


def ensure_indexes(db: Database[Doc], notes_collection: str) -> list[str]:
    """Create the indexes; safe to call on every start. Returns the index names ensured."""
    ensured: list[str] = []
    for collection_name, models in index_plan(notes_collection).items():
        for model in models:
            # One createIndexes per index so a conflict on one does not skip the others.
            try:
                ensured.extend(db[collection_name].create_indexes([model]))
            except OperationFailure as exc:
                if exc.code not in _INDEX_CONFLICT_CODES:
                    raise
                name = model.document["name"]
                logger.warning(
                    "MongoDB index %s.%s not created, an equivalent one exists: %s",
                    collection_name,
                    name,
                    short_error(exc),
                )
                ensured.append(name)
    return ensured


# The client timeouts of every writer (the crawl's pipeline, the spill replay): a dead
# server costs 5 s; a command (a 25-op bulk write, a find_fresh query) unanswered for
# 60 s counts as failed, so a hung server ends in a spill, not a hung crawl; building an
# index on a large existing collection can take minutes the first time.
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 60.0
INDEX_TIMEOUT_S = 600.0


def open_for_writes(
    uri: str, database: str, notes_collection: str, *, fix: str = CRAWL_UNREACHABLE_FIX
) -> MongoClient[Doc]:
    """A client for the writes, once the server answered a ping and has the indexes.

    Raises :class:`MongoUnavailable` (one line, password masked, ending with *fix*).
    """
    check_reachable(uri, CONNECT_TIMEOUT_S, fix=fix)
    index_client = connect(uri, CONNECT_TIMEOUT_S, INDEX_TIMEOUT_S)
    try:
        ensure_indexes(index_client[database], notes_collection)
    except PyMongoError as exc:
        raise MongoUnavailable(
            f"MongoDB at {mask_uri(uri)}: cannot create indexes: {short_error(exc, uri)}"
        ) from None
    finally:
        index_client.close()
    return connect(uri, CONNECT_TIMEOUT_S, COMMAND_TIMEOUT_S)


# -- freshness ------------------------------------------------------------------


def find_fresh(collection: Collection[Doc], note_ids: list[str], cutoff: datetime) -> set[str]:
    """IDs among *note_ids* stored with ``lastFetchedAt`` after *cutoff*, in one query."""
    if not note_ids:
        return set()
    query = {"_id": {"$in": note_ids}, "lastFetchedAt": {"$gt": cutoff}}
    with collection.find(query, projection={"_id": True}) as cursor:
        return {str(doc["_id"]) for doc in cursor}


# -- building the writes ----------------------------------------------------------


def to_datetime(value: Any) -> datetime | None:
    """An ISO-8601 string (or datetime) as an aware UTC datetime at BSON's millisecond precision."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:  # the normalizer writes UTC; a naive value is UTC too
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def fetched_at(item: Mapping[str, Any]) -> datetime:
    """When *item* was fetched; now if the item does not say (never fail a write for it)."""
    when = to_datetime(item.get("fetchedAt"))
    if when is None:
        now = datetime.now(UTC)
        when = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return when


def stored_datetime(value: Any) -> datetime | None:
    """A date read back from the server as aware UTC (a client without ``tz_aware`` reads
    naive UTC); None for anything that is not a date."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# How a write decides whether it applies, and how its effect is read back (_settled).
NEWEST = "newest"  # conditional upsert: only over an older (or equally old) stored stamp
ONCE = "once"  # insert-once upsert ($setOnInsert)
EARLIEST = "earliest"  # $min of a first-seen date on an existing document


@dataclass(frozen=True)
class WriteOp:
    """One entry of an ``update`` command, and what shows in the stored document that it
    took effect (FerretDB 1.24 does not say which update of a command failed: see
    :func:`_execute`)."""

    doc_id: Any
    update: Doc
    upsert: bool
    kind: str
    # NEWEST: the stamp field (lastFetchedAt, lastSeenAt) and the value this write sets.
    # ONCE: the snapshot's fetchedAt. EARLIEST: the first-seen field and its value.
    stamp_field: str
    stamp: datetime
    # NEWEST only: the write applies over a stored stamp up to `guard` (the stamp itself,
    # or the oldest of the fetches merged into it), and keeps the earliest `first`.
    guard: datetime | None = None
    first_field: str | None = None
    first: datetime | None = None
    # NEWEST ops merging several fetches: one op per fetch, oldest first, sent instead
    # when the stored stamp falls between those fetches.
    pieces: tuple[WriteOp, ...] = ()

    def command_entry(self, *, conditional: bool) -> Doc:
        """The ``updates`` entry; *conditional*: a NEWEST write's filter holds its guard."""
        query: Doc = {"_id": self.doc_id}
        if conditional and self.kind == NEWEST:
            # $not $gt also matches a document without a date stamp (it is overwritten).
            query[self.stamp_field] = {"$not": {"$gt": self.guard}}
        return {"q": query, "u": self.update, "upsert": self.upsert}


def newest_write(
    doc_id: Any,
    fields: Mapping[str, Any],
    *,
    stamp_field: str,
    stamp: datetime,
    first_field: str,
    first: datetime,
    guard: datetime | None = None,
    pieces: tuple[WriteOp, ...] = (),
) -> WriteOp:
    """An upsert that applies only if the stored document is not newer than *guard*.

    Without aggregation-pipeline updates (FerretDB 1.24 has none) the condition goes in
    the filter (see :meth:`WriteOp.command_entry`): when a newer document exists the
    filter matches nothing, the upsert tries to insert a second document with the same
    ``_id`` and the server answers duplicate key (E11000), which :func:`_execute` reads
    back as "skipped, older". Where such a filter cannot use an index (FerretDB 1.x, see
    :func:`reads_before_writes`) the stored stamp is read first instead.
    """
    guard = stamp if guard is None else guard
    return WriteOp(
        doc_id=doc_id,
        update={"$set": {**fields, stamp_field: stamp}, "$min": {first_field: first}},
        upsert=True,
        kind=NEWEST,
        stamp_field=stamp_field,
        stamp=stamp,
        guard=guard,
        first_field=first_field,
        first=first,
        pieces=pieces,
    )


def earliest_write(op: WriteOp) -> WriteOp:
    """Lowers *op*'s first-seen date on its stored document (a newer one that *op* lost to)."""
    assert op.first_field is not None and op.first is not None
    return WriteOp(
        doc_id=op.doc_id,
        update={"$min": {op.first_field: op.first}},
        upsert=False,
        kind=EARLIEST,
        stamp_field=op.first_field,
        stamp=op.first,
    )


# Keys never $set on a note: _id is the filter, fetchedAt becomes lastFetchedAt, and
# MongoDB rejects an update that names a field in both $set and $min.
_NOT_IN_NOTE_SET = frozenset({"_id", "fetchedAt", "firstFetchedAt", "lastFetchedAt"})


def note_update(
    item: Mapping[str, Any], when: datetime | None = None, first: datetime | None = None
) -> WriteOp:
    """Upsert of the note document unless a newer fetch of it is stored: the newest fetch
    wins whatever order writes arrive in (a spill replayed late included), and
    ``firstFetchedAt`` keeps the earliest (*first*, default *when*)."""
    when = fetched_at(item) if when is None else when
    doc: Doc = {k: v for k, v in item.items() if k not in _NOT_IN_NOTE_SET}
    for name in DATETIME_FIELDS:
        if name in doc:
            # An unparsable string is kept as is rather than lost.
            doc[name] = to_datetime(doc[name]) or doc[name]
    return newest_write(
        item["noteId"],
        doc,
        stamp_field="lastFetchedAt",
        stamp=when,
        first_field="firstFetchedAt",
        first=when if first is None else min(first, when),
    )


def metrics_snapshot_id(note_id: str, when: datetime) -> str:
    """Deterministic snapshot key, so a retried batch does not add the snapshot twice."""
    return f"{note_id}:{int(when.timestamp() * 1000)}"


def metrics_update(item: Mapping[str, Any], when: datetime | None = None) -> WriteOp:
    """Insert-once of this fetch's metrics snapshot into ``note_metrics``, at its own fetch
    time (an older fetch replayed late adds its snapshot to the history too)."""
    when = fetched_at(item) if when is None else when
    snapshot: Doc = {"noteId": item["noteId"], "fetchedAt": when}
    snapshot.update({name: item.get(name) for name in METRIC_FIELDS})
    # A snapshot of zeros may mean "not available" (see the API contract): keep the flag.
    snapshot["metricsAllZero"] = item.get("metricsAllZero")
    snapshot_id = metrics_snapshot_id(item["noteId"], when)
    return WriteOp(
        doc_id=snapshot_id,
        update={"$setOnInsert": snapshot},
        upsert=True,
        kind=ONCE,
        stamp_field="fetchedAt",
        stamp=when,
    )


# Keys the kol upsert sets itself (or filters on): never taken from userInfo.
_KOL_OWN_KEYS = frozenset({"_id", "firstSeenAt", "lastSeenAt"})


def kol_user_id(item: Mapping[str, Any]) -> str | None:
    kol = item.get("kol") or {}
    user_id = kol.get("userId") or item.get("userId")
    return str(user_id) if user_id else None


def kol_fields(item: Mapping[str, Any]) -> Doc:
    """The creator's latest known fields from one note.

    ``None`` values are left out: the API often nulls fields, and a null in one response
    must not wipe the fans or prices another response gave.
    """
    fields: Doc = {k: item.get(k) for k in NOTE_CREATOR_FIELDS}
    fields["nickName"] = item.get("name")  # userInfo's nickName wins when it has one
    fields.update({k: v for k, v in (item.get("kol") or {}).items() if v is not None})
    fields["userId"] = kol_user_id(item)
    fields["lastNoteId"] = item.get("noteId")
    return {k: v for k, v in fields.items() if v is not None and k not in _KOL_OWN_KEYS}


def _kol_write(
    user_id: str,
    fields: Mapping[str, Any],
    when: datetime,
    first: datetime,
    guard: datetime | None = None,
    pieces: tuple[WriteOp, ...] = (),
) -> WriteOp:
    return newest_write(
        user_id,
        fields,
        stamp_field="lastSeenAt",
        stamp=when,
        first_field="firstSeenAt",
        first=first,
        guard=guard,
        pieces=pieces,
    )


def kol_update(user_id: str, fetches: Sequence[tuple[datetime, Mapping[str, Any]]]) -> WriteOp:
    """Upsert of the creator into ``kols`` from one or more fetches ``(when, fields)``.

    The fields are merged oldest first, so the newest non-null value of each wins, and
    the whole write applies only over a creator last seen before all of them. A creator
    last seen *between* them (a spill replayed after a newer crawl) gets the newer
    fetches one by one instead (``pieces``), so an older fetch never overwrites a newer
    one; ``firstSeenAt`` keeps the earliest.
    """
    ordered = sorted(fetches, key=lambda fetch: fetch[0])  # stable: ties keep batch order
    merged: Doc = {}
    for _, fields in ordered:
        merged.update(fields)
    oldest, newest = ordered[0][0], ordered[-1][0]
    pieces: tuple[WriteOp, ...] = ()
    if len(ordered) > 1:
        pieces = tuple(_kol_write(user_id, fields, when, when) for when, fields in ordered)
    return _kol_write(user_id, merged, newest, oldest, guard=oldest, pieces=pieces)


@dataclass
class PlannedWrite:
    """The writes for one collection, each with the batch items it carries."""

    collection: str
    # Only the notes collection's writes count as ``notes_written`` / older.
    is_notes: bool = False
    ops: list[WriteOp] = field(default_factory=list)
    owners: list[tuple[int, ...]] = field(default_factory=list)
    # Items whose note another item of the batch supersedes (a newer fetch of it).
    superseded: list[int] = field(default_factory=list)


def build_note_writes(
    items: Sequence[Mapping[str, Any]], notes_collection: str, times: Sequence[datetime]
) -> PlannedWrite:
    """Note upserts; a note twice in one batch is written once, with its newest fetch
    (and its earliest as ``firstFetchedAt``); the older one counts as skipped, older."""
    by_note: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_note.setdefault(item["noteId"], []).append(index)
    plan = PlannedWrite(notes_collection, is_notes=True)
    for indexes in by_note.values():
        newest = max(indexes, key=lambda i: (times[i], i))
        first = min(times[i] for i in indexes)
        plan.ops.append(note_update(items[newest], times[newest], first))
        # All of them: if the write fails, every fetch is spilled (the replay sorts them).
        plan.owners.append(tuple(indexes))
        plan.superseded.extend(i for i in indexes if i != newest)
    return plan


def build_metrics_writes(
    items: Sequence[Mapping[str, Any]], times: Sequence[datetime]
) -> PlannedWrite:
    """One metrics snapshot per item (two fetches of a note are two snapshots)."""
    plan = PlannedWrite(METRICS_COLLECTION)
    for index, item in enumerate(items):
        plan.ops.append(metrics_update(item, times[index]))
        plan.owners.append((index,))
    return plan


def build_kol_writes(items: Sequence[Mapping[str, Any]], times: Sequence[datetime]) -> PlannedWrite:
    """One upsert per creator in the batch, merging their notes' fields in fetch order."""
    merged: dict[str, tuple[list[tuple[datetime, Doc]], list[int]]] = {}
    for index, item in enumerate(items):
        user_id = kol_user_id(item)
        if user_id is None:
            continue
        fetches, owners = merged.setdefault(user_id, ([], []))
        fetches.append((times[index], kol_fields(item)))
        owners.append(index)
    plan = PlannedWrite(KOLS_COLLECTION)
    for user_id, (fetches, owners) in merged.items():
        plan.ops.append(kol_update(user_id, fetches))
        plan.owners.append(tuple(owners))
    return plan


def build_batch_writes(
    items: Sequence[Mapping[str, Any]], notes_collection: str
) -> list[PlannedWrite]:
    """All the writes for a batch of normalized items, notes first."""
    times = [fetched_at(item) for item in items]  # once: an item without one gets one time
    plans = [
        build_note_writes(items, notes_collection, times),
        build_metrics_writes(items, times),
        build_kol_writes(items, times),
    ]
    return [plan for plan in plans if plan.ops]


# -- executing the writes ---------------------------------------------------------

# The server's duplicate key error: also what a NEWEST upsert gets when its document is
# newer than the write (see newest_write).
DUPLICATE_KEY = 11000

APPLIED = "applied"
OLDER = "older"  # not applied: the stored document is newer
FAILED = "failed"


@dataclass(frozen=True)
class _Outcome:
    status: str
    error: str | None = None
    # Writes still to make for this op: the first-seen date, or the newer pieces.
    followups: tuple[WriteOp, ...] = ()


_APPLIED = _Outcome(APPLIED)


def _failed(error: str) -> _Outcome:
    return _Outcome(FAILED, error=error)


def _settled(op: WriteOp, stored: Mapping[str, Any] | None) -> _Outcome | None:
    """What became of *op*, read from its stored document; None if it did not take effect."""
    if op.kind == ONCE:
        return _APPLIED if stored is not None else None
    if op.kind == EARLIEST:
        if stored is None:  # the document is gone: there is no date left to lower
            return _APPLIED
        current = stored_datetime(stored.get(op.stamp_field))
        return _APPLIED if current is not None and current <= op.stamp else None
    if stored is None:
        return None
    current = stored_datetime(stored.get(op.stamp_field))
    if current == op.stamp:
        return _APPLIED  # this write, or the very same fetch stored before
    assert op.guard is not None
    if current is None or current <= op.guard:
        return None  # the write would have applied over this: it did not run
    followups = [piece for piece in op.pieces if piece.stamp > current]
    if op.first_field is not None and op.first is not None:
        first = stored_datetime(stored.get(op.first_field))
        if first is None or first > op.first:
            followups.append(earliest_write(op))
    status = OLDER if current > op.stamp else APPLIED  # between: the newer pieces apply
    return _Outcome(status, followups=tuple(followups))


def _update_command(
    db: Database[Doc], collection: str, ops: Sequence[WriteOp], *, conditional: bool
) -> Doc:
    """The server's raw reply to one ``update`` command of *ops*.

    Sent by hand rather than with ``bulk_write``: on FerretDB 1.24 pymongo fails to parse
    the reply to a command with a write error (it has no ``nModified``: a KeyError).
    """
    command: Doc = {
        "update": collection,
        "updates": [op.command_entry(conditional=conditional) for op in ops],
        "ordered": False,
    }
    concern = db.write_concern
    if not concern.is_server_default:  # as bulk_write would send it
        command["writeConcern"] = concern.document
    return db.command(command)


def _read_back(
    db: Database[Doc], collection: str, ops: Sequence[WriteOp], *, by_id: bool
) -> dict[Any, Doc]:
    """The stored documents of *ops* (only the dates that tell what became of them).

    *by_id*: one lookup per ``_id``, for a server that decodes the whole collection for
    ``_id: {$in: [...]}`` (FerretDB 1.x, see :func:`reads_before_writes`).
    """
    fields = {op.stamp_field for op in ops} | {op.first_field for op in ops if op.first_field}
    projection = dict.fromkeys(fields, True)
    ids = list(dict.fromkeys(op.doc_id for op in ops))
    notes = db[collection]
    if by_id:
        found = (notes.find_one({"_id": doc_id}, projection=projection) for doc_id in ids)
        return {doc["_id"]: doc for doc in found if doc is not None}
    with notes.find({"_id": {"$in": ids}}, projection=projection) as cursor:
        return {doc["_id"]: doc for doc in cursor}


# Clients (equal ones share an entry: same servers, same options) whose server needs
# reads_before_writes.
_READ_FIRST: weakref.WeakKeyDictionary[MongoClient[Doc], bool] = weakref.WeakKeyDictionary()


def reads_before_writes(db: Database[Doc]) -> bool:
    """Whether newest-wins writes read the stored stamps first and filter on ``_id`` alone.

    FerretDB 1.x (SQLite) hands SQLite only a filter that is exactly ``{_id: value}``: still
    a scan of the table (``explain``: SCAN), but without decoding the documents (~40-60 ms
    for an ``_id`` not stored, at 500-1,000 notes on a 2-core machine). Any other filter,
    ``_id: {$in: [...]}`` and the conditional upsert's included, reads and decodes the whole
    collection (0.9 s per note with 3000 notes stored, growing with them).
    There the stamps are read by ``_id`` first and only what is older is written: a write
    by another process in the same instant can still be overwritten. MongoDB runs the
    conditional upsert on its ``_id`` index, atomically. Asked once per client.
    """
    client = db.client
    cached = _READ_FIRST.get(client)
    if cached is None:
        try:
            info = client.admin.command("buildInfo")
        except ConnectionFailure:
            raise
        except PyMongoError:  # not allowed to ask: assume a server that indexes filters
            info = {}
        cached = str(info.get("ferretdbVersion", "")).startswith("v1.")
        _READ_FIRST[client] = cached
    return cached


def _error_text(error: Mapping[str, Any]) -> str:
    """One line for a write error of a raw reply."""
    message = " ".join(str(error.get("errmsg") or "write error").split())
    return f"{message[:300]} (code {error.get('code')})"


def _execute(
    db: Database[Doc], collection: str, ops: Sequence[WriteOp], *, read_first: bool
) -> list[_Outcome]:
    """What became of each of *ops*, sent as (at most) one unordered ``update`` command.

    *read_first* (see :func:`reads_before_writes`): the NEWEST ops' stored stamps are read
    first; those already stored, or stored newer, are settled without a write, the others
    are written with an ``_id``-only filter. Otherwise NEWEST ops carry their condition in
    the filter. Raises ConnectionFailure (the caller retries the whole command).
    """
    outcomes: list[_Outcome | None] = [None] * len(ops)
    if read_first:
        newest = [index for index, op in enumerate(ops) if op.kind == NEWEST]
        try:
            stored = _read_back(db, collection, [ops[i] for i in newest], by_id=True)
        except ConnectionFailure:
            raise
        except PyMongoError as exc:
            return [_failed(short_error(exc))] * len(ops)
        for index in newest:
            outcomes[index] = _settled(ops[index], stored.get(ops[index].doc_id))
    to_send = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if to_send:
        sent = _send(db, collection, [ops[i] for i in to_send], read_first=read_first)
        for index, outcome in zip(to_send, sent, strict=True):
            outcomes[index] = outcome
    return [outcome or _APPLIED for outcome in outcomes]


def _send(
    db: Database[Doc], collection: str, ops: Sequence[WriteOp], *, read_first: bool
) -> list[_Outcome]:
    """Send *ops* as one unordered ``update`` command: what became of each one.

    A duplicate key error is read back from the stored document: a newer one means
    "skipped, older"; anything else (another unique index) is a real failure. When the
    reply does not say which op failed, every op is read back and those that did not take
    effect are sent again one by one. That is FerretDB 1.24: it ignores ``ordered``,
    stops at the first failing update and answers index 0 without ``n``. Every op is
    idempotent, so sending one again is harmless.
    """
    try:
        reply = _update_command(db, collection, ops, conditional=not read_first)
    except InvalidDocument as exc:  # too large (or not encodable): find the culprit
        if len(ops) == 1:
            return [_failed(short_error(exc))]
        half = len(ops) // 2
        return _send(db, collection, ops[:half], read_first=read_first) + _send(
            db, collection, ops[half:], read_first=read_first
        )
    except ConnectionFailure:
        raise
    except PyMongoError as exc:  # the whole command was refused
        return [_failed(short_error(exc))] * len(ops)
    if concern_error := reply.get("writeConcernError"):
        # Applied but maybe not durable: every op is idempotent, so they are all redone.
        return [_failed(f"write concern: {_error_text(concern_error)}")] * len(ops)
    errors = reply.get("writeErrors") or []
    outcomes = [_APPLIED] * len(ops)
    if not errors:
        return outcomes
    exact = "n" in reply or len(ops) == 1
    suspects: dict[int, str] = {}  # op index -> the error it got, to read back
    if exact:
        for error in errors:
            index, text = int(error.get("index", 0)), _error_text(error)
            if error.get("code") == DUPLICATE_KEY:
                suspects[index] = text
            else:
                outcomes[index] = _failed(text)
    else:
        suspects = dict.fromkeys(range(len(ops)), _error_text(errors[0]))
    try:
        ops_read = [ops[index] for index in suspects]
        stored = _read_back(db, collection, ops_read, by_id=read_first)
    except ConnectionFailure:
        raise
    except PyMongoError as exc:
        return [_failed(short_error(exc)) if i in suspects else o for i, o in enumerate(outcomes)]
    for index, text in suspects.items():
        op = ops[index]
        settled = _settled(op, stored.get(op.doc_id))
        if settled is not None:
            outcomes[index] = settled
        elif exact:
            outcomes[index] = _failed(text)
        else:
            outcomes[index] = _send(db, collection, [op], read_first=read_first)[0]
    return outcomes


@dataclass
class BatchResult:
    """What became of one batch: counts for the stats, and the items still unwritten."""

    notes_written: int = 0
    failed_attempts: int = 0
    retries: int = 0
    failed_items: set[int] = field(default_factory=set)
    # Items whose note was not written because a newer fetch of it is stored (or is in
    # the same batch). Their metrics snapshot is stored all the same.
    older_items: set[int] = field(default_factory=set)
    last_error: str | None = None
    # The last failure was the server being unreachable (not a rejected document).
    unreachable: bool = False
    # Set by the caller: failed items that could not even be spilled.
    lost: int = 0

    @property
    def notes_skipped_older(self) -> int:
        """Items settled without their note write: a newer fetch of the note is stored."""
        return len(self.older_items - self.failed_items)


def split_plan(plan: PlannedWrite, max_ops: int) -> list[PlannedWrite]:
    """*plan* cut into pieces of at most *max_ops* operations, in order."""
    return [
        PlannedWrite(
            plan.collection,
            plan.is_notes,
            plan.ops[start : start + max_ops],
            plan.owners[start : start + max_ops],
        )
        for start in range(0, len(plan.ops), max_ops)
    ]


def _run_plan(
    db: Database[Doc], plan: PlannedWrite, result: BatchResult, *, read_first: bool
) -> tuple[PlannedWrite | None, PlannedWrite | None]:
    """One ``update`` command; returns the part of *plan* that failed and the follow-up
    writes it calls for (first-seen dates, newer pieces), if any."""
    # ConnectionFailure is the caller's.
    outcomes = _execute(db, plan.collection, plan.ops, read_first=read_first)
    failed = PlannedWrite(plan.collection, plan.is_notes)
    followups = PlannedWrite(plan.collection)
    for op, owners, outcome in zip(plan.ops, plan.owners, outcomes, strict=True):
        if outcome.status == FAILED:
            failed.ops.append(op)
            failed.owners.append(owners)
            result.last_error = outcome.error
            continue
        if plan.is_notes:
            if outcome.status == APPLIED:
                result.notes_written += 1
            else:
                result.older_items.update(owners)
        for extra in outcome.followups:
            followups.ops.append(extra)
            followups.owners.append(owners)
    if failed.ops:
        result.failed_attempts += 1
    return (failed if failed.ops else None), (followups if followups.ops else None)


def write_batch(
    db: Database[Doc],
    plans: Sequence[PlannedWrite],
    *,
    retries: int,
    backoff_s: float,
    max_ops: int = MAX_OPS_PER_COMMAND,
    sleep: Callable[[float], None] = time.sleep,
    read_first: bool | None = None,
) -> BatchResult:
    """Run *plans*, retrying what failed up to *retries* times with exponential backoff.

    Each collection's operations go out in commands of at most *max_ops*. A note (or
    creator) whose stored document is newer is skipped, not failed. Only the failed
    operations are retried, and all of them are idempotent, so a retry after a
    half-applied attempt is harmless. The result names the batch items whose writes still
    failed (the caller spills them) and those skipped as older. *read_first*: see
    :func:`reads_before_writes` (asked of the server when None).
    """
    result = BatchResult()
    for plan in plans:
        result.older_items.update(plan.superseded)
    pending = [chunk for plan in plans for chunk in split_plan(plan, max_ops)]
    for attempt in range(retries + 1):
        if attempt:
            result.retries += 1
            sleep(backoff_s * 2 ** (attempt - 1))
        result.unreachable = False
        still_failing: list[PlannedWrite] = []
        queue = deque(pending)
        while queue:
            plan = queue.popleft()
            try:
                if read_first is None:
                    read_first = reads_before_writes(db)
                left, followups = _run_plan(db, plan, result, read_first=read_first)
            except ConnectionFailure as exc:
                result.failed_attempts += 1
                result.last_error = short_error(exc)
                result.unreachable = True
                still_failing.append(plan)
                still_failing.extend(queue)
                break
            if left is not None:
                still_failing.append(left)
            if followups is not None:
                queue.extend(split_plan(followups, max_ops))
        pending = still_failing
        if not pending:
            break
    for plan in pending:
        for owners in plan.owners:
            result.failed_items.update(owners)
    return result


# -- spill file ---------------------------------------------------------------------


class SpillWriter:
    """Appends items that could not be stored to a JSON-lines file, durably.

    The file is only created on the first spill, so a clean run leaves nothing behind.
    Each line is the item exactly as the pipeline received it, so a spill file can be fed
    back through the same writes later. Not thread-safe: one writer thread owns it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: IO[bytes] | None = None

    def write(self, items: Iterable[Mapping[str, Any]]) -> int:
        # default=str and non-str keys: a spill must never fail on an odd value.
        options = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
        lines = [orjson.dumps(dict(item), default=str, option=options) for item in items]
        if not lines:
            return 0
        prefix = b""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            if _ends_mid_line(self.path):
                # A crash cut the last line short: keep that torn line on its own, or the
                # first new item would be glued to it and both lost to the replay.
                prefix = b"\n"
        self._file.write(prefix + b"".join(lines))
        self._file.flush()
        # These items exist nowhere else: make sure they survive a crash right after.
        os.fsync(self._file.fileno())
        self.count += len(lines)
        return len(lines)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _ends_mid_line(path: Path) -> bool:
    """Whether the file at *path* is non-empty and its last byte is not a newline."""
    with path.open("rb") as fh:
        if fh.seek(0, os.SEEK_END) == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def read_spill(path: Path) -> list[Doc]:
    """The items in a spill file, all lines well formed (for tests; the replay command
    reads it line by line with :mod:`pgy_spider.spillreplay`)."""
    with path.open("rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]
