"""Benchmark (a): the loop a user would write from the API's sample code.

``python bench/naive.py IDS_FILE BASE_URL TOKEN OUT_FILE``: one ``requests.get`` per note ID, in
order, and one JSON line (the answer's ``data``) per note. No session, no concurrency, no retries:
the plain sample-code pattern. Standard library and ``requests`` only, no project code.
"""

from __future__ import annotations

import json
import sys

import requests

API_PATH = "/api/xiaohongshu-pgy/api/solar/note/noteId/detail/v1"


def main(argv: list[str]) -> int:
    ids_file, base_url, token, out_path = argv
    url = base_url.rstrip("/") + API_PATH
    written = 0
    with open(ids_file, encoding="utf-8") as ids, open(out_path, "w", encoding="utf-8") as out:
        for line in ids:
            note_id = line.strip()
            if not note_id:
                continue
            response = requests.get(url, params={"token": token, "noteId": note_id}, timeout=60)
            body = response.json()
            if body.get("code") == 0 and body.get("data"):
                out.write(json.dumps(body["data"], ensure_ascii=False) + "\n")
                written += 1
    print(f"naive: {written} notes written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
