"""This process in a run: its name, its connection, the entries it holds, its signs of life.

Every process of a run is a member and a worker: it takes entries from the run's stream
(:meth:`QueueMember.take`), takes over those of workers that show no sign of life
(:meth:`QueueMember.claim`), and settles each entry once its note is on disk
(:meth:`QueueMember.settle`). Settles are sent in batches, one script per batch, by one
task; the call's place in flight (:mod:`pgy_spider.flight`) is given back only once its
entry is settled in Redis, so a ``kill -9`` still costs at most ``CONCURRENT_REQUESTS`` paid
calls. A task sends the heartbeat every :attr:`QueueMember.beat_interval` seconds and
re-claims the entries this process holds (see :mod:`.scripts`). A graceful stop hands the
unsettled entries back at once.

Every Redis call goes through :meth:`QueueMember._guard`: a lost connection (Redis
restarted, a network cut) is waited for up to ``PGY_QUEUE_OUTAGE_SECONDS``, with one log line,
and the call made again (every script is safe to run twice); a longer outage stops this
process (``pgy_queue_error``, exit 5), everything it did not settle left in the run. After an
outage this worker takes over no one's notes for one claim time: the others, alive, had no
way to show it while Redis was away.

A task polls the run's shared controls every :data:`WATCH_INTERVAL` seconds (:meth:`look`):
the 302 pause, the retired tokens, the budget spent, a stop of the whole run; the controls
(:mod:`.pause`, :mod:`.tokens`, :mod:`.budget`) read what it saw locally, at no cost per call.
A finished run's keys are given their lifetime (``PGY_RUN_TTL_HOURS``) by the first worker
that sees the end; every other worker, when it sees the end and when it closes, gives it to
those it wrote again since (a worker that joined the finished run, say), so that none stays.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from pgy_spider import meta
from pgy_spider.queue import identity, keys, scripts
from pgy_spider.queue.client import (
    async_client,
    connection_errors,
    failure_text,
    redis_errors,
    unavailable,
)
from pgy_spider.queue.errors import QueueStop, RunMissing
from pgy_spider.queue.keys import GROUP, RunKeys
from pgy_spider.queue.url import mask_url
from pgy_spider.seeds import Seed, SeedFileError, SeedPos

if TYPE_CHECKING:
    import redis.asyncio
    from redis.commands.core import AsyncScript

    from pgy_spider.config import QueueConfig
    from pgy_spider.flight import InFlight

logger = logging.getLogger(__name__)

T = TypeVar("T")
QUEUE_POS = SeedPos(-1, -1)  # a seed taken from the stream has no place in this process's files
WAIT_POLL = 0.5  # seconds between looks for a run that does not exist yet
# Seconds between looks at the run's shared controls: how soon a 302 seen by another worker
# pauses this one, a token it retired is retired here, a stop of the run is seen.
WATCH_INTERVAL = 0.2
OUTAGE_POLL = 0.5  # seconds between tries while Redis cannot be reached
EXPIRE_CHUNK = 1000  # dedup buckets given their lifetime per round trip


@dataclass(frozen=True, slots=True)
class Look:
    """The run's shared controls as one poll saw them."""

    pause_left: float  # seconds left of the run's 302 pause (Redis's clock)
    pause_level: int
    stopped: str  # the reason the whole run was stopped; "" = it was not
    retired: dict[str, str]  # fingerprint -> reason
    spent: int  # billable answers of the run


@dataclass(slots=True)
class ReaderState:
    cursor: tuple[int, int, int] | None
    next_seq: int
    buckets: int


