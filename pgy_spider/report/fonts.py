"""Fonts for the charts: a CJK font for Chinese labels, and text the fonts can draw.

matplotlib draws a missing glyph as an empty box ("tofu") and warns "Glyph ... missing
from font(s)". Two guards keep that off the charts: a CJK font is looked up (and checked
to really cover Chinese), and every label is cut down to the characters the chosen fonts
cover (emoji, which no matplotlib font here draws, are dropped). Without a CJK font the
report still works: labels fall back to IDs and the command says what to install.
"""

from __future__ import annotations

import contextlib
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from pgy_spider.report.inputs import InputError

__all__ = ["INSTALL_HINT", "ChartFonts", "find_chart_fonts"]

BASE_FAMILY: Final = "DejaVu Sans"  # ships with matplotlib: Latin, digits, many symbols
# Tried in this order; the first that really has the probe's glyphs wins.
CJK_FAMILIES: Final = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "SimHei",
    "Heiti SC",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "Arial Unicode MS",
)
PROBE: Final = "小红书笔记点赞收藏评论粉丝增长"
INSTALL_HINT: Final = (
    "no font with Chinese characters for the charts: install one "
    "(Debian/Ubuntu: apt-get install fonts-wqy-zenhei, or fonts-noto-cjk) or pass --font PATH; "
    "until then chart labels show IDs instead of Chinese titles and names"
)
_FONT_LOGGER: Final = "matplotlib.font_manager"


@contextlib.contextmanager
def quiet_font_lookup() -> Iterator[None]:
    """Silence font_manager's log lines while looking up fonts.

    It logs "Failed to find font weight normal for WenQuanYi Zen Hei, now using 500" and
    the like: harmless substitutions, and on a command's stderr they read like errors.
    (matplotlib's "Glyph missing" warning is a ``warnings`` warning, not affected.)
    """
    logger = logging.getLogger(_FONT_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@lru_cache(maxsize=64)
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _covers(path: str, text: str = PROBE) -> bool:
    charmap = _charmap(path)
    return all(ord(ch) in charmap for ch in text)


@dataclass(frozen=True)
class ChartFonts:
    families: tuple[str, ...]  # matplotlib's font.family: per-glyph fallback in this order
    cjk_family: str | None
    cjk_path: str | None
    covered: frozenset[int]

    @property
    def has_cjk(self) -> bool:
        return self.cjk_family is not None

    def text(self, text: str | None, limit: int = 24) -> str:
        """*text* with only the characters the fonts can draw, on one line, at most *limit*."""
        if not text:
            return ""
        kept = "".join(ch if ord(ch) in self.covered else " " for ch in text)
        kept = " ".join(kept.split())
        return kept if len(kept) <= limit else kept[: limit - 1].rstrip() + "…"

    def label(self, text: str | None, fallback: str, limit: int = 24) -> str:
        """A chart label for *text*, or *fallback* when the fonts would lose some of its letters.

        Dropping an emoji is fine; a title missing its Chinese characters is not.
        """
        if text and all(
            ord(ch) in self.covered or not unicodedata.category(ch).startswith(("L", "N"))
            for ch in text
        ):
            shown = self.text(text, limit)
            if shown:
                return shown
        return fallback


def _find_family(family: str) -> str | None:
    from matplotlib import font_manager

    try:
        path = font_manager.findfont(
            font_manager.FontProperties(family=family), fallback_to_default=False
        )
    except ValueError:
        return None
    return str(path)


def _from_file(path: str) -> tuple[str, str]:
    """Register a font file given by the user; (family, path)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    try:
        with open(path, "rb"):
            pass
        family = str(FT2Font(path).family_name)
    except OSError as exc:
        raise InputError(f"--font {path!r} cannot be read ({exc.strerror or exc})") from None
    except (RuntimeError, ValueError):
        raise InputError(f"--font {path!r} is not a font file (TTF, OTF or TTC)") from None
    if not _covers(path):
        raise InputError(f"--font {path!r} ({family}) has no Chinese characters: pass a CJK font")
    font_manager.fontManager.addfont(path)
    return family, path


def _search() -> tuple[str, str] | None:
    from matplotlib import font_manager

    for family in CJK_FAMILIES:
        path = _find_family(family)
        if path and _covers(path):
            return family, path
    known = font_manager.fontManager.ttflist
    for entry in known:
        if _covers(entry.fname):
            return entry.name, entry.fname
    # A font installed after matplotlib built its font cache is not in ttflist yet.
    cached = {entry.fname for entry in known}
    for path in font_manager.findSystemFonts():
        if path not in cached and _covers(path):
            font_manager.fontManager.addfont(path)
            return _family_of(path), path
    return None


def _family_of(path: str) -> str:
    from matplotlib.ft2font import FT2Font

    return str(FT2Font(path).family_name)


def find_chart_fonts(font_path: str | None = None) -> ChartFonts:
    """The chart fonts: DejaVu Sans first, then a CJK font (``font_path``, else searched)."""
    with quiet_font_lookup():
        found = _from_file(font_path) if font_path else _search()
        base_path = _find_family(BASE_FAMILY)
    covered = _charmap(base_path) if base_path else frozenset(range(0x20, 0x7F))
    if found is None:
        return ChartFonts((BASE_FAMILY,), None, None, covered)
    family, path = found
    return ChartFonts((BASE_FAMILY, family), family, path, covered | _charmap(path))
