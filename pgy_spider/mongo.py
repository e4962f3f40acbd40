"""MongoDB storage for fetched notes, with no Scrapy in it.

Everything here is plain pymongo so it can be tested against a real server without a
crawler: the pipeline (``pgy_spider.pipelines.mongo``) only decides *when* to call it and
on which thread.

Layout:

- ``<notes>`` (``MONGO_COLLECTION``): one document per note, ``_id`` = noteId, updated in
  place on every fetch; ``firstFetchedAt`` is only set on insert, ``lastFetchedAt`` always.
- ``note_metrics``: one snapshot per successful fetch (engagement counts + ``fetchedAt``).
- ``kols``: one document per creator, ``_id`` = userId, with the latest fans and prices.

Every write is an upsert keyed by a deterministic ``_id``, so replaying a batch (a retry
after a network error, or a spill file fed back in) never duplicates anything. All the
operators used (unordered bulk ``UpdateOne`` upserts, ``$set``, ``$setOnInsert``,
``createIndexes``, ``find`` with ``_id: {$in: [...]}``) behave the same on MongoDB and on
FerretDB 1.24 (SQLite backend), which the tests run against.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
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

# Operations per bulk write command. Small on purpose: FerretDB 1.24 (SQLite backend) holds
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


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Ping the server within *timeout_s*, or raise :class:`MongoUnavailable`.

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
            f"MongoDB unreachable at {mask_uri(uri)}: {short_error(exc, uri)}; "
            "start the server or fix MONGO_URI (unset it to write feeds only)"
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


# Keys never $set on a note: _id is the filter, fetchedAt becomes lastFetchedAt, and
# MongoDB rejects an update that names firstFetchedAt in both $set and $setOnInsert.
_NOT_IN_NOTE_SET = frozenset({"_id", "fetchedAt", "firstFetchedAt"})


def note_update(item: Mapping[str, Any]) -> UpdateOne:
    """Upsert of the note document: this write wins (replay a spill before newer runs),
    ``firstFetchedAt`` stays."""
    when = fetched_at(item)
    doc: Doc = {k: v for k, v in item.items() if k not in _NOT_IN_NOTE_SET}
    for name in DATETIME_FIELDS:
        if name in doc:
            # An unparsable string is kept as is rather than lost.
            doc[name] = to_datetime(doc[name]) or doc[name]
    doc["lastFetchedAt"] = when
    return UpdateOne(
        {"_id": item["noteId"]},
        {"$set": doc, "$setOnInsert": {"firstFetchedAt": when}},
        upsert=True,
    )


def metrics_snapshot_id(note_id: str, when: datetime) -> str:
    """Deterministic snapshot key, so a retried batch does not add the snapshot twice."""
    return f"{note_id}:{int(when.timestamp() * 1000)}"


def metrics_update(item: Mapping[str, Any]) -> UpdateOne:
    """Insert-once of this fetch's metrics snapshot into ``note_metrics``."""
    when = fetched_at(item)
    snapshot: Doc = {"noteId": item["noteId"], "fetchedAt": when}
    snapshot.update({name: item.get(name) for name in METRIC_FIELDS})
    # A snapshot of zeros may mean "not available" (see the API contract): keep the flag.
    snapshot["metricsAllZero"] = item.get("metricsAllZero")
    return UpdateOne(
        {"_id": metrics_snapshot_id(item["noteId"], when)},
        {"$setOnInsert": snapshot},
        upsert=True,
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


def kol_update(user_id: str, fields: Mapping[str, Any], when: datetime) -> UpdateOne:
    """Upsert of the creator into ``kols`` keyed by userId."""
    return UpdateOne(
        {"_id": user_id},
        {"$set": {**fields, "lastSeenAt": when}, "$setOnInsert": {"firstSeenAt": when}},
        upsert=True,
    )


@dataclass
class PlannedWrite:
    """The bulk operations for one collection, each with the batch items it carries."""

    collection: str
    # Only the notes collection's successes count as ``notes_written``.
    is_notes: bool = False
    ops: list[UpdateOne] = field(default_factory=list)
    owners: list[tuple[int, ...]] = field(default_factory=list)


def build_note_writes(items: Sequence[Mapping[str, Any]], notes_collection: str) -> PlannedWrite:
    """Note upserts; a note twice in one batch is written once, with its later fetch."""
    latest: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        latest.setdefault(item["noteId"], []).append(index)
    plan = PlannedWrite(notes_collection, is_notes=True)
    for indexes in latest.values():
        plan.ops.append(note_update(items[indexes[-1]]))
        plan.owners.append(tuple(indexes))
    return plan


def build_metrics_writes(items: Sequence[Mapping[str, Any]]) -> PlannedWrite:
    """One metrics snapshot per item (two fetches of a note are two snapshots)."""
    plan = PlannedWrite(METRICS_COLLECTION)
    for index, item in enumerate(items):
        plan.ops.append(metrics_update(item))
        plan.owners.append((index,))
    return plan


def build_kol_writes(items: Sequence[Mapping[str, Any]]) -> PlannedWrite:
    """One upsert per creator in the batch, merging their notes' fields in fetch order."""
    merged: dict[str, tuple[Doc, datetime, list[int]]] = {}
    for index, item in enumerate(items):
        user_id = kol_user_id(item)
        if user_id is None:
            continue
        fields, when, owners = merged.get(user_id, ({}, fetched_at(item), []))
        fields.update(kol_fields(item))
        owners.append(index)
        merged[user_id] = (fields, max(when, fetched_at(item)), owners)
    plan = PlannedWrite(KOLS_COLLECTION)
    for user_id, (fields, when, owners) in merged.items():
        plan.ops.append(kol_update(user_id, fields, when))
        plan.owners.append(tuple(owners))
    return plan


def build_batch_writes(
    items: Sequence[Mapping[str, Any]], notes_collection: str
) -> list[PlannedWrite]:
    """All the writes for a batch of normalized items, notes first."""
    plans = [
        build_note_writes(items, notes_collection),
        build_metrics_writes(items),
        build_kol_writes(items),
    ]
    return [plan for plan in plans if plan.ops]


# -- executing the writes ---------------------------------------------------------


@dataclass
class BatchResult:
    """What became of one batch: counts for the stats, and the items still unwritten."""

    notes_written: int = 0
    failed_attempts: int = 0
    retries: int = 0
    failed_items: set[int] = field(default_factory=set)
    last_error: str | None = None
    # The last failure was the server being unreachable (not a rejected document).
    unreachable: bool = False
    # Set by the caller: failed items that could not even be spilled.
    lost: int = 0


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


def _failed_op_indexes(exc: BulkWriteError, op_count: int) -> list[int]:
    details = exc.details or {}
    if details.get("writeConcernErrors"):
        # Applied but maybe not durable: every op is an idempotent upsert, so redo them all.
        return list(range(op_count))
    return sorted({int(err["index"]) for err in details.get("writeErrors", [])})


def _run_plan(db: Database[Doc], plan: PlannedWrite, result: BatchResult) -> PlannedWrite | None:
    """One unordered bulk write; returns the part of *plan* that failed, if any."""
    try:
        db[plan.collection].bulk_write(plan.ops, ordered=False)
        failed: list[int] = []
    except BulkWriteError as exc:
        failed = _failed_op_indexes(exc, len(plan.ops))
        result.last_error = short_error(exc)
    except ConnectionFailure:
        raise  # the caller stops this attempt: the other collections would fail the same way
    except PyMongoError as exc:
        failed = list(range(len(plan.ops)))
        result.last_error = short_error(exc)
    if plan.is_notes:
        result.notes_written += len(plan.ops) - len(failed)
    if not failed:
        return None
    result.failed_attempts += 1
    return PlannedWrite(
        plan.collection,
        plan.is_notes,
        [plan.ops[i] for i in failed],
        [plan.owners[i] for i in failed],
    )


def write_batch(
    db: Database[Doc],
    plans: Sequence[PlannedWrite],
    *,
    retries: int,
    backoff_s: float,
    max_ops: int = MAX_OPS_PER_COMMAND,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchResult:
    """Run *plans*, retrying what failed up to *retries* times with exponential backoff.

    Each collection's operations go out in commands of at most *max_ops*. Only the failed
    operations are retried, and all of them are idempotent upserts, so a retry after a
    half-applied attempt is harmless. The result names the batch items whose writes still
    failed: the caller spills them.
    """
    result = BatchResult()
    pending = [chunk for plan in plans for chunk in split_plan(plan, max_ops)]
    for attempt in range(retries + 1):
        if attempt:
            result.retries += 1
            sleep(backoff_s * 2 ** (attempt - 1))
        result.unreachable = False
        still_failing: list[PlannedWrite] = []
        for position, plan in enumerate(pending):
            try:
                left = _run_plan(db, plan, result)
            except ConnectionFailure as exc:
                result.failed_attempts += 1
                result.last_error = short_error(exc)
                result.unreachable = True
                still_failing.extend(pending[position:])
                break
            if left is not None:
                still_failing.append(left)
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
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        self._file.write(b"".join(lines))
        self._file.flush()
        # These items exist nowhere else: make sure they survive a crash right after.
        os.fsync(self._file.fileno())
        self.count += len(lines)
        return len(lines)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_spill(path: Path) -> list[Doc]:
    """The items in a spill file (for tests and for replaying it)."""
    with path.open("rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]
