"""In-process tests of the progress extension: what each PGY_PROGRESS mode shows, the log
routed above the live display and given back, the bytes read of the seed files, the table.

The terminal is a text stream that says it is a terminal; what was drawn on it is read
back through a terminal emulator (pyte), as a person would see it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyte
import pytest
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.extension import ExtensionManager
from scrapy.utils.misc import build_from_crawler

from pgy_spider.config import PgyConfig
from pgy_spider.errors import ConfigError
from pgy_spider.extensions.accounting import RunAccounting, accounting_of
from pgy_spider.extensions.progress import RunProgress
from pgy_spider.logmask import SecretMaskingFilter
from pgy_spider.preflight import preflight
from pgy_spider.seeds import Seed, SeedPos
from pgy_spider.seedurl import local_name
from tests.support.components import project_crawler, settings_dict
from tests.support.crawl import REPO
from tests.support.ids import make_note_id

COLUMNS, ROWS = 160, 60
# Scrapy's LOG_FORMAT and LOG_DATEFORMAT.
LOG_FORMAT = "%(asctime)s [%(name)s] %(levelname)s: %(message)s"
LOG_DATEFORMAT = "%Y-%m-%d %H:%M:%S"
RATE_LIMITED = "Rate limited by the API (code 302): pausing API calls for 0.1s"
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[[\w.]+\] \w+: ")


class Terminal(io.StringIO):
    """What the crawl's stderr would be in a terminal."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        screen = pyte.Screen(COLUMNS, ROWS)
        # A terminal's line discipline turns "\n" into "\r\n" (onlcr); a StringIO does not.
        pyte.Stream(screen).feed(self.getvalue().replace("\n", "\r\n"))
        return [row.rstrip() for row in screen.display if row.strip()]

    def clear(self) -> None:
        self.seek(0)
        self.truncate()


@pytest.fixture(autouse=True)
def _terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(COLUMNS))  # Rich's width where it cannot ask the stream


@pytest.fixture
def terminal_log() -> Iterator[tuple[Terminal, logging.StreamHandler[Any]]]:
    """A terminal and a root log handler writing to it, as Scrapy's writes to stderr."""
    terminal = Terminal()
    handler = logging.StreamHandler(terminal)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFORMAT))
    handler.addFilter(SecretMaskingFilter(("sekrit-token",)))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield terminal, handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _crawler(tmp_path: Path, **settings: Any) -> Crawler:
    crawler = project_crawler(
        PGY_FAILED_PATH=str(tmp_path / "failed.jsonl"),
        PGY_SUMMARY_PATH=str(tmp_path / "summary.json"),
        # The accounting only: the progress extension is built by each test on its stream.
        EXTENSIONS_BASE={},
        EXTENSIONS={"pgy_spider.extensions.accounting.RunAccounting": 100},
        **settings,
    )
    crawler.extensions = build_from_crawler(ExtensionManager, crawler)
    return crawler


_BUILT: list[RunProgress] = []


def _progress(crawler: Crawler, stream: io.StringIO) -> RunProgress:
    """The extension on ``stream``, kept alive as Scrapy's extension manager keeps it (signal
    receivers are weak references)."""
    progress = RunProgress(crawler, stream=stream)
    _BUILT.append(progress)
    return progress


@pytest.fixture(autouse=True)
def _forget_built() -> Iterator[None]:
    yield
    _BUILT.clear()


def _seed_files(tmp_path: Path, crawler: Crawler) -> list[Path]:
    """Two seed files of 10 IDs each (250 bytes each), named as the spider names them."""
    paths = []
    for index in range(2):
        path = tmp_path / f"seeds-{index}.txt"
        path.write_text("".join(make_note_id(index * 10 + i) + "\n" for i in range(10)))
        paths.append(path)
    crawler.spider.ids_files = [str(p) for p in paths]  # type: ignore[union-attr]
    return paths


