"""Notes given up on outside a ``note_detail`` run: reported through Scrapy's channels.

A project that yields :func:`pgy_spider.note_request` has no run accounting of ours: each
note that fails (not found, bad request, retries exhausted, invalid data, ...) is logged
as a warning with its reason, counted in the ``pgy/failed`` and ``pgy/failed/<reason>``
stats, and, when ``PGY_FAILED_PATH`` is set, appended to that failed file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pgy_spider.outputfile import OnError
from pgy_spider.outputs import FailedFile

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from pgy_spider.failures import FailureRecord

logger = logging.getLogger(__name__)


class FailedNotes:
    def __init__(
        self, path: Callable[[], str] | None, stats: StatsCollector, on_error: OnError
    ) -> None:
        self._path = path  # the failed file's path, filled in when it is first needed
        self._stats = stats
        self._on_error = on_error
        self._file: FailedFile | None = None

    def report(self, record: FailureRecord) -> None:
        logger.warning(
            "Note %s failed: %s (code %s, %s attempt(s), requestId %s)%s",
            record.note_id,
            record.reason,
            record.code,
            record.attempts,
            record.request_id,
            f": {record.message}" if record.message else "",
        )
        self._stats.inc_value("pgy/failed")
        self._stats.inc_value(f"pgy/failed/{record.reason}")
        if self._path is not None:
            if self._file is None:
                self._file = FailedFile(self._path(), append=True, on_error=self._on_error)
            self._file.write(record)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
