from __future__ import annotations

import dataclasses
import os
import tracemalloc
from pathlib import Path

import pytest

from pgy_spider import seeds
from pgy_spider.reasons import INVALID_ID, SHORT_LINK
from pgy_spider.seeds import (
    Seed,
    SeedFileError,
    SeedPos,
    check_sources,
    detect_format,
    iter_inline,
    iter_seeds,
)
from tests.support.ids import make_note_ids

A = "65c0b3fc000000002c037a49"
B = "65c0b3fc000000002c037a4a"
C = "6600000a0000000012345678"
D = "5ff0e6410000000001008400"
URL_B = f"https://www.xiaohongshu.com/explore/{B}?xsec_token=AB&xsec_source=pc_feed"
SHORT = "http://xhslink.com/a/AbCdEf"
PROFILE = f"https://www.xiaohongshu.com/user/profile/{D}"


def write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def triples(items: list[Seed]) -> list[tuple[str, str | None, str | None]]:
    return [(s.raw, s.note_id, s.reason) for s in items]


def assert_pos_points_at_line(path: str, seed: Seed) -> None:
    """The seed's offset is where its line starts in the file."""
    data = Path(path).read_bytes()
    offset = seed.pos.offset
    assert offset == 0 or data[offset - 1 : offset] == b"\n" or data[:offset] == b"\xef\xbb\xbf"


# --- detect_format -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("ids.csv", "csv"),
        ("IDS.CSV", "csv"),
        ("ids.jsonl", "jsonl"),
        ("ids.ndjson", "jsonl"),
        ("ids.txt", "text"),
        ("ids", "text"),
        ("ids.json", "text"),
        ("dir.csv/ids.txt", "text"),
        ("https://example.com/ids.csv?sig=abc.txt", "csv"),
        ("https://example.com/ids.jsonl?x=1#frag", "jsonl"),
    ],
)
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


# --- check_sources -----------------------------------------------------------


def test_check_sources_ok_files_give_no_warnings(tmp_path: Path) -> None:
    paths = [write(tmp_path, "a.txt", f"{A}\n"), write(tmp_path, "b.csv", f"noteId\n{B}\n")]
    assert check_sources(paths) == []


def _error(paths: list[str]) -> str:
    with pytest.raises(SeedFileError) as info:
        check_sources(paths)
    message = str(info.value)
    assert "\n" not in message  # one clear line for the user
    return message


def test_check_sources_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "x.txt")
    message = _error([write(tmp_path, "ok.txt", A), missing])
    assert message == f"seed file {missing!r} does not exist: check the ids_file path"


def test_check_sources_directory(tmp_path: Path) -> None:
    message = _error([str(tmp_path)])
    assert "is a directory" in message
    assert repr(str(tmp_path)) in message


def test_check_sources_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "seeds.txt"
    link.symlink_to(tmp_path / "gone.txt")
    assert "does not exist" in _error([str(link)])


def test_check_sources_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in _error([str(fifo)])


def test_check_sources_url(tmp_path: Path) -> None:
    assert "is a URL" in _error(["https://example.com/ids.txt"])


