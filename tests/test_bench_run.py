"""The benchmark's harness (bench/run.py) still drives the project end to end.

``make bench`` runs its contenders as real processes against the simulator and checks every
run (exit status, calls billed, feed lines, a run's summary across processes). When the
project's commands, settings or outputs change under it, that should fail ``make test``, not
the end of a 14-minute ``make bench``. Two regimes at ``--quick`` size, one round, no memory
runs and no MongoDB: correctness of the harness, no figures judged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.crawl import REPO

REGIMES = {"0ms-64": {"r", "b", "f", "c"}, "500ms-queue": {"q0", "q1", "q2", "q3"}}


def test_the_quick_benchmark_runs_and_checks_every_contender(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench.run", "--quick", "--regimes", ",".join(REGIMES)]
    command += ["--startup-runs", "1", "--no-mongo", "--no-warmup", "--memory-seeds", "0"]
    command += ["--memory-crawl-seeds", "0", "--queue-memory-seeds", "0", "--json", str(out)]
    proc = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, encoding="utf-8", timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["failure"] is None
    runs = result["runs"]
    for regime, variants in REGIMES.items():
        ran = [run for run in runs if run["regime"] == regime]
        assert {run["variant"] for run in ran} == variants, regime
        for run in ran:
            # Every call the simulator answered was billed, once per note written.
            assert run["exit_code"] == 0 and run["sim_calls"] == run["sim_billed"] == run["notes"]
            assert run["notes_per_s"] > 0 and run["cpu_s"] > 0
    judged = {t["name"]: t for t in result["targets"] if t["measured"] is not None}
    assert any(name.startswith("0 ms, 64 in flight: (c) / (b)") for name in judged), judged
    assert any("3 processes / 1 process" in name for name in judged), judged
    # The report a user reads says it too.
    assert "| (c) on Redis, 3 worker processes | 900 |" in proc.stdout
    # Scrapy's floor ran like any contender, and the report puts it beside the CPU goals.
    assert "**Scrapy's floor**: (f)" in proc.stdout