def _read(crawler: Crawler, count: int, written: int) -> None:
    """The spider reads ``count`` seeds of the first file; ``written`` of them are written."""
    accounting = accounting_of(crawler)
    for seq in range(count):
        note_id = make_note_id(seq)
        accounting.issue(Seed(note_id, note_id, None, seq, SeedPos(0, seq * 25)))
    for seq in range(written):
        accounting.settle_written({"pgy_seq": seq})


def _open(crawler: Crawler) -> None:
    crawler.signals.send_catch_log(signals.spider_opened, spider=crawler.spider)


def _close(crawler: Crawler, reason: str = "finished") -> None:
    crawler.signals.send_catch_log(signals.spider_closed, spider=crawler.spider, reason=reason)
    crawler.signals.send_catch_log(signals.engine_stopped)


def _close_failed_file(crawler: Crawler) -> None:
    accounting = crawler.get_extension(RunAccounting)
    if accounting is not None:
        accounting.failed_file.close()


# -- a terminal: the live display, the log above it, the table ---------------------------------


def test_display_on_a_terminal_keeps_log_lines_whole_and_gives_the_log_back(
    tmp_path: Path, terminal_log: tuple[Terminal, logging.StreamHandler[Any]]
) -> None:
    terminal, handler = terminal_log
    crawler = _crawler(tmp_path)
    _seed_files(tmp_path, crawler)
    terminal.clear()  # the crawler's own start-up lines
    stderr = sys.stderr

    async def run() -> None:
        progress = _progress(crawler, terminal)
        assert progress.plan.bar and not progress.plan.lines  # the log is on this terminal
        _open(crawler)
        assert handler.stream is not terminal  # routed through the display while it is live
        assert sys.stderr is not stderr  # direct writes too
        _read(crawler, count=5, written=3)
        await asyncio.sleep(0.7)  # at least one redraw
        logging.getLogger("pgy_spider.middlewares.api").warning(RATE_LIMITED)
        logging.getLogger("pgy_spider.test").error("leaked sekrit-token here")
        live = terminal.screen()
        # The log lines above, whole; the display below them.
        assert live[0].endswith(f"WARNING: {RATE_LIMITED}") and LINE.match(live[0]), live
        assert live[1].endswith("ERROR: leaked *** here"), live  # the handler's filter kept
        assert "~15%  3 of ~20 settled" in live[2], live  # 4 seeds filled 100 bytes
        assert "5 read · 20% of 2 files (100 bytes of 500 bytes) · reading" in live[3], live
        assert "3 written · 0 failed · 0 rejected · 2 pending" in live[4], live
        _close(crawler, reason="shutdown")

    try:
        asyncio.run(run())
    finally:
        _close_failed_file(crawler)
    assert handler.stream is terminal
    assert sys.stderr is stderr
    final = terminal.screen()
    assert final[0].endswith(f"WARNING: {RATE_LIMITED}"), final
    assert final[1].endswith("ERROR: leaked *** here"), final
    # A line longer than the terminal is wrapped by the terminal, not cut into lines.
    title = next(i for i, row in enumerate(final) if row.startswith("pgy-spider:"))
    ended = "".join(final[2:title])
    assert len(final[2]) == COLUMNS and LINE.match(ended), final
    assert ended.endswith(
        "ERROR: Run ended (shutdown, exit 4): 3 notes written, 0 failed, 0 rejected, "
        f"2 pending (the seeds not read yet are in no count); summary in {tmp_path}/summary.json"
    ), final
    assert not any("━" in row or "settled" in row for row in final), final  # display gone
    table = "\n".join(final[title:])
    assert "pgy-spider: shutdown, exit 4" in table, table
    assert re.search(r"│ notes written\s+│\s+3 │", table), table
    assert re.search(r"│ pending\s+│\s+2 │", table), table


