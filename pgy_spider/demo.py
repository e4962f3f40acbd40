"""The offline demo: the real crawl, end to end, against the bundled API simulator.

``make demo`` runs this. No token and no network are needed: a simulator on a
free loopback port plays the API (with a few "collection failed, please retry"
answers so retries show), and ``scrapy crawl note_detail`` reads the bundled
sample seeds and writes its notes, failed and summary files under ``output/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SAMPLE_SEEDS = Path(__file__).with_name("samples") / "demo_seeds.txt"
DEMO_TOKEN = "demo-token"
DEMO_SIMULATOR_CONFIG = {"rate_301": 0.1, "latency_ms": 50}


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgy_spider.simulator",
            "--port",
            "0",
            "--tokens",
            DEMO_TOKEN,
            "--config",
            json.dumps(DEMO_SIMULATOR_CONFIG),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("PGY_SIMULATOR_URL="):
        proc.kill()
        raise SystemExit("error: the API simulator did not start")
    return proc, line.split("=", 1)[1]


def main() -> int:
    simulator, url = start_simulator()
    try:
        print(f"API simulator at {url}; crawling {SAMPLE_SEEDS.name} ...", flush=True)
        env = dict(os.environ, SCRAPY_SETTINGS_MODULE="pgy_spider.settings")
        env.pop("MONGO_URI", None)
        crawl = subprocess.run(
            [
                sys.executable,
                "-m",
                "scrapy",
                "crawl",
                "note_detail",
                "-a",
                f"ids_file={SAMPLE_SEEDS}",
                "-s",
                f"PGY_BASE_URL={url}",
                "-s",
                f"PGY_TOKEN={DEMO_TOKEN}",
                "-s",
                "PGY_RETRY_BACKOFF=0.2",
                "-s",
                "LOG_LEVEL=INFO",
            ],
            env=env,
            check=False,
        )
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
    summary_path = Path("output/summary.json")
    if summary_path.exists():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        print(
            "\nDemo done: {notes_written} notes in output/notes.jsonl, {failed} failed and "
            "{rejected} rejected seeds in output/failed.jsonl, summary in output/summary.json "
            "(exit {code}).".format(code=crawl.returncode, **summary)
        )
    return crawl.returncode


if __name__ == "__main__":
    sys.exit(main())
