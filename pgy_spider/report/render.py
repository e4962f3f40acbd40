"""The HTML page: a Jinja2 template with autoescaping, written atomically.

Note text (titles, creator names, links) is written by strangers: autoescaping turns a
``<script>`` title into text, links are only kept when they are http(s), and the page's
Content-Security-Policy allows no script and no load from anywhere but ``data:`` images,
so even a mistake in the template could not make the page call out or run code.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pgy_spider.report.inputs import InputError

__all__ = ["render_page", "write_report"]

TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE = "report.html.j2"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _num_auto(value: float | None) -> str:
    """Whole numbers without decimals, others with one (a median of two notes is x.5)."""
    if value is None:
        return "–"
    return _num(value, 0 if float(value).is_integer() else 1)


def _when(value: datetime | None, with_time: bool = True) -> str:
    if value is None:
        return "–"
    return value.strftime("%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{seconds:.1f} s"


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every value is escaped unless the template says otherwise
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, num_auto=_num_auto, when=_when, duration=_duration)
    return env


def render_page(context: dict[str, Any]) -> str:
    return str(_environment().get_template(TEMPLATE).render(**context))


def write_report(html: str, path: str) -> None:
    """Write *html* to *path* atomically (a reader never sees half a page)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".report-", suffix=".html")
    except OSError as exc:
        raise InputError(f"cannot write the report to {path!r} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write the report to {path!r} ({exc.strerror})") from None
