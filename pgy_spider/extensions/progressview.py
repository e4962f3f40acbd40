"""How the progress figures look on a terminal: the live display and the outcome table.

Rendering only, with Rich: the figures come from :mod:`.progressfigures`, the terminal
session from :mod:`.progressterminal`. Imported only when something is drawn (Rich costs
start-up time a crawl without a terminal does not pay).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich import box
from rich.console import Group, RenderableType
from rich.filesize import decimal
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from pgy_spider.extensions.progressfigures import Figures, Outcome

BAR_WIDTH = 40
_SEP = " · "


def panel(figures: Figures) -> RenderableType:
    """The live display: a bar of the seeds settled, then what was read, settled and called."""
    f = figures
    top = Table.grid(padding=(0, 2))
    top.add_column(no_wrap=True)
    top.add_column()
    top.add_row(ProgressBar(total=f.total, completed=f.settled, width=BAR_WIDTH), _headline(f))
    rows = Table.grid(padding=(0, 1))
    rows.add_column(style="bold", no_wrap=True)
    rows.add_column()
    rows.add_row("seeds", _seeds_line(f))
    rows.add_row("notes", _notes_line(f))
    rows.add_row("calls", _calls_line(f))
    return Group(top, rows)


def _headline(f: Figures) -> Text:
    fraction = f.fraction
    about = "" if f.total_exact else "~"
    parts = [f"{about}{fraction:.0%}" if fraction is not None else "…"]
    if f.total is not None:
        parts.append(f"{f.settled:,} of {about}{f.total:,} settled")
    else:
        parts.append(f"{f.settled:,} settled")
    parts.append(f"ETA {duration(f.eta)}" if f.eta is not None else "ETA —")
    parts.append(f"{duration(f.elapsed)} elapsed")
    return Text("  ".join(parts))


def _seeds_line(f: Figures) -> str:
    line = f"{f.seeds_read:,} read"
    if f.files:
        files = "1 file" if f.files == 1 else f"{f.files} files"
        share = f.bytes_fraction
        if f.total_bytes is None:
            line += f"{_SEP}{decimal(f.bytes_read)} of {files} (a size not known yet)"
        elif share is not None:
            line += (
                f"{_SEP}{share:.0%} of {files} ({decimal(f.bytes_read)} of "
                f"{decimal(f.total_bytes)})"
            )
    line += f"{_SEP}all read" if f.reading_done else f"{_SEP}reading"
    return line


def _notes_line(f: Figures) -> str:
    parts = [f"{f.written:,} written", f"{f.failed:,} failed", f"{f.rejected:,} rejected"]
    if f.duplicates:
        parts.append(f"{f.duplicates:,} duplicates")
    if f.skipped_fresh:
        parts.append(f"{f.skipped_fresh:,} fresh")
    parts.append(f"{f.pending:,} pending")
    return _SEP.join(parts)


def _calls_line(f: Figures) -> str:
    line = f"{f.calls:,}{_SEP}{f.call_rate:.1f}/s"
    if f.calls_by_code:
        line += f"{_SEP}by code {by_code(f.calls_by_code)}"
    if f.billed is not None:
        line += f"{_SEP}billed {f.billed:,}"
    return line


def outcome_table(result: Outcome) -> RenderableType:
    """The compact table printed when the run is over, under a line saying how it ended."""
    counts = result.counts
    title = f"pgy-spider: {result.reason}"
    if result.exit_code is not None:
        title += f", exit {result.exit_code}"
    title += f", {duration(result.elapsed)}"
    table = Table(show_header=False, box=box.ROUNDED)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column()
    table.add_row("seeds read", f"{counts['seeds_read']:,}", "")
    table.add_row("notes written", f"{counts['notes_written']:,}", "")
    table.add_row("failed", f"{counts['failed']:,}", _reasons(counts.get("failed_by_reason")))
    table.add_row("rejected", f"{counts['rejected']:,}", _reasons(counts.get("rejected_by_reason")))
    if counts.get("duplicates"):
        table.add_row("duplicates", f"{counts['duplicates']:,}", "")
    if counts.get("skipped_fresh"):
        table.add_row("skipped, fresh", f"{counts['skipped_fresh']:,}", "")
    resume = "re-issued when the job resumes" if result.jobdir else ""
    table.add_row("pending", f"{counts['pending']:,}", resume if counts["pending"] else "")
    table.add_row("API calls", f"{result.calls:,}", by_code(result.calls_by_code))
    if result.billed is not None:
        table.add_row("billed", f"{result.billed:,}", "")
    if result.possibly_billed:
        table.add_row("possibly billed", f"{result.possibly_billed:,}", "timed out after sending")
    if result.retries:
        table.add_row("retries", f"{result.retries:,}", "")
    if result.summary_path:
        table.add_row("summary", "", result.summary_path)
    if result.failed_path and (counts["failed"] or counts["rejected"]):
        table.add_row("failed file", "", result.failed_path)
    return Group(Text(title, style="bold"), table)


def by_code(calls: Mapping[str, int]) -> str:
    return "  ".join(f"{code}: {count:,}" for code, count in calls.items())


def _reasons(by_reason: Mapping[str, int] | None) -> str:
    items: Iterable[tuple[str, int]] = (by_reason or {}).items()
    return _SEP.join(f"{why} {count:,}" for why, count in items)


def duration(seconds: float | None) -> str:
    """``0:07``, ``12:34``, ``1:02:03``."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
