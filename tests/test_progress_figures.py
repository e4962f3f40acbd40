"""Unit tests of the progress figures: what PGY_PROGRESS shows where, how far through the
seed files a run is, the estimated total, the rates and the ETA."""

from __future__ import annotations

import io

import pytest

from pgy_spider.extensions.progressfigures import (
    DisplayPlan,
    RateMeter,
    SeedInput,
    billed_calls,
    calls_by_code,
    count_inline,
    estimate_total,
    eta_seconds,
    is_terminal,
    measure,
    plan_display,
)
from pgy_spider.ledger import Ledger
from tests.support.ids import make_note_id

# -- what is shown where -----------------------------------------------------------------------


def _plan(
    mode: str,
    *,
    terminal: bool,
    interval: float = 60,
    term: str = "xterm-256color",
    log_on_terminal: bool = True,
) -> DisplayPlan:
    return plan_display(
        mode, interval, terminal=terminal, term=term, log_on_terminal=log_on_terminal
    )


@pytest.mark.parametrize("mode", ["auto", "bar", "log"])
def test_not_a_terminal_keeps_the_log_lines_and_nothing_else(mode: str) -> None:
    plan = _plan(mode, terminal=False)
    assert plan == DisplayPlan(bar=False, lines=True, table=False)
    # PGY_PROGRESS_INTERVAL=0 still means no lines: then there is nothing to do.
    assert not _plan(mode, terminal=False, interval=0).shows_anything


@pytest.mark.parametrize("mode", ["auto", "bar"])
def test_a_terminal_gets_the_display_instead_of_the_lines(mode: str) -> None:
    assert _plan(mode, terminal=True) == DisplayPlan(bar=True, lines=False, table=True)


@pytest.mark.parametrize("mode", ["auto", "bar"])
def test_with_the_log_in_a_file_the_file_keeps_its_lines(mode: str) -> None:
    plan = _plan(mode, terminal=True, log_on_terminal=False)
    assert plan == DisplayPlan(bar=True, lines=True, table=True)
    assert _plan(mode, terminal=True, log_on_terminal=False, interval=0).lines is False


def test_log_mode_on_a_terminal_has_lines_and_the_table() -> None:
    assert _plan("log", terminal=True) == DisplayPlan(bar=False, lines=True, table=True)
    assert _plan("log", terminal=True, interval=0) == DisplayPlan(False, False, True)


@pytest.mark.parametrize("term", ["dumb", "unknown"])
def test_auto_draws_no_display_on_a_dumb_terminal_but_bar_does(term: str) -> None:
    assert _plan("auto", terminal=True, term=term) == DisplayPlan(False, True, True)
    assert _plan("bar", terminal=True, term=term).bar


@pytest.mark.parametrize("terminal", [True, False])
def test_off_shows_nothing(terminal: bool) -> None:
    assert not _plan("off", terminal=terminal).shows_anything


def test_is_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    closed = io.StringIO()
    closed.close()
    assert is_terminal(Terminal())
    assert not is_terminal(io.StringIO())
    assert not is_terminal(closed)
    assert not is_terminal(None)


# -- how far through the input -----------------------------------------------------------------


def test_count_inline_counts_what_the_inline_reader_yields() -> None:
    assert count_inline("") == 0
    assert count_inline(" a , ,b,#comment, c ,") == 3


def test_bytes_read_adds_the_files_before_the_cursor() -> None:
    seeds = SeedInput(inline=2, file_sizes=(1000, 500, 300))
    assert seeds.total_bytes == 1800
    assert seeds.bytes_read(None) == 0
    assert seeds.bytes_read((-1, 1, 1)) == 0  # still in the inline seeds
    assert seeds.bytes_read((0, 250, 7)) == 250
    assert seeds.bytes_read((2, 100, 90)) == 1600


def test_a_size_not_known_yet_leaves_the_total_unknown() -> None:
    seeds = SeedInput(inline=0, file_sizes=(1000, None))  # ids_url not downloaded yet
    assert seeds.total_bytes is None
    assert seeds.bytes_read((0, 400, 3)) == 400
    assert SeedInput(inline=3, file_sizes=()).total_bytes == 0


