"""``scrapy pgy_report`` as users run it: the page's numbers, escaping, exit statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from parsel import Selector

from tests.support.crawl import REPO, crawl_env, modules_loaded_by
from tests.support.report import (
    EMOJI_TITLE,
    EVIL_CREATOR,
    EXPECTED_TOP_NOTES,
    KNOWN_SUMMARY,
    MARKUP_TITLE,
    SCRIPT_TITLE,
    USER_A,
    USER_B,
    USER_C,
    USER_D,
    cells,
    known_notes,
    noise,
    pgy_report,
    write_json_array,
    write_known_run,
    write_summary,
)


@pytest.fixture(scope="module")
def report(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The known run's report, written with the default paths."""
    workdir = tmp_path_factory.mktemp("report")
    write_known_run(workdir)
    return pgy_report(workdir), workdir


@pytest.fixture(scope="module")
def page(report: tuple[subprocess.CompletedProcess[str], Path]) -> Selector:
    proc, workdir = report
    assert proc.returncode == 0, proc.stderr
    return Selector(text=(workdir / "output" / "report.html").read_text(encoding="utf-8"))


def test_defaults_read_the_default_outputs_and_print_the_path(report) -> None:
    proc, workdir = report
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "output/report.html"
    assert (workdir / "output" / "report.html").stat().st_size > 10_000
    assert noise(proc.stderr) == []  # no warning (a CJK font is installed), no log lines


def test_run_figures(page: Selector) -> None:
    figure = {
        key: page.css(f"#run-{key}::text").get()
        for key in (
            "notes",
            "failed",
            "rejected",
            "duplicates",
            "pending",
            "billed",
            "calls",
            "retries",
            "duration",
            "rate",
            "possibly-billed",
        )
    }
    assert figure == {
        "notes": "9",
        "failed": "4",
        "rejected": "3",
        "duplicates": "2",
        "pending": "2",
        "billed": "12",
        "calls": "19",
        "retries": "6",
        "duration": "2 min 00 s",
        "rate": "4.5",
        "possibly-billed": "1",
    }
    assert cells(page, "calls-by-code") == [
        ["0", "success", "9", "yes"],
        ["201", "not found", "3", "yes"],
        ["301", "collection failed", "6", "no"],
        ["500", "server error", "1", "no"],
    ]
    assert cells(page, "failures-by-reason") == [
        ["failed", "not_found", "3"],
        ["failed", "retries_exhausted", "1"],
        ["rejected", "invalid_id", "2"],
        ["rejected", "short_link", "1"],
    ]
    charts = page.css("#run img::attr(src)").getall()
    assert len(charts) == 2 and all(src.startswith("data:image/svg+xml;base64,") for src in charts)


def test_data_figures(page: Selector) -> None:
    got = {
        key: page.css(f"#data-{key}::text").get()
        for key in ("notes", "creators", "picture", "video", "all-zero")
    }
    assert got == {"notes": "9", "creators": "4", "picture": "6", "video": "3", "all-zero": "1"}
    top = cells(page, "top-notes-engagement")
    assert [row[7] for row in top] == ["1,300", "600", "440", "160", "50", "40", "20", "0"]
    links = page.css("table#top-notes-engagement a::attr(href)").getall()
    assert [link.rsplit("/", 1)[1] for link in links] == EXPECTED_TOP_NOTES
    per_fans = cells(page, "top-notes-per-fans")
    assert [row[9] for row in per_fans] == ["300.0", "130.0", "44.0", "40.0", "20.0", "16.0", "0.0"]
    creators = cells(page, "top-creators-engagement")
    assert [(row[1], row[4], row[5]) for row in creators] == [
        (f"阿花✨{USER_A}", "440", "1,900"),
        (f"小C{USER_C}", "320", "640"),
        (f"{EVIL_CREATOR}{USER_B}", "50", "50"),
        (f"大D{USER_D}", "10", "20"),
    ]
    costs = cells(page, "cost-per-engagement")
    assert [(row[2], row[4], row[6], row[7]) for row in costs] == [
        ("video", "¥20,000", "1,300", "¥15.38"),
        ("picture", "¥5,000", "300", "¥16.67"),
        ("video", "¥3,000", "20", "¥150.00"),
    ]
    left_out = " ".join(page.css("#cost-left-out::text").get("").split())
    assert left_out == (
        "1 creator(s) with 0 or unknown fans, 1 without a picture price, "
        "1 without a video price, 1 with a median engagement of 0"
    )
    assert page.css("#growth").get() is None  # a run has no fetch history


