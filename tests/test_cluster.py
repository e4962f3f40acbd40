"""A Scrapyd cluster end to end: two real Scrapyd hosts, one real Redis, the simulator.

What the README's "Run on a cluster" promises, checked here:

- ``scrapyd-deploy -a`` deploys the egg to every ``[deploy:NAME]`` host of scrapy.cfg;
- ``scrapy pgy_schedule`` schedules one job of the run per host and prints each job id; the
  hosts give their jobs the token and ``PGY_QUEUE_URL`` (with a password) through their own
  environment, so neither is in any file Scrapyd wrote or any answer it gave;
- the run finishes on both hosts: ``pgy_status`` says finished and balanced, the simulator
  billed every note once, the hosts' feeds together hold every note once;
- cancelling the jobs (``cancel.json``) stops the run cleanly; the same ``pgy_schedule``
  resumes it and nothing is paid twice beyond the calls in flight at the stop;
- a host that is down or a mistake in the command: one line each, non-zero exit, nothing
  scheduled anywhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.crawl import read_jsonl
from tests.support.ids import make_note_ids
from tests.support.redis import RedisServer
from tests.support.scrapyd import (
    PROJECT,
    SCRUBBED_ENV,
    ScrapydServer,
    copy_project,
    deploy_all,
    start_cluster,
)
from tests.support.simulator import SimulatorClient

pytestmark = pytest.mark.scrapyd

TOKENS = {"one": "test-token-3", "two": "test-token-2"}  # each host has its own
# Host two's API wants HTTP basic auth (its [deploy:two] has the login): never printed.
LOGINS = {"two": ("ops", "scrapyd-Pa55-c4nary")}
CONCURRENCY = 4
CLAIM_SECONDS = 5.0
# Relative paths: every job runs in its Scrapyd's working directory, so one set of
# templates sent to every host lands in each host's own out/ (the README's advice).
OUTPUTS = {
    "PGY_FEED_URI": "out/%(run)s-%(worker)s-notes.jsonl",
    "PGY_FAILED_PATH": "out/%(run)s-%(worker)s-failed.jsonl",
    "PGY_SUMMARY_PATH": "out/%(run)s-%(worker)s-summary.json",
}
SCHEDULED = re.compile(r"^(\w+) \((\S+)\): scheduled job (\w+) of run (\S+) \((.+)\)$")


class Cluster:
    def __init__(self, project: Path, servers: list[ScrapydServer], redis: RedisServer):
        self.project = project
        self.servers = {s.name: s for s in servers}
        self.redis = redis

    def command_env(self, **extra: str) -> dict[str, str]:
        """The deploying machine: no token, no queue URL, no ~/.scrapy.cfg or ~/.netrc."""
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env["HOME"] = str(self.project)
        env.update(extra)
        return env

    def scrapy(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scrapy", *args],
            cwd=self.project,
            env=env or self.command_env(),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )

    def schedule(self, run: str, sim: SimulatorClient, *args: str) -> dict[str, str]:
        """``scrapy pgy_schedule`` for ``run``: the job id on each host."""
        settings = {
            "PGY_RUN": run,
            "PGY_BASE_URL": sim.url,
            "PGY_RETRY_BACKOFF": "0",
            "CONCURRENT_REQUESTS": str(CONCURRENCY),
            "PGY_QUEUE_CLAIM_SECONDS": str(CLAIM_SECONDS),
            **OUTPUTS,
        }
        argv = ["pgy_schedule", *args]
        for name, value in settings.items():
            argv += ["-s", f"{name}={value}"]
        proc = self.scrapy(*argv)
        assert proc.returncode == 0, proc.stderr
        assert LOGINS["two"][1] not in proc.stdout + proc.stderr
        jobs = {}
        for line in proc.stdout.splitlines():
            match = SCHEDULED.match(line)
            assert match, line
            name, url, job, named_run, _role = match.groups()
            assert named_run == run and url == self.servers[name].url
            jobs[name] = job
        assert jobs.keys() == self.servers.keys(), proc.stdout
        return jobs

    def status(self, run: str) -> dict[str, Any]:
        # From the deploying machine, the queue URL in its environment (not on the line).
        env = self.command_env(PGY_QUEUE_URL=self.redis.url, PGY_RUN=run)
        proc = self.scrapy("pgy_status", "-s", f"PGY_QUEUE_CLAIM_SECONDS={CLAIM_SECONDS}", env=env)
        assert proc.returncode == 0, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def wait(self, jobs: dict[str, str]) -> None:
        for name, job in jobs.items():
            self.servers[name].wait(job)

    def exit_lines(self, jobs: dict[str, str]) -> dict[str, str]:
        return {name: self.servers[name].exit_line(job) for name, job in jobs.items()}

    def feeds(self, run: str) -> list[Path]:
        return sorted(
            p for s in self.servers.values() for p in (s.root / "out").glob(f"{run}-*-notes.jsonl")
        )

    def feed_notes(self, run: str) -> Counter[str]:
        return Counter(n["noteId"] for path in self.feeds(run) for n in read_jsonl(path))

    def assert_no_secret(self) -> None:
        assert self.redis.password
        for server in self.servers.values():
            server.page("jobs")
            for secret in (*TOKENS.values(), self.redis.password):
                assert server.find_secret(secret) == [], f"{server.name} shows a secret"


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, secured_redis: RedisServer
) -> Iterator[Cluster]:
    project = copy_project(tmp_path_factory.mktemp("cluster-project") / "pgy-spider")
    root = tmp_path_factory.mktemp("cluster")
    envs = {name: {"PGY_QUEUE_URL": secured_redis.url} for name in TOKENS}
    servers = start_cluster(root, envs, env_tokens=TOKENS, logins=LOGINS)
    try:
        deploy_all(project, servers)
        yield Cluster(project, servers, secured_redis)
    finally:
        for server in servers:
            server.stop()


def seeds_url(sim: SimulatorClient, run: str, ids: list[str]) -> str:
    """A seed file every host fetches (ids_url): the IDs, two duplicates, one bad line."""
    lines = [*ids, ids[0], "not-a-note", ids[1]]
    (sim.seeds_dir / f"{run}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"{sim.url}/seeds/{run}.txt"


def assert_finished(status: dict[str, Any], ids: list[str]) -> None:
    assert status["state"] == "finished" and status["finish_reason"] == "finished", status
    assert status["balanced"] is True and status["pending"] == 0
    assert (status["seeds_read"], status["duplicates"]) == (len(ids) + 3, 2)
    assert (status["notes_written"], status["rejected"]) == (len(ids), 1)


def test_one_run_on_two_hosts_bills_every_note_once(
    cluster: Cluster, sim: SimulatorClient, run_name: str
) -> None:
    sim.configure(latency_ms=100)  # both jobs are still taking notes when the other starts
    ids = make_note_ids(300, 10_000)
    jobs = cluster.schedule(run_name, sim, "-a", f"ids_url={seeds_url(sim, run_name, ids)}")
    cluster.wait(jobs)
    assert all("Process finished" in line for line in cluster.exit_lines(jobs).values())

    status = cluster.status(run_name)
    assert_finished(status, ids)
    assert len(status["workers"]) == 2  # one process on each host took part
    assert {w["state"] for w in status["workers"]} == {"closed"}
    stats = sim.stats()
    assert stats["by_note"] == dict.fromkeys(ids, 1)  # billed once, run-wide
    # Each host's jobs called with the token of its own environment.
    assert set(stats["by_token"]) <= set(TOKENS.values())
    assert sum(stats["by_token"].values()) == len(ids)
    assert cluster.feed_notes(run_name) == Counter(dict.fromkeys(ids, 1))
    assert len(cluster.feeds(run_name)) == 2  # each host wrote its own
    for name, server in cluster.servers.items():
        summaries = list((server.root / "out").glob(f"{run_name}-*-summary.json"))
        assert len(summaries) == 1, name
        summary = json.loads(summaries[0].read_text(encoding="utf-8"))
        assert (summary["run"], summary["exit_code"]) == (run_name, 0)
    cluster.assert_no_secret()


def test_cancelled_jobs_resume_when_the_run_is_scheduled_again(
    cluster: Cluster, sim: SimulatorClient, run_name: str
) -> None:
    sim.configure(latency_ms=200)
    ids = make_note_ids(400, 20_000)
    args = ("-a", f"ids_url={seeds_url(sim, run_name, ids)}")
    first = cluster.schedule(run_name, sim, *args)
    deadline = time.monotonic() + 120
    while sim.stats()["calls"] < 60:  # well under way on both hosts, far from done
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)
    for name, job in first.items():
        cluster.servers[name].cancel(job)  # SIGINT: the run stops cleanly
    cluster.wait(first)
    assert all("exitstatus=4" in line for line in cluster.exit_lines(first).values())

    stopped = cluster.status(run_name)
    assert stopped["state"].startswith("stopped:"), stopped["state"]
    assert stopped["pending"] > 0 and stopped["balanced"] is True
    paid_before = sim.stats()["by_note"]
    assert 0 < len(paid_before) < len(ids)

    second = cluster.schedule(run_name, sim, *args)  # the same command resumes it
    assert set(second.values()).isdisjoint(first.values())
    cluster.wait(second)
    assert all("Process finished" in line for line in cluster.exit_lines(second).values())

    assert_finished(cluster.status(run_name), ids)
    paid = sim.stats()["by_note"]
    assert set(paid) == set(ids)
    twice = {n: c for n, c in paid.items() if c > 1}
    # Only calls in flight at the stop may be paid again: at most CONCURRENT_REQUESTS a host.
    assert sum(c - 1 for c in twice.values()) <= CONCURRENCY * len(first), twice
    in_feeds = cluster.feed_notes(run_name)
    assert set(in_feeds) == set(ids)
    assert {n for n, c in in_feeds.items() if c > 1} <= set(twice)
    cluster.assert_no_secret()


def schedule_with_config(
    cluster: Cluster, tmp_path: Path, config: str, run: str
) -> subprocess.CompletedProcess[str]:
    """``pgy_schedule`` from a copy of the project with this scrapy.cfg."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "scrapy.cfg").write_text(config, encoding="utf-8")
    (project / "pgy_spider").symlink_to(cluster.project / "pgy_spider")
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "pgy_schedule", "-s", f"PGY_RUN={run}",
         "-a", f"ids={make_note_ids(1, 30_000)[0]}"],
        cwd=project,
        env=cluster.command_env(HOME=str(project)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip


def test_a_host_down_schedules_nothing_anywhere(
    cluster: Cluster, sim: SimulatorClient, run_name: str, tmp_path: Path
) -> None:
    """scrapy.cfg names a third host that does not answer: one line for it, exit 1, and no
    job on the hosts that would have taken one."""
    config = (cluster.project / "scrapy.cfg").read_text(encoding="utf-8")
    config += "\n[deploy:three]\nurl = http://127.0.0.1:9/\nusername = ops\npassword = hunter2-x\n"
    before = {n: s.get("listjobs.json", project=PROJECT) for n, s in cluster.servers.items()}
    proc = schedule_with_config(cluster, tmp_path, config, run_name)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[2] == "error: three (http://127.0.0.1:9): cannot reach it (Connection refused)"
    assert lines[:2] == [
        f"error: {n} ({s.url}): not scheduled: another host failed its check"
        for n, s in cluster.servers.items()
    ]
    assert len(lines) == 3 and "hunter2" not in proc.stderr
    after = {n: s.get("listjobs.json", project=PROJECT) for n, s in cluster.servers.items()}
    assert after == before
    assert sim.stats()["calls"] == 0


def test_a_wrong_login_is_named_and_schedules_nothing(
    cluster: Cluster, sim: SimulatorClient, run_name: str, tmp_path: Path
) -> None:
    good = LOGINS["two"][1]
    config = (cluster.project / "scrapy.cfg").read_text(encoding="utf-8")
    assert f"password = {good}" in config  # what scrapyd-deploy -a deployed with
    proc = schedule_with_config(cluster, tmp_path, config.replace(good, "wrong-Pa55"), run_name)
    assert proc.returncode == 1, proc.stderr
    two = cluster.servers["two"]
    assert proc.stderr.splitlines() == [
        f"error: one ({cluster.servers['one'].url}): not scheduled: another host failed its check",
        f"error: two ({two.url}): HTTP 401 Unauthorized from listspiders.json: "
        "check username/password of its [deploy] section",
    ]
    assert "wrong-Pa55" not in proc.stderr and good not in proc.stderr
    assert two.get("listjobs.json", project=PROJECT)["pending"] == []
    assert sim.stats()["calls"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", "ids=x"], "error: no run name: pass -s PGY_RUN=NAME"),
        (
            ["-s", "PGY_RUN=r", "-s", "PGY_TOKEN=test-token"],
            "error: -s PGY_TOKEN=... would be sent",
        ),
        (
            ["-s", "PGY_RUN=r", "-s", "PGY_QUEUE_URL=redis://:pw-canary@q:6379/0"],
            "error: -s PGY_QUEUE_URL=... holds a password",
        ),
        (["-s", "PGY_RUN=r", "-s", "JOBDIR=jobs/r"], "error: -s JOBDIR=... is refused"),
        (["-s", "PGY_RUN=r", "--hosts", "nine"], "error: no [deploy:NAME] section for nine"),
        (["-s", "PGY_RUN=r", "--readers", "nine"], "error: --readers nine: not among"),
        (["-s", "PGY_RUN=bad name"], "error: PGY_RUN 'bad name' is not a run name"),
    ],
)
def test_a_mistake_is_one_line_and_nothing_is_sent(
    cluster: Cluster, args: list[str], message: str
) -> None:
    before = {n: s.get("listjobs.json", project=PROJECT) for n, s in cluster.servers.items()}
    proc = cluster.scrapy("pgy_schedule", *args)
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(message), proc.stderr
    assert "pw-canary" not in proc.stderr
    after = {n: s.get("listjobs.json", project=PROJECT) for n, s in cluster.servers.items()}
    assert after == before
