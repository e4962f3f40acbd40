"""A scheduler that keeps requests in memory even with JOBDIR.

Resuming is done by the run's accounting (its resume state in JOBDIR): it re-issues the
notes left pending and continues the seed files from a cursor. Scrapy's disk queues would
re-issue the same requests a second time, so they are not used.
"""

from __future__ import annotations

from typing import Any

from scrapy.core.scheduler import Scheduler


class MemoryScheduler(Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["jobdir"] = None  # no disk queues, whatever JOBDIR says
        super().__init__(*args, **kwargs)