def test_untrusted_text_is_shown_as_text(report, page: Selector) -> None:
    _, workdir = report
    html = (workdir / "output" / "report.html").read_text(encoding="utf-8")
    titles = page.css("table#top-notes-engagement td.t a bdi::text").getall()
    assert SCRIPT_TITLE in titles and EMOJI_TITLE in titles and MARKUP_TITLE in titles
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<b>bold" not in html and "&lt;b&gt;bold" in html
    assert "<img src=x" not in html and not page.css("img[onerror]")
    assert "javascript:" not in html.lower()
    assert page.css("img::attr(src)").getall() and all(
        src.startswith("data:") for src in page.css("img::attr(src)").getall()
    )
    assert "default-src 'none'" in page.css(
        'meta[http-equiv="Content-Security-Policy"]::attr(content)'
    ).get("")


def test_json_array_feed_and_explicit_paths(tmp_path: Path, page: Selector) -> None:
    summary = write_summary(tmp_path / "run" / "s.json", {**KNOWN_SUMMARY, "billed": 15})
    feed = write_json_array(tmp_path / "run" / "notes.json", known_notes())
    out = tmp_path / "reports" / "r.html"
    proc = pgy_report(
        tmp_path, "--summary", str(summary), "--feed", str(feed), "-o", str(out), "--top", "3"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    mine = Selector(text=out.read_text(encoding="utf-8"))
    assert mine.css("#run-billed::text").get() == "15"  # the summary's own count wins
    assert cells(mine, "top-notes-engagement") == cells(page, "top-notes-engagement")[:3]
    assert len(cells(mine, "top-creators-engagement")) == 3
    assert mine.css("#top-notes h2::text").get() == "Top 3 notes by engagement"


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            "nothing",
            [],
            "error: summary 'output/summary.json' does not exist: "
            "run a crawl first, or pass --summary PATH",
        ),
        (
            "no-feed",
            [],
            "error: feed 'output/notes.jsonl' does not exist: "
            "run a crawl first, or pass --feed PATH",
        ),
        (
            "run",
            ["--feed", "output"],
            "error: feed 'output' is a directory: pass the path of a file inside it",
        ),
        ("bad-line", [], "error: feed 'output/notes.jsonl' line 3 is not valid JSON"),
        (
            "csv",
            ["--feed", "output/notes.csv"],
            "error: feed 'output/notes.csv' is neither JSON lines nor a JSON array",
        ),
        ("bad-summary", [], "error: summary 'output/summary.json' is not valid JSON"),
        (
            "run",
            ["--since", "2026-01-01"],
            "error: --since and --ids-file scope the database: add --mongo",
        ),
        ("run", ["--mongo"], "error: --mongo needs MONGO_URI"),
        ("run", ["--top", "0"], "error: --top 0 must be at least 1"),
        ("run", ["--font", "/nonexistent.ttf"], "error: --font '/nonexistent.ttf' cannot be read"),
        (
            "run",
            ["-o", "output/summary.json/r.html"],
            "error: cannot write the report to 'output/summary.json/r.html'",
        ),
    ],
)
def test_user_errors_exit_2_with_one_line(
    tmp_path: Path, setup: str, args: list[str], message: str
) -> None:
    out = tmp_path / "output"
    if setup != "nothing":
        write_known_run(tmp_path)
    if setup == "no-feed":
        (out / "notes.jsonl").unlink()
    if setup == "bad-line":
        lines = (out / "notes.jsonl").read_bytes().split(b"\n")
        lines[2] = lines[2][:50]
        (out / "notes.jsonl").write_bytes(b"\n".join(lines))
    if setup == "csv":
        (out / "notes.csv").write_text(
            "\ufeffnoteId,title\n65c0b3fc000000002c037a49,x\n", encoding="utf-8"
        )
    if setup == "bad-summary":
        (out / "summary.json").write_text('{"notes_written": 3,', encoding="utf-8")
    proc = pgy_report(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(message), proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not (out / "report.html").exists()


def test_the_command_module_imports_nothing_heavy() -> None:
    # Scrapy imports every command module for every `scrapy ...`: start-up must not pay
    # for matplotlib, Jinja2, pymongo or the report itself.
    heavy = ("matplotlib", "jinja2", "pymongo", "ijson", "numpy", "pgy_spider.report")
    assert modules_loaded_by("pgy_spider.commands.pgy_report", heavy) == []


def test_listed_among_scrapy_commands() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy"],
        cwd=REPO,
        env=crawl_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert "pgy_report" in proc.stdout
