from __future__ import annotations

import time

import pytest

from pgy_spider import noteid
from pgy_spider.noteid import (
    int_to_note_id,
    note_id_to_int,
    parse_seed,
)
from pgy_spider.reasons import INVALID_ID, SHORT_LINK

NID = "65c0b3fc000000002c037a49"  # the API doc's sample note (created 2024-02-05)
NOW = 1_700_000_000.0  # 2023-11-14, a fixed clock for the time-bound tests


def test_reject_reasons_are_stable_strings() -> None:
    # They end up in reports and stats keys; renaming them breaks consumers.
    assert INVALID_ID == "invalid_id"
    assert SHORT_LINK == "short_link"


@pytest.mark.parametrize(
    "raw",
    [
        NID,
        NID.upper(),
        "65C0b3Fc000000002C037a49",
        f"  {NID}\t",
        f"{NID}\r\n",
        f"\u3000{NID}\u3000",  # full-width spaces from Chinese input methods
        f"\ufeff{NID}\u200b",  # BOM / zero-width space from copy-paste
    ],
)
def test_bare_ids(raw: str) -> None:
    assert parse_seed(raw) == (NID, None)


@pytest.mark.parametrize(
    "raw",
    [
        f"https://www.xiaohongshu.com/explore/{NID}",
        f"https://www.xiaohongshu.com/explore/{NID}?xsec_token=ABx-1=&xsec_source=pc_feed",
        f"http://www.xiaohongshu.com/explore/{NID}",
        f"www.xiaohongshu.com/explore/{NID}",
        f"xiaohongshu.com/explore/{NID}",
        f"https://xiaohongshu.com/explore/{NID}#comments",
        f"https://www.xiaohongshu.com/explore/{NID}/",
        f"https://www.xiaohongshu.com/explore/{NID.upper()}?a=b",
        f"HTTPS://WWW.XIAOHONGSHU.COM/explore/{NID}",
        f"https://www.xiaohongshu.com/discovery/item/{NID}",
        f"https://www.xiaohongshu.com/discovery/item/{NID}?app_platform=ios&share_from_user_hidden=true",
        f"xiaohongshu.com/discovery/item/{NID}",
        f"https://www.rednote.com/explore/{NID}",
        f"www.rednote.com/explore/{NID}?xsec_token=x",
        f"rednote.com/explore/{NID}",
        f"https://rednote.com/explore/{NID}#x",
        f"  https://www.xiaohongshu.com/explore/{NID}?xsec_token=x  ",
    ],
)
def test_note_urls(raw: str) -> None:
    assert parse_seed(raw) == (NID, None)


@pytest.mark.parametrize(
    "raw",
    [
        f"【春日穿搭】 😆 看看https://www.xiaohongshu.com/explore/{NID}?xsec_token=x 复制本条信息",
        f"快来看：www.rednote.com/explore/{NID}，打开App",
        f"64 小红书用户发布了一篇笔记 https://www.xiaohongshu.com/discovery/item/{NID}?s=1 看看",
        # A full URL wins over a short link: no redirect to follow, no extra call.
        f"http://xhslink.com/a/AbCd https://www.xiaohongshu.com/explore/{NID}",
    ],
)
def test_share_text_with_note_url(raw: str) -> None:
    assert parse_seed(raw) == (NID, None)


