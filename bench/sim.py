"""The project's API simulator as a subprocess the benchmark owns."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
URL_PREFIX = "PGY_SIMULATOR_URL="
TOKEN = "bench-token"


class Simulator:
    """``python -m pgy_spider.simulator`` on a free loopback port, with admin calls over one
    kept-alive connection (polling it must cost the simulator as little as possible).

    One simulator serves every run of a benchmark (its note cache stays warm): ``latency_ms``
    is the startup latency, ``use_latency`` changes the latency every later ``reset`` sets."""

    def __init__(self, latency_ms: float, log_path: Path, env: dict[str, str]) -> None:
        self.latency_ms = self._startup_latency = latency_ms
        self._log: IO[bytes] = log_path.open("wb")
        argv = [sys.executable, "-m", "pgy_spider.simulator", "--port", "0"]
        argv += ["--tokens", TOKEN, "--latency-ms", str(latency_ms)]
        self.proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        self.url = self._read_url(20.0)
        parts = urlsplit(self.url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._conn: http.client.HTTPConnection | None = None

    def _read_url(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.append(self.proc.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(timeout)
        line = lines[0] if lines else ""
        if not line.startswith(URL_PREFIX):
            self.stop()
            raise RuntimeError(
                f"the simulator did not start (stdout {line!r}); see {self._log.name}"
            )
        return line.removeprefix(URL_PREFIX).strip()

    def _call(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=10)
            try:
                self._conn.request(method, path, body=body)
                response = self._conn.getresponse()
                data = response.read()
                if response.status != 200:
                    raise RuntimeError(f"simulator {method} {path}: HTTP {response.status}")
                result: dict[str, Any] = json.loads(data)
                return result
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def stats(self) -> dict[str, Any]:
        """Every counter, with the per-note and per-token maps (large: not for polling)."""
        return self._call("GET", "/_sim/stats")

    def totals(self) -> dict[str, Any]:
        """calls, by_code, billed, max_concurrency: cheap enough to poll every few ms."""
        return self._call("GET", "/_sim/totals")

    def use_latency(self, latency_ms: float) -> None:
        self.latency_ms = latency_ms

    def reset(self) -> None:
        """Zero the counters (and the per-note fetch counts) before a measured run, at the
        latency last given to ``use_latency``."""
        self._call("POST", "/_sim/reset", b"{}")
        if self.latency_ms != self._startup_latency:
            body = json.dumps({"latency_ms": self.latency_ms}).encode()
            self._call("POST", "/_sim/config", body)

    def cpu_seconds(self) -> float:
        """user+sys CPU the simulator has used so far (from /proc; 0.0 where there is none)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
