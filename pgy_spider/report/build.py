"""The two reports end to end: a run (summary + feed) or the collected data (MongoDB).

``make_report`` is what ``scrapy pgy_report`` calls: it returns the warnings to show the
user and raises :class:`~pgy_spider.report.inputs.InputError` for anything the user can fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from pgy_spider.report import charts
from pgy_spider.report.aggregate import Collected, NotesAggregate, RunOutcome, run_outcome
from pgy_spider.report.fonts import INSTALL_HINT, ChartFonts, find_chart_fonts
from pgy_spider.report.growth import Growth, GrowthAggregate, series_of
from pgy_spider.report.inputs import InputError, iter_feed, load_summary, read_note_ids
from pgy_spider.report.model import parse_note
from pgy_spider.report.render import render_page, write_report

__all__ = ["ReportOptions", "make_report"]

TITLE: Final = "pgy-spider report"
# Display text only; what the crawl does with each code is pgy_spider.api's business.
CODE_MEANINGS: Final = {
    "0": "success",
    "100": "invalid token",
    "201": "not found",
    "301": "collection failed",
    "302": "rate limited",
    "303": "daily quota exceeded",
    "400": "invalid parameters",
    "500": "server error",
    "600": "permission denied",
    "601": "insufficient balance",
    "602": "spending cap reached",
}
BILLED_CODES: Final = frozenset({"0", "201"})
CHART_CREATORS: Final = 10
CHART_GROWTH: Final = 8


@dataclass
class ReportOptions:
    output: str
    top: int = 20
    summary: str | None = None
    feed: str | None = None
    mongo_uri: str | None = None  # set = the MongoDB report
    database: str = "pgy"
    collection: str = "notes"
    since: datetime | None = None
    ids_file: str | None = None
    font: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


# -- charts -----------------------------------------------------------------------


def _uri(svg: str) -> str:
    return charts.svg_data_uri(svg)


def run_charts(fonts: ChartFonts, run: RunOutcome) -> dict[str, str]:
    out: dict[str, str] = {}
    if run.calls_by_code:
        labels = [f"{code} {CODE_MEANINGS.get(code, '')}".strip() for code, _ in run.calls_by_code]
        out["calls"] = _uri(
            charts.bar_chart(
                fonts,
                "API calls by business code",
                labels,
                [n for _, n in run.calls_by_code],
                [
                    charts.BILLED if c in BILLED_CODES else charts.NOT_BILLED
                    for c, _ in run.calls_by_code
                ],
                xlabel="calls",
                legend=[("billed", charts.BILLED), ("not billed", charts.NOT_BILLED)],
            )
        )
    reasons = [("failed", r, n) for r, n in run.failed_by_reason] + [
        ("rejected", r, n) for r, n in run.rejected_by_reason
    ]
    if reasons:
        out["failures"] = _uri(
            charts.bar_chart(
                fonts,
                "Seeds that did not become notes, by reason",
                [f"{kind}: {reason}" for kind, reason, _ in reasons],
                [n for _, _, n in reasons],
                [charts.FAILED if kind == "failed" else charts.REJECTED for kind, _, _ in reasons],
                xlabel="seeds",
                legend=[
                    ("failed (called)", charts.FAILED),
                    ("rejected (never sent)", charts.REJECTED),
                ],
            )
        )
    return out


def data_charts(fonts: ChartFonts, data: Collected) -> dict[str, str]:
    creators = data.top_creators[:CHART_CREATORS]
    if not creators:
        return {}
    return {
        "creators": _uri(
            charts.bar_chart(
                fonts,
                "Top creators by median engagement per note",
                [fonts.label(c.name, fallback=c.user_id[:12]) for c in creators],
                [c.median for c in creators],
                xlabel="median engagement (likes + favourites + comments)",
            )
        )
    }


def growth_chart(fonts: ChartFonts, growth: Growth) -> dict[str, str]:
    lines = [
        (fonts.label(row.title, fallback=row.note_id, limit=22), growth.series[row.note_id])
        for row in growth.rows[:CHART_GROWTH]
        if len(growth.series.get(row.note_id, ())) >= 2
    ]
    if not lines:
        return {}
    return {
        "growth": _uri(
            charts.growth_chart(fonts, "Engagement over time, fastest-growing notes", lines)
        )
    }


# -- the two reports ------------------------------------------------------------------


def _context(options: ReportOptions, **values: Any) -> dict[str, Any]:
    return {
        "title": TITLE,
        "generated_at": options.now,
        "top": options.top,
        "code_meanings": CODE_MEANINGS,
        "billed_codes": BILLED_CODES,
        "run": None,
        "growth": None,
        **values,
    }


def _collect(rows: Iterable[dict[str, Any]], fetched_key: str = "fetchedAt") -> NotesAggregate:
    notes = NotesAggregate()
    for doc in rows:
        notes.add(parse_note(doc, fetched_key))
    return notes


def run_report(options: ReportOptions, fonts: ChartFonts) -> dict[str, Any]:
    assert options.summary is not None and options.feed is not None
    summary = load_summary(options.summary)
    feed = iter_feed(options.feed)  # checks the path now, before any work
    run = run_outcome(summary)
    data = _collect(feed).result(options.top)
    when = run.start_time.strftime("%Y-%m-%d %H:%M UTC") if run.start_time else "a run"
    return _context(
        options,
        subtitle=f"the run of {when}",
        sources=[("summary", options.summary), ("feed", options.feed)],
        run=run,
        data=data,
        data_heading="The notes of this run",
        charts={**run_charts(fonts, run), **data_charts(fonts, data)},
    )


def mongo_report(options: ReportOptions, fonts: ChartFonts) -> dict[str, Any]:
    from pymongo.errors import PyMongoError

    from pgy_spider import mongo
    from pgy_spider.report import mongo_source

    assert options.mongo_uri is not None
    uri = options.mongo_uri
    ids = read_note_ids(options.ids_file) if options.ids_file else None
    try:
        mongo.check_reachable(uri)
    except mongo.MongoUnavailable as exc:
        raise InputError(str(exc)) from None
    client = mongo.connect(uri)
    try:
        db = client[options.database]
        notes = _collect(
            mongo_source.read_notes(db, options.collection, options.since, ids), "lastFetchedAt"
        )
        kols = mongo_source.read_kols(db, notes.user_ids)
        data = notes.result(options.top, kols)
        in_scope = notes.note_ids
        growth_agg = GrowthAggregate()
        growth_agg.add_all(
            doc
            for doc in mongo_source.read_snapshots(
                db, options.since, in_scope if ids is not None else None
            )
            if doc.get("noteId") in in_scope
        )
        growth = growth_agg.result(options.top, notes.title)
        charted = {row.note_id for row in growth.rows[:CHART_GROWTH]}
        if charted:
            growth.series = series_of(mongo_source.read_snapshots(db, options.since, charted))
    except PyMongoError as exc:
        raise InputError(
            f"reading MongoDB at {mongo.mask_uri(uri)} failed: {mongo.short_error(exc, uri)}"
        ) from None
    finally:
        client.close()
    scope = []
    if options.since:
        scope.append(f"fetched since {options.since:%Y-%m-%d %H:%M UTC}")
    if ids is not None:
        scope.append(f"{len(ids):,} note ID(s) from {options.ids_file}")
    sources = [
        ("MongoDB", mongo.mask_uri(uri)),
        ("database", options.database),
        (
            "collections",
            f"{options.collection}, {mongo.METRICS_COLLECTION}, {mongo.KOLS_COLLECTION}",
        ),
        ("scope", "; ".join(scope) or "every stored note"),
    ]
    return _context(
        options,
        subtitle=f"the collected data in {options.database}.{options.collection}",
        sources=sources,
        data=data,
        data_heading="The collected notes",
        growth=growth,
        charts={**data_charts(fonts, data), **growth_chart(fonts, growth)},
    )


def make_report(options: ReportOptions) -> list[str]:
    """Build and write the report; returns warnings for the user (one line each)."""
    if options.top < 1:
        raise InputError(f"--top {options.top} must be at least 1")
    fonts = find_chart_fonts(options.font)
    warnings = [] if fonts.has_cjk else [INSTALL_HINT]
    build = mongo_report if options.mongo_uri else run_report
    context = build(options, fonts)
    context["warnings"] = warnings
    write_report(render_page(context), options.output)
    return warnings
