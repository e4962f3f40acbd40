"""Charts: a real CJK font draws the Chinese labels (no tofu boxes), nothing warns.

pytest runs with ``filterwarnings = error``, so matplotlib's "Glyph ... missing from
font(s)" warning fails any test that draws a character no chosen font has.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from pathlib import Path

import matplotlib
import pytest
from matplotlib.ft2font import FT2Font

from pgy_spider.report import charts
from pgy_spider.report.fonts import BASE_FAMILY, ChartFonts, find_chart_fonts
from pgy_spider.report.inputs import InputError
from tests.support.report import T0

CJK_TEXT = "小红书点赞"
DEJAVU = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


@pytest.fixture(scope="module")
def fonts() -> ChartFonts:
    found = find_chart_fonts()
    assert found.has_cjk, "no CJK font found: `make test` installs fonts-wqy-zenhei"
    return found


def glyph_paths(svg: str, font_path: str, text: str) -> dict[str, str]:
    """The outline matplotlib drew for each character of *text* from *font_path*.

    With ``svg.fonttype = path`` every glyph is defined once as ``<path id="<PostScript
    name>-<glyph index in hex>" d="...">``; a character the font lacks gets glyph 0,
    the box every missing character shares.
    """
    font = FT2Font(font_path)
    defs = dict(re.findall(r'<path id="([^"]+)" d="([^"]*)"', svg))
    outlines: dict[str, str] = {}
    for ch in text:
        index = font.get_char_index(ord(ch))
        assert index != 0, f"{font.family_name} has no glyph for {ch!r}"
        glyph_id = f"{font.postscript_name}-{index:x}"
        assert glyph_id in defs, f"{ch!r} was not drawn with {font.family_name} ({glyph_id})"
        outlines[ch] = defs[glyph_id]
    return outlines


def test_a_cjk_font_that_really_covers_chinese_is_chosen(fonts: ChartFonts) -> None:
    assert fonts.families[0] == BASE_FAMILY and fonts.cjk_family in fonts.families
    assert fonts.cjk_path is not None
    charmap = FT2Font(fonts.cjk_path).get_charmap()
    assert all(ord(ch) in charmap for ch in CJK_TEXT + "阿花增长收藏")


def test_chinese_labels_are_drawn_as_real_distinct_glyphs(fonts: ChartFonts) -> None:
    label = fonts.label(CJK_TEXT, fallback="x")
    assert label == CJK_TEXT
    svg = charts.bar_chart(fonts, "chart", [label, "abc"], [3, 1])
    assert fonts.cjk_path is not None
    outlines = glyph_paths(svg, fonts.cjk_path, CJK_TEXT)
    # Tofu would be one and the same box for every character.
    assert len(set(outlines.values())) == len(CJK_TEXT)
    assert all(len(d) > 40 for d in outlines.values())


def test_growth_chart_legend_in_chinese(fonts: ChartFonts) -> None:
    points = [(T0, 10), (T0 + timedelta(days=1), 30), (T0 + timedelta(days=3), 70)]
    svg = charts.growth_chart(fonts, "growth", [(fonts.label("春日穿搭", "x"), points)])
    assert fonts.cjk_path is not None
    assert len(set(glyph_paths(svg, fonts.cjk_path, "春日穿搭").values())) == 4


def test_emoji_are_dropped_from_labels_not_drawn_as_boxes(fonts: ChartFonts) -> None:
    assert ord("🧪") not in fonts.covered  # no chart font here draws it
    label = fonts.label("实验🧪笔记", fallback="x")
    assert label == "实验 笔记"
    charts.bar_chart(fonts, "chart", [label], [1])  # would warn "Glyph ... missing"


def test_a_missing_glyph_fails_under_pytest(fonts: ChartFonts) -> None:
    # The chart code does not silence matplotlib's warning: drawn unfiltered, it is an error.
    with pytest.raises(UserWarning, match=r"Glyph .* missing from font"):
        charts.bar_chart(fonts, "chart", ["🧪"], [1])


def test_dollar_signs_are_text_not_mathtext(fonts: ChartFonts) -> None:
    # As TeX, "$100 到 $" would be math, drawn in STIX with dummy boxes for the Chinese.
    label = fonts.label("省$100 到 $200", "x")
    svg = charts.bar_chart(fonts, "chart", [label], [1])
    assert fonts.cjk_path is not None
    assert len(set(glyph_paths(svg, fonts.cjk_path, "省到").values())) == 2
    assert "STIX" not in svg


def test_without_a_cjk_font_labels_fall_back_to_ids() -> None:
    latin = ChartFonts((BASE_FAMILY,), None, None, frozenset(range(0x20, 0x7F)))
    assert not latin.has_cjk
    assert latin.label("阿花✨", fallback="62060e8c0000") == "62060e8c0000"
    assert latin.label("Hello✨ world", fallback="id") == "Hello world"
    assert latin.label("", fallback="id") == "id"


def test_font_option(fonts: ChartFonts) -> None:
    assert fonts.cjk_path is not None
    chosen = find_chart_fonts(fonts.cjk_path)
    assert chosen.cjk_path == fonts.cjk_path and chosen.cjk_family == fonts.cjk_family
    with pytest.raises(InputError, match="has no Chinese characters"):
        find_chart_fonts(str(DEJAVU))
    with pytest.raises(InputError, match="cannot be read"):
        find_chart_fonts("/nonexistent/font.ttf")


def test_charts_are_svg_data_uris_with_no_reference_outside(fonts: ChartFonts) -> None:
    svg = charts.bar_chart(fonts, "chart", ["a", "b"], [2, 1])
    uri = charts.svg_data_uri(svg)
    assert uri.startswith("data:image/svg+xml;base64,")
    decoded = base64.b64decode(uri.split(",", 1)[1]).decode()
    assert decoded == svg
    # Only the XML namespace names are URLs; nothing is linked or loaded.
    hrefs = re.findall(r'(?:xlink:)?href="([^"]+)"', svg)
    assert all(h.startswith("#") for h in hrefs)
    assert "<image" not in svg and "<script" not in svg
    # The same input gives the same file (no date, fixed ids).
    assert charts.bar_chart(fonts, "chart", ["a", "b"], [2, 1]) == svg
