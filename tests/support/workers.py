"""Pytest plugin: how ``pytest -n N`` (pytest-xdist, ``make test``) shares the tests out.

Every worker is a separate pytest process with its own session fixtures: its own API
simulator, MongoDB-compatible server and, for the modules below, its own Scrapyd, browser
or virtualenv. Tests go out one at a time to whichever worker is free (xdist's ``load``),
except that the tests of a module in ``ONE_WORKER_MODULES`` all go to one worker, so that
the costly fixture it shares is set up once rather than once per worker.

xdist's own way of saying that, ``--dist loadgroup`` with an ``xdist_group`` mark, does not
work with pytest 9 (pytest-xdist 3.8 marks the group in ``item._nodeid``, which pytest 9 no longer
reads), hence this scheduler: xdist's ``LoadScopeScheduling`` with one work unit per test,
or per module for those modules. Its scopes go out largest first, so these modules start
early and do not make the tail of the run.
"""

from __future__ import annotations

from typing import Any

import pytest

# Module -> the fixture its tests share, set up once on one worker.
ONE_WORKER_MODULES = {
    "tests/test_addon.py": "a virtualenv with the package pip-installed (~40 s)",
    "tests/test_scrapyd.py": "two Scrapyd servers with the project deployed",
    "tests/test_cluster.py": "a cluster of two Scrapyd servers with the project deployed",
    "tests/test_report_browser.py": "a headless Chromium",
    "tests/test_report_cli.py": "the known run's report, written by the command",
}


def work_unit(nodeid: str) -> str:
    """The scope a test is scheduled with: its module for ONE_WORKER_MODULES, else itself."""
    module = nodeid.split("::", 1)[0]
    return module if module in ONE_WORKER_MODULES else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "load":
        return None  # an explicit --dist other than the default: xdist's own scheduler
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return OneWorkerModules(config, log)
