"""A real Scrapyd (the PyPI package) with this project deployed by ``scrapyd-deploy``.

Fixtures (import them into a test module, or list this module in ``pytest_plugins``):

- ``scrapyd_project`` (session): a copy of the project (setup.py, scrapy.cfg, the
  package, and the tests and benchmarks the egg must leave out), so building the egg
  never writes ``build/`` or ``*.egg-info`` into the checkout.
- ``scrapyd`` (module): Scrapyd with ``items_dir`` empty (its default, the setup the
  README recommends) and ``JUSTONEAPI_TOKEN`` in its environment.
- ``scrapyd_items`` (module): Scrapyd with ``items_dir`` set and no token at all in
  its environment; jobs name a token file with ``setting=PGY_TOKEN_FILE=...``.

For a cluster (several Scrapyd hosts of one run), :func:`start_cluster` starts servers that
each have their own root and their own environment (a token, ``PGY_QUEUE_URL``), and
:func:`deploy_all` deploys to all of them at once with ``scrapyd-deploy -a`` from a project
copy whose scrapy.cfg has one ``[deploy:NAME]`` per server.

Each server runs ``python -m scrapyd`` on a free loopback port with its own
``scrapyd.conf``, cwd and HOME under a temporary directory (``root``): everything
Scrapyd writes (eggs, queues, job logs, items, its own log) lands there, so a test
can read every one of those files looking for the token.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.crawl import parse_stats

REPO = Path(__file__).resolve().parents[2]
PROJECT = "pgy_spider"
SPIDER = "note_detail"
ENV_TOKEN = "test-token-3"  # the simulator accepts it; distinctive enough to grep for
# What a Scrapyd host must not inherit from the developer's shell.
SCRUBBED_ENV = (
    "JUSTONEAPI_TOKEN",
    "PGY_TOKEN_FILE",
    "PGY_REGION",
    "MONGO_URI",
    "PYTHONPATH",
    "SCRAPY_SETTINGS_MODULE",
    "SCRAPY_PROJECT",
    "SCRAPYD_EGG_VERSION",
    "PGY_QUEUE_URL",
    "PGY_RUN",
)
STARTUP_TIMEOUT = 30.0
JOB_TIMEOUT = 180.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _script(name: str, module: str) -> list[str]:
    """The venv's console script if there is one, else ``python -m module``."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return [str(candidate)]
    return [sys.executable, "-m", module]