def test_after_the_display_the_log_writes_to_the_terminal_again(
    tmp_path: Path, terminal_log: tuple[Terminal, logging.StreamHandler[Any]]
) -> None:
    terminal, handler = terminal_log
    crawler = _crawler(tmp_path)
    terminal.clear()

    async def run() -> None:
        _progress(crawler, terminal)
        _open(crawler)
        assert handler.stream is not terminal
        _close(crawler)

    try:
        asyncio.run(run())
    finally:
        _close_failed_file(crawler)
    assert handler.stream is terminal
    before = len(terminal.getvalue())
    logging.getLogger("pgy_spider.test").warning("after the run")
    after = terminal.getvalue()[before:]  # written by the handler itself: no console codes
    assert LINE.match(after) and after.endswith("] WARNING: after the run\n"), repr(after)


def test_a_run_that_never_closes_puts_the_terminal_back_at_exit(
    tmp_path: Path, terminal_log: tuple[Terminal, logging.StreamHandler[Any]]
) -> None:
    terminal, handler = terminal_log
    crawler = _crawler(tmp_path)
    terminal.clear()
    stderr = sys.stderr

    async def run() -> RunProgress:
        progress = _progress(crawler, terminal)
        _open(crawler)
        _read(crawler, count=4, written=1)
        return progress

    try:
        progress = asyncio.run(run())
        # What the interpreter runs at exit after a second Ctrl-C (no spider_closed came).
        progress.finish()
    finally:
        _close_failed_file(crawler)
    assert handler.stream is terminal
    assert sys.stderr is stderr
    assert "\x1b[?25h" in terminal.getvalue()  # the cursor is shown again
    final = "\n".join(terminal.screen())
    assert "pgy-spider: forced stop" in final
    assert re.search(r"│ pending\s+│\s+3 │", final), final
    progress.finish()  # once only
    assert "\n".join(terminal.screen()) == final


def test_with_the_log_in_a_file_the_display_is_drawn_and_the_lines_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pgy_spider.extensions.progress")
    terminal = Terminal()  # no log handler writes to it: the log goes to LOG_FILE
    crawler = _crawler(tmp_path, PGY_PROGRESS_INTERVAL=0.2)

    async def run() -> None:
        progress = _progress(crawler, terminal)
        assert progress.plan.bar and progress.plan.lines
        _open(crawler)
        _read(crawler, count=2, written=1)
        await asyncio.sleep(0.7)
        assert "1 of 2 settled" in "\n".join(terminal.screen())
        _close(crawler)

    try:
        asyncio.run(run())
    finally:
        _close_failed_file(crawler)
    assert any(
        r.getMessage().startswith("Progress: 1/2 seeds read settled") for r in caplog.records
    )


def test_log_mode_on_a_terminal_draws_no_display_but_prints_the_table(
    tmp_path: Path, terminal_log: tuple[Terminal, logging.StreamHandler[Any]]
) -> None:
    terminal, handler = terminal_log
    crawler = _crawler(tmp_path, PGY_PROGRESS="log", PGY_PROGRESS_INTERVAL=0.2)
    terminal.clear()
    stderr = sys.stderr

    async def run() -> None:
        _progress(crawler, terminal)
        _open(crawler)
        assert handler.stream is terminal and sys.stderr is stderr
        _read(crawler, count=2, written=2)
        await asyncio.sleep(0.5)
        assert "\x1b[" not in terminal.getvalue()  # only log lines so far
        _close(crawler)

    try:
        asyncio.run(run())
    finally:
        _close_failed_file(crawler)
    final = terminal.screen()
    assert any("Progress: 2/2 seeds read settled" in row for row in final), final
    assert "pgy-spider: finished, exit 0" in "\n".join(final)


