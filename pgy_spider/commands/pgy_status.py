"""``scrapy pgy_status -s PGY_QUEUE_URL=... -s PGY_RUN=...``: a run across processes, as JSON.

Thin on purpose: the work is in :mod:`pgy_spider.queue.status`. Scrapy imports every
command module on every ``scrapy`` invocation, so redis is only imported when this command
runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

if TYPE_CHECKING:
    import argparse


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False  # no crawl: no reactor, no log set-up
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "-s PGY_QUEUE_URL=redis://HOST:PORT/DB -s PGY_RUN=NAME"

    def short_desc(self) -> str:
        return "Print the run-wide summary of a run across processes (JSON)"

    def long_desc(self) -> str:
        return (
            "Print the summary of a whole run across processes as JSON: the summary file's "
            "counts for the run, its state (reading, running, finished, stopped:<reason>), "
            "its workers with their last sign of life, its reader and its redeliveries. "
            "PGY_QUEUE_URL and PGY_RUN may also come from the environment. Exit status: 0 "
            "the run's summary was printed, 2 no such run or Redis unreachable."
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError("pgy_status takes no arguments: name the run with -s PGY_RUN=NAME")
        from pgy_spider.queue.status import main

        assert self.settings is not None
        self.exitcode = main(self.settings)
