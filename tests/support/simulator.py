"""Pytest plugin: one API simulator process per session, reset before each test that uses it.

Enable with ``pytest_plugins = ["tests.support.simulator"]``. Fixtures:

- ``simulator_process`` (session): a running ``python -m pgy_spider.simulator`` as SimulatorClient.
- ``sim`` (function): the same client, reset, so every test starts from zero counters and the
  startup config.

``make_note_id`` (from ``tests.support.ids``) builds valid, distinct note IDs that the
simulator answers with a note.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.ids import make_note_id

__all__ = ["SimulatorClient", "make_note_id", "sim", "simulator_process"]

REPO_ROOT = Path(__file__).resolve().parents[2]
API_PATH = "/api/xiaohongshu-pgy/api/solar/note/noteId/detail/v1"
TOKENS = ("test-token", "test-token-2", "test-token-3")
URL_PREFIX = "PGY_SIMULATOR_URL="
STARTUP_TIMEOUT = 20.0


class SimulatorClient:
    """Admin access to a running simulator, over plain urllib."""

    def __init__(self, url: str, seeds_dir: Path) -> None:
        self.url = url.rstrip("/")
        self.seeds_dir = seeds_dir
        self.api_url = self.url + API_PATH
        self.tokens = TOKENS

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_sim/stats")

    def calls(self) -> list[dict[str, Any]]:
        """The call log (after ``configure(call_log=True)``): ``t`` (seconds since the
        reset, the simulator's clock), ``token``, ``code`` of every call, in arrival order."""
        return self._call("GET", "/_sim/calls")  # type: ignore[return-value]

    def configure(self, **cfg: Any) -> dict[str, Any]:
        """Merge ``cfg`` into the live config; returns the whole config now in force."""
        return self._call("POST", "/_sim/config", cfg)

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/_sim/config")

    def reset(self) -> None:
        self._call("POST", "/_sim/reset", {})

    def _call(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                result: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:  # an HTTPError holds the open response; close it (filterwarnings=error)
                detail = exc.read().decode(errors="replace")
            raise ValueError(f"simulator refused {method} {path}: {detail}") from None
        return result


def _read_url_line(stream: IO[str], timeout: float) -> str | None:
    """First stdout line, read in a thread because a pipe read cannot time out by itself."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def _start(seeds_dir: Path, stderr: IO[bytes]) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "pgy_spider.simulator", "--port", "0"]
    argv += ["--tokens", ",".join(TOKENS), "--seeds-dir", str(seeds_dir)]
    proc = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    assert proc.stdout is not None
    line = _read_url_line(proc.stdout, STARTUP_TIMEOUT) or ""
    if not line.startswith(URL_PREFIX):
        _stop(proc)
        stderr.seek(0)
        detail = stderr.read().decode(errors="replace")
        raise RuntimeError(
            f"simulator did not report its URL within {STARTUP_TIMEOUT:.0f}s "
            f"(exit code {proc.returncode}, stdout {line!r}); stderr:\n{detail}"
        )
    return proc, line.removeprefix(URL_PREFIX).strip()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture(scope="session")
def simulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorClient]:
    seeds_dir = tmp_path_factory.mktemp("seeds")
    stderr_path = tmp_path_factory.mktemp("simulator") / "stderr.log"
    with stderr_path.open("w+b") as stderr:
        proc, url = _start(seeds_dir, stderr)
        try:
            yield SimulatorClient(url, seeds_dir)
        finally:
            _stop(proc)


@pytest.fixture
def sim(simulator_process: SimulatorClient) -> SimulatorClient:
    simulator_process.reset()
    return simulator_process
