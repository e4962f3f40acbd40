"""Private names of Scrapy and aiohttp the project relies on (and of pytest-xdist, the test
suite), pinned.

Each is used because no public API does the job (the reason is at the place of use). If an
upgrade renames or drops one, this test fails loudly instead of the behaviour silently
changing.
"""

from __future__ import annotations

import inspect

import aiohttp
from scrapy.utils import ssl as scrapy_ssl


def test_scrapy_builds_its_ssl_context_from_settings() -> None:
    # pgy_spider.apiclient: the same TLS settings (DOWNLOAD_VERIFY_CERTIFICATES, ...) as
    # Scrapy's own handlers.
    assert callable(scrapy_ssl._make_ssl_context)
    assert list(inspect.signature(scrapy_ssl._make_ssl_context).parameters) == ["settings"]


def test_aiohttp_session_can_be_told_not_to_resend() -> None:
    # pgy_spider.apiclient: aiohttp re-sends an idempotent request once when a kept-alive
    # connection turns out to be closed (a second paid call nobody counts) unless this
    # attribute is False.
    source = inspect.getsource(aiohttp.ClientSession)
    assert "_retry_connection" in source


def test_xdist_schedules_by_the_scope_its_split_scope_gives() -> None:
    # tests/support/workers.py: the scheduler of `make test` (-n 2) keeps the modules whose
    # fixture is costly on one worker by overriding this method. Renamed, the override would
    # quietly stop grouping them.
    from xdist.scheduler import LoadScopeScheduling

    from tests.support.workers import work_unit

    assert list(inspect.signature(LoadScopeScheduling._split_scope).parameters) == [
        "self",
        "nodeid",
    ]
    assert "_split_scope(nodeid)" in inspect.getsource(LoadScopeScheduling.schedule)
    assert work_unit("tests/test_addon.py::test_x[a]") == "tests/test_addon.py"
    assert work_unit("tests/test_noteid.py::test_y[b]") == "tests/test_noteid.py::test_y[b]"


def test_scrapy_stats_collector_keeps_its_stats_in_a_private_dict() -> None:
    # pgy_spider.stats: the collector reads and writes Scrapy's own `_stats` dict (what
    # get_stats(), `spider_stats` and the stats dump use), and replaces the
    # `__getattribute__` shim Scrapy 2.19 puts on every attribute read. If Scrapy drops the
    # shim, pgy_spider/stats.py is no longer needed.
    from scrapy.statscollectors import StatsCollector

    assert "__getattribute__" in vars(StatsCollector)
    source = inspect.getsource(StatsCollector)
    assert "self._stats: StatsT = {}" in source
    assert "self._persist_stats(self._stats)" in source
