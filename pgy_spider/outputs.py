"""The run's own output files: the failed file and the summary. Plain module."""

from __future__ import annotations

from typing import IO, Any

import orjson

from pgy_spider.failures import FailureRecord
from pgy_spider.files import write_atomic
from pgy_spider.outputfile import OnError, open_output


class FailedFile:
    """One JSON line per seed that did not yield a note; appended to when a job resumes.

    ``write`` returns False when the record could not be written (the error has gone to
    ``on_error``): such a seed must not count as failed.
    """

    def __init__(self, path: str, *, append: bool, on_error: OnError):
        self.path = path
        self._fh: IO[bytes] | None = open_output(
            path, "ab" if append else "wb", on_error=self._failed
        )
        self._on_error = on_error
        self.error: OSError | None = None

    def _failed(self, path: str, exc: OSError) -> None:
        self.error = exc
        self._on_error(path, exc)

    def write(self, record: FailureRecord) -> bool:
        if self._fh is None or self.error is not None:
            return False
        self._fh.write(orjson.dumps(record.to_json()) + b"\n")
        return self.error is None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def write_summary(path: str, summary: dict[str, Any]) -> None:
    """Write the summary atomically, pretty and UTF-8 (never half a file)."""
    write_atomic(path, orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
