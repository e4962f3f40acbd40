"""A job's resume state in ``JOBDIR``: small, checkpointed often, its format checked.

Plain module. The state is two files:

- ``pgy-state.json``: the ledger's counts, the notes issued and not settled, the seed
  cursor, how many IDs the dedup journal holds, and how long each output file was, all
  as of the last checkpoint. Replaced atomically (write, then rename) at every
  checkpoint, so a kill leaves the previous one or the new one, never a mix.
- ``pgy-seen.bin``: the dedup journal, 12 bytes per distinct note ID read, appended to.
  Only its first ``seen`` records count: what was appended after the last checkpoint
  belongs to seeds that are read again on resume.

Whether a run resumes is decided here and only here (:func:`probe`), and a state of a
format this version cannot read stops the run before any file is opened for writing,
with one line naming the found and the expected format. Format 2 (``pgy-state.pickle``,
written by earlier versions at the end of a run) is migrated.
"""

from __future__ import annotations

import os
import pickle
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from pgy_spider.errors import ConfigError
from pgy_spider.files import write_atomic
from pgy_spider.idset import CompactIdSet
from pgy_spider.ledger import Ledger

STATE_FILE = "pgy-state.json"
SEEN_FILE = "pgy-seen.bin"
LEGACY_STATE_FILE = "pgy-state.pickle"  # format 2
FORMAT = 3  # the format this version writes
LEGACY_FORMAT = 2  # the older format it reads and migrates
_KEY_BYTES = 12  # a note ID is 96 bits


class StateFormatError(ConfigError):
    """The resume state is of a format this version cannot read."""


@dataclass
class JobState:
    """What a resumed session starts from."""

    ledger: Ledger
    # Byte length of each output file (by path) at the checkpoint: what follows was
    # written after it, by notes the state still counts as pending or not yet read.
    outputs: dict[str, int] = field(default_factory=dict)
    started_at: str | None = None  # the job's first session (ISO-8601 UTC)
    spent: int = 0  # billable answers the job has received
    # Notes the outputs hold (before their recorded lengths) that the counts do not count
    # yet: written or failed after an earlier checkpoint, their seeds not read again yet.
    # None = written; a dict = the failed record's reason, code and attempts.
    settled_later: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    rejects_later: int = 0  # likewise, rejected-seed records in the failed file
    migrated_from: int | None = None  # the older format this state was read from


def state_path(jobdir: str) -> Path:
    return Path(jobdir, STATE_FILE)


def probe(jobdir: str | None) -> int | None:
    """The format of the job's resume state, or None when there is none (a new job).

    Raises StateFormatError for a format this version cannot read, ConfigError for a
    state that cannot be read at all. Cheap: the dedup journal is not read.
    """
    if not jobdir:
        return None
    path = state_path(jobdir)
    if path.exists():
        _header(_read_json(path, jobdir), jobdir)
        return FORMAT
    legacy = Path(jobdir, LEGACY_STATE_FILE)
    if legacy.exists():
        _read_legacy(legacy, jobdir)
        return LEGACY_FORMAT
    return None


def load(jobdir: str | None) -> JobState | None:
    """The job's state when ``jobdir`` holds one (the run resumes), else None."""
    if probe(jobdir) is None:
        return None
    assert jobdir is not None
    path = state_path(jobdir)
    if path.exists():
        return _from_json(_read_json(path, jobdir), jobdir)
    ledger = _read_legacy(Path(jobdir, LEGACY_STATE_FILE), jobdir)
    return JobState(ledger=ledger, migrated_from=LEGACY_FORMAT)


def save(jobdir: str, state: JobState, seen_records: int, *, durable: bool = False) -> None:
    """Write the state atomically; ``seen_records`` of the journal belong to it."""
    ledger = state.ledger
    doc = {
        "format": FORMAT,
        "sessions": ledger.sessions,
        "finished": ledger.finished,
        "started_at": state.started_at,
        "counts": {
            "seeds_read": ledger.seeds_read,
            "rejected": dict(ledger.rejected),
            "duplicates": ledger.duplicates,
            "skipped_fresh": ledger.skipped_fresh,
            "notes_written": ledger.notes_written,
            "failed": dict(ledger.failed),
        },
        "outstanding": sorted(ledger.outstanding.items()),
        "cursor": ledger.cursor,
        "seen": seen_records,
        "outputs": state.outputs,
        "spent": state.spent,
        "settled_later": state.settled_later,
        "rejects_later": state.rejects_later,
    }
    write_atomic(state_path(jobdir), orjson.dumps(doc), durable=durable)
    if state.migrated_from is not None:
        # The new format is written: the old one must never be read again.
        Path(jobdir, LEGACY_STATE_FILE).unlink(missing_ok=True)
        state.migrated_from = None


# -- the dedup journal ----------------------------------------------------------------------


