"""Benchmark (r): the practical limit of this machine — a raw aiohttp client, no Scrapy.

``python bench/raw_client.py IDS_FILE BASE_URL TOKEN OUT_FILE CONCURRENCY``: CONCURRENCY tasks
share one aiohttp session (a connection pool of CONCURRENCY connections) and take note IDs from
the file in order; each sends ``GET {base}{API_PATH}?token=...&noteId=...``, parses the answer
with orjson and writes the ``data`` object of every ``code == 0`` answer as one JSON line
(orjson, through one buffered file). No retries, no validation, no accounting: what any client
must at least do, as lean as aiohttp allows. Standard library, aiohttp and orjson only, no
project code.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import IO

import aiohttp
import orjson
from yarl import URL

API_PATH = "/api/xiaohongshu-pgy/api/solar/note/noteId/detail/v1"


def read_ids(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8") as ids:
        for line in ids:
            note_id = line.strip()
            if note_id:
                yield note_id


async def worker(
    session: aiohttp.ClientSession, prefix: str, ids: Iterator[str], out: IO[bytes]
) -> int:
    written = 0
    for note_id in ids:  # one shared iterator: each ID goes to exactly one task
        # The IDs are hex and the token is URL-safe: the URL needs no quoting pass.
        async with session.get(URL(prefix + note_id, encoded=True)) as response:
            body = orjson.loads(await response.read())
        if body.get("code") == 0 and isinstance(body.get("data"), dict):
            out.write(orjson.dumps(body["data"]) + b"\n")
            written += 1
    return written


async def crawl(ids_file: str, base_url: str, token: str, out_path: str, concurrency: int) -> int:
    prefix = f"{base_url.rstrip('/')}{API_PATH}?token={token}&noteId="
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    ids = read_ids(ids_file)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        with open(out_path, "wb") as out:
            counts = await asyncio.gather(
                *(worker(session, prefix, ids, out) for _ in range(concurrency))
            )
    return sum(counts)


def main(argv: list[str]) -> int:
    ids_file, base_url, token, out_path, concurrency = argv
    written = asyncio.run(crawl(ids_file, base_url, token, out_path, int(concurrency)))
    print(f"raw client: {written} notes written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
