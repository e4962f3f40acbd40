"""The report's charts, drawn by matplotlib and embedded as SVG ``data:`` images.

No pyplot and no GUI backend: figures are plain ``matplotlib.figure.Figure`` objects
saved to SVG, which is headless and thread-safe. SVG keeps text sharp at any zoom and,
with text drawn as paths, needs no font in the browser. An SVG in an ``<img>`` cannot
run script, so whatever a note's title holds stays inert there too.

Every label goes through :class:`~pgy_spider.report.fonts.ChartFonts` first, so only
characters the fonts cover are drawn (matplotlib's "Glyph missing" warning is a bug).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from pgy_spider.report.fonts import ChartFonts, quiet_font_lookup

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

__all__ = ["bar_chart", "growth_chart", "svg_data_uri", "svg_text"]

BILLED: Final = "#d9822b"
NOT_BILLED: Final = "#8a9bb0"
FAILED: Final = "#c23b3b"
REJECTED: Final = "#7d6bb3"
ACCENT: Final = "#2b7bb9"
_WIDTH_IN: Final = 6.4
_BAR_IN: Final = 0.32


def _rc(fonts: ChartFonts) -> dict[RcKeyType, Any]:
    return {
        "font.family": list(fonts.families),
        "font.size": 9,
        "text.parse_math": False,  # a "$" in a title is a dollar sign, not TeX
        "svg.fonttype": "path",  # glyphs as paths: the browser needs no CJK font for charts
        "svg.hashsalt": "pgy-report",  # the same input gives the same file
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
        "timezone": "UTC",
    }


@contextmanager
def _figure(fonts: ChartFonts, height_in: float) -> Iterator[tuple[Figure, Axes]]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_rc(fonts)), quiet_font_lookup():
        fig = Figure(figsize=(_WIDTH_IN, height_in), layout="constrained")
        yield fig, fig.subplots()


def svg_text(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def bar_chart(
    fonts: ChartFonts,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    colors: Sequence[str] | None = None,
    xlabel: str = "",
    legend: Sequence[tuple[str, str]] = (),
) -> str:
    """A horizontal bar chart, largest first from the top; returns the SVG text.

    *labels* must already be chart-safe (:meth:`ChartFonts.label`).
    """
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    height = max(1.6, 0.9 + _BAR_IN * len(labels))
    with _figure(fonts, height) as (fig, ax):
        positions = list(range(len(labels)))
        bars = ax.barh(positions, values, color=list(colors) if colors else ACCENT)
        ax.set_yticks(positions, labels=list(labels))
        ax.invert_yaxis()
        ax.set_title(title, loc="left")
        if xlabel:
            ax.set_xlabel(xlabel)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=8)
        ax.margins(x=0.12)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if legend:
            ax.legend(
                handles=[Patch(color=color, label=name) for name, color in legend],
                loc="lower right",
                frameon=False,
            )
        return svg_text(fig)


def growth_chart(
    fonts: ChartFonts,
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[datetime, int]]]],
) -> str:
    """Engagement over time, one line per note; *series* = (chart-safe label, points)."""
    from matplotlib import dates as mdates

    with _figure(fonts, 3.4) as (fig, ax):
        for label, points in series:
            ax.plot(
                mdates.date2num([p[0] for p in points]),
                [p[1] for p in points],
                marker="o",
                ms=3,
                label=label,
            )
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_title(title, loc="left")
        ax.set_ylabel("engagement (likes + favourites + comments)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        return svg_text(fig)
