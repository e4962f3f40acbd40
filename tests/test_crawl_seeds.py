"""End-to-end: every seed format and shape a user holds, through a real crawl.

Each test checks three things: the notes that arrive, the rejected seeds reported in the
failed file (raw text, reason, no note ID, no code), and that rejected seeds and CSV/JSONL
headers never reach the (paid) API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.accounting import assert_accounted
from tests.support.crawl import CrawlResult, run_crawl
from tests.support.ids import make_note_id, make_note_ids
from tests.support.simulator import SimulatorClient


def _assert_rejections(result: CrawlResult, expected: set[tuple[str, str]]) -> None:
    """The failed file holds exactly these (seed, reason) rejections, shaped as documented."""
    rejected = [f for f in result.failed if "seed" in f]
    assert {(f["seed"], f["reason"]) for f in rejected} == expected
    assert len(rejected) == len(expected)
    for record in rejected:
        assert record["noteId"] is None
        assert record["code"] is None


def _assert_clean_run(result: CrawlResult, notes: list[str], sim: SimulatorClient) -> None:
    assert result.returncode == 0, result
    assert sorted(n["noteId"] for n in result.notes) == sorted(notes)
    stats: dict[str, Any] = sim.stats()
    # One call per distinct valid ID, and nothing else reached the API.
    assert stats["by_note"] == dict.fromkeys(notes, 1)
    assert stats["calls"] == len(notes)
    summary = assert_accounted(result)
    assert summary["finish_reason"] == "finished"
    assert summary["notes_written"] == len(notes)


def test_csv_note_id_column_is_used_and_header_skipped(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    a, b, c = make_note_ids(3)
    (tmp_path / "seeds.csv").write_text(
        "title,noteId,likes\n"
        f"穿搭,{a},12\n"
        f'"a, quoted title",{b.upper()},3\n'
        f"链接,https://www.xiaohongshu.com/explore/{c}?xsec_token=x,0\n"
        f"{make_note_id(50)},not-a-note,1\n",  # an ID in another column is not the seed
        encoding="utf-8",
    )
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.csv", sim_url=sim.url)
    _assert_clean_run(result, [a, b, c], sim)
    _assert_rejections(result, {("not-a-note", "invalid_id")})
    # The header row is not a seed.
    assert result.summary["seeds_read"] == 4


def test_csv_without_known_column_reads_first_column(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b = make_note_ids(2)
    (tmp_path / "seeds.csv").write_text(
        f"链接,备注\n{a},第一条\n{b},第二条\nuser123,bad\n", encoding="utf-8"
    )
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.csv", sim_url=sim.url)
    _assert_clean_run(result, [a, b], sim)
    _assert_rejections(result, {("user123", "invalid_id")})
    assert result.summary["seeds_read"] == 3  # "链接" is a header, not a rejected seed


def test_csv_without_header_keeps_first_row(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b = make_note_ids(2)
    (tmp_path / "seeds.csv").write_text(f"{a},x\n{b},y\n", encoding="utf-8")
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.csv", sim_url=sim.url)
    _assert_clean_run(result, [a, b], sim)
    assert result.summary["seeds_read"] == 2
    assert result.failed == []


def test_jsonl_note_id_key_and_non_objects_rejected(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b, c = make_note_ids(3)
    lines = [
        f'{{"noteId": "{a}", "title": "笔记"}}',
        f'{{"url": "https://www.xiaohongshu.com/discovery/item/{b}"}}',
        f'{{"note_id": "{c}"}}',
        f'["{make_note_id(40)}"]',  # an array is not an object: rejected, not guessed
        f'"{make_note_id(41)}"',  # a bare JSON string too
        "42",
        "{broken json",
        '{"other": "x"}',
    ]
    (tmp_path / "seeds.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.jsonl", sim_url=sim.url)
    _assert_clean_run(result, [a, b, c], sim)
    _assert_rejections(result, {(line, "invalid_id") for line in lines[3:]})
    assert result.summary["rejected_by_reason"] == {"invalid_id": 5}


def test_text_with_bom_and_crlf(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b, c = make_note_ids(3)
    body = f"{a}\r\n# comment\r\n\r\n{b}\r\nnope\r\n{c}\r\n"
    (tmp_path / "seeds.txt").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url)
    _assert_clean_run(result, [a, b, c], sim)
    # No stray "\r" or BOM in the reported raw seed.
    _assert_rejections(result, {("nope", "invalid_id")})
    assert result.summary["seeds_read"] == 4


def test_bom_and_crlf_csv(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b = make_note_ids(2)
    body = f"noteId,备注\r\n{a},一\r\n{b},二\r\n"
    (tmp_path / "seeds.csv").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.csv", sim_url=sim.url)
    # The BOM must not hide the "noteId" header (which would then be a rejected seed).
    _assert_clean_run(result, [a, b], sim)
    assert result.failed == []
    assert result.summary["seeds_read"] == 2


def test_several_files_and_cross_file_duplicates(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b, c = make_note_ids(3)
    (tmp_path / "a.txt").write_text(f"{a}\n{b}\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text(f"noteId\n{b}\n{c}\n", encoding="utf-8")
    result = run_crawl(tmp_path, "-a", "ids_file=a.txt, b.csv", sim_url=sim.url)
    _assert_clean_run(result, [a, b, c], sim)
    summary = result.summary
    assert summary["seeds_read"] == 4
    assert summary["duplicates"] == 1


def test_inline_ids_and_urls(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b, c = make_note_ids(3)
    ids = ",".join(
        [
            a,
            f"https://www.xiaohongshu.com/explore/{b}?xsec_token=AB1&xsec_source=pc_feed",
            f"https://www.rednote.com/explore/{c}",
            "https://www.xiaohongshu.com/user/profile/5f1c2d3e000000000101abcd",
            a.upper(),
        ]
    )
    result = run_crawl(tmp_path, "-a", f"ids={ids}", sim_url=sim.url)
    _assert_clean_run(result, [a, b, c], sim)
    _assert_rejections(
        result,
        {("https://www.xiaohongshu.com/user/profile/5f1c2d3e000000000101abcd", "invalid_id")},
    )
    assert result.summary["duplicates"] == 1


def test_inline_and_file_seeds_together(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b = make_note_ids(2)
    (tmp_path / "s.txt").write_text(f"{b}\n{a}\n", encoding="utf-8")
    result = run_crawl(tmp_path, "-a", f"ids={a}", "-a", "ids_file=s.txt", sim_url=sim.url)
    _assert_clean_run(result, [a, b], sim)
    assert result.summary["seeds_read"] == 3
    assert result.summary["duplicates"] == 1


def test_url_shapes_share_text_and_case(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b, c, d, e = make_note_ids(5)
    profile = "https://www.xiaohongshu.com/user/profile/5f1c2d3e000000000101abcd?xsec_token=q"
    short = "【小红书】看看这篇 http://xhslink.com/a/AbCdEf 复制本条信息"
    lines = [
        f"https://www.rednote.com/explore/{a}",
        f"www.rednote.com/explore/{b}",
        f"【穿搭分享】快来看看吧😍 https://www.xiaohongshu.com/explore/{c}"
        "?xsec_token=AB2=&xsec_source=app_share 复制后打开【小红书】查看笔记！",
        f"https://www.xiaohongshu.com/discovery/item/{d}?source=webshare",
        e.upper(),
        profile,
        short,
        "5f1c2d3e000000000101abc",  # 23 hex digits
        "00000000000000000000abcd",  # a creation time before Xiaohongshu existed
    ]
    (tmp_path / "seeds.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url)
    _assert_clean_run(result, [a, b, c, d, e], sim)
    # The upper-case ID is requested (and written) in its lower-case form.
    assert e in {n["noteId"] for n in result.notes}
    _assert_rejections(
        result,
        {
            (profile, "invalid_id"),
            (short, "short_link"),
            ("5f1c2d3e000000000101abc", "invalid_id"),
            ("00000000000000000000abcd", "invalid_id"),
        },
    )
    summary = result.summary
    assert summary["seeds_read"] == 9
    assert summary["rejected"] == 4
    assert summary["rejected_by_reason"] == {"invalid_id": 3, "short_link": 1}


def test_only_rejected_seeds_make_no_call(tmp_path: Path, sim: SimulatorClient) -> None:
    (tmp_path / "seeds.txt").write_text(
        "https://www.xiaohongshu.com/user/profile/5f1c2d3e000000000101abcd\nhello\n",
        encoding="utf-8",
    )
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url)
    assert result.returncode == 0, result
    assert sim.stats()["calls"] == 0
    assert result.notes == []
    assert assert_accounted(result)["rejected"] == 2
    assert len(result.failed) == 2


def test_time_check_rejects_future_ids_and_can_be_disabled(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    import time

    future = make_note_id(1, ts=int(time.time()) + 10 * 86400)
    ancient = "00000000000000000000abcd"
    good = make_note_id(0)
    args = ("-a", f"ids={good},{future},{ancient}")
    result = run_crawl(tmp_path / "on", *args, sim_url=sim.url)
    _assert_clean_run(result, [good], sim)
    _assert_rejections(result, {(future, "invalid_id"), (ancient, "invalid_id")})

    sim.reset()
    result = run_crawl(
        tmp_path / "off", *args, sim_url=sim.url, settings={"PGY_ID_TIME_CHECK": False}
    )
    _assert_clean_run(result, [good, future, ancient], sim)
    assert result.failed == []


@pytest.mark.parametrize("length", [5000, 200 * 1024])  # the second is over the 64 KiB line cap
def test_overlong_seed_is_reported_shortened(
    tmp_path: Path, sim: SimulatorClient, length: int
) -> None:
    good = make_note_id(0)
    junk = "x" * length
    (tmp_path / "seeds.txt").write_text(f"{junk}\n{good}\n", encoding="utf-8")
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url)
    _assert_clean_run(result, [good], sim)
    (record,) = result.failed
    assert record["reason"] == "invalid_id"
    assert record["seed"] == "x" * 300


def test_ids_url(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b = make_note_ids(2, start=70)
    name = f"{tmp_path.name}-seeds.csv"
    (sim.seeds_dir / name).write_text(f"noteId\n{a}\nbad\n{b}\n", encoding="utf-8")
    result = run_crawl(tmp_path, "-a", f"ids_url={sim.url}/seeds/{name}", sim_url=sim.url)
    _assert_clean_run(result, [a, b], sim)
    _assert_rejections(result, {("bad", "invalid_id")})


def test_ids_url_not_found_stops_before_any_call(tmp_path: Path, sim: SimulatorClient) -> None:
    result = run_crawl(tmp_path, "-a", f"ids_url={sim.url}/seeds/no-such-file.txt", sim_url=sim.url)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "404" in result.stderr
    assert sim.stats()["calls"] == 0
    summary = result.summary
    assert summary["finish_reason"] == "pgy_seed_error"
    assert summary["seeds_read"] == 0
    assert result.notes == []


def test_gbk_share_text(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b = make_note_ids(2)
    text = f"【小红书】好物分享 https://www.xiaohongshu.com/explore/{a} 复制打开\n{b}\n乱码行\n"
    (tmp_path / "seeds.txt").write_bytes(text.encode("gbk"))
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url)
    _assert_clean_run(result, [a, b], sim)
    # The rejected line is reported readable, decoded from GBK.
    _assert_rejections(result, {("乱码行", "invalid_id")})
