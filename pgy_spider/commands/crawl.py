"""``scrapy crawl`` with this project's preflight checks and exit statuses.

Scrapy's own command exits 0 whenever the crawler started. Cron jobs and Scrapyd
need to know when a run stopped early (quota, token, signal, storage), and a
user's mistake deserves one clear line before any paid call, not a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand

from pgy_spider.api import ConfigError
from pgy_spider.outputs import EXIT_ERROR, EXIT_STORAGE, EXIT_USAGE
from pgy_spider.preflight import preflight
from pgy_spider.seeds import SeedFileError
from pgy_spider.spiders.note_detail import NoteDetailSpider

if TYPE_CHECKING:
    import argparse


def _user_errors() -> tuple[type[Exception], ...]:
    from pgy_spider.mongo import MongoUnavailable

    return (ConfigError, SeedFileError, MongoUnavailable)


class Command(ScrapyCrawlCommand):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if args != [NoteDetailSpider.name]:
            return
        # Before Scrapy starts (and logs its banner): a user error is one line, exit 2.
        assert self.settings is not None
        try:
            warnings = preflight(self.settings, opts.spargs)
        except _user_errors() as exc:
            self._report(f"error: {exc}")
            sys.exit(EXIT_USAGE)
        for warning in warnings:
            self._report(f"warning: {warning}")

    def _report(self, line: str) -> None:
        print(line, file=sys.stderr)
        log_file = self.settings.get("LOG_FILE") if self.settings else None
        if log_file:
            # Under Scrapyd stderr goes to Scrapyd's own log: put it in the job log too.
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with Path(log_file).open("a", encoding="utf-8") as fh:
                fh.write(f"{stamp} [pgy_spider] {line}\n")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args != [NoteDetailSpider.name]:
            super().run(args, opts)
            return
        assert self.crawler_process is not None
        crawler = self._create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = EXIT_ERROR
            return
        stats = crawler.stats.get_stats()
        self.exitcode = int(stats.get("pgy/exit_code", EXIT_ERROR))
        if self.exitcode == 0 and any(k.startswith("feedexport/failed_count/") for k in stats):
            # The notes were fetched (and paid for) but a feed could not be stored.
            self.exitcode = EXIT_STORAGE