class ScrapydServer:
    """One running Scrapyd and what it wrote; every API answer it gave is kept."""

    def __init__(
        self,
        root: Path,
        *,
        items: bool,
        env_token: str | None,
        env: Mapping[str, str] | None = None,
        name: str = "default",
        login: tuple[str, str] | None = None,
    ) -> None:
        self.root = root
        self.login = login  # HTTP basic auth of its API (scrapyd.conf username/password)
        self.name = name  # its [deploy:NAME] in a cluster's scrapy.cfg
        self.extra_env = dict(env or {})
        self.home = root / "home"
        self.logs_dir = root / "logs"
        self.eggs_dir = root / "eggs"
        self.dbs_dir = root / "dbs"
        self.items_dir: Path | None = root / "items" if items else None
        self.out_dir = root / "out"  # where the tests point the jobs' own outputs
        self.daemon_log = root / "scrapyd.log"
        self.env_token = env_token
        self.port = 0
        self.url = ""
        self.responses: list[str] = []
        self.version = ""
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        # Scrapyd and Scrapy read ~/.scrapyd.conf and ~/.scrapy.cfg: not the developer's.
        env["HOME"] = str(self.home)
        env["XDG_CONFIG_HOME"] = str(self.home / ".config")
        env["PYTHONWARNINGS"] = "error::DeprecationWarning:pgy_spider"
        env["PYTHONUNBUFFERED"] = "1"
        if self.env_token:
            env["JUSTONEAPI_TOKEN"] = self.env_token
        env.update(self.extra_env)
        return env

    def write_config(self) -> None:
        for directory in (self.home, self.logs_dir, self.eggs_dir, self.dbs_dir, self.out_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if self.items_dir is not None:
            self.items_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "scrapyd.conf").write_text(
            "\n".join(
                [
                    "[scrapyd]",
                    "bind_address = 127.0.0.1",
                    f"http_port = {self.port}",
                    f"eggs_dir = {self.eggs_dir}",
                    f"logs_dir = {self.logs_dir}",
                    f"items_dir = {self.items_dir or ''}",
                    f"dbs_dir = {self.dbs_dir}",
                    "jobs_dir =",
                    "max_proc = 2",
                    "poll_interval = 0.2",
                    *(
                        [f"username = {self.login[0]}", f"password = {self.login[1]}"]
                        if self.login
                        else []
                    ),
                    "",
                ]
            ),
            encoding="utf-8",
        )

    def start(self) -> None:
        env = self.environment()
        # The jobs must run the deployed egg, not a checkout that happens to be importable.
        probe = subprocess.run(
            [sys.executable, "-c", "import pgy_spider"],
            cwd=self.root,
            env=env,
            capture_output=True,
            check=False,
        )
        assert probe.returncode != 0, "pgy_spider is importable without the egg"
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.write_config()
            with self.daemon_log.open("ab") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "scrapyd", "--pidfile="],
                    cwd=self.root,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its jobs share its process group: stop them all
                )
            if self._wait_ready():
                return
            self.stop()
            last_error = self.daemon_log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"Scrapyd did not start; its log ends with:\n{last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False
            try:
                if self.get("daemonstatus.json")["status"] == "ok":
                    return True
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # Scrapyd and any job still running
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a job that outlived Scrapyd

    def deploy(self, project_dir: Path) -> dict[str, Any]:
        """``scrapyd-deploy`` from a copy of the project whose [deploy] url is this server."""
        cfg = configparser.ConfigParser()
        cfg.read(project_dir / "scrapy.cfg", encoding="utf-8")
        assert cfg.get("deploy", "project") == PROJECT
        cfg.set("deploy", "url", self.url + "/")
        with (project_dir / "scrapy.cfg").open("w", encoding="utf-8") as fh:
            cfg.write(fh)
        self.version = f"r{int(time.time() * 1000)}"
        # The deploying machine needs no token either.
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        proc = subprocess.run(
            [*_script("scrapyd-deploy", "scrapyd_client.deploy"), "-v", self.version],
            cwd=project_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert proc.returncode == 0, f"scrapyd-deploy failed:\n{proc.stdout}\n{proc.stderr}"
        answer: dict[str, Any] = json.loads(proc.stdout)
        self.responses.append(proc.stdout)
        assert answer["status"] == "ok", answer
        return answer

    # -- the HTTP API ----------------------------------------------------------------------

    def _open(self, path: str, data: list[tuple[str, str]] | None = None) -> str:
        body = None if data is None else urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(f"{self.url}/{path}", data=body)
        if self.login:
            credentials = base64.b64encode(":".join(self.login).encode()).decode()
            request.add_header("Authorization", f"Basic {credentials}")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                text: str = resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            with exc:  # holds the open response (filterwarnings=error)
                detail = exc.read().decode(errors="replace")
            raise ValueError(f"Scrapyd refused {path}: HTTP {exc.code} {detail}") from None
        self.responses.append(text)
        return text

    def get(self, path: str, **params: str) -> dict[str, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        result: dict[str, Any] = json.loads(self._open(path + query))
        return result

    def page(self, path: str) -> str:
        """A web page (``jobs``, ``logs/...``) as text; kept with the API answers."""
        return self._open(path)

    def schedule(self, args: dict[str, str], settings: dict[str, Any], spider: str = SPIDER) -> str:
        """``schedule.json``: spider arguments as plain fields, settings as ``setting=K=V``."""
        data = [("project", PROJECT), ("spider", spider)]
        data += [("setting", f"{key}={value}") for key, value in settings.items()]
        data += list(args.items())
        result: dict[str, Any] = json.loads(self._open("schedule.json", data))
        assert result["status"] == "ok", result
        job: str = result["jobid"]
        return job

    def wait(self, *jobs: str, timeout: float = JOB_TIMEOUT) -> dict[str, dict[str, Any]]:
        """Poll ``listjobs.json`` until every job is finished; their finished entries."""
        deadline = time.monotonic() + timeout
        while True:
            listing = self.get("listjobs.json", project=PROJECT)
            finished = {j["id"]: j for j in listing["finished"] if j["id"] in jobs}
            if len(finished) == len(jobs):
                return finished
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs not finished after {timeout:.0f}s: {listing}")
            time.sleep(0.2)

    # -- what Scrapyd wrote -------------------------------------------------------------

    def cancel(self, job: str, signal_name: str | None = None) -> dict[str, Any]:
        """``cancel.json``: Scrapyd signals the job's process (INT unless ``signal_name``)."""
        data = [("project", PROJECT), ("job", job)]
        if signal_name:
            data.append(("signal", signal_name))
        result: dict[str, Any] = json.loads(self._open("cancel.json", data))
        assert result["status"] == "ok", result
        return result

    def job_log(self, job: str) -> str:
        return (self.logs_dir / PROJECT / SPIDER / f"{job}.log").read_text(encoding="utf-8")

    def job_stats(self, job: str) -> dict[str, Any]:
        return parse_stats(self.job_log(job))

    def items_file(self, job: str) -> Path:
        assert self.items_dir is not None
        return self.items_dir / PROJECT / SPIDER / f"{job}.jl"

    def exit_line(self, job: str) -> str:
        """Scrapyd's own log line for the job's end: ``Process finished`` (exit 0) or
        ``Process died: exitstatus=N``."""
        text = self.daemon_log.read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            if f"job={job!r}" in line and ("Process finished" in line or "Process died" in line):
                return line
        raise AssertionError(f"no end of job {job} in Scrapyd's log")

    def egg(self) -> Path:
        return self.eggs_dir / PROJECT / f"{self.version}.egg"

    def files(self) -> Iterator[Path]:
        yield from (p for p in sorted(self.root.rglob("*")) if p.is_file())

    def find_secret(self, secret: str) -> list[str]:
        """Every place Scrapyd wrote or showed ``secret``: files under ``root`` (inside
        zips too), and every API answer and page it served to the tests."""
        needles = {secret.encode(), urllib.parse.quote(secret, safe="").encode()}
        found = []
        for path in self.files():
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(str(path))
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    for name in archive.namelist():
                        member = archive.read(name)
                        if any(n in member for n in needles):
                            found.append(f"{path}!{name}")
        found += [f"HTTP answer: {r[:200]}" for r in self.responses if secret in r]
        return found


def start_cluster(
    root: Path,
    envs: Mapping[str, Mapping[str, str]],
    *,
    env_tokens: Mapping[str, str],
    logins: Mapping[str, tuple[str, str]] | None = None,
) -> list[ScrapydServer]:
    """One Scrapyd per name of ``envs`` (its own root under ``root``, that environment, the
    token of ``env_tokens``, the basic auth of ``logins``), all started; stopped again if
    one fails to start."""
    servers = [
        ScrapydServer(
            root / name,
            items=False,
            env_token=env_tokens.get(name),
            env=env,
            name=name,
            login=(logins or {}).get(name),
        )
        for name, env in envs.items()
    ]
    try:
        for server in servers:
            server.root.mkdir(parents=True)
            server.start()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def cluster_config(project_dir: Path, servers: Sequence[ScrapydServer]) -> None:
    """scrapy.cfg of a cluster: ``[deploy]`` keeps the project, each host is a
    ``[deploy:NAME]`` with its url (what the README's "Run on a cluster" says to write)."""
    cfg = configparser.ConfigParser()
    cfg.read(project_dir / "scrapy.cfg", encoding="utf-8")
    cfg.remove_option("deploy", "url")  # else `-a` deploys to it too, as "default"
    for server in servers:
        section = {"url": server.url + "/"}
        if server.login:
            section.update(username=server.login[0], password=server.login[1])
        cfg[f"deploy:{server.name}"] = section
    with (project_dir / "scrapy.cfg").open("w", encoding="utf-8") as fh:
        cfg.write(fh)


def deploy_all(project_dir: Path, servers: Sequence[ScrapydServer]) -> list[dict[str, Any]]:
    """``scrapyd-deploy -a`` from ``project_dir`` (its scrapy.cfg written by
    :func:`cluster_config`): one version uploaded to every server, every answer ``ok``."""
    cluster_config(project_dir, servers)
    version = f"r{int(time.time() * 1000)}"
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["HOME"] = str(project_dir)  # no ~/.scrapy.cfg of the developer's
    proc = subprocess.run(
        [*_script("scrapyd-deploy", "scrapyd_client.deploy"), "-a", "-v", version],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"scrapyd-deploy -a failed:\n{proc.stdout}\n{proc.stderr}"
    answers = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [a["status"] for a in answers] == ["ok"] * len(servers), proc.stdout
    for server in servers:
        server.version = version
        server.responses.append(proc.stdout)
        listed = server.get("listversions.json", project=PROJECT)["versions"]
        assert version in listed, (server.name, listed)
    return answers


def copy_project(target: Path) -> Path:
    """What ``scrapyd-deploy`` needs from the checkout, plus what the egg must leave out."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "output")
    target.mkdir(parents=True)
    for name in ("setup.py", "pyproject.toml", "README.md", "scrapy.cfg"):
        shutil.copy2(REPO / name, target / name)
    for name in ("pgy_spider", "tests", "bench"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, target / name, ignore=ignore)
    return target


@pytest.fixture(scope="session")
def scrapyd_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("scrapyd-project") / "pgy-spider")


def _serve(
    tmp_path_factory: pytest.TempPathFactory,
    project: Path,
    name: str,
    *,
    items: bool,
    env_token: str | None,
) -> Iterator[ScrapydServer]:
    server = ScrapydServer(tmp_path_factory.mktemp(name), items=items, env_token=env_token)
    try:
        server.start()
        server.deploy(project)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scrapyd(
    tmp_path_factory: pytest.TempPathFactory, scrapyd_project: Path
) -> Iterator[ScrapydServer]:
    yield from _serve(
        tmp_path_factory, scrapyd_project, "scrapyd", items=False, env_token=ENV_TOKEN
    )


@pytest.fixture(scope="module")
def scrapyd_items(
    tmp_path_factory: pytest.TempPathFactory, scrapyd_project: Path
) -> Iterator[ScrapydServer]:
    yield from _serve(
        tmp_path_factory, scrapyd_project, "scrapyd-items", items=True, env_token=None
    )
