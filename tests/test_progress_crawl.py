"""End to end: real ``scrapy crawl note_detail`` runs against the simulator, in a pseudo-
terminal read through a terminal emulator (pyte), and with stderr a pipe as under cron,
Scrapyd and CI."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyte

from tests.support.crawl import crawl_command, crawl_env, run_crawl
from tests.support.ids import make_note_id, make_note_ids
from tests.support.simulator import SimulatorClient

COLUMNS, ROWS = 200, 300  # room for the whole run's log: nothing scrolls off the screen
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
DISPLAY = re.compile(r"\d+ of ~?\d+ settled")


@dataclass
class TerminalRun:
    returncode: int
    screen: pyte.Screen
    # The screens that showed the display, each time the output paused.
    frames: list[list[str]] = field(default_factory=list)

    @property
    def rows(self) -> list[str]:
        return _rows(self.screen)

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"exit {self.returncode}\n--- screen ---\n" + "\n".join(self.rows)


def _rows(screen: pyte.Screen) -> list[str]:
    return [row.rstrip() for row in screen.display if row.strip()]


def run_in_terminal(
    workdir: Path,
    *args: str,
    sim_url: str,
    settings: dict[str, Any],
    interrupts: tuple[float, ...] = (),
    timeout: float = 120,
) -> TerminalRun:
    """The crawl with stdin, stdout and stderr on a pseudo-terminal of COLUMNS x ROWS.

    ``interrupts``: send SIGINT (Ctrl-C) this many seconds after the display first shows.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    env = crawl_env({"TERM": "xterm-256color"})
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR"):
        env.pop(name, None)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = subprocess.Popen(
        crawl_command(*args, sim_url=sim_url, settings=settings),
        cwd=workdir,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    screen = pyte.Screen(COLUMNS, ROWS)
    stream = pyte.ByteStream(screen)
    run = TerminalRun(0, screen)
    pending = list(interrupts)
    shown_at: float | None = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if pending and shown_at is not None and time.monotonic() >= shown_at + pending[0]:
                pending.pop(0)
                proc.send_signal(signal.SIGINT)
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                # The output paused: the screen as a person sees it between two redraws.
                rows = _rows(screen)
                if any(DISPLAY.search(row) for row in rows):
                    if not run.frames or run.frames[-1] != rows:
                        run.frames.append(rows)
                    shown_at = shown_at or time.monotonic()
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal has ended
                break
            if not data:
                break
            stream.feed(data)
        run.returncode = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return run


def _ids_file(path: Path, count: int, bad: int = 0) -> Path:
    lines = make_note_ids(count) + [f"not-a-note-{i}" for i in range(bad)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _table(rows: list[str]) -> tuple[str, dict[str, list[str]]]:
    """The outcome table at the end of the screen: its title and its rows by first cell."""
    start = max(i for i, row in enumerate(rows) if row.startswith("pgy-spider: "))
    cells: dict[str, list[str]] = {}
    for row in rows[start + 1 :]:
        if row.startswith("│"):
            first, *rest = (cell.strip() for cell in row[1:-1].split("│"))
            cells[first] = rest
    return rows[start], cells


def test_a_terminal_shows_the_display_the_log_above_it_and_the_table(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    sim.configure(latency_ms=150, burst_302=2)
    _ids_file(tmp_path / "ids.txt", 40, bad=1)
    run = run_in_terminal(
        tmp_path,
        "-a",
        "ids_file=ids.txt",
        sim_url=sim.url,
        settings={"CONCURRENT_REQUESTS": 2},
    )
    assert run.returncode == 0, run
    summary = _summary(tmp_path)

    # While it ran: the display, under whole log lines.
    assert len(run.frames) >= 3, run
    frame = run.frames[-1]  # the last redraw: every call answered
    assert any("Rate limited" in row for row in frame), frame
    at = next(i for i, row in enumerate(frame) if DISPLAY.search(row))
    assert "━" in frame[at], frame
    assert re.search(r"\d+ read · \d+% of 1 file \(.* of 1\.\d kB\)", frame[at + 1]), frame
    assert re.search(r"\d+ written · 0 failed · [01] rejected · \d+ pending", frame[at + 2])
    calls = r"\d+ · [\d.]+/s · by code (0: \d+ {2}302: 2|302: 2 {2}0: 1)"  # the most first
    assert re.search(calls, frame[at + 3]), frame

    # At the end: the log whole, the display gone, the table last.
    rows = run.rows
    warning = (
        rf"{STAMP} \[pgy_spider\.middlewares\.api\] WARNING: Rate limited by the API "
        r"\(code 302\): pausing API calls for 0\.\ds"
    )
    assert any(re.fullmatch(warning, row) for row in rows), run
    ended = (
        rf"{STAMP} \[pgy_spider\.extensions\.accounting\] INFO: Run ended \(finished, exit 0\): "
        r"40 notes written, 0 failed, 1 rejected, 0 pending; summary in output/summary\.json"
    )
    assert any(re.fullmatch(ended, row) for row in rows), run
    assert not any("━" in row or DISPLAY.search(row) for row in rows), run
    assert not run.screen.cursor.hidden
    title, table = _table(rows)
    assert re.fullmatch(r"pgy-spider: finished, exit 0, 0:\d\d", title), run
    closed = max(i for i, row in enumerate(rows) if "Spider closed (finished)" in row)
    assert rows.index(title) > closed  # after every log line
    assert table["seeds read"] == ["41", ""]
    assert table["notes written"] == [str(summary["notes_written"]), ""] == ["40", ""]
    assert table["rejected"] == ["1", "invalid_id 1"]
    assert table["pending"] == ["0", ""]
    assert table["API calls"] == [str(summary["api_calls"]), "0: 40  302: 2"]
    assert table["summary"] == ["", "output/summary.json"]


def test_not_a_terminal_gets_todays_log_lines_and_no_escape_codes(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    sim.configure(latency_ms=100)
    ids = make_note_ids(10)
    result = run_crawl(
        tmp_path,
        "-a",
        "ids=" + ",".join(ids),
        sim_url=sim.url,
        settings={"PGY_PROGRESS_INTERVAL": 0.3, "CONCURRENT_REQUESTS": 1},
    )
    assert result.returncode == 0, result
    progress = [line for line in result.stderr.splitlines() if "Progress:" in line]
    assert len(progress) >= 2, result
    line = (
        rf"{STAMP} \[pgy_spider\.extensions\.progress\] INFO: Progress: \d+/\d+ seeds read "
        r"settled( \(still reading\))?, \d+ seeds/min, \d+ written, \d+ failed, \d+ rejected, "
        r"\d+ pending"
    )
    assert all(re.fullmatch(line, p) for p in progress), progress
    assert "\x1b" not in result.stderr  # no display, no colours, no cursor moves
    assert "pgy-spider: " not in result.stderr and "╭" not in result.stderr  # no table
    assert result.stdout == ""


def _interrupted(tmp_path: Path, sim: SimulatorClient, interrupts: tuple[float, ...]) -> Any:
    # Slow answers: the graceful stop waits for the calls in flight, long enough for a
    # second Ctrl-C to land while it does.
    sim.configure(latency_ms=2500)
    _ids_file(tmp_path / "ids.txt", 200)
    return run_in_terminal(
        tmp_path,
        "-a",
        "ids_file=ids.txt",
        sim_url=sim.url,
        settings={"CONCURRENT_REQUESTS": 4},
        interrupts=interrupts,
    )


def test_ctrl_c_ends_the_display_with_the_table(tmp_path: Path, sim: SimulatorClient) -> None:
    run = _interrupted(tmp_path, sim, (0.5,))
    assert run.returncode == 4, run
    rows = run.rows
    assert not any("━" in row or DISPLAY.search(row) for row in rows), run
    assert not run.screen.cursor.hidden
    title, table = _table(rows)
    assert re.fullmatch(r"pgy-spider: shutdown, exit 4, 0:\d\d", title), run
    summary = _summary(tmp_path)
    assert table["pending"] == [str(summary["pending"]), ""]
    assert summary["pending"] > 0


def test_a_second_ctrl_c_still_gives_the_terminal_back(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    run = _interrupted(tmp_path, sim, (0.5, 1.0))
    assert run.returncode != 0, run
    rows = run.rows
    assert any("Received SIGINT twice, forcing unclean shutdown" in row for row in rows), run
    # The display is taken away and the cursor shown again, though the crawl never closed.
    assert not any("━" in row or DISPLAY.search(row) for row in rows), run
    assert not run.screen.cursor.hidden
    title, table = _table(rows)
    assert re.fullmatch(r"pgy-spider: forced stop, 0:\d\d", title), run
    assert int(table["pending"][0]) > 0
    assert "summary" not in table  # no summary was written


def test_a_wrong_pgy_progress_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_crawl(tmp_path, "-a", f"ids={make_note_id(0)}", settings={"PGY_PROGRESS": "fancy"})
    assert result.returncode == 2, result
    assert result.stderr.strip() == (
        "error: PGY_PROGRESS='fancy' is not valid: use one of auto, bar, log, off"
    )


def _summary(workdir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(
        (workdir / "output" / "summary.json").read_text(encoding="utf-8")
    )
    return summary
