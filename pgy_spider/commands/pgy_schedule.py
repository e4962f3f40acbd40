"""``scrapy pgy_schedule -s PGY_RUN=NAME [-a ids_url=...] [-s NAME=VALUE ...]``: one run on
every Scrapyd host of ``scrapy.cfg``.

Thin on purpose: the work is in :mod:`pgy_spider.cluster`. The ``-a`` and ``-s`` options are
the job's, as ``scrapy crawl`` would take them; they are sent to every host's
``schedule.json`` (the seed arguments only to the readers).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.utils.conf import get_sources

from pgy_spider import cluster
from pgy_spider.errors import UserError

if TYPE_CHECKING:
    import argparse


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False  # no crawl: no reactor, no log set-up
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "-s PGY_RUN=NAME [-a ids_url=URL | -a ids_file=PATH] [-s NAME=VALUE ...]"

    def short_desc(self) -> str:
        return "Schedule one run across hosts on every Scrapyd of scrapy.cfg"

    def long_desc(self) -> str:
        return (
            "Schedule one job of note_detail on every Scrapyd host of scrapy.cfg (the "
            "[deploy:NAME] sections, the hosts `scrapyd-deploy -a` deploys to), all in the run "
            "named by PGY_RUN. The -a and -s options are the jobs' (as scrapy crawl takes "
            "them); the seed arguments (ids, ids_file, ids_url) go to the --readers hosts, "
            "all by default. Each host gives its jobs PGY_QUEUE_URL and the token through "
            "its environment: tokens and passwords are refused here, because Scrapyd writes "
            "job parameters to its log. Every host is checked first; nothing is scheduled "
            "unless all pass. Prints one line per host with its job id. Exit status: 0 "
            "scheduled on every host, 1 a host failed (said per host), 2 a mistake in the "
            "command or in scrapy.cfg (nothing sent)."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "-a",
            dest="spargs",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a spider argument of the jobs (may be repeated)",
        )
        parser.add_argument(
            "--hosts",
            action="append",
            default=[],
            metavar="NAME[,NAME]",
            help="only these [deploy:NAME] hosts (default: all)",
        )
        parser.add_argument(
            "--readers",
            action="append",
            default=[],
            metavar="NAME[,NAME]",
            help="the hosts that get the seed arguments (default: every scheduled host)",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=cluster.TIMEOUT_S,
            help=f"seconds to wait for each Scrapyd answer (default: {cluster.TIMEOUT_S:g})",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError("pgy_schedule takes no arguments: name the run with -s PGY_RUN=NAME")
        try:
            settings = cluster.parse_pairs(opts.set, "-s")
            spargs = cluster.parse_pairs(opts.spargs, "-a")
            run = cluster.check_job(
                settings.get("PGY_RUN") or os.environ.get("PGY_RUN"), spargs, settings
            )
            hosts = cluster.select(
                cluster.read_hosts(get_sources()), cluster.split_names(opts.hosts)
            )
            readers = cluster.split_names(opts.readers)
            chosen = {h.name for h in hosts}
            stray = [r for r in readers if r not in chosen]
            if stray:
                raise UserError(
                    f"--readers {', '.join(stray)}: not among the hosts scheduled "
                    f"({', '.join(sorted(chosen))})"
                )
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            self.exitcode = cluster.USAGE
            return
        outcomes = cluster.schedule_run(hosts, run, spargs, settings, readers, timeout=opts.timeout)
        self.exitcode = cluster.report(outcomes, run, sys.stdout, sys.stderr)