@pytest.mark.parametrize(
    "raw",
    [
        "http://xhslink.com/a/AbCdEf123",
        "https://xhslink.com/m/3xYz",
        "xhslink.com/a/AbCdEf123",
        "https://xhslink.cn/o/9aBc",
        "XHSLINK.COM/a/x",
        "【春日穿搭 - 小红书用户 | 小红书 - 你的生活指南】 😆 Ab1CdE 😆 http://xhslink.com/a/Ab1CdE，"
        "复制本条信息，打开【小红书】App查看精彩内容！",
        "63 小红书 http://xhslink.cn/a/Zz9 复制后打开",
    ],
)
def test_short_links(raw: str) -> None:
    assert parse_seed(raw) == (None, SHORT_LINK)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "5ff0e6410000000001008400"[:23],  # 23 hex
        NID + "0",  # 25 hex
        "65c0b3fc000000002c037a4g",  # non-hex
        "0x65c0b3fc000000002c037a4",
        f"{NID[:12]} {NID[12:]}",
        "hello world",
        # A user id, not a note id: fetching it can only fail.
        "https://www.xiaohongshu.com/user/profile/5ff0e6410000000001008400",
        "https://www.xiaohongshu.com/user/profile/5ff0e6410000000001008400?xsec_token=x",
        f"https://www.xiaohongshu.com/explore/{NID}0",  # 25-hex path segment
        f"https://www.xiaohongshu.com/explore/{NID[:23]}",
        "https://www.xiaohongshu.com/explore",
        "https://www.xiaohongshu.com/search_result?keyword=cat",
        f"https://evilxiaohongshu.com/explore/{NID}",
        f"ftp://www.xiaohongshu.com/explore/{NID}",
        f"https://www.example.com/explore/{NID}",
        f"https://fakexhslink.com/a/{NID}x",
    ],
)
def test_invalid(raw: str) -> None:
    assert parse_seed(raw) == (None, INVALID_ID)


def _id_at(ts: int) -> str:
    return f"{ts:08x}0000000000000000"


def test_time_lower_bound_is_2013() -> None:
    start_2013 = 1_356_998_400
    assert parse_seed(_id_at(start_2013), now=NOW) == (_id_at(start_2013), None)
    assert parse_seed(_id_at(start_2013 - 1), now=NOW) == (None, INVALID_ID)
    assert parse_seed("000000000000000000000000", now=NOW) == (None, INVALID_ID)


def test_time_upper_bound_is_two_days_ahead() -> None:
    limit = int(NOW) + 2 * 86_400
    assert parse_seed(_id_at(limit), now=NOW) == (_id_at(limit), None)
    assert parse_seed(_id_at(limit + 1), now=NOW) == (None, INVALID_ID)
    assert parse_seed("ffffffff0000000000000000", now=NOW) == (None, INVALID_ID)


def test_time_check_applies_to_urls_too() -> None:
    url = f"https://www.xiaohongshu.com/explore/{_id_at(1_000_000_000)}"
    assert parse_seed(url) == (None, INVALID_ID)


def test_check_time_false_skips_the_bounds() -> None:
    assert parse_seed("000000000000000000000000", check_time=False) == ("0" * 24, None)
    assert parse_seed("FFFFFFFF0000000000000000", check_time=False) == ("ffffffff" + "0" * 16, None)


def test_default_now_is_the_current_clock() -> None:
    now = int(time.time())
    assert parse_seed(_id_at(now))[0] == _id_at(now)
    assert parse_seed(_id_at(now + 86_400))[0] == _id_at(now + 86_400)
    assert parse_seed(_id_at(now + 3 * 86_400)) == (None, INVALID_ID)


def test_cached_upper_bound_follows_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [NOW]
    monkeypatch.setattr(noteid, "_clock", lambda: clock[0])
    # Both halves of the cache, so monkeypatch restores them as a consistent pair.
    monkeypatch.setattr(noteid, "_upper_valid_until", float("-inf"))
    monkeypatch.setattr(noteid, "_upper_hex", "")
    soon = _id_at(int(NOW) + 2 * 86_400 + 30)
    assert parse_seed(soon) == (None, INVALID_ID)
    clock[0] = NOW + 120  # past the cache lifetime: the bound moves on
    assert parse_seed(soon) == (soon, None)


@pytest.mark.parametrize("nid", [NID, "0" * 24, "f" * 24, "5ff0e6410000000001008400"])
def test_int_round_trip(nid: str) -> None:
    n = note_id_to_int(nid)
    assert isinstance(n, int)
    assert 0 <= n < 1 << 96
    assert int_to_note_id(n) == nid


def test_int_of_upper_case_id_round_trips_to_lower_case() -> None:
    assert int_to_note_id(note_id_to_int(NID.upper())) == NID


@pytest.mark.parametrize(
    "bad", ["", NID[:23], NID + "0", "0x" + NID[:22], "_" + NID[:23], " " + NID]
)
def test_note_id_to_int_rejects_non_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        note_id_to_int(bad)


@pytest.mark.parametrize("bad", [-1, 1 << 96])
def test_int_to_note_id_rejects_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError):
        int_to_note_id(bad)
