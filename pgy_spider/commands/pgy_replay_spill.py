"""``scrapy pgy_replay_spill [PATH]``: store the notes of a MongoDB spill file.

Thin on purpose: the work is in :mod:`pgy_spider.spillreplay`. Scrapy imports every
command module on every ``scrapy`` invocation, so pymongo and the rest are only
imported when this command runs.
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
        return "[PATH]"

    def short_desc(self) -> str:
        return "Store the notes of a MongoDB spill file (the newest fetch wins)"

    def long_desc(self) -> str:
        return (
            "Store the notes, metrics snapshots and kols of a MongoDB spill file as the "
            "crawl would have, with the same MONGO_URI, MONGO_DATABASE and MONGO_COLLECTION. "
            "A note already stored with a newer fetch is skipped. Running it twice is "
            "harmless; the file is never changed. PATH defaults to PGY_MONGO_SPILL_PATH. "
            "Exit status: 0 all lines settled (the file may be removed), 2 unusable file or "
            "MongoDB unreachable, 4 interrupted, 5 some notes could not be stored."
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) > 1:
            raise UsageError("give at most one spill file")
        from pgy_spider import spillreplay
        from pgy_spider.spiders.note_detail import NoteDetailSpider

        assert self.settings is not None
        self.exitcode = spillreplay.main(
            args[0] if args else None, self.settings, spider_name=NoteDetailSpider.name
        )
