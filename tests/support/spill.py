"""Spill files and ``scrapy pgy_replay_spill``: items as the MongoDB pipeline receives (and
spills) them, writing spill files, and running the real command in a process."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tests.support.crawl import crawl_env
from tests.support.ids import make_note_id

T0 = datetime(2026, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)

_COUNTS_RE = re.compile(
    r": (?P<lines>\d+) lines: (?P<stored>\d+) notes stored, (?P<skipped_older>\d+) skipped as "
    r"older \(a newer fetch is stored\), (?P<not_stored>\d+) could not be stored$",
    re.MULTILINE,
)


# Note i of these tests' data: the shared factory's i-th ID.
note_id = make_note_id


def make_item(
    i: int,
    *,
    fetched: datetime = T0,
    likes: int = 1,
    user: str = "user-1",
    fans: int | None = 1000,
    picture_price: int | None = 5000,
) -> dict[str, Any]:
    """A normalized item with the keys the pipeline receives (values trimmed to the point)."""
    return {
        "noteId": note_id(i),
        "noteLink": f"https://www.xiaohongshu.com/explore/{note_id(i)}",
        "type": 1,
        "title": f"标题 {i} ✨",
        "content": "#话题[话题]#",
        "userId": user,
        "name": "创作者😀",
        "redId": "red-1",
        "headPhoto": "https://example.invalid/h.jpg",
        "createTime": 1707127804000,
        "createdAt": "2024-02-05T10:10:04Z",
        "updatedAt": "2024-02-05T10:10:04+00:00",
        "userUpdatedAt": None,
        "likeNum": likes,
        "favNum": 2,
        "cmtNum": 3,
        "shareNum": 4,
        "readNum": 5,
        "impNum": 6,
        "followCnt": 7,
        "metricsAllZero": False,
        "imageUrls": ["https://example.invalid/1.jpg"],
        "kol": {
            "userId": user,
            "nickName": "创作者😀",
            "fansNum": fans,
            "picturePrice": picture_price,
            "videoPrice": 9000,
            "contentTags": [{"taxonomy1Tag": "美妆", "taxonomy2Tags": ["护肤"]}],
        },
        "fetchedAt": fetched.isoformat().replace("+00:00", "Z"),
        "raw": {"noteId": note_id(i), "likeNum": likes, "nested": {"list": [1, None]}},
    }


def write_spill(path: Path, items: Iterable[dict[str, Any]], tail: bytes = b"") -> Path:
    """A spill file of *items*, one JSON line each as the pipeline writes them, then *tail*."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = b"".join(orjson.dumps(item) + b"\n" for item in items)
    path.write_bytes(lines + tail)
    return path


@dataclass
class ReplayRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def counts(self) -> dict[str, int]:
        """The numbers of the command's summary line."""
        match = _COUNTS_RE.search(self.stdout)
        assert match, f"no summary line in:\n{self.stdout}"
        return {name: int(value) for name, value in match.groupdict().items()}

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error: ")]

    def __repr__(self) -> str:  # shown by pytest when an assertion on the run fails
        return (
            f"exit {self.returncode}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def replay_command(*args: str, settings: dict[str, Any] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "scrapy", "pgy_replay_spill", *args]
    for key, value in (settings or {}).items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def run_replay(
    workdir: Path,
    *args: str,
    settings: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> ReplayRun:
    """``scrapy pgy_replay_spill ARGS`` in *workdir* (MONGO_URI only if given)."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        replay_command(*args, settings=settings),
        cwd=workdir,
        env=crawl_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    return ReplayRun(proc.returncode, proc.stdout, proc.stderr)


def start_replay(
    workdir: Path, *args: str, settings: dict[str, Any] | None = None
) -> subprocess.Popen[str]:
    """The same command in the background (to interrupt it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        replay_command(*args, settings=settings),
        cwd=workdir,
        env=crawl_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