def test_estimate_total() -> None:
    # Everything read: the count itself.
    assert estimate_total(1234, True, 0, 10, 99) == 1234
    # 100 seeds fill the first quarter of the files (the 101st starts there): 400 in all.
    assert estimate_total(101, False, 0, 2500, 10_000) == 400
    # Inline seeds are counted exactly, only the files' seeds are extrapolated.
    assert estimate_total(111, False, 10, 2500, 10_000) == 410
    # Inline seeds only: the count given.
    assert estimate_total(3, False, 40, 0, 0) == 40
    # Nothing to extrapolate from yet, or a file size not known.
    assert estimate_total(5, False, 5, 0, 10_000) is None
    assert estimate_total(0, False, 0, 0, 10_000) is None
    assert estimate_total(1, False, 0, 30, 10_000) is None  # one seed, after a header
    assert estimate_total(100, False, 0, 2500, None) is None
    # Never fewer than already read.
    assert estimate_total(100, False, 0, 10_000, 10_000) == 100


def test_eta() -> None:
    assert eta_seconds(400, 100, 10.0) == 30.0
    assert eta_seconds(400, 400, 10.0) == 0.0
    assert eta_seconds(None, 100, 10.0) is None
    assert eta_seconds(400, 100, 0.0) is None


def test_rates_follow_the_last_window() -> None:
    meter = RateMeter(window=10)
    assert meter.add(0.0, 0, 0) == (0.0, 0.0)
    assert meter.add(5.0, 50, 100) == (10.0, 20.0)
    assert meter.add(10.0, 100, 200) == (10.0, 20.0)
    # A pause: the rate falls over the window, not at once to zero.
    assert meter.add(15.0, 100, 200) == (5.0, 10.0)
    assert meter.add(20.0, 100, 200) == (0.0, 0.0)
    # Faster again: only the last 10 seconds count.
    assert meter.add(25.0, 200, 200) == (10.0, 0.0)


def test_calls_by_code_and_billed() -> None:
    stats = {"pgy/code/0": 90, "pgy/code/302": 5, "pgy/code/201": 5, "pgy/api_calls": 100}
    assert list(calls_by_code(stats).items()) == [("0", 90), ("201", 5), ("302", 5)]
    assert billed_calls(stats) is None
    assert billed_calls({**stats, "pgy/billed": 95}) == 95


# -- all together ------------------------------------------------------------------------------


def test_measure_from_a_ledger_and_stats() -> None:
    ledger = Ledger()
    for seq in range(10):
        ledger.issue(seq, (0, seq * 25), make_note_id(seq))
    ledger.reject(10, (1, 0), "invalid_id")
    for seq in range(6):
        ledger.settle_written(seq)
    ledger.settle_failed(6, "not_found")
    stats = {"pgy/api_calls": 8, "pgy/code/0": 6, "pgy/code/201": 1, "pgy/code/302": 1}
    meter = RateMeter(window=30)
    meter.add(0.0, 0, 0)
    figures = measure(
        ledger.counts(),
        stats,
        cursor=ledger.cursor,
        reading_done=False,
        seeds=SeedInput(inline=0, file_sizes=(250, 250)),
        rates=meter,
        now=4.0,
        started=0.0,
    )
    assert (figures.seeds_read, figures.settled, figures.pending) == (11, 8, 3)
    assert (figures.written, figures.failed, figures.rejected) == (6, 1, 1)
    assert (figures.bytes_read, figures.total_bytes, figures.bytes_fraction) == (250, 500, 0.5)
    # 10 seeds fill the first file (250 bytes), the cursor at the start of the second: 20.
    assert figures.total == 20 and not figures.total_exact
    assert figures.settled_rate == 2.0 and figures.call_rate == 2.0
    assert figures.eta == 6.0  # 12 seeds left at 2 a second
    assert figures.calls_by_code == {"0": 6, "201": 1, "302": 1}
    assert figures.billed is None

    done = measure(
        ledger.counts(),
        {**stats, "pgy/billed": 7},
        cursor=ledger.cursor,
        reading_done=True,
        seeds=SeedInput(inline=0, file_sizes=(250, 250)),
        rates=meter,
        now=8.0,
        started=0.0,
    )
    assert done.total == 11 and done.total_exact
    assert done.bytes_fraction == 1.0
    assert done.fraction == pytest.approx(8 / 11)
    assert done.billed == 7