# -- not a terminal: today's lines -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "log", "bar"])
def test_not_a_terminal_writes_the_progress_lines_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    caplog.set_level(logging.INFO, logger="pgy_spider.extensions.progress")
    stream = io.StringIO()
    crawler = _crawler(tmp_path, PGY_PROGRESS=mode, PGY_PROGRESS_INTERVAL=0.2)

    async def run() -> None:
        _progress(crawler, stream)
        _open(crawler)
        _read(crawler, count=5, written=3)
        await asyncio.sleep(0.5)
        _close(crawler)

    try:
        asyncio.run(run())
    finally:
        _close_failed_file(crawler)
    assert stream.getvalue() == ""  # no display, no table
    messages = [r.getMessage() for r in caplog.records]
    progress = [m for m in messages if m.startswith("Progress:")]
    assert progress, messages
    assert re.fullmatch(
        r"Progress: 3/5 seeds read settled \(still reading\), \d+ seeds/min, 3 written, "
        r"0 failed, 0 rejected, 2 pending",
        progress[-1],
    )
    said = "PGY_PROGRESS=bar but stderr is not a terminal: progress lines instead"
    assert (said in messages) is (mode == "bar")


@pytest.mark.parametrize(
    ("mode", "interval", "terminal"),
    [("off", 60, True), ("off", 60, False), ("auto", 0, False), ("log", 0, False)],
)
def test_nothing_to_show_is_not_configured(
    tmp_path: Path, mode: str, interval: float, terminal: bool
) -> None:
    crawler = _crawler(tmp_path, PGY_PROGRESS=mode, PGY_PROGRESS_INTERVAL=interval)
    try:
        with pytest.raises(NotConfigured):
            RunProgress(crawler, stream=Terminal() if terminal else io.StringIO())
    finally:
        _close_failed_file(crawler)


# -- how far through the seed files ------------------------------------------------------------


def test_bytes_read_come_from_the_cursor_and_the_files(tmp_path: Path) -> None:
    # On a terminal, with no lines and no display (nothing runs on a timer): the table only.
    crawler = _crawler(tmp_path, PGY_PROGRESS="log", PGY_PROGRESS_INTERVAL=0)
    first, second = _seed_files(tmp_path, crawler)
    url = "http://127.0.0.1:9/more.txt"
    crawler.spider.ids_url = url  # type: ignore[union-attr]
    crawler.spider.ids_inline = "a,b,#c"  # type: ignore[union-attr]
    try:
        progress = _progress(crawler, Terminal())
        progress.spider_opened()
        accounting = accounting_of(crawler)
        note_id = make_note_id(0)
        accounting.issue(Seed(note_id, note_id, None, 0, SeedPos(1, 75)))
        figures = progress.figures()
        assert figures.files == 3
        assert figures.bytes_read == first.stat().st_size + 75
        assert figures.total_bytes is None  # the ids_url is not downloaded yet
        downloaded = tmp_path / local_name(url)  # next to the summary without JOBDIR
        downloaded.write_text("x" * 500)
        figures = progress.figures()
        assert figures.total_bytes == first.stat().st_size + second.stat().st_size + 500
        assert figures.bytes_fraction == pytest.approx(325 / 1000)
        accounting.done_reading()
        assert progress.figures().bytes_fraction == 1.0
        progress.finish()
    finally:
        _close_failed_file(crawler)


# -- the setting -------------------------------------------------------------------------------


def test_pgy_progress_is_read_once_and_checked() -> None:
    assert PgyConfig.from_settings(settings_dict()).progress == "auto"
    assert PgyConfig.from_settings(settings_dict(PGY_PROGRESS=" Bar ")).progress == "bar"
    with pytest.raises(ConfigError) as error:
        PgyConfig.from_settings(settings_dict(PGY_PROGRESS="fancy"))
    assert str(error.value) == "PGY_PROGRESS='fancy' is not valid: use one of auto, bar, log, off"
    with pytest.raises(ConfigError, match="PGY_PROGRESS="):
        preflight(project_crawler(PGY_PROGRESS="fancy").settings, {"ids": make_note_id(0)})


def test_rich_is_not_imported_unless_something_is_drawn() -> None:
    code = (
        "import sys\n"
        "import pgy_spider.settings, pgy_spider.commands.crawl, pgy_spider.spiders.note_detail\n"
        "import pgy_spider.extensions.progress\n"
        "assert 'rich' not in sys.modules, sorted(m for m in sys.modules if 'rich' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
