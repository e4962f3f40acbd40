"""Unit tests of the local seed source: order, resume from the cursor, the read-ahead bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pgy_spider.seeds import Seed, SeedFileError
from pgy_spider.seedsource import LocalSeedSource
from tests.support.ids import make_note_ids

IDS = make_note_ids(6)


class Backlog:
    def __init__(self) -> None:
        self.pending = 0
        self.waits = 0

    async def wait_for_room(self, limit: int) -> None:
        self.waits += 1
        self.pending = 0  # as if the notes in flight had settled


def _source(
    tmp_path: Path,
    *,
    inline: str = "",
    cursor: tuple[int, int, int] | None = None,
    backlog: Backlog | None = None,
    read_ahead: int = 100,
    ids_url: str | None = None,
) -> LocalSeedSource:
    first = tmp_path / "a.txt"
    first.write_text("\n".join(IDS[:3]) + "\n", encoding="utf-8")
    second = tmp_path / "b.txt"
    second.write_text("\n".join(IDS[3:]) + "\n", encoding="utf-8")

    async def fetch(url: str) -> str:
        raise SeedFileError(f"ids_url {url} answered HTTP 404")

    return LocalSeedSource(
        inline=inline,
        files=[str(first), str(second)],
        ids_url=ids_url,
        fetch_url=fetch,
        cursor=cursor,
        backlog=backlog or Backlog(),
        read_ahead=read_ahead,
        check_time=True,
    )


def _read(source: LocalSeedSource) -> list[Seed]:
    async def main() -> list[Seed]:
        return [seed async for seed in source]

    return asyncio.run(main())


def test_inline_seeds_then_the_files_in_order(tmp_path: Path) -> None:
    seeds = _read(_source(tmp_path, inline=f"{IDS[5]}, not-an-id"))
    assert [s.note_id for s in seeds] == [IDS[5], None, *IDS]
    assert [s.seq for s in seeds] == list(range(8))
    assert seeds[1].reason == "invalid_id"


def test_resume_continues_after_the_cursor(tmp_path: Path) -> None:
    seeds = _read(_source(tmp_path, inline=IDS[5]))
    at = seeds[3]  # the third seed of the first file, read last before a stop
    resumed = _read(_source(tmp_path, inline=IDS[5], cursor=(*at.pos, at.seq)))
    assert [s.note_id for s in resumed] == IDS[3:]
    assert [s.seq for s in resumed] == [s.seq for s in seeds[4:]]


def test_resume_inside_the_inline_seeds(tmp_path: Path) -> None:
    seeds = _read(_source(tmp_path, inline=f"{IDS[4]},{IDS[5]}"))
    resumed = _read(_source(tmp_path, inline=f"{IDS[4]},{IDS[5]}", cursor=(-1, 0, 0)))
    assert [s.seq for s in resumed] == [s.seq for s in seeds[1:]]


def test_reading_waits_while_too_many_notes_are_unsettled(tmp_path: Path) -> None:
    backlog = Backlog()
    backlog.pending = 5
    seeds = _read(_source(tmp_path, backlog=backlog, read_ahead=5))
    assert len(seeds) == 6 and backlog.waits == 1


def test_an_ids_url_that_cannot_be_fetched_raises(tmp_path: Path) -> None:
    with pytest.raises(SeedFileError, match="HTTP 404"):
        _read(_source(tmp_path, ids_url="http://127.0.0.1:9/seeds.txt"))
