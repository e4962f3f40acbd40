"""A job's resume state in ``JOBDIR``: written atomically, read once, its format checked.

Plain module. Whether a run resumes is decided here and only here (:func:`load`), and a
state of a format this version cannot read stops the run before any file is opened for
writing, with one line naming the found and the expected format.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from pgy_spider.errors import ConfigError
from pgy_spider.files import atomic_file
from pgy_spider.ledger import Ledger

STATE_FILE = "pgy-state.pickle"
FORMAT = 2  # the format this version writes and reads

# The last state read, by (path, mtime, size): preflight and the crawl ask in one process.
_cache: dict[tuple[str, int, int], Ledger] = {}


class StateFormatError(ConfigError):
    """The resume state is of a format this version cannot read."""


def state_path(jobdir: str) -> Path:
    return Path(jobdir, STATE_FILE)


def load(jobdir: str | None) -> Ledger | None:
    """The job's ledger when ``jobdir`` holds a resume state (the run resumes), else None.

    Raises StateFormatError for a state of another format, ConfigError for one that
    cannot be read at all.
    """
    if not jobdir:
        return None
    path = state_path(jobdir)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the resume state {str(path)!r}: {exc.strerror}") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    ledger = _read(path, jobdir)
    _cache.clear()
    _cache[key] = ledger
    return ledger


def _read(path: Path, jobdir: str) -> Ledger:
    try:
        with path.open("rb") as fh:
            doc: Any = pickle.load(fh)
    except Exception as exc:  # a torn or foreign file: say so, never resume half-way
        raise ConfigError(
            f"the resume state {str(path)!r} cannot be read ({type(exc).__name__}): "
            f"delete the JOBDIR {jobdir!r} to start the job over"
        ) from None
    found = doc.get("version") if isinstance(doc, dict) else None
    ledger = doc.get("ledger") if isinstance(doc, dict) else None
    if found != FORMAT or not isinstance(ledger, Ledger):
        raise StateFormatError(
            f"the JOBDIR {jobdir!r} holds a resume state of format {found!r}; this version "
            f"reads format {FORMAT}: finish that job with the pgy-spider version that "
            f"started it, or delete {jobdir!r} to start the job over"
        )
    return ledger


def save(jobdir: str, ledger: Ledger) -> None:
    """Write the state atomically: a crash mid-write leaves the previous state intact."""
    with atomic_file(state_path(jobdir), durable=True) as fh:
        pickle.dump({"version": FORMAT, "ledger": ledger}, fh, protocol=5)
