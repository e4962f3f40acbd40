"""Shared fixtures (the API simulator, the MongoDB-compatible server), how ``-n`` shares the
tests out, and the rule that a skipped test fails the run."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.support.simulator",
    "tests.support.mongo",
    "tests.support.redis",
    "tests.support.workers",
]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A skipped test is an untested feature: CI must not pass on it (e.g. a missing
    # MongoDB server or Scrapyd). Fail the run instead. With pytest-xdist this runs in the
    # controller, whose reporter holds every worker's reports (a worker has no reporter).
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == 0:
        reporter.write_line(f"FAILED: {skipped} test(s) skipped; every test must run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
