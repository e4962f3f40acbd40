"""A test-only feed exporter that SIGKILLs its own process in the middle of a line.

``PGY_TEST_KILL_AT=N`` in the environment: the N-th note exported is written half, then
the process is killed with SIGKILL, deterministically inside a feed write. Used by the
crash tests through ``-s FEED_EXPORTERS=...``; never part of the product.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import orjson

from pgy_spider.exporters import OrjsonLinesItemExporter


class KillMidLineExporter(OrjsonLinesItemExporter):
    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._kill_at = int(os.environ.get("PGY_TEST_KILL_AT", "0"))
        self._exported = 0

    def export_item(self, item: Any) -> None:
        self._exported += 1
        if self._exported == self._kill_at:
            line = orjson.dumps(item) + b"\n"
            self.file.write(line[: len(line) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        super().export_item(item)