class QueueMember:
    def __init__(
        self,
        config: QueueConfig,
        stats: Any,
        in_flight: InFlight,
        token_report: Callable[[], dict[str, Any]],
        stop: Callable[[str, str], None],
    ) -> None:
        self.config = config
        self.keys = RunKeys(config.run)
        self.worker = keys.worker_name()
        self.claim_ms = max(1, int(config.claim_seconds * 1000))
        # Several beats within one claim time: one late beat never makes a live worker look dead.
        self.beat_interval = min(max(config.claim_seconds / 6, 0.05), 10.0)
        self._stats = stats
        self._in_flight = in_flight
        self._token_report = token_report
        self._stop = stop
        self._client: redis.asyncio.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._held: dict[int, bytes] = {}  # seq -> entry ID of every entry this process holds
        self._lost: set[bytes] = set()  # held entries another worker has taken over
        self._settles: list[tuple[bytes, str, str, dict[str, Any]]] = []
        self._settling: set[bytes] = set()  # entries settled here, Redis not told yet
        self._flushing: asyncio.Future[None] | None = None
        self._read_lock = asyncio.Lock()
        self._beats: asyncio.Future[None] | None = None
        self._next_claim = 0.0
        self.started_at = datetime.now(UTC)
        self.joined = False
        self.closing = False
        self._closed = False
        self.is_reader = False
        self.reader_done = False
        self.queued = 0  # the stream's length at the last look
        self.finish_reason: str | None = None
        self._outage_since: float | None = None  # monotonic time Redis was first missed
        self._claim_grace_until = 0.0
        self._watch: asyncio.Future[None] | None = None
        # The shared controls: what each poll reports to them, what they send with it.
        self.watchers: list[Callable[[Look], None]] = []
        self.closers: list[Callable[[], Awaitable[None]]] = []  # before the hand-back
        self.pause_reset = False  # a success asks for the pause's doubling to start over
        self.fingerprints: list[str] | None = None  # usable tokens, to publish (then None)
        self.stop_hint: Callable[[str], str] = lambda reason: ""

    @property
    def masked_url(self) -> str:
        return mask_url(self.config.url)

    @property
    def held(self) -> int:
        return len(self._held)

    # -- the one way to Redis ---------------------------------------------------------------

    @property
    def client(self) -> redis.asyncio.Redis:
        if self._client is None:
            self._client = async_client(self.config.url)
            self._scripts = {
                name: self._client.register_script(getattr(scripts, name)) for name in scripts.NAMES
            }
        return self._client

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call, waiting out a lost connection up to PGY_QUEUE_OUTAGE_SECONDS;
        a longer outage or any other failure is a QueueStop naming the queue (masked)."""
        while True:
            try:
                result = await call()
            except connection_errors() as exc:
                if not await self._outage(exc):
                    raise unavailable(self.config.url, exc) from None
                continue
            except redis_errors() as exc:
                raise unavailable(self.config.url, exc) from None
            if self._outage_since is not None:
                self._outage_over()
            return result

    async def _outage(self, exc: BaseException) -> bool:
        """Redis is away: True after a short wait (try again), False once it has been away
        longer than PGY_QUEUE_OUTAGE_SECONDS."""
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            logger.warning(
                "Lost the queue at %s (%s): waiting up to %gs for it to come back "
                "(PGY_QUEUE_OUTAGE_SECONDS); calls go on only while their notes can be settled",
                self.masked_url,
                failure_text(self.config.url, exc),
                self.config.outage_seconds,
            )
        if now - self._outage_since >= self.config.outage_seconds:
            return False
        await asyncio.sleep(OUTAGE_POLL)
        return True

    def _outage_over(self) -> None:
        assert self._outage_since is not None
        logger.warning(
            "The queue at %s is back after %.1fs: going on",
            self.masked_url,
            time.monotonic() - self._outage_since,
        )
        self._outage_since = None
        # No heartbeat reached Redis meanwhile, from anyone: give the live ones one claim time
        # to show it before their notes (and budget units) look like a dead worker's.
        self._claim_grace_until = time.monotonic() + self.config.claim_seconds

    @property
    def may_take_over(self) -> bool:
        """Whether this worker may treat a silent worker as dead (not right after an outage)."""
        return time.monotonic() >= self._claim_grace_until

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        script = self._script(name)
        return await self._guard(lambda: script(keys=list(keys), args=list(args)))

    def _script(self, name: str) -> AsyncScript:
        self.client  # noqa: B018 (connects and registers the scripts on first use)
        return self._scripts[name]

    async def redis(self, call: Callable[[redis.asyncio.Redis], Awaitable[Any]]) -> Any:
        """One command (its raw RESP2 reply: bytes, lists)."""
        client = self.client
        return await self._guard(lambda: call(client))

    def fail(self, exc: QueueStop) -> None:
        """A background task (this member's or a shared control's) lost the queue: stop
        this process (it never guesses)."""
        self._stop(exc.reason, str(exc))

    # -- joining the run ----------------------------------------------------------------------

    async def join(self, sources: list[str] | None, stopping: Callable[[], bool]) -> bool:
        """Create the run (with seeds) or check it is the same; without seeds wait for it
        up to PGY_QUEUE_WAIT_SECONDS. False when the process stopped while waiting."""
        k = self.keys
        encoded = identity.encode(sources) if sources is not None else ""
        deadline = time.monotonic() + self.config.wait_seconds
        waiting = False
        while True:
            status, theirs = await self.script(
                "JOIN",
                k.join_keys(),
                [encoded, datetime.now(UTC).isoformat(), GROUP],
            )
            if status != b"missing":
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunMissing(
                    f"run {self.config.run!r} does not exist at {self.masked_url} after waiting "
                    f"{self.config.wait_seconds:g}s (PGY_QUEUE_WAIT_SECONDS): start a process "
                    "with the run's seed arguments (-a ids_file=...), or check PGY_RUN"
                )
            if not waiting:
                waiting = True
                logger.info(
                    "Waiting up to %.0fs for run %r to be started by a process with seeds",
                    left,
                    self.config.run,
                )
            await asyncio.sleep(min(WAIT_POLL, left))
            if stopping():
                return False
        if sources is not None and status == b"exists":
            problem = identity.difference(self.config.run, identity.decode(theirs), sources)
            if problem:
                raise SeedFileError(problem)
        self.joined = True
        logger.info(
            "Joined run %r at %s as worker %s%s",
            self.config.run,
            self.masked_url,
            self.worker,
            " (it was created now)" if status == b"created" else "",
        )
        await self.beat()
        self._beats = asyncio.ensure_future(self._beat_forever())
        await self.look()  # before the first note: a run stopped, tokens retired elsewhere
        self._watch = asyncio.ensure_future(self._watch_forever())
        return True

    # -- the shared controls ------------------------------------------------------------------

    async def look(self) -> Look:
        """One poll of the run's shared controls, told to every watcher."""
        k = self.keys
        reset, self.pause_reset = self.pause_reset, False
        fingerprints, self.fingerprints = self.fingerprints, None
        try:
            left, level, stopped, retired, spent = await self.script(
                "LOOK",
                [k.pause, k.retired, k.meta, k.tokens, k.budget],
                [
                    self.worker,
                    "1" if reset else "0",
                    "0" if fingerprints is None else "1",
                    " ".join(fingerprints or ()),
                ],
            )
        except BaseException:
            # Not sent: sent with the next poll.
            self.pause_reset = self.pause_reset or reset
            if self.fingerprints is None:
                self.fingerprints = fingerprints
            raise
        look = Look(
            int(left) / 1000,
            int(level),
            stopped.decode(),
            {retired[i].decode(): retired[i + 1].decode() for i in range(0, len(retired), 2)},
            int(spent),
        )
        for watcher in self.watchers:
            watcher(look)
        if look.stopped and not self.closing:
            self._stop(
                look.stopped,
                f"Run {self.config.run!r} was stopped for every worker ({look.stopped}): "
                f"{self.stop_hint(look.stopped)}",
            )
        return look

    async def _watch_forever(self) -> None:
        while not self.closing:
            await asyncio.sleep(WATCH_INTERVAL)
            if self.closing:
                return
            try:
                await self.look()
            except QueueStop as exc:
                self.fail(exc)
                return

    # -- signs of life ------------------------------------------------------------------------

    def _info(self, state: str) -> bytes:
        stats = self._stats.get_stats()
        return orjson.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": self.started_at.isoformat(),
                "state": state,
                "finish_reason": self.finish_reason,
                "reader": self.is_reader,
                "holds": len(self._held),
                "requests_sent": stats.get("pgy/requests_sent", 0),
                "api_calls": stats.get("pgy/api_calls", 0),
                "calls_by_code": {
                    k.removeprefix("pgy/code/"): v
                    for k, v in sorted(stats.items())
                    if k.startswith("pgy/code/")
                },
                "possibly_billed": stats.get("pgy/possibly_billed", 0),
                "tokens": self._token_report(),
            }
        )

    async def beat(self) -> None:
        """Heartbeat, re-claim of the entries held, the lease renewed (if held), and the run's
        state: reading done, entries queued."""
        k = self.keys
        # Entries on their way to Redis are still this worker's: never handed back as unknown.
        known = [e for e in (*self._held.values(), *self._settling) if e not in self._lost]
        lost, done, queued, _now, _holder = await self.script(
            "BEAT",
            [k.beats, k.info, k.stream, k.reader, k.meta, k.counts],
            [
                GROUP,
                self.worker,
                self.claim_ms,
                self._info("running"),
                "1" if self.is_reader else "0",
                *known,
            ],
        )
        if lost:
            self._lost.update(lost)
            self._stats.inc_value("pgy/queue/taken_over", len(lost))
            logger.warning(
                "%s notes this worker holds were taken over by another worker: this worker "
                "showed no sign of life for PGY_QUEUE_CLAIM_SECONDS (%gs); what it does with "
                "them now counts nothing",
                len(lost),
                self.config.claim_seconds,
            )
        self.reader_done = done == b"1"
        self.queued = int(queued)

    async def _beat_forever(self) -> None:
        while not self.closing:
            await asyncio.sleep(self.beat_interval)
            if self.closing:
                return
            try:
                await self.beat()
            except QueueStop as exc:
                self.fail(exc)
                return

    # -- taking entries -----------------------------------------------------------------------

    def _hold(self, entries: Iterable[Any]) -> list[Seed]:
        seeds = []
        for entry_id, raw in entries:
            # A stream read gives a dict, a script's reply a list: field, value, ...
            fields = raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))
            note_id = fields[b"n"].decode()
            seq = int(fields[b"s"])
            # One live entry per seed (a hand-back deletes the old one): a seed held already
            # came back under a new entry ID, which is the one to settle.
            self._held[seq] = entry_id
            seeds.append(Seed(note_id, note_id, None, seq, QUEUE_POS))
        return seeds

    async def take(self, count: int, block_ms: int) -> list[Seed]:
        """Up to ``count`` new entries, waiting up to ``block_ms`` for one."""
        async with self._read_lock:
            if self.closing:
                return []
            stream = self.keys.stream
            reply = await self.redis(
                lambda c: c.xreadgroup(
                    GROUP, self.worker, {stream: ">"}, count=count, block=block_ms
                )
            )
            seeds = self._hold(reply[0][1]) if reply else []
        if seeds:
            self._stats.inc_value("pgy/queue/taken", len(seeds))
        return seeds

    def claim_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_claim or not self.may_take_over:
            return False
        self._next_claim = now + self.beat_interval
        return True

    async def claim(self, count: int) -> list[Seed]:
        """Take over up to ``count`` entries of workers without a sign of life."""
        async with self._read_lock:
            if self.closing:
                return []
            k = self.keys
            reply = await self.script(
                "CLAIM",
                [k.stream, k.beats, k.counts, k.budget],
                [GROUP, self.worker, self.claim_ms, count],
            )
            seeds = self._hold(reply)
        if seeds:
            self._stats.inc_value("pgy/queue/claimed", len(seeds))
            logger.warning(
                "Took over %s notes of workers that showed no sign of life for %gs "
                "(PGY_QUEUE_CLAIM_SECONDS)",
                len(seeds),
                self.config.claim_seconds,
            )
        return seeds

    async def run_finished(self) -> bool:
        """Every seed of the run read and every entry settled."""
        k = self.keys

        async def look(client: redis.asyncio.Redis) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.hget(k.meta, "reader_done")
            pipe.xlen(k.stream)
            return list(await pipe.execute())

        done, queued = await self.redis(look)
        self.reader_done = done == b"1"
        self.queued = int(queued)
        return self.reader_done and self.queued == 0

    async def finish_run(self) -> None:
        """The run is finished: the first worker to see it gives every key of the run its
        lifetime (PGY_RUN_TTL_HOURS), the meta hash last; a stopped run keeps its keys."""
        k = self.keys
        ttl_ms = self._ttl_ms()
        others = [key for key in k.all_fixed() if key not in (k.meta, k.stream)]
        first, buckets = await self.script("FINISH", [k.meta, k.stream, *others], [ttl_ms])
        if ttl_ms <= 0:
            return
        if not int(first):
            await self.keep_lifetime()  # what this worker wrote since (it joined late, say)
            return
        await self._expire_buckets(int(buckets), ttl_ms)
        # Longer than the rest (by a minute, or by the lifetime if shorter): while it exists
        # the run is known as finished, never created again over its other keys.
        await self.redis(lambda c: c.pexpire(k.meta, self._meta_ttl_ms(ttl_ms)))
        logger.info(
            "Run %r is finished: its keys in Redis expire in %gh (PGY_RUN_TTL_HOURS)",
            self.config.run,
            self.config.ttl_hours,
        )

    async def keep_lifetime(self) -> None:
        """Keys of a finished run written again since its end get its lifetime too (a key
        without one would stay in Redis for good); nothing while the run is not finished."""
        ttl_ms = self._ttl_ms()
        if ttl_ms <= 0:
            return
        k = self.keys
        others = [key for key in k.all_fixed() if key != k.meta]
        meta_had_none, buckets = await self.script(
            "KEEP_LIFETIME", [k.meta, *others], [ttl_ms, self._meta_ttl_ms(ttl_ms)]
        )
        if int(meta_had_none):  # the finishing worker stopped half-way: its buckets too
            await self._expire_buckets(int(buckets), ttl_ms)

    def _ttl_ms(self) -> int:
        return int(self.config.ttl_hours * 3_600_000)

    @staticmethod
    def _meta_ttl_ms(ttl_ms: int) -> int:
        return ttl_ms + min(ttl_ms, 60_000)

    async def _expire_buckets(self, buckets: int, ttl_ms: int) -> None:
        k = self.keys
        for start in range(0, buckets, EXPIRE_CHUNK):

            async def expire(client: redis.asyncio.Redis, start: int = start) -> None:
                pipe = client.pipeline(transaction=False)
                for bucket in range(start, min(start + EXPIRE_CHUNK, buckets)):
                    pipe.pexpire(k.seen(bucket), ttl_ms)
                await pipe.execute()

            await self.redis(expire)

    # -- settling -----------------------------------------------------------------------------

    def settle(self, request_meta: dict[str, Any], kind: str | None, reason: str = "") -> None:
        """The note of this request is settled in this process (``kind``), or not (None: it
        stays held and goes back to the run when this process stops). The call's place in
        flight is given back once Redis has the settle."""
        entry = self._held.pop(request_meta[meta.SEQ], None) if kind is not None else None
        if entry is None:
            self._in_flight.give_back(request_meta)
            return
        self._settles.append((entry, kind, reason, request_meta))  # type: ignore[arg-type]
        self._settling.add(entry)
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        try:
            while self._settles:
                batch, self._settles = self._settles, []
                args: list[Any] = [GROUP, self.worker]
                for entry, kind, reason, _ in batch:
                    args += [entry, kind, reason]
                try:
                    _settled, late = await self.script(
                        "SETTLE", [self.keys.stream, self.keys.counts], args
                    )
                except QueueStop as exc:
                    self.fail(exc)
                    late = 0
                finally:
                    for entry, _, _, request_meta in batch:
                        self._lost.discard(entry)
                        self._settling.discard(entry)
                        self._in_flight.give_back(request_meta)
                if late:
                    self._stats.inc_value("pgy/queue/late_settles", int(late))
        finally:
            self._flushing = None

    # -- the reader role ----------------------------------------------------------------------

    async def take_lease(self) -> int:
        """1: this process holds the reader role; 0: another does; -1: reading is done."""
        k = self.keys
        held = int(await self.script("LEASE", [k.reader, k.meta], [self.worker, self.claim_ms]))
        self.is_reader = held == 1
        if held < 0:
            self.reader_done = True
        return held

    async def release_lease(self) -> None:
        if self.is_reader:
            self.is_reader = False
            await self.script("RELEASE", [self.keys.reader], [self.worker])

    async def reader_state(self, source_bytes: Callable[[], int]) -> ReaderState:
        """Where reading goes on, and the run's dedup buckets (fixed by its first reader)."""
        k = self.keys
        cursor, next_seq, buckets = await self.redis(
            lambda c: c.hmget(k.meta, ["cursor", "next_seq", "buckets"])
        )
        if not buckets:
            chosen = keys.bucket_count(source_bytes())
            await self.redis(lambda c: c.hsetnx(k.meta, "buckets", chosen))
            buckets = await self.redis(lambda c: c.hget(k.meta, "buckets"))
        return ReaderState(keys.parse_cursor(cursor), int(next_seq or 0), int(buckets))

    async def check_url_content(self, content: str) -> None:
        """The ``ids_url`` file downloaded is the one the run's first reader read."""
        k = self.keys
        await self.redis(lambda c: c.hsetnx(k.meta, "url_content", content))
        theirs = await self.redis(lambda c: c.hget(k.meta, "url_content"))
        if theirs is not None and theirs.decode() != content:
            raise SeedFileError(
                "the file at ids_url is not the one run "
                f"{self.config.run!r} started with (it changed since): give every process the "
                "same seeds, or choose another PGY_RUN"
            )

    async def push(
        self,
        batch: Sequence[Seed],
        first: int,
        buckets: int,
        fresh: set[str],
        done: bool,
    ) -> tuple[bytes, str]:
        """One batch of seeds read, committed atomically (see scripts.PUSH)."""
        k = self.keys
        valid = [s for s in batch if s.note_id is not None]
        rejected = [s for s in batch if s.note_id is None]
        reasons = Counter(str(s.reason) for s in rejected)
        last = batch[-1] if batch else None
        cursor = keys.format_cursor(*last.pos, last.seq) if last else ""
        bucket_keys = [k.seen(keys.bucket_of(s.note_id, buckets)) for s in valid]  # type: ignore[arg-type]
        args: list[Any] = [
            self.worker,
            first,
            last.seq if last else first - 1,
            cursor,
            "1" if done else "0",
            self.claim_ms,
            len(valid),
            len(reasons),
            len(rejected),
        ]
        for seed in valid:
            note_id: str = seed.note_id  # type: ignore[assignment]
            args += [keys.id_bytes(note_id), note_id, seed.seq, "1" if note_id in fresh else "0"]
        for reason, count in sorted(reasons.items()):
            args += [reason, count]
        for seed in rejected:
            args.append(reject_record(seed))
        status, outcomes = await self.script(
            "PUSH", [k.meta, k.reader, k.stream, k.counts, k.rejects, *bucket_keys], args
        )
        if status == b"ok":
            if done:
                self.reader_done = True
                self.is_reader = False
            added = outcomes.count(b"a")
            if added:
                self._stats.inc_value("pgy/queue/pushed", added)
        return status, outcomes.decode()

    async def rejects_left(self) -> list[Seed]:
        """Rejected seeds committed by a reader that stopped before writing their records."""
        raw = await self.redis(lambda c: c.lrange(self.keys.rejects, 0, -1))
        return [seed_from_record(r) for r in raw]

    async def drop_rejects(self, written: Sequence[Seed]) -> None:
        """The records of ``written`` (the first of the run's list, in order) are in this
        process's failed file now. Safe to repeat: once dropped, nothing more is."""
        if written:
            await self.script(
                "DROP_REJECTS", [self.keys.rejects], [len(written), reject_record(written[-1])]
            )

    # -- the end ------------------------------------------------------------------------------

    async def close(self, reason: str) -> None:
        """Stop taking entries, send the last settles, hand back what is still held, say
        how this process ended, and disconnect."""
        if self._closed:
            return
        self._closed = True
        self.closing = True
        self.finish_reason = reason
        if self._client is None:
            return
        async with self._read_lock:
            pass  # a read in progress has registered what it took
        while self._flushing is not None:
            await self._flushing
        for task in (self._beats, self._watch):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        k = self.keys
        try:
            for closer in self.closers:
                await closer()
            if self.joined:
                # What it still holds of the budget is spent; it holds no token any more.
                await self.script("DROP_HELD", [k.budget, k.tokens], [self.worker])
                handed = int(
                    await self.script("HANDBACK", [k.stream, k.counts], [GROUP, self.worker])
                )
                if handed:
                    self._stats.inc_value("pgy/queue/handed_back", handed)
                    logger.info("Handed %s unsettled notes back to run %r", handed, self.config.run)
            await self.release_lease()
            if self.joined:
                info = self._info("closed")
                await self.redis(lambda c: c.hset(k.info, self.worker, info))
                await self.keep_lifetime()  # after this worker's last write
        except QueueStop as exc:
            logger.error(
                "%s; the %s notes this worker held are taken over by the others after "
                "PGY_QUEUE_CLAIM_SECONDS",
                exc,
                len(self._held),
            )
        finally:
            await self._client.aclose()


def reject_record(seed: Seed) -> bytes:
    return orjson.dumps(
        {"seed": seed.raw, "reason": seed.reason, "seq": seed.seq, "pos": list(seed.pos)}
    )


def seed_from_record(raw: bytes) -> Seed:
    record = orjson.loads(raw)
    file_index, offset = record["pos"]
    return Seed(
        record["seed"], None, record["reason"], int(record["seq"]), SeedPos(file_index, offset)
    )
