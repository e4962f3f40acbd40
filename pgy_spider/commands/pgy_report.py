"""``scrapy pgy_report``: one self-contained HTML report on a run or on the collected data.

Thin on purpose: Scrapy imports every command module to list the commands, so this one
imports nothing heavy at module level; the work (and matplotlib, Jinja2, pymongo) is in
``pgy_spider.report``, imported when the command runs.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand

if TYPE_CHECKING:
    import argparse

DEFAULT_OUTPUT = "output/report.html"
EXIT_USAGE = 2  # = pgy_spider.outputs.EXIT_USAGE (not imported: it pulls in the API module)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False  # no reactor, no crawler: start-up stays quick
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--summary PATH] [--feed PATH] [-o FILE] | --mongo [--since DATE] [--ids-file PATH]"

    def short_desc(self) -> str:
        return "Write an offline HTML report on a run (summary + feed) or on MongoDB's notes"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        group = parser.add_argument_group(title="Report options")
        group.add_argument(
            "--summary", metavar="PATH", help="the run's summary (default: PGY_SUMMARY_PATH)"
        )
        group.add_argument(
            "--feed", metavar="PATH", help="its JSON-lines or JSON feed (default: PGY_FEED_URI)"
        )
        group.add_argument(
            "-o",
            "--output",
            metavar="PATH",
            default=DEFAULT_OUTPUT,
            help=f"the report to write (default: {DEFAULT_OUTPUT})",
        )
        group.add_argument(
            "--top", metavar="N", type=int, default=20, help="rows per ranking (default: 20)"
        )
        group.add_argument(
            "--mongo",
            action="store_true",
            help="report on the notes in MongoDB (MONGO_URI, MONGO_DATABASE, MONGO_COLLECTION)",
        )
        group.add_argument(
            "--since",
            metavar="DATE",
            help="with --mongo: only notes fetched at or after DATE (UTC)",
        )
        group.add_argument(
            "--ids-file", metavar="PATH", help="with --mongo: only the note IDs in this file"
        )
        group.add_argument(
            "--font", metavar="PATH", help="a font file with Chinese characters for the charts"
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from pgy_spider.report.build import ReportOptions, make_report
        from pgy_spider.report.inputs import InputError, parse_since

        try:
            options = ReportOptions(output=opts.output, top=opts.top, font=opts.font)
            if args:
                raise InputError(f"unexpected argument {args[0]!r}: see scrapy pgy_report -h")
            if opts.mongo:
                self._mongo_options(options, opts, parse_since)
            else:
                if opts.since or opts.ids_file:
                    raise InputError("--since and --ids-file scope the database: add --mongo")
                options.summary = opts.summary or self._default_path(
                    "PGY_SUMMARY_PATH", "--summary"
                )
                options.feed = opts.feed or self._default_path("PGY_FEED_URI", "--feed")
            warnings = make_report(options)
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(options.output)

    def _mongo_options(self, options: Any, opts: argparse.Namespace, parse_since: Any) -> None:
        from pgy_spider.report.inputs import InputError

        assert self.settings is not None
        uri = self.settings.get("MONGO_URI") or os.environ.get("MONGO_URI")
        if not uri:
            raise InputError(
                "--mongo needs MONGO_URI: set the environment variable or pass -s MONGO_URI=..."
            )
        if opts.summary or opts.feed:
            raise InputError("--summary and --feed are for a run's report: leave out --mongo")
        options.mongo_uri = uri
        options.database = self.settings.get("MONGO_DATABASE") or "pgy"
        options.collection = self.settings.get("MONGO_COLLECTION") or "notes"
        options.since = parse_since(opts.since) if opts.since else None
        options.ids_file = opts.ids_file

    def _default_path(self, setting: str, option: str) -> str:
        from pgy_spider.report.inputs import InputError

        assert self.settings is not None
        path = str(self.settings.get(setting) or "")
        path = path.removeprefix("file://")
        if not path or "%(" in path or "://" in path:
            raise InputError(f"{setting} is {path!r}, not a plain path: pass {option} PATH")
        return path
