"""The report in a real headless Chromium: it loads nothing, logs no error, shows everything.

Opened from ``file://`` as a user would open it; the performance log lists every request
the page made, the console log every error (a blocked load or script included).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from pgy_spider.report.build import ReportOptions, make_report
from tests.support.browser import PageLoad, chromium, draw_glyph, image_spread, load_page
from tests.support.report import EMOJI_TITLE, EVIL_CREATOR, SCRIPT_TITLE, write_known_run


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as browser:
        yield browser


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("browser-report")
    summary, feed = write_known_run(workdir)
    out = workdir / "report.html"
    assert make_report(ReportOptions(output=str(out), summary=str(summary), feed=str(feed))) == []
    return out


@pytest.fixture(scope="module")
def loaded(driver: Any, report_page: Path) -> PageLoad:
    return load_page(driver, report_page.as_uri())


def test_the_checks_see_errors_and_requests(driver: Any, tmp_path: Path) -> None:
    # A page that does make a request and fails: both must show, or the checks below prove nothing.
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png"><p>x</p>', encoding="utf-8")
    page = load_page(driver, bad.as_uri())
    assert "http://127.0.0.1:9/x.png" in page.network_requests
    assert any("127.0.0.1:9/x.png" in message for message in page.console_errors)


def test_no_console_error(loaded: PageLoad) -> None:
    assert loaded.console_errors == []


def test_no_network_request(loaded: PageLoad, report_page: Path) -> None:
    assert report_page.as_uri() in loaded.requests  # the log did record the page itself
    assert loaded.network_requests == []


def test_screenshot_is_not_blank(loaded: PageLoad, tmp_path: Path) -> None:
    stddev, colours = image_spread(loaded.screenshot)
    (tmp_path / "report.png").write_bytes(loaded.screenshot)  # kept for a look on failure
    assert stddev > 20, f"screenshot looks blank (grey stddev {stddev:.1f})"
    assert colours > 200


def test_content_is_laid_out_and_charts_drawn(driver: Any, loaded: PageLoad) -> None:
    assert driver.execute_script("return document.body.scrollHeight") > 2000
    sizes = driver.execute_script(
        "return [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(sizes) == 3 and all(ok and w > 300 and h > 100 for ok, w, h in sizes), sizes


def test_untrusted_text_shows_as_text_and_runs_nothing(driver: Any, loaded: PageLoad) -> None:
    table = driver.find_element(By.ID, "top-notes-engagement").text
    assert SCRIPT_TITLE in table and EMOJI_TITLE in table
    assert EVIL_CREATOR in driver.find_element(By.ID, "top-creators-engagement").text
    assert driver.find_elements(By.CSS_SELECTOR, "script, iframe, object, embed") == []
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - reading it is the check
    links = driver.execute_script("return [...document.links].map(a => a.protocol)")
    assert links and set(links) == {"https:"}


@pytest.mark.parametrize(("first", "second"), [("小", "红"), ("书", "赞"), ("🌸", "🔥")])
def test_chinese_and_emoji_render_as_real_glyphs(
    driver: Any, loaded: PageLoad, first: str, second: str
) -> None:
    # Tofu: every missing character is the same box, so two different ones would look alike.
    one, ink_one = draw_glyph(driver, first)
    two, ink_two = draw_glyph(driver, second)
    assert ink_one > 50 and ink_two > 50, json.dumps([ink_one, ink_two])
    assert one != two