class SeenJournal:
    """Appends each newly seen note ID (as its 96-bit key) to ``pgy-seen.bin``."""

    def __init__(self, jobdir: str, keep_records: int) -> None:
        self.path = Path(jobdir, SEEN_FILE)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh: IO[bytes] = open(self.path, "ab")  # noqa: SIM115  # kept open for the run
        # Records past the checkpoint belong to seeds that are read again: drop them.
        if os.fstat(fh.fileno()).st_size > keep_records * _KEY_BYTES:
            fh.truncate(keep_records * _KEY_BYTES)
        self._fh = fh
        self.records = keep_records

    def append(self, key: int) -> None:
        self._fh.write(key.to_bytes(_KEY_BYTES, "big"))
        self.records += 1

    def flush(self) -> int:
        """Hand everything appended to the OS; the number of records it holds."""
        self._fh.flush()
        return self.records

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def write_journal(jobdir: str, keys: CompactIdSet) -> int:
    """A fresh journal holding ``keys`` (a migrated state's dedup set); its record count."""
    path = Path(jobdir, SEEN_FILE)
    count = 0
    with open(path, "wb") as fh:
        chunk = bytearray()
        for key in keys:
            chunk += key.to_bytes(_KEY_BYTES, "big")
            count += 1
            if len(chunk) >= 1 << 20:
                fh.write(chunk)
                chunk.clear()
        fh.write(chunk)
    return count


def _read_journal(jobdir: str, records: int) -> CompactIdSet:
    seen = CompactIdSet(capacity=records * 3 // 2 + 1)
    path = Path(jobdir, SEEN_FILE)
    if records == 0:
        return seen
    wanted = records * _KEY_BYTES
    try:
        with open(path, "rb") as fh:
            data = fh.read(wanted)
    except OSError as exc:
        raise _unreadable(path, jobdir, exc.strerror or str(exc)) from None
    if len(data) < wanted:
        raise _unreadable(path, jobdir, f"{len(data)} of {wanted} bytes")
    add = seen.add
    from_bytes = int.from_bytes
    for start in range(0, wanted, _KEY_BYTES):
        add(from_bytes(data[start : start + _KEY_BYTES], "big"))
    return seen


# -- reading ----------------------------------------------------------------------------


def _unreadable(path: Path, jobdir: str, why: str) -> ConfigError:
    return ConfigError(
        f"the resume state {str(path)!r} cannot be read ({why}): "
        f"delete the JOBDIR {jobdir!r} to start the job over"
    )


def _read_json(path: Path, jobdir: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise _unreadable(path, jobdir, type(exc).__name__) from None
    if not isinstance(doc, dict):
        raise _unreadable(path, jobdir, "not a JSON object")
    return doc


def _header(doc: dict[str, Any], jobdir: str) -> None:
    found = doc.get("format")
    if found != FORMAT:
        raise _wrong_format(found, jobdir)


def _wrong_format(found: object, jobdir: str) -> StateFormatError:
    return StateFormatError(
        f"the JOBDIR {jobdir!r} holds a resume state of format {found!r}; this version "
        f"reads formats {LEGACY_FORMAT} and {FORMAT}: finish that job with the pgy-spider "
        f"version that started it, or delete {jobdir!r} to start the job over"
    )


def _from_json(doc: dict[str, Any], jobdir: str) -> JobState:
    try:
        counts = doc["counts"]
        cursor = doc["cursor"]
        ledger = Ledger(
            seeds_read=int(counts["seeds_read"]),
            rejected=Counter({str(k): int(v) for k, v in counts["rejected"].items()}),
            duplicates=int(counts["duplicates"]),
            skipped_fresh=int(counts["skipped_fresh"]),
            notes_written=int(counts["notes_written"]),
            failed=Counter({str(k): int(v) for k, v in counts["failed"].items()}),
            outstanding={int(seq): str(note) for seq, note in doc["outstanding"]},
            seen=_read_journal(jobdir, int(doc["seen"])),
            cursor=(int(cursor[0]), int(cursor[1]), int(cursor[2])) if cursor else None,
            sessions=int(doc["sessions"]),
            finished=bool(doc["finished"]),
        )
        return JobState(
            ledger=ledger,
            outputs={str(k): int(v) for k, v in doc["outputs"].items()},
            started_at=doc.get("started_at"),
            spent=int(doc.get("spent", 0)),
            settled_later={str(k): v for k, v in doc.get("settled_later", {}).items()},
            rejects_later=int(doc.get("rejects_later", 0)),
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise _unreadable(state_path(jobdir), jobdir, f"{type(exc).__name__}: {exc}") from None


def _read_legacy(path: Path, jobdir: str) -> Ledger:
    """Format 2: one pickle of the whole ledger, written when a run ended."""
    try:
        with path.open("rb") as fh:
            doc: Any = pickle.load(fh)
    except Exception as exc:  # a torn or foreign file: say so, never resume half-way
        raise _unreadable(path, jobdir, type(exc).__name__) from None
    found = doc.get("version") if isinstance(doc, dict) else None
    ledger = doc.get("ledger") if isinstance(doc, dict) else None
    if found != LEGACY_FORMAT or not isinstance(ledger, Ledger):
        raise _wrong_format(found, jobdir)
    return ledger
