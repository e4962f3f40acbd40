"""Reliability: bad input gets one clear line — never a traceback, never a crash mid-run.

A seed source that cannot be used at all stops the run before any (paid) call with exit
status 2 and exactly one ``error:`` line. Bad *lines* inside a usable file are rejected one
by one (reported in the failed file with their raw text) while the crawl goes on with
the good ones. The simulator's own call counts prove what reached the API.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.accounting import assert_accounted
from tests.support.crawl import CrawlResult, run_crawl
from tests.support.ids import make_note_id, make_note_ids
from tests.support.simulator import SimulatorClient

MB = 1024 * 1024


def _crawl(tmp_path: Path, sim: SimulatorClient, *args: str, **settings: Any) -> CrawlResult:
    return run_crawl(tmp_path, *args, sim_url=sim.url, settings=settings)


def _lines_starting(stderr: str, prefix: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


def _assert_no_crash(result: CrawlResult) -> None:
    assert "Traceback" not in result.stderr, result
    assert "Unhandled error" not in result.stderr, result
    assert result.stats.get("log_count/CRITICAL", 0) == 0


def _assert_finished(result: CrawlResult, sim: SimulatorClient, fetched: list[str]) -> None:
    """Exit 0, each valid ID fetched once (and nothing else sent), the identity holds."""
    assert result.returncode == 0, result
    _assert_no_crash(result)
    stats = sim.stats()
    assert stats["by_note"] == dict.fromkeys(fetched, 1)
    assert stats["calls"] == len(fetched)
    assert Counter(n["noteId"] for n in result.notes) == Counter(fetched)
    s = assert_accounted(result)
    assert s["finish_reason"] == "finished"
    assert s["notes_written"] == len(fetched)


def _failed_records(result: CrawlResult) -> list[dict[str, Any]]:
    """The failed file, split on "\\n" only: JSON Lines may hold U+0085 or U+2028 unescaped
    (a raw seed in Latin-1 can decode to them), which str.splitlines() would split on."""
    data = (result.output / "failed.jsonl").read_bytes()
    return [json.loads(line) for line in data.split(b"\n") if line.strip()]


def _rejections(result: CrawlResult) -> dict[str, str]:
    rejected = [r for r in _failed_records(result) if "seed" in r]
    for record in rejected:
        assert record["noteId"] is None and record["code"] is None
    assert len({r["seed"] for r in rejected}) == len(rejected)
    return {r["seed"]: r["reason"] for r in rejected}


# -- sources that cannot be used: stop before any call ----------------------------------


def _make_bad_source(tmp_path: Path, kind: str) -> tuple[str, str]:
    """Create a bad seed source; return (the ids_file value, what the message must say)."""
    good = tmp_path / "good.txt"
    good.write_text(make_note_id(0) + "\n", encoding="utf-8")
    if kind == "missing-after-good-file":
        return "good.txt,nope.txt", "does not exist"
    if kind == "gzip":
        (tmp_path / "seeds.txt.gz").write_bytes(gzip.compress(good.read_bytes() * 50))
        return "seeds.txt.gz", "looks binary"
    raise AssertionError(kind)


# Two kinds through the real command (a file missing after a good one; content sniffed as
# binary). Every kind's message, in process: tests/test_seeds.py (test_check_sources_*);
# the check before any call: tests/test_preflight.py.
@pytest.mark.parametrize("kind", ["missing-after-good-file", "gzip"])
def test_unusable_seed_file_stops_before_any_call(
    tmp_path: Path, sim: SimulatorClient, kind: str
) -> None:
    ids_file, says = _make_bad_source(tmp_path, kind)
    # Inline seeds as well: they must not be sent either when a file is unusable.
    result = _crawl(tmp_path, sim, "-a", f"ids={make_note_id(9)}", "-a", f"ids_file={ids_file}")
    assert result.returncode == 2, result
    _assert_no_crash(result)
    errors = _lines_starting(result.stderr, "error:")
    assert len(errors) == 1, result.stderr
    assert says in errors[0]
    bad = ids_file.split(",")[-1]
    assert repr(bad) in errors[0]  # names the file to fix
    assert sim.stats()["calls"] == 0
    # No crawl was started: no spider opened, no outputs, no half-written summary.
    assert "Spider opened" not in result.stderr
    assert not (tmp_path / "output").exists()


def test_empty_file_warns_and_the_run_finishes(tmp_path: Path, sim: SimulatorClient) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "comments.txt").write_text("# nothing here\n\n   \n# still nothing\n")
    result = _crawl(tmp_path, sim, "-a", "ids_file=empty.txt,comments.txt")
    assert result.returncode == 0, result
    _assert_no_crash(result)
    warnings = _lines_starting(result.stderr, "warning:")
    assert len(warnings) == 2, result.stderr
    assert "'empty.txt' is empty" in warnings[0]
    assert "'comments.txt' has only blank lines and comments" in warnings[1]
    assert _lines_starting(result.stderr, "error:") == []
    s = assert_accounted(result)
    assert (s["seeds_read"], s["notes_written"], s["failed"], s["pending"]) == (0, 0, 0, 0)
    assert s["finish_reason"] == "finished"
    assert sim.stats()["calls"] == 0
    assert result.notes == [] and result.failed == []


def test_empty_file_next_to_good_seeds(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(3)
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "seeds.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    result = _crawl(tmp_path, sim, "-a", "ids_file=empty.csv,seeds.txt")
    _assert_finished(result, sim, ids)
    assert len(_lines_starting(result.stderr, "warning:")) == 1


# -- bad lines inside usable files: rejected, the crawl goes on -------------------------


def test_megabyte_lines_are_rejected_and_the_crawl_goes_on(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    a, b, c, d = make_note_ids(4)
    hexy = "0123456789abcdef" * (2 * MB // 16)  # 2 MB of hex digits: no 24-hex-digit seed
    (tmp_path / "seeds.txt").write_bytes(
        b"x" * (3 * MB)
        + b"\n"
        + f"{a}\n{hexy}\n{b}\n".encode()
        + b"\xe4\xbd\xa0" * (MB // 3)  # a megabyte of UTF-8 text with no newline at EOF
    )
    big_json = '{"noteId": "' + "y" * MB + '"}'
    (tmp_path / "seeds.jsonl").write_text(
        f'{{"noteId": "{c}"}}\n{big_json}\n{{"noteId": "{d}"}}\n', encoding="utf-8"
    )
    result = _crawl(tmp_path, sim, "-a", "ids_file=seeds.txt,seeds.jsonl")
    _assert_finished(result, sim, [a, b, c, d])
    rejected = _rejections(result)
    assert len(rejected) == 4
    assert set(rejected.values()) == {"invalid_id"}
    # The report keeps a short prefix of the raw line, not megabytes.
    assert {len(seed) for seed in rejected} == {300}
    assert {seed[:8] for seed in rejected} == {
        "xxxxxxxx",
        "01234567",
        "你你你你你你你你",
        '{"noteId',
    }
    assert result.summary["seeds_read"] == 8
    assert result.summary["rejected_by_reason"] == {"invalid_id": 4}
    assert (result.output / "failed.jsonl").stat().st_size < 10_000


def test_latin1_and_gbk_lines(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b, c, d = make_note_ids(4)
    share = (
        f"【小红书】穿搭分享 https://www.xiaohongshu.com/explore/{c}?xsec_token=AB1 复制本条信息"
    )
    (tmp_path / "seeds.txt").write_bytes(
        "café crème brûlée\n".encode("latin-1")
        + f"{a}\n".encode()
        + "小红书笔记链接\n".encode("gbk")
        + f"{b}\n".encode()
        + share.encode("gbk")  # a GBK share text around a note link: still a seed
        + b"\n"
        + "Ærøskøbing, Zoë\n".encode("latin-1")
    )
    # A Latin-1 CSV whose header names the column.
    (tmp_path / "seeds.csv").write_bytes(
        "título,noteId\n".encode("latin-1")
        + f"año,{d}\n".encode("latin-1")
        + "niño,café\n".encode("latin-1")
    )
    result = _crawl(tmp_path, sim, "-a", "ids_file=seeds.txt,seeds.csv")
    _assert_finished(result, sim, [a, b, c, d])
    assert _rejections(result) == {
        "café crème brûlée": "invalid_id",
        "小红书笔记链接": "invalid_id",
        "Ærøskøbing, Zoë": "invalid_id",
        "café": "invalid_id",
    }
    assert result.summary["seeds_read"] == 8


def test_binary_bytes_past_the_sniffed_head_do_not_crash(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    a, b = make_note_ids(2)
    head = b"# " + b"-" * 100 + b"\n"
    body = head * 700  # > 64 KiB of comments: the binary check only reads the head
    garbage = bytes(range(256)) * 8  # NUL bytes and every other byte value
    (tmp_path / "seeds.txt").write_bytes(f"{a}\n".encode() + body + garbage + f"\n{b}\n".encode())
    result = _crawl(tmp_path, sim, "-a", "ids_file=seeds.txt")
    _assert_finished(result, sim, [a, b])
    rejected = [r for r in _failed_records(result) if "seed" in r]
    assert rejected and {r["reason"] for r in rejected} == {"invalid_id"}
    assert result.summary["rejected"] == len(rejected) == len(garbage.split(b"\n"))


def test_megabyte_first_csv_row_is_rejected_not_taken_for_a_header(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    a, b = make_note_ids(2)
    (tmp_path / "seeds.csv").write_bytes(b"x" * MB + b"\n" + f"{a}\n{b}\n".encode())
    result = _crawl(tmp_path, sim, "-a", "ids_file=seeds.csv")
    _assert_finished(result, sim, [a, b])
    assert _rejections(result) == {"x" * 300: "invalid_id"}
    assert result.summary["seeds_read"] == 3


def test_csv_without_note_id_column_uses_the_first(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b, c = make_note_ids(3)
    (tmp_path / "seeds.csv").write_text(
        f"笔记,标题,点赞\n{a},穿搭,12\n{b.upper()},好物,3\nnot-an-id,{c},1\n", encoding="utf-8"
    )
    result = _crawl(tmp_path, sim, "-a", "ids_file=seeds.csv")
    # The ID in the second column is not a seed: only the first column is read.
    _assert_finished(result, sim, [a, b])
    assert _rejections(result) == {"not-an-id": "invalid_id"}
    assert result.summary["seeds_read"] == 3


def test_json_lines_that_are_not_objects_are_rejected(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b, c = make_note_ids(3)
    bad = [f'["{c}"]', f'"{c}"', "42", "null", "true", "{broken", f'{{"noteId": {b!r}', "{}"]
    lines = [f'{{"noteId": "{a}"}}', *bad, f'{{"url": "https://www.xiaohongshu.com/explore/{b}"}}']
    (tmp_path / "seeds.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _crawl(tmp_path, sim, "-a", "ids_file=seeds.jsonl")
    _assert_finished(result, sim, [a, b])
    assert _rejections(result) == dict.fromkeys(bad, "invalid_id")


def test_every_kind_of_bad_input_in_one_run(tmp_path: Path, sim: SimulatorClient) -> None:
    ids = make_note_ids(12)
    (tmp_path / "a.txt").write_bytes(
        b"\xef\xbb\xbf"
        + f"{ids[0]}\r\n{ids[1]}\r\n".encode()
        + "caf\xe9 au lait\r\n".encode("latin-1")
        + "无效的种子\r\n".encode("gbk")
        + b"z" * (MB + 5)
        + b"\r\n"
        + f"{ids[2]}\r\n# a comment\r\n\r\n".encode()
        + f"https://www.xiaohongshu.com/user/profile/{ids[3]}\r\n".encode()  # a user
        + b"http://xhslink.com/a/AbCdEf\r\n"
    )
    (tmp_path / "b.csv").write_text(
        f"链接,备注\n{ids[3]},x\n{ids[4]},y\n{ids[0]},dup across files\n,empty cell\n",
        encoding="utf-8",
    )
    (tmp_path / "c.jsonl").write_text(
        f'{{"noteId": "{ids[5]}"}}\n[1, 2]\n"{ids[6]}"\n{{"note_id": "{ids[6]}"}}\n'
        f'{{"url": "{ids[7].upper()}"}}\n{{"noteId": "{ids[5]}"}}\n',
        encoding="utf-8",
    )
    (tmp_path / "d.txt").write_bytes(b"")
    files = "a.txt,b.csv,c.jsonl,d.txt"
    inline = f"{ids[8]},{ids[9]},nonsense,{ids[8]}"
    result = _crawl(tmp_path, sim, "-a", f"ids={inline}", "-a", f"ids_file={files}")
    fetched = [ids[i] for i in (8, 9, 0, 1, 2, 3, 4, 5, 6, 7)]
    _assert_finished(result, sim, fetched)
    assert len(_lines_starting(result.stderr, "warning:")) == 1  # the empty d.txt
    rejected = _rejections(result)
    assert rejected == {
        "nonsense": "invalid_id",
        "café au lait": "invalid_id",
        "无效的种子": "invalid_id",
        "z" * 300: "invalid_id",
        f"https://www.xiaohongshu.com/user/profile/{ids[3]}": "invalid_id",
        "http://xhslink.com/a/AbCdEf": "short_link",
        "": "invalid_id",  # the CSV row with an empty first cell
        "[1, 2]": "invalid_id",
        f'"{ids[6]}"': "invalid_id",
    }
    s = result.summary
    assert s["rejected_by_reason"] == {"invalid_id": 8, "short_link": 1}
    assert s["duplicates"] == 3  # inline ids[8] twice, ids[0] across files, ids[5] in JSONL
    assert s["seeds_read"] == len(fetched) + 9 + 3
