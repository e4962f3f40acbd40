"""Progress: a live display on a terminal, progress lines in the log, a table at the end.

Modelled on Scrapy's ``LogStats``: looping calls started when the spider opens read the
run's accounting and stats (never per note). ``PGY_PROGRESS`` chooses what is shown
(:func:`~.progressfigures.plan_display`):

- the live display (:mod:`.progressterminal`, drawn with Rich) when stderr is a terminal,
  redrawn every :data:`BAR_REFRESH_SECONDS`; the log prints above it;
- the progress lines every ``PGY_PROGRESS_INTERVAL`` seconds (0: none) where no display is
  drawn over the log: stderr is not a terminal (cron, Scrapyd, CI), ``PGY_PROGRESS=log``,
  or the log goes to ``LOG_FILE``;
- the outcome table on stderr when the run is over, when stderr is a terminal.

Rich is imported only when something is drawn: a crawl without a terminal does not pay its
start-up time.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from pgy_spider.extensions.accounting import accounting_of
from pgy_spider.extensions.progressfigures import (
    Figures,
    Outcome,
    RateMeter,
    SeedInput,
    count_inline,
    is_terminal,
    measure,
    outcome,
    plan_display,
)
from pgy_spider.runtime import runtime_of
from pgy_spider.seedurl import local_name

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

    from pgy_spider.extensions.progressterminal import TerminalDisplay

logger = logging.getLogger(__name__)

BAR_REFRESH_SECONDS = 0.5
FORCED_STOP = "forced stop"  # the table's reason when the crawl never closed (second Ctrl-C)


class RunProgress:
    def __init__(self, crawler: Crawler, stream: TextIO | None = None) -> None:
        runtime = runtime_of(crawler)
        config = runtime.config
        if config is None:
            raise NotConfigured  # the runtime closes the crawl and says why
        self.crawler = crawler
        self._runtime = runtime
        self.stream = sys.stderr if stream is None else stream
        terminal = is_terminal(self.stream)
        self.mode = config.progress
        self.interval = config.progress_interval
        self.plan = plan_display(
            self.mode,
            self.interval,
            terminal=terminal,
            term=os.environ.get("TERM", ""),
            log_on_terminal=bool(log_handlers_on(self.stream)),
        )
        if not self.plan.shows_anything:
            raise NotConfigured
        self._bar_impossible = self.mode == "bar" and not terminal
        self._display: TerminalDisplay | None = None
        self._tasks: list[Any] = []
        self._rates = RateMeter()
        self._started = time.monotonic()
        self._last = (self._started, 0)
        self._reason: str | None = None
        self._open = False
        self._seeds: _SeedFiles | None = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    # -- signals ------------------------------------------------------------------------

    def spider_opened(self) -> None:
        self._open = True
        self._started = time.monotonic()
        self._last = (self._started, 0)
        self._seeds = _SeedFiles.of(self.crawler)
        if self._bar_impossible:
            logger.info("PGY_PROGRESS=bar but stderr is not a terminal: progress lines instead")
        if self.plan.lines:
            self._every(self.interval, self.log)
        if self.plan.bar:
            from pgy_spider.extensions.progressterminal import TerminalDisplay

            self._display = TerminalDisplay(self.stream)
            self._display.start(self.figures(), log_handlers_on(self.stream))
            self._every(BAR_REFRESH_SECONDS, self.refresh)
        if self.plan.bar or self.plan.table:
            # A second Ctrl-C stops the reactor without engine_stopped: put the terminal
            # back (and say where the run got to) on the way out all the same.
            atexit.register(self.finish)

    def spider_closed(self, reason: str) -> None:
        # A named stop (fatal code, seed error) wins over the "finished" Scrapy may send.
        self._reason = self._runtime.stop_reason or reason
        self._stop_tasks()
        if self._display is not None:
            self._display.show(self.figures())  # the last figures, while the feeds close

    def engine_stopped(self) -> None:
        self.finish()

    # -- periodic work ------------------------------------------------------------------

    def _every(self, interval: float, func: Any) -> None:
        task = create_looping_call(func)
        task.start(interval, now=False)
        self._tasks.append(task)

    def _stop_tasks(self) -> None:
        for task in self._tasks:
            if task.running:
                task.stop()
        self._tasks.clear()

    def figures(self) -> Figures:
        accounting = accounting_of(self.crawler)
        assert self._seeds is not None
        return measure(
            accounting.counts(),
            self.crawler.stats.get_stats(),
            cursor=accounting.cursor,
            reading_done=accounting.reading_done,
            seeds=self._seeds.input(),
            rates=self._rates,
            now=time.monotonic(),
            started=self._started,
        )

    def refresh(self) -> None:
        if self._display is not None:
            self._display.show(self.figures())

    def log(self) -> None:
        accounting = accounting_of(self.crawler)
        counts = accounting.counts()
        settled = counts["seeds_read"] - counts["pending"]
        now = time.monotonic()
        then, settled_then = self._last
        rate = (settled - settled_then) / max(now - then, 1e-9) * 60
        self._last = (now, settled)
        logger.info(
            "Progress: %s/%s seeds read settled%s, %.0f seeds/min, %s written, %s failed, "
            "%s rejected, %s pending",
            settled,
            counts["seeds_read"],
            "" if accounting.reading_done else " (still reading)",
            rate,
            counts["notes_written"],
            counts["failed"],
            counts["rejected"],
            counts["pending"],
        )

    # -- the end ------------------------------------------------------------------------

    def finish(self) -> None:
        """Stop drawing, give the log its stream back, print the outcome table (once)."""
        if not self._open:
            return
        self._open = False
        atexit.unregister(self.finish)
        self._stop_tasks()
        result = self.outcome() if self.plan.table else None
        if self._display is not None:
            self._display.finish(result)
            self._display = None
        elif result is not None:
            from pgy_spider.extensions.progressterminal import print_outcome

            print_outcome(self.stream, result)

    def outcome(self) -> Outcome:
        accounting = accounting_of(self.crawler)
        closed = accounting.exit_code is not None
        return outcome(
            accounting.counts(),
            self.crawler.stats.get_stats(),
            reason=self._reason or FORCED_STOP,
            exit_code=accounting.final_exit_code() if closed else None,
            elapsed=time.monotonic() - self._started,
            summary_path=accounting.paths.summary if closed else None,
            failed_path=accounting.paths.failed,
            jobdir=accounting.jobdir,
        )


class _SeedFiles:
    """The run's seed input as the spider names it: inline seeds, files, the ``ids_url``
    download. File sizes are read once; the download's until it exists (a stat a tick)."""

    def __init__(self, inline: int, sizes: tuple[int | None, ...], url_file: Path | None):
        self.inline = inline
        self.sizes = sizes
        self.url_file = url_file

    @classmethod
    def of(cls, crawler: Crawler) -> _SeedFiles:
        spider = crawler.spider
        files: list[str] = list(getattr(spider, "ids_files", None) or [])
        ids_url = getattr(spider, "ids_url", None)
        url_file = None
        if ids_url:
            url_file = Path(runtime_of(crawler).paths.seeds_dir, local_name(ids_url))
        inline = count_inline(str(getattr(spider, "ids_inline", "") or ""))
        return cls(inline, tuple(_size(Path(f)) for f in files), url_file)

    def input(self) -> SeedInput:
        sizes = self.sizes
        if self.url_file is not None:
            sizes = (*sizes, _size(self.url_file))
        return SeedInput(self.inline, sizes)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def log_handlers_on(stream: TextIO) -> list[logging.StreamHandler[TextIO]]:
    """The root logger's handlers that write to ``stream``: Scrapy's own on stderr, unless
    the log goes to ``LOG_FILE`` (a file handler is never one of them)."""
    return [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
        and handler.stream is stream
    ]
