"""End-to-end: a real `scrapy crawl note_detail` against the simulator over loopback."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.support.accounting import assert_accounted
from tests.support.crawl import crawl_command, crawl_env, read_jsonl, run_crawl
from tests.support.ids import make_note_ids
from tests.support.simulator import SimulatorClient


def test_seed_file_to_notes_once_per_distinct_id(tmp_path: Path, sim: SimulatorClient) -> None:
    a, b, c = make_note_ids(3)
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(
        "\n".join(
            [
                "# a comment",
                a,
                a.upper(),  # the same note in capitals: a duplicate
                f"https://www.xiaohongshu.com/explore/{b}?xsec_token=abc&xsec_source=pc",
                "",
                f"https://www.xiaohongshu.com/discovery/item/{c}",
                "not-a-note",
                "http://xhslink.com/a/AbCdEf",
            ]
        ),
        encoding="utf-8",
    )
    result = run_crawl(tmp_path, "-a", "ids_file=seeds.txt", sim_url=sim.url)
    assert result.returncode == 0, result
    assert sorted(n["noteId"] for n in result.notes) == sorted([a, b, c])
    # Each distinct valid ID is requested exactly once; bad seeds never reach the API.
    assert sim.stats()["by_note"] == {a: 1, b: 1, c: 1}
    summary = assert_accounted(result)
    assert summary["seeds_read"] == 6
    assert summary["duplicates"] == 1
    assert summary["rejected_by_reason"] == {"invalid_id": 1, "short_link": 1}
    assert summary["notes_written"] == 3
    assert summary["finish_reason"] == "finished"
    assert {(f["reason"], f["seed"]) for f in result.failed} == {
        ("invalid_id", "not-a-note"),
        ("short_link", "http://xhslink.com/a/AbCdEf"),
    }
    assert result.stats["pgy/code/0"] == 3
    raw = (result.output / "notes.jsonl").read_text(encoding="utf-8")
    assert "\\u" not in raw  # Chinese and emoji as UTF-8, never escaped
    assert re.search(r"[\u4e00-\u9fff]", raw)


# Libraries that only some runs need (MongoDB, runs across processes, workbooks, the HTML
# report, the live terminal display): a plain crawl must not pay their import at start-up.
OPTIONAL_LIBRARIES = ("pymongo", "bson", "redis", "openpyxl", "matplotlib", "rich", "jinja2")
_REPORT_MODULES = """
import atexit, json, sys
def _report():
    with open("modules.json", "w") as fh:
        json.dump(sorted(m.split(".")[0] for m in sys.modules), fh)
atexit.register(_report)
from scrapy.cmdline import execute
execute(["scrapy", *sys.argv[1:]])
"""


def test_a_plain_crawl_imports_no_optional_library(tmp_path: Path, sim: SimulatorClient) -> None:
    (note_id,) = make_note_ids(1)
    command = crawl_command("-a", f"ids={note_id}", "-O", "notes.jsonl", sim_url=sim.url)
    command[1:3] = ["-c", _REPORT_MODULES]  # `python -m scrapy` with a look at sys.modules
    proc = subprocess.run(
        command, cwd=tmp_path, env=crawl_env(), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [n["noteId"] for n in read_jsonl(tmp_path / "notes.jsonl")] == [note_id]
    loaded = set(json.loads((tmp_path / "modules.json").read_text()))
    assert {"scrapy", "aiohttp", "pgy_spider"} <= loaded  # the report itself works
    assert not loaded & set(OPTIONAL_LIBRARIES)


def test_the_crawl_runs_on_uvloop_and_on_asyncios_own_loop_when_asked(
    tmp_path: Path, sim: SimulatorClient
) -> None:
    note_ids = make_note_ids(2)
    for loop, expected in (
        (None, "uvloop.Loop"),  # the project's default (settings.py, requirements.txt)
        ("asyncio.SelectorEventLoop", "asyncio.unix_events._UnixSelectorEventLoop"),
    ):
        workdir = tmp_path / expected
        settings = {"LOG_LEVEL": "DEBUG", **({"ASYNCIO_EVENT_LOOP": loop} if loop else {})}
        result = run_crawl(
            workdir, "-a", f"ids={','.join(note_ids)}", sim_url=sim.url, settings=settings
        )
        assert result.returncode == 0, result
        assert f"Using asyncio event loop: {expected}\n" in result.stderr
        assert sorted(n["noteId"] for n in result.notes) == sorted(note_ids)