def test_check_sources_unreadable_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: the tests run as root (CI too), who can read a chmod 0 file.
    path = write(tmp_path, "secret.txt", A)

    def deny(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(seeds, "open", deny, raising=False)
    message = _error([path])
    assert "not readable (permission denied)" in message
    assert "chmod" in message


def test_check_sources_binary(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.txt", b"\x1f\x8b\x08\x00" + bytes(range(256)) * 10)
    assert "looks binary" in _error([path])


def test_check_sources_image_named_csv_is_binary(tmp_path: Path) -> None:
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06"
    path = write(tmp_path, "ids.csv", header + bytes(range(256)) * 16)
    assert "looks binary" in _error([path])


def test_check_sources_binary_only_sniffs_64k(tmp_path: Path) -> None:
    # A NUL far into a text file is a (rejected) seed line, not a reason to refuse the file.
    path = write(tmp_path, "ids.txt", (f"{A}\n" * 4000).encode() + b"\0\n")
    assert check_sources([path]) == []


def test_check_sources_utf16(tmp_path: Path) -> None:
    # What Excel's "Unicode text" export produces.
    path = write(tmp_path, "ids.txt", b"\xff\xfe" + f"{A}\r\n".encode("utf-16-le"))
    assert "UTF-16" in _error([path])


def test_check_sources_cr_only_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.csv", f"noteId\r{A}\r{B}\r")
    assert "CR-only" in _error([path])


def test_check_sources_single_line_ending_in_cr_is_fine(tmp_path: Path) -> None:
    assert check_sources([write(tmp_path, "ids.txt", f"{A}\r")]) == []


def test_check_sources_warns_on_empty_file(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.txt", b"")
    ok = write(tmp_path, "ok.txt", A)
    warnings = check_sources([ok, empty])
    assert warnings == [f"seed file {empty!r} is empty: it contributes no seeds"]


def test_check_sources_warns_on_comments_only(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.txt", "\ufeff# ids go here\n\n   \r\n#\n")
    [warning] = check_sources([path])
    assert "only blank lines and comments" in warning
    assert "\n" not in warning


# --- iter_seeds: text --------------------------------------------------------


def test_text_rules(tmp_path: Path) -> None:
    data = (
        f"# exported 2026-01-01\n"
        f"{A}\n"
        f"\n"
        f"   \n"
        f"  # indented comment\n"
        f"{B.upper()}\r\n"
        f"{URL_B}\n"
        f"{SHORT}\n"
        f"{PROFILE}\n"
        f"not an id\n"
        f"{C}"  # no trailing newline
    )
    path = write(tmp_path, "ids.txt", data)
    got = list(iter_seeds([path]))
    assert triples(got) == [
        (A, A, None),
        (B.upper(), B, None),
        (URL_B, B, None),
        (SHORT, None, SHORT_LINK),
        (PROFILE, None, INVALID_ID),
        ("not an id", None, INVALID_ID),
        (C, C, None),
    ]
    assert [s.seq for s in got] == list(range(7))
    raw_bytes = Path(path).read_bytes()
    for seed in got:
        assert seed.pos.file_index == 0
        assert raw_bytes[seed.pos.offset :].startswith(seed.raw.encode())


def test_utf8_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.txt", b"\xef\xbb\xbf" + f"{A}\n{B}\n".encode())
    got = list(iter_seeds([path]))
    assert triples(got) == [(A, A, None), (B, B, None)]
    assert got[0].pos == SeedPos(0, 3)


def test_bom_before_comment(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.txt", b"\xef\xbb\xbf# header comment\n" + f"{A}\n".encode())
    assert triples(list(iter_seeds([path]))) == [(A, A, None)]


def test_non_utf8_bytes_never_crash(tmp_path: Path) -> None:
    gbk_share = f"【穿搭】看看 https://www.xiaohongshu.com/explore/{A} 复制本条信息".encode("gbk")
    gbk_text = "这不是编号".encode("gbk")
    latin1 = "café crème".encode("latin-1")
    data = b"\n".join([gbk_share, gbk_text, latin1, b"\xff\xfe\xfd", B.encode()]) + b"\n"
    got = list(iter_seeds([write(tmp_path, "ids.txt", data)]))
    assert [(s.note_id, s.reason) for s in got] == [
        (A, None),
        (None, INVALID_ID),
        (None, INVALID_ID),
        (None, INVALID_ID),
        (B, None),
    ]
    assert "穿搭" in got[0].raw
    assert got[1].raw == "这不是编号"
    assert got[2].raw == "café crème"


def test_huge_line_is_rejected_without_being_held(tmp_path: Path) -> None:
    huge = "x" * (1024 * 1024)
    path = write(tmp_path, "ids.txt", f"{A}\n{huge}\n{B}\n")
    tracemalloc.start()
    try:
        got = list(iter_seeds([path]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024  # the 1 MiB line was never in memory whole
    assert triples(got) == [(A, A, None), ("x" * 300, None, INVALID_ID), (B, B, None)]
    assert got[1].pos.offset == 25
    assert got[2].pos.offset == 25 + len(huge) + 1


def test_huge_line_at_eof_without_newline(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.txt", f"{A}\n" + "y" * 200_000)
    got = list(iter_seeds([path]))
    assert triples(got) == [(A, A, None), ("y" * 300, None, INVALID_ID)]


def test_huge_line_raw_keeps_multibyte_text_intact(tmp_path: Path) -> None:
    # The 300-char prefix of a 64 KiB+ line may end inside a UTF-8 character.
    path = write(tmp_path, "ids.txt", "笔记" * 40_000 + "\n")
    [seed] = iter_seeds([path])
    assert seed.raw == ("笔记" * 150)
    assert seed.reason == INVALID_ID


def test_line_just_under_the_limit_is_a_normal_seed(tmp_path: Path) -> None:
    share = f"{'文' * 21_000} https://www.xiaohongshu.com/explore/{A}"
    assert len(share.encode()) < seeds.MAX_LINE_BYTES
    [seed] = iter_seeds([write(tmp_path, "ids.txt", share + "\n")])
    assert (seed.note_id, len(seed.raw)) == (A, 300)


def test_seq_runs_across_files_and_start_seq(tmp_path: Path) -> None:
    p1 = write(tmp_path, "a.txt", f"{A}\n{B}\n")
    p2 = write(tmp_path, "b.csv", f"noteId\n{C}\n")
    p3 = write(tmp_path, "c.jsonl", f'{{"noteId": "{D}"}}\n')
    got = list(iter_seeds([p1, p2, p3], start_seq=100, check_time=False))
    assert [(s.seq, s.pos.file_index, s.note_id) for s in got] == [
        (100, 0, A),
        (101, 0, B),
        (102, 1, C),
        (103, 2, D),
    ]


def test_check_time_is_passed_through(tmp_path: Path) -> None:
    old = "10000000" + "0" * 16
    path = write(tmp_path, "ids.txt", old + "\n")
    assert [s.reason for s in iter_seeds([path])] == [INVALID_ID]
    assert [s.note_id for s in iter_seeds([path], check_time=False)] == [old]


def test_iteration_is_lazy(tmp_path: Path) -> None:
    it = iter_seeds([str(tmp_path / "missing.txt")])  # nothing opened yet
    with pytest.raises(FileNotFoundError):
        next(it)


def test_seeds_equal_public_constructor_and_are_frozen(tmp_path: Path) -> None:
    [seed] = iter_seeds([write(tmp_path, "ids.txt", f"{A}\n")])
    expected = Seed(raw=A, note_id=A, reason=None, seq=0, pos=SeedPos(0, 0))
    assert seed == expected
    assert hash(seed) == hash(expected)
    assert type(seed.pos) is SeedPos
    assert seed.pos.file_index == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        seed.raw = "x"  # type: ignore[misc]


def test_memory_stays_flat(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    with path.open("w") as f:
        f.writelines(note_id + "\n" for note_id in make_note_ids(100_000))
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_seeds([str(path)]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert peak < 256 * 1024  # ~10 MB of input never accumulates


# --- iter_seeds: CSV ---------------------------------------------------------


def test_csv_named_column(tmp_path: Path) -> None:
    data = (
        "title,noteId,likes\r\n"
        f'"Spring, outfits",{A},12\r\n'
        f"second,{B.upper()},3\r\n"
        "short row\r\n"
        f"bad,{PROFILE},0\r\n"
    )
    got = list(iter_seeds([write(tmp_path, "ids.csv", data)]))
    assert triples(got) == [
        (A, A, None),
        (B.upper(), B, None),
        ("", None, INVALID_ID),
        (PROFILE, None, INVALID_ID),
    ]
    assert [s.seq for s in got] == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ["noteId", "NOTEID", "note_id", "Note_ID", "id", "url", "link"])
def test_csv_column_names(tmp_path: Path, name: str) -> None:
    data = f"title,{name}\nfirst,{A}\nsecond,{URL_B}\n"
    got = list(iter_seeds([write(tmp_path, "ids.csv", data)]))
    assert [s.note_id for s in got] == [A, B]


def test_csv_prefers_note_id_over_url_column(tmp_path: Path) -> None:
    data = f"url,noteId\n{PROFILE},{A}\n"
    assert [s.note_id for s in iter_seeds([write(tmp_path, "ids.csv", data)])] == [A]


def test_csv_without_header_uses_first_column(tmp_path: Path) -> None:
    data = f"{A},foo\n{URL_B},bar\n{SHORT},baz\n"
    got = list(iter_seeds([write(tmp_path, "ids.csv", data)]))
    assert triples(got) == [(A, A, None), (URL_B, B, None), (SHORT, None, SHORT_LINK)]
    assert got[0].pos == SeedPos(0, 0)


def test_csv_unnamed_header_is_detected(tmp_path: Path) -> None:
    data = f"\ufeff笔记链接,标题\n{URL_B},x\n"
    got = list(iter_seeds([write(tmp_path, "ids.csv", data)]))
    assert triples(got) == [(URL_B, B, None)]


@pytest.mark.parametrize(
    "first",
    [
        "65c0b3fc000000002c037a4",  # a malformed id, not a header
        "65c0b3fc00000000",  # a truncated id
        "000000000000000000000000",  # hex id with an impossible timestamp
        SHORT,
        PROFILE,
    ],
)
def test_csv_bad_first_row_is_a_seed_not_a_header(tmp_path: Path, first: str) -> None:
    data = f"{first},x\n{A},y\n"
    got = list(iter_seeds([write(tmp_path, "ids.csv", data)]))
    assert [s.raw for s in got] == [first, A]
    assert got[0].note_id is None


def test_csv_header_after_comments_and_blank_lines(tmp_path: Path) -> None:
    data = f"# export\n\nnoteId\n{A}\n# skip\n{B}\n"
    got = list(iter_seeds([write(tmp_path, "ids.csv", data)]))
    assert triples(got) == [(A, A, None), (B, B, None)]


def test_csv_header_only(tmp_path: Path) -> None:
    assert list(iter_seeds([write(tmp_path, "ids.csv", "noteId,title\n")])) == []


def test_csv_gbk(tmp_path: Path) -> None:
    data = f"标题,noteId\n春日穿搭,{A}\n".encode("gbk")
    assert [s.note_id for s in iter_seeds([write(tmp_path, "ids.csv", data)])] == [A]


# --- iter_seeds: JSONL -------------------------------------------------------


def test_jsonl(tmp_path: Path) -> None:
    lines = [
        f'{{"noteId": "{A}", "title": "春日 😆"}}',
        f'{{"note_id": "{B.upper()}"}}',
        f'{{"url": "{URL_B}"}}',
        f'{{"noteId": "{SHORT}"}}',
        "",
        "# a comment",
        f'["{A}"]',
        f'"{A}"',
        "42",
        "null",
        f'{{"noteId": "{A}"',  # truncated JSON
        f"{A}",  # a bare id is not a JSON object
        '{"title": "no id"}',
        '{"noteId": 1234}',
        '{"noteId": null}',
        '{"noteId": ""}',
    ]
    path = write(tmp_path, "ids.jsonl", b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    got = list(iter_seeds([path]))
    assert triples(got) == [
        (A, A, None),
        (B.upper(), B, None),
        (URL_B, B, None),
        (SHORT, None, SHORT_LINK),
        (f'["{A}"]', None, INVALID_ID),
        (f'"{A}"', None, INVALID_ID),
        ("42", None, INVALID_ID),
        ("null", None, INVALID_ID),
        (f'{{"noteId": "{A}"', None, INVALID_ID),
        (A, None, INVALID_ID),
        ('{"title": "no id"}', None, INVALID_ID),
        ('{"noteId": 1234}', None, INVALID_ID),
        ('{"noteId": null}', None, INVALID_ID),
        ("", None, INVALID_ID),
    ]
    assert got[0].pos == SeedPos(0, 3)


def test_jsonl_non_utf8_line(tmp_path: Path) -> None:
    data = f'{{"noteId": "{A}", "t": "'.encode() + "中文".encode("gbk") + b'"}\n'
    [seed] = iter_seeds([write(tmp_path, "ids.ndjson", data)])
    # Re-decoded as GB18030, the line is valid JSON again.
    assert seed.note_id == A


# --- resume ------------------------------------------------------------------


def _resume_cases(tmp_path: Path) -> list[str]:
    text = write(
        tmp_path,
        "a.txt",
        b"\xef\xbb\xbf" + f"{A}\n# c\n\n{SHORT}\r\n{B}\n{'z' * 70_000}\n{C}".encode(),
    )
    csv_ = write(tmp_path, "b.csv", f"# x\ntitle,noteId\nt1,{A}\n\nt2,{B}\n")
    headerless = write(tmp_path, "c.csv", f"{C},1\n{A},2\n")
    jsonl = write(tmp_path, "d.jsonl", f'{{"noteId":"{B}"}}\nnot json\n{{"url":"{URL_B}"}}\n')
    return [text, csv_, headerless, jsonl]


def test_resume_from_every_seed_gives_exactly_the_rest(tmp_path: Path) -> None:
    paths = _resume_cases(tmp_path)
    everything = list(iter_seeds(paths, start_seq=5))
    assert len(everything) == 12
    for k, seed in enumerate(everything):
        assert_pos_points_at_line(paths[seed.pos.file_index], seed)
        resumed = list(iter_seeds(paths, start=seed.pos, start_seq=seed.seq))
        assert resumed == everything[k:], f"resume at seed {k} ({seed.pos})"


def test_resume_at_start_of_a_file_rereads_its_header(tmp_path: Path) -> None:
    paths = _resume_cases(tmp_path)
    everything = list(iter_seeds(paths))
    expected = [s for s in everything if s.pos.file_index >= 1]
    rest = list(iter_seeds(paths, start=SeedPos(1, 0), start_seq=expected[0].seq))
    assert rest == expected


def test_resume_past_the_last_file_yields_nothing(tmp_path: Path) -> None:
    paths = _resume_cases(tmp_path)
    assert list(iter_seeds(paths, start=SeedPos(len(paths), 0))) == []


@pytest.mark.parametrize("start", [SeedPos(9, 0), SeedPos(-1, 0), SeedPos(0, -1)])
def test_resume_position_out_of_range(tmp_path: Path, start: SeedPos) -> None:
    with pytest.raises(ValueError):
        next(iter_seeds(_resume_cases(tmp_path), start=start))


def test_resume_mid_line_means_the_file_changed(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.txt", f"{A}\n{B}\n")
    with pytest.raises(SeedFileError, match="changed since the crawl was paused"):
        next(iter_seeds([path], start=SeedPos(0, 5)))


def test_resume_past_eof_means_the_file_changed(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.txt", f"{A}\n")
    with pytest.raises(SeedFileError, match="changed since the crawl was paused"):
        next(iter_seeds([path], start=SeedPos(0, 500)))


# --- iter_inline ---------------------------------------------------------------


def test_iter_inline() -> None:
    values = f" {A} ,{URL_B},, {SHORT} ,nope,{B.upper()}, "
    got = list(iter_inline(values, start_seq=10))
    assert got == [
        Seed(A, A, None, 10, SeedPos(-1, 0)),
        Seed(URL_B, B, None, 11, SeedPos(-1, 1)),
        Seed(SHORT, None, SHORT_LINK, 12, SeedPos(-1, 3)),
        Seed("nope", None, INVALID_ID, 13, SeedPos(-1, 4)),
        Seed(B.upper(), B, None, 14, SeedPos(-1, 5)),
    ]


def test_iter_inline_empty_and_check_time() -> None:
    assert list(iter_inline("")) == []
    assert list(iter_inline(" , ,")) == []
    [seed] = iter_inline("0" * 24, check_time=False)
    assert seed.note_id == "0" * 24
