"""Pytest plugin: a real Redis (Debian's ``redis-server``, 7.x) for the session, no fakes.

The server is the one ``REDIS_URL`` in the environment points at (used as is, never stopped),
else a ``redis-server`` started here on a free loopback port with its own data directory and
``appendonly yes``, stopped at the end. ``make test`` installs Debian's ``redis-server`` when
it is missing; when it is still missing the fixtures *fail* saying so, they never skip.

Fixtures:

- ``redis_server`` (session): :class:`RedisServer` (``.url``, ``.client()``).
- ``secured_redis`` (session): a private ``redis-server`` with ``requirepass`` (always
  started here: the tests check that its password is written nowhere).
- ``restartable_redis`` (function): a private server with ``appendfsync always``, to kill
  with SIGKILL (:meth:`RedisServer.kill`) and start again on the same port and data.
- ``redis_url`` (function): the session server's URL.
- ``run_name`` (function): a run name unique to the test (every key of a run carries it,
  so tests sharing a server never see each other's runs).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest
import redis

START_TIMEOUT = 20.0
PASSWORD = "q-Pa55:w/rd@redis"  # needs quoting in a URL: its raw and quoted forms are searched


def _fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        _fail(
            "redis-server is missing: install Debian's redis-server "
            "(`make test` does: apt-get install redis-server), or set REDIS_URL"
        )
    return found


class RedisServer:
    """A server this session started (``proc`` set), or one it merely uses (``REDIS_URL``)."""

    def __init__(
        self,
        url: str,
        data_dir: Path | None = None,
        password: str | None = None,
        extra_args: tuple[str, ...] = (),
    ):
        self.url = url
        self.data_dir = data_dir
        self.password = password
        self.extra_args = extra_args
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"RedisServer({self.url!r})"

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis.from_url(self.url, protocol=2, **options)

    @classmethod
    def local(
        cls, data_dir: Path, password: str | None = None, extra_args: tuple[str, ...] = ()
    ) -> RedisServer:
        port = _free_port()
        login = f":{redis_quote(password)}@" if password else ""
        server = cls(f"redis://{login}127.0.0.1:{port}/0", data_dir, password, extra_args)
        server.port = port
        return server

    def start(self) -> None:
        if self.data_dir is None:
            return
        binary = redis_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.password:
            command += ["--requirepass", self.password]
        command += list(self.extra_args)
        self._log = (self.data_dir / "server.log").open("ab")
        self._proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                _fail(f"redis-server exited at start ({self._proc.returncode}): {self._tail()}")
            with contextlib.suppress(redis.RedisError), self.client() as client:
                client.ping()
                return
            time.sleep(0.05)
        self.stop()
        _fail(f"redis-server did not answer within {START_TIMEOUT:.0f}s: {self._tail()}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (a restart with :meth:`start` keeps the port and data)."""
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _tail(self) -> str:
        assert self.data_dir is not None
        try:
            return (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


def redis_quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    env_url = os.environ.get("REDIS_URL")
    server = (
        RedisServer(env_url) if env_url else RedisServer.local(tmp_path_factory.mktemp("redis"))
    )
    server.start()
    try:
        with server.client() as client:
            client.ping()
    except redis.RedisError as exc:
        server.stop()
        _fail(f"Redis at REDIS_URL does not answer: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def secured_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer.local(tmp_path_factory.mktemp("redis-secured"), password=PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def restartable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private ``redis-server`` of the test's own, with ``appendfsync always``: it may be
    killed with SIGKILL and started again on the same port and data."""
    server = RedisServer.local(
        tmp_path_factory.mktemp("redis-restartable"), extra_args=("--appendfsync", "always")
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def run_name(request: pytest.FixtureRequest) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"t-{slug}-{uuid.uuid4().hex[:8]}"
