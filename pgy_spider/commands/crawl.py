"""``scrapy crawl`` with this project's preflight checks and exit statuses.

Scrapy's own command exits 0 whenever the crawler started. Cron jobs and Scrapyd
need to know when a run stopped early (quota, token, signal, storage), and a
user's mistake deserves one clear line before any paid call, not a traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand

from pgy_spider.api import ConfigError
from pgy_spider.outputs import EXIT_ERROR, EXIT_USAGE
from pgy_spider.preflight import preflight
from pgy_spider.seeds import SeedFileError
from pgy_spider.spiders.note_detail import NoteDetailSpider

if TYPE_CHECKING:
    import argparse


def _user_errors() -> tuple[type[Exception], ...]:
    from pgy_spider.mongo import MongoUnavailable

    return (ConfigError, SeedFileError, MongoUnavailable)


class Command(ScrapyCrawlCommand):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1 or args[0] != NoteDetailSpider.name:
            super().run(args, opts)
            return
        assert self.settings is not None
        try:
            for warning in preflight(self.settings, opts.spargs):
                print(f"warning: {warning}", file=sys.stderr)
        except _user_errors() as exc:
            print(f"error: {exc}", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        assert self.crawler_process is not None
        crawler = self._create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = EXIT_ERROR
            return
        self.exitcode = int(crawler.stats.get_value("pgy/exit_code", EXIT_ERROR))
