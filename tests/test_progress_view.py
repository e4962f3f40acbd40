"""What the live display and the outcome table show, rendered by Rich to plain text."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

from rich.console import Console, RenderableType

from pgy_spider.extensions.progressfigures import Figures, Outcome
from pgy_spider.extensions.progressview import duration, outcome_table, panel

FIGURES = Figures(
    elapsed=125.0,
    seeds_read=110,
    reading_done=False,
    settled=100,
    written=90,
    failed=4,
    rejected=6,
    duplicates=0,
    skipped_fresh=0,
    pending=10,
    files=2,
    bytes_read=1000,
    total_bytes=2000,
    calls=99,
    calls_by_code={"0": 90, "302": 5, "201": 4},
    billed=None,
    settled_rate=2.0,
    call_rate=2.5,
    total=220,
    eta=60.0,
)


def _text(renderable: RenderableType, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_panel_shows_read_settled_written_failed_pending_calls_and_eta() -> None:
    text = _text(panel(FIGURES))
    assert "━" in text  # the bar
    assert "~45%  100 of ~220 settled  ETA 1:00  2:05 elapsed" in text
    assert "110 read · 50% of 2 files (1.0 kB of 2.0 kB) · reading" in text
    assert "90 written · 4 failed · 6 rejected · 10 pending" in text
    assert "99 · 2.5/s · by code 0: 90  302: 5  201: 4" in text
    assert "billed" not in text  # no pgy/billed stat yet: the calls by code stand for it


def test_panel_shows_billed_calls_once_the_stat_exists() -> None:
    text = _text(panel(replace(FIGURES, billed=94)))
    assert "by code 0: 90  302: 5  201: 4 · billed 94" in text


def test_panel_when_everything_is_read() -> None:
    done = replace(FIGURES, reading_done=True, total=110, bytes_read=2000, duplicates=3)
    text = _text(panel(done))
    assert "91%  100 of 110 settled" in text  # exact now: no "~"
    assert "100% of 2 files (2.0 kB of 2.0 kB) · all read" in text
    assert "3 duplicates" in text


def test_panel_before_anything_can_be_estimated() -> None:
    unknown = replace(FIGURES, total=None, eta=None, total_bytes=None, files=1, settled=0)
    text = _text(panel(unknown))
    assert "…  0 settled  ETA —" in text
    assert "1.0 kB of 1 file (a size not known yet)" in text


def test_panel_inline_seeds_have_an_exact_total() -> None:
    inline = replace(FIGURES, files=0, bytes_read=0, total_bytes=0, total=200)
    text = _text(panel(inline))
    assert "50%  100 of 200 settled" in text
    assert "110 read · reading" in text


def _outcome(**overrides: Any) -> Outcome:
    values: dict[str, Any] = {
        "reason": "finished",
        "exit_code": 0,
        "counts": {
            "seeds_read": 1234,
            "notes_written": 1200,
            "failed": 4,
            "failed_by_reason": {"bad_request": 1, "not_found": 3},
            "rejected": 20,
            "rejected_by_reason": {"invalid_id": 20},
            "duplicates": 10,
            "skipped_fresh": 0,
            "pending": 0,
        },
        "calls": 1210,
        "calls_by_code": {"0": 1200, "201": 3, "302": 6, "400": 1},
        "billed": None,
        "possibly_billed": 0,
        "retries": 6,
        "elapsed": 3725.0,
        "summary_path": "output/summary.json",
        "failed_path": "output/failed.jsonl",
        "jobdir": None,
    }
    values.update(overrides)
    return Outcome(**values)


def _rows(text: str) -> dict[str, list[str]]:
    """The table's rows by their first cell: the other cells, stripped."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            first, *cells = (cell.strip() for cell in line.rstrip()[1:-1].split("│"))
            rows[first] = cells
    return rows


def test_outcome_table() -> None:
    text = _text(outcome_table(_outcome()))
    assert text.splitlines()[0] == "pgy-spider: finished, exit 0, 1:02:05"
    rows = _rows(text)
    assert rows["seeds read"] == ["1,234", ""]
    assert rows["notes written"] == ["1,200", ""]
    assert rows["failed"] == ["4", "bad_request 1 · not_found 3"]
    assert rows["rejected"] == ["20", "invalid_id 20"]
    assert rows["duplicates"] == ["10", ""]
    assert rows["pending"] == ["0", ""]
    assert rows["API calls"] == ["1,210", "0: 1,200  201: 3  302: 6  400: 1"]
    assert rows["retries"] == ["6", ""]
    assert rows["summary"] == ["", "output/summary.json"]
    assert rows["failed file"] == ["", "output/failed.jsonl"]
    # Rows that would only say 0 are left out.
    assert not {"skipped, fresh", "possibly billed", "billed"} & set(rows)


def test_outcome_table_of_a_stopped_resumable_run() -> None:
    counts = {**_outcome().counts, "pending": 34, "failed": 0, "rejected": 0}
    result = _outcome(
        reason="shutdown",
        exit_code=4,
        counts=counts,
        jobdir="jobs/a",
        billed=1203,
        possibly_billed=2,
    )
    text = _text(outcome_table(result))
    assert text.splitlines()[0] == "pgy-spider: shutdown, exit 4, 1:02:05"
    rows = _rows(text)
    assert rows["pending"] == ["34", "re-issued when the job resumes"]
    assert rows["billed"] == ["1,203", ""]
    assert rows["possibly billed"] == ["2", "timed out after sending"]
    assert "failed file" not in rows  # nothing in it


def test_outcome_table_of_a_forced_stop() -> None:
    text = _text(outcome_table(_outcome(reason="forced stop", exit_code=None, summary_path=None)))
    assert text.splitlines()[0] == "pgy-spider: forced stop, 1:02:05"
    assert "summary" not in _rows(text)


def test_duration() -> None:
    assert duration(7.4) == "0:07"
    assert duration(754) == "12:34"
    assert duration(3723) == "1:02:03"
    assert duration(None) == "—"
