"""Pytest plugin: a real, throwaway MongoDB-compatible server for the session (no mongomock).

Enable with ``pytest_plugins = ["tests.support.mongo"]`` (or ``-p tests.support.mongo``).
The server is, in this order of preference:

1. ``env``: the one ``MONGO_URI`` in the environment points at (used as is, never stopped);
2. ``mongod``: a ``mongod`` from PATH, on a free loopback port, data in a temp dir;
3. ``ferretdb``: FerretDB v1.24.2 with its SQLite backend, on a free loopback port, data in a
   temp dir, built from source with Go the first time and cached in
   ``${XDG_CACHE_HOME:-~/.cache}/pgy-spider/ferretdb-v1.24.2/``.

A MongoDB test that is skipped is a test that silently stopped guarding anything, so when no
server can be had the fixtures *fail* with the reason (missing ``go``, failed build, server
that would not start), they never skip.

Why FerretDB is not built with a plain ``go install .../cmd/ferretdb@v1.24.2``: that binary
panics at start ("Invalid build/version/version.txt file content"), because the module
zip lacks the generated ``build/version/version.txt`` (FerretDB issue #2982). So the
fixture copies the module's source out of the Go module cache, writes that file and runs
``go install ./cmd/ferretdb`` there with ``GOBIN`` set to the cache directory.

Fixtures:

- ``mongo_server`` (session): :class:`MongoServer` with ``.uri``, ``.kind``, ``.stop()``,
  ``.start()`` (same port, same data dir) and ``.client()``.
- ``restartable_mongo_server`` (session): ``mongo_server`` unless that is the ``env`` one,
  which the tests cannot stop; then a private ``mongod``/FerretDB server.
- ``mongo_uri`` (function): the URI of ``mongo_server``, restarted first if a test left it down.
- ``mongo_db`` (function): ``(uri, name)`` of a database unique to the test, dropped after it.
- ``mongo_database`` (function): a pymongo ``Database`` for ``mongo_db`` (tz-aware client).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple, NoReturn

import pytest
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
GO_FALLBACK = Path("/usr/local/go/bin/go")
BUILD_TIMEOUT = 900.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class MongoTestDB(NamedTuple):
    uri: str
    name: str


def _fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(uri: str, timeout_s: float = 1.0) -> str | None:
    """None when the server at *uri* answers a ping, else why not."""
    ms = int(timeout_s * 1000)
    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms
    )
    try:
        client.admin.command("ping")
        return None
    except PyMongoError as exc:
        return str(exc).split(", Timeout: ", 1)[0]
    finally:
        client.close()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class MongoServer:
    """A server process this session owns, or (kind ``env``) one it merely uses."""

    def __init__(self, kind: str, uri: str, command: list[str] | None, data_dir: Path | None):
        self.kind = kind
        self.uri = uri
        self.command = command
        self.data_dir = data_dir
        self.log_path = data_dir / "server.log" if data_dir else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"MongoServer(kind={self.kind!r}, uri={self.uri!r})"

    @property
    def restartable(self) -> bool:
        return self.command is not None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start (again) on the same port with the same data; returns once it answers."""
        if self.command is None:
            if (why := ping(self.uri, 5.0)) is not None:
                _fail(f"MONGO_URI server {self.uri} is not reachable: {why}")
            return
        if self.running:
            return
        assert self.log_path is not None
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.log_path is not None
        deadline = time.monotonic() + START_TIMEOUT
        why: str | None = "not tried"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._close_log()
                _fail(
                    f"{self.kind} exited with {self._proc.returncode} at start "
                    f"({' '.join(self.command or [])}):\n{_tail(self.log_path)}"
                )
            why = ping(self.uri, 0.5)
            if why is None:
                return
            time.sleep(0.1)
        self.stop(kill=True)
        _fail(
            f"{self.kind} did not answer within {START_TIMEOUT}s ({why}):\n{_tail(self.log_path)}"
        )

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with *kill*); its data stays for start()."""
        if self.command is None:
            raise RuntimeError(
                "the MONGO_URI server is not this session's to stop: "
                "use the restartable_mongo_server fixture"
            )
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        self._proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def ensure_running(self) -> None:
        if self.command is not None and not self.running:
            self.start()

    @contextlib.contextmanager
    def client(self, **options: Any) -> Iterator[MongoClient[dict[str, Any]]]:
        """A client that is always closed (an unclosed one is a ResourceWarning = error)."""
        options.setdefault("serverSelectionTimeoutMS", 5000)
        client: MongoClient[dict[str, Any]] = MongoClient(self.uri, **options)
        try:
            yield client
        finally:
            client.close()


# -- which server -------------------------------------------------------------------


def ferretdb_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pgy-spider" / f"ferretdb-{FERRETDB_VERSION}"


def _find_go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    return str(GO_FALLBACK) if GO_FALLBACK.exists() else None


def _runs(binary: Path) -> bool:
    """The cached binary exists and is the version we want (a bad build panics here)."""
    if not binary.exists():
        return False
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and f"version: {FERRETDB_VERSION}" in out.stdout.decode()


def _go(go: str, args: list[str], cwd: Path, env: dict[str, str]) -> str:
    try:
        proc = subprocess.run(
            [go, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _fail(f"building FerretDB: `go {' '.join(args)}` took over {BUILD_TIMEOUT}s")
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).decode(errors="replace")[-4000:]
        _fail(f"building FerretDB: `go {' '.join(args)}` failed ({proc.returncode}):\n{output}")
    return proc.stdout.decode()


def build_ferretdb(go: str, dest: Path) -> None:
    """Build FerretDB from the module source into *dest*/ferretdb (see the module docstring)."""
    env = {**os.environ, "GOFLAGS": "-buildvcs=false -mod=readonly", "CGO_ENABLED": "0"}
    with tempfile.TemporaryDirectory(prefix="pgy-ferretdb-build-") as tmp:
        work = Path(tmp)
        module = f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"
        info = json.loads(_go(go, ["mod", "download", "-json", module], work, env))
        src = work / "src"
        shutil.copytree(info["Dir"], src)  # the module cache is read-only
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        (src / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        _go(go, ["install", "./cmd/ferretdb"], src, {**env, "GOBIN": str(work / "bin")})
        dest.mkdir(parents=True, exist_ok=True)
        # Same filesystem is not guaranteed: copy next to the target, then rename atomically.
        staged = dest / f".ferretdb.{os.getpid()}"
        shutil.copy2(work / "bin" / "ferretdb", staged)
        os.replace(staged, dest / "ferretdb")


def ferretdb_binary() -> Path:
    """The cached FerretDB binary, built first if needed (one builder at a time)."""
    cache = ferretdb_cache_dir()
    binary = cache / "ferretdb"
    if _runs(binary):
        return binary
    go = _find_go()
    if go is None:
        _fail(
            "no MongoDB-compatible server for the tests: MONGO_URI is not set, there is no "
            f"mongod on PATH, and `go` (needed to build FerretDB {FERRETDB_VERSION}) is "
            f"missing from PATH and {GO_FALLBACK}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it right now
        if not _runs(binary):
            build_ferretdb(go, cache)
        if not _runs(binary):
            _fail(f"FerretDB built into {binary} but `{binary} --version` does not work")
    return binary


def local_server(data_dir: Path) -> MongoServer:
    """A mongod from PATH, else FerretDB (SQLite), on a free loopback port; not started."""
    port = _free_port()
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    mongod = shutil.which("mongod")
    if mongod:
        db_path = data_dir / "db"
        db_path.mkdir(parents=True, exist_ok=True)
        command = [
            mongod,
            f"--dbpath={db_path}",
            f"--port={port}",
            "--bind_ip=127.0.0.1",
            "--nounixsocket",
            "--setParameter=diagnosticDataCollectionEnabled=false",
        ]
        return MongoServer("mongod", uri, command, data_dir)
    binary = ferretdb_binary()
    sqlite_dir = data_dir / "sqlite"
    sqlite_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(binary),
        "--handler=sqlite",
        f"--sqlite-url=file:{sqlite_dir}/",  # a directory: one SQLite file per database
        f"--state-dir={data_dir}",
        f"--listen-addr=127.0.0.1:{port}",
        "--debug-addr=-",  # no HTTP debug listener (its default port would clash)
        "--telemetry=disable",  # and no calls home
        "--log-level=warn",
    ]
    return MongoServer("ferretdb", uri, command, data_dir)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    env_uri = os.environ.get("MONGO_URI")
    server = (
        MongoServer("env", env_uri, None, None)
        if env_uri
        else local_server(tmp_path_factory.mktemp("mongo"))
    )
    server.start()
    try:
        yield server
    finally:
        if server.restartable:
            server.stop()


@pytest.fixture(scope="session")
def restartable_mongo_server(
    mongo_server: MongoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MongoServer]:
    if mongo_server.restartable:
        yield mongo_server
        return
    server = local_server(tmp_path_factory.mktemp("mongo-restartable"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def restartable_db(
    restartable_mongo_server: MongoServer, request: pytest.FixtureRequest
) -> Iterator[MongoTestDB]:
    """A per-test database on a server the test may stop and start."""
    restartable_mongo_server.ensure_running()
    with temp_database(restartable_mongo_server, unique_db_name(request.node.name)) as db:
        yield db


def unique_db_name(test_name: str) -> str:
    """A database name unique to one test, valid on MongoDB and FerretDB (< 64 chars)."""
    slug = re.sub(r"[^a-z0-9]+", "_", test_name.lower()).strip("_")[:40]
    return f"t_{slug}_{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def temp_database(server: MongoServer, name: str) -> Iterator[MongoTestDB]:
    """``(uri, name)`` of a database dropped afterwards (the server restarted if need be)."""
    try:
        yield MongoTestDB(server.uri, name)
    finally:
        server.ensure_running()
        with server.client() as client:
            client.drop_database(name)


@pytest.fixture
def mongo_uri(mongo_server: MongoServer) -> str:
    mongo_server.ensure_running()
    return mongo_server.uri


@pytest.fixture
def mongo_db(mongo_server: MongoServer, request: pytest.FixtureRequest) -> Iterator[MongoTestDB]:
    mongo_server.ensure_running()
    with temp_database(mongo_server, unique_db_name(request.node.name)) as db:
        yield db


@pytest.fixture
def mongo_database(
    mongo_server: MongoServer, mongo_db: MongoTestDB
) -> Iterator[Database[dict[str, Any]]]:
    with mongo_server.client(tz_aware=True) as client:
        yield client[mongo_db.name]
