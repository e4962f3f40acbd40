"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by selenium.

No Selenium Manager: the driver is given by path, so nothing is downloaded (there is no
network here but package registries). ``make test`` installs both packages when missing;
if they are still missing the tests *fail* saying so, they never skip.

Chromium runs as root here, hence ``--no-sandbox``; the other flags stop it from calling
home (component updates, sync, background networking), so that the only requests the
performance log can show are the page's own.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1280, 2400)
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)


@dataclass
class PageLoad:
    """What loading one page did: console messages, requests made, a screenshot."""

    url: str
    console: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""

    @property
    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.console if entry.get("level") == "SEVERE"]

    @property
    def network_requests(self) -> list[str]:
        """Requests that would leave the machine's files (anything but file: and data:)."""
        return [url for url in self.requests if not url.startswith(("file:", "data:"))]


def _require(path: Path, package: str) -> None:
    if not path.exists():
        pytest.fail(
            f"{path} is missing: install Debian's {package} (`make test` does: "
            "apt-get install chromium chromium-driver)",
            pytrace=False,
        )


@contextlib.contextmanager
def chromium(user_data_dir: Path) -> Iterator[Any]:
    """A selenium WebDriver for headless Chromium with a fresh profile in *user_data_dir*."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _require(CHROMIUM, "chromium")
    _require(CHROMEDRIVER, "chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(user_data_dir, ignore_errors=True)


def _requested_urls(performance_log: list[dict[str, Any]]) -> list[str]:
    urls: list[str] = []
    for entry in performance_log:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def load_page(driver: Any, url: str) -> PageLoad:
    """Open *url* and collect its console and network activity and a full-window screenshot."""
    driver.get_log("browser")  # drop whatever an earlier page left
    driver.get_log("performance")
    driver.get(url)
    driver.execute_script("return document.readyState")  # waits for the load to finish
    page = PageLoad(url)
    page.screenshot = driver.get_screenshot_as_png()
    page.console = driver.get_log("browser")
    page.requests = _requested_urls(driver.get_log("performance"))
    return page


def image_spread(png: bytes) -> tuple[float, int]:
    """(standard deviation of the grey levels, number of distinct colours) of a PNG."""
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
        grey = rgb.convert("L")
        stddev = float(ImageStat.Stat(grey).stddev[0])
        colours = rgb.getcolors(maxcolors=1 << 24) or []
        return stddev, len(colours)


# Draws one character on a canvas with the page's own font stack; two different characters
# drawing the same pixels means both are the "missing glyph" box (tofu).
GLYPH_JS = """
const [text, family] = arguments;
const canvas = document.createElement('canvas');
canvas.width = 96; canvas.height = 96;
const ctx = canvas.getContext('2d');
ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, 96, 96);
ctx.fillStyle = '#000'; ctx.font = '64px ' + family; ctx.textBaseline = 'top';
ctx.fillText(text, 8, 8);
const data = ctx.getImageData(0, 0, 96, 96).data;
let ink = 0;
for (let i = 0; i < data.length; i += 4) { if (data[i] < 128 || data[i + 2] < 128) ink++; }
return [canvas.toDataURL(), ink];
"""


def draw_glyph(driver: Any, text: str) -> tuple[str, int]:
    """(pixels as a data URL, count of inked pixels) of *text* in the body's font-family."""
    family = driver.execute_script("return getComputedStyle(document.body).fontFamily")
    pixels, ink = driver.execute_script(GLYPH_JS, text, family)
    return str(pixels), int(ink)
