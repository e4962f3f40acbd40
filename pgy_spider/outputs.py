"""The run's own output files: the failed file and the summary. Plain module."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import orjson

from pgy_spider.failures import FailureRecord
from pgy_spider.files import write_atomic


class FailedFile:
    """One JSON line per seed that did not yield a note; appended to when a job resumes."""

    def __init__(self, path: str, *, append: bool):
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = open(path, "ab" if append else "wb")  # noqa: SIM115

    def write(self, record: FailureRecord) -> None:
        if self._fh is not None:
            self._fh.write(orjson.dumps(record.to_json()) + b"\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def write_summary(path: str, summary: dict[str, Any]) -> None:
    """Write the summary atomically, pretty and UTF-8 (never half a file)."""
    write_atomic(path, orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
