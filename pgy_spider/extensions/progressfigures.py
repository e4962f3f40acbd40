"""The figures of the progress display and of the final table, and which of them to show.

Plain module (no Scrapy, no terminal library), so every figure is tested without a crawl.
The progress extension samples the run's accounting and stats on its timer (never per
note) and hands the result of :func:`measure` to the view.

How far along a run is: seeds are read in order, inline ``ids`` first, then each seed file
(``ids_file`` files, then the ``ids_url`` download). Reading runs only a bounded read-ahead
in front of the API calls, so the byte position of the last seed read tells how far through
the files the run is, and the seeds read per byte so far estimate how many seeds the files
hold. Once everything is read the total is exact.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

# Rates (seeds settled and calls answered per second) are measured over this much recent
# time: long enough to smooth out rate-limit pauses, short enough to follow a change.
RATE_WINDOW_SECONDS = 30.0
# Terminals that cannot move the cursor (Emacs shells, some CI consoles): "auto" draws no
# live display there. The same names Rich treats as dumb.
DUMB_TERMS = frozenset({"dumb", "unknown"})
_CODE_PREFIX = "pgy/code/"


@dataclass(frozen=True, slots=True)
class DisplayPlan:
    bar: bool  # a live display on stderr
    lines: bool  # progress lines in the log every PGY_PROGRESS_INTERVAL seconds
    table: bool  # the outcome table on stderr at the end

    @property
    def shows_anything(self) -> bool:
        return self.bar or self.lines or self.table


def plan_display(
    mode: str, interval: float, *, terminal: bool, term: str, log_on_terminal: bool
) -> DisplayPlan:
    """What ``PGY_PROGRESS`` shows, given where stderr and the log go.

    The display is drawn only on a terminal (``auto`` also not on a dumb one): escape codes
    in a file or a pipe are noise. The log lines are written wherever the display is not
    drawn over the log itself: with the bar on the terminal and the log in ``LOG_FILE``, the
    file keeps its lines. The table is for a person: printed when stderr is a terminal.
    """
    if mode == "off":
        return DisplayPlan(bar=False, lines=False, table=False)
    bar = terminal and (mode == "bar" or (mode == "auto" and term not in DUMB_TERMS))
    lines = interval > 0 and not (bar and log_on_terminal)
    return DisplayPlan(bar=bar, lines=lines, table=terminal)


def is_terminal(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def count_inline(values: str) -> int:
    """How many seeds an ``ids`` argument holds (the values ``seeds.iter_inline`` yields)."""
    return sum(1 for value in values.split(",") if (text := value.strip()) and text[0] != "#")


@dataclass(frozen=True, slots=True)
class SeedInput:
    """What the run reads: ``inline`` seeds, then files of these sizes in reading order
    (``None``: not known yet, e.g. an ``ids_url`` not downloaded yet)."""

    inline: int
    file_sizes: tuple[int | None, ...]

    @property
    def total_bytes(self) -> int | None:
        if any(size is None for size in self.file_sizes):
            return None
        return sum(size for size in self.file_sizes if size is not None)

    def bytes_read(self, cursor: tuple[int, int, int] | None) -> int:
        """Bytes of the files before the last seed read (the accounting's cursor:
        file index, byte offset of the seed's line, seq; file index -1 = inline)."""
        if cursor is None or cursor[0] < 0:
            return 0
        index, offset = cursor[0], cursor[1]
        return sum(size or 0 for size in self.file_sizes[:index]) + offset


def estimate_total(
    seeds_read: int,
    reading_done: bool,
    inline: int,
    bytes_read: int,
    total_bytes: int | None,
) -> int | None:
    """Seeds in the whole input: exact once read, else extrapolated from the bytes read.
    ``None`` while there is nothing to extrapolate from."""
    if reading_done:
        return seeds_read
    if total_bytes is None:
        return None
    if total_bytes == 0:  # inline seeds only
        return max(inline, seeds_read)
    # The cursor is where the last seed read starts: the seeds before it fill bytes_read.
    before = seeds_read - inline - 1
    if bytes_read <= 0 or before <= 0:
        return None
    return max(seeds_read, inline + round(before * total_bytes / bytes_read))


def eta_seconds(total: int | None, settled: int, rate: float) -> float | None:
    """Seconds until every seed is settled at the recent rate; ``None`` when unknown."""
    if total is None or rate <= 0:
        return None
    return max(total - settled, 0) / rate


class RateMeter:
    """Per-second rates of running totals over the last ``window`` seconds."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self._samples: deque[tuple[float, tuple[int, ...]]] = deque()

    def add(self, now: float, *totals: int) -> tuple[float, ...]:
        """Record the totals at ``now`` (monotonic seconds); return their recent rates."""
        samples = self._samples
        samples.append((now, totals))
        # Keep one sample at least a window old, so the rate spans the whole window.
        while len(samples) > 2 and samples[1][0] <= now - self.window:
            samples.popleft()
        then, before = samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return tuple(0.0 for _ in totals)
        return tuple((total - old) / elapsed for total, old in zip(totals, before, strict=True))


def calls_by_code(stats: Mapping[str, Any]) -> dict[str, int]:
    """API calls per business code, from the ``pgy/code/<code>`` stats, most frequent first."""
    found = {k[len(_CODE_PREFIX) :]: int(v) for k, v in stats.items() if k.startswith(_CODE_PREFIX)}
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


def billed_calls(stats: Mapping[str, Any]) -> int | None:
    """The ``pgy/billed`` stat once the crawl counts billed calls; until then ``None`` (the
    display then shows the calls by code, where codes 0 and 201 are the billed ones)."""
    value = stats.get("pgy/billed")
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class Figures:
    elapsed: float  # seconds since the display started
    seeds_read: int
    reading_done: bool
    settled: int  # seeds read and settled (rejected, duplicate, fresh, written, failed)
    written: int
    failed: int
    rejected: int
    duplicates: int
    skipped_fresh: int
    pending: int
    files: int  # seed files
    bytes_read: int
    total_bytes: int | None  # None: a file's size is not known yet
    calls: int  # API calls answered with a business code
    calls_by_code: dict[str, int]
    billed: int | None
    settled_rate: float  # seeds settled per second, recently
    call_rate: float  # calls per second, recently
    total: int | None  # seeds in the whole input (estimated until reading is done)
    eta: float | None  # seconds left

    @property
    def total_exact(self) -> bool:
        """The total is a count, not an estimate: everything is read, or there are no files."""
        return self.reading_done or (self.total is not None and not self.files)

    @property
    def fraction(self) -> float | None:
        """Share of the input settled."""
        if not self.total:
            return None
        return min(self.settled / self.total, 1.0)

    @property
    def bytes_fraction(self) -> float | None:
        """Share of the seed files read."""
        if not self.files or not self.total_bytes:
            return None
        return min(self.bytes_read / self.total_bytes, 1.0)


def measure(
    counts: Mapping[str, Any],
    stats: Mapping[str, Any],
    *,
    cursor: tuple[int, int, int] | None,
    reading_done: bool,
    seeds: SeedInput,
    rates: RateMeter,
    now: float,
    started: float,
) -> Figures:
    """The figures at ``now`` from the accounting's counts and cursor and the crawl's stats."""
    seeds_read = int(counts["seeds_read"])
    pending = int(counts["pending"])
    settled = seeds_read - pending
    calls = int(stats.get("pgy/api_calls", 0))
    settled_rate, call_rate = rates.add(now, settled, calls)
    total_bytes = seeds.total_bytes
    if reading_done and total_bytes is not None:
        bytes_read = total_bytes
    else:
        bytes_read = seeds.bytes_read(cursor)
    total = estimate_total(seeds_read, reading_done, seeds.inline, bytes_read, total_bytes)
    return Figures(
        elapsed=now - started,
        seeds_read=seeds_read,
        reading_done=reading_done,
        settled=settled,
        written=int(counts["notes_written"]),
        failed=int(counts["failed"]),
        rejected=int(counts["rejected"]),
        duplicates=int(counts["duplicates"]),
        skipped_fresh=int(counts["skipped_fresh"]),
        pending=pending,
        files=len(seeds.file_sizes),
        bytes_read=bytes_read,
        total_bytes=total_bytes,
        calls=calls,
        calls_by_code=calls_by_code(stats),
        billed=billed_calls(stats),
        settled_rate=settled_rate,
        call_rate=call_rate,
        total=total,
        eta=eta_seconds(total, settled, settled_rate),
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the final table says about the run."""

    reason: str  # the close reason, or "forced stop" when the crawl never closed
    exit_code: int | None  # None: the run was stopped before it chose one
    counts: Mapping[str, Any]
    calls: int
    calls_by_code: dict[str, int]
    billed: int | None
    possibly_billed: int
    retries: int
    elapsed: float
    summary_path: str | None
    failed_path: str | None
    jobdir: str | None


def outcome(
    counts: Mapping[str, Any],
    stats: Mapping[str, Any],
    *,
    reason: str,
    exit_code: int | None,
    elapsed: float,
    summary_path: str | None,
    failed_path: str | None,
    jobdir: str | None,
) -> Outcome:
    return Outcome(
        reason=reason,
        exit_code=exit_code,
        counts=counts,
        calls=int(stats.get("pgy/api_calls", 0)),
        calls_by_code=calls_by_code(stats),
        billed=billed_calls(stats),
        possibly_billed=int(stats.get("pgy/possibly_billed", 0)),
        retries=int(stats.get("pgy/retry/count", 0)),
        elapsed=elapsed,
        summary_path=summary_path,
        failed_path=failed_path,
        jobdir=jobdir,
    )
