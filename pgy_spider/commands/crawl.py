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

from pgy_spider import exitcodes
from pgy_spider.errors import UserError
from pgy_spider.extensions.accounting import RunAccounting
from pgy_spider.preflight import preflight
from pgy_spider.spiders.note_detail import NoteDetailSpider

if TYPE_CHECKING:
    import argparse


class Command(ScrapyCrawlCommand):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if args != [NoteDetailSpider.name]:
            return
        # Before Scrapy starts (and logs its banner): a user error is one line, exit 2.
        assert self.settings is not None
        try:
            warnings = preflight(self.settings, opts.spargs)
        except UserError as exc:
            self._report(f"error: {exc}")
            sys.exit(exitcodes.USAGE)
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
            self.exitcode = exitcodes.ERROR
            return
        accounting = crawler.get_extension(RunAccounting)
        self.exitcode = accounting.final_exit_code() if accounting else exitcodes.ERROR
