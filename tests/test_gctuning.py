"""In-process tests of the garbage collector's tuning while the engine runs."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import build_from_crawler

from pgy_spider import settings as project_settings
from pgy_spider.extensions.gctuning import GcTuning
from tests.support.components import project_crawler


@pytest.fixture
def python_thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 9, 11)  # distinct older thresholds: kept as they are
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def test_the_first_threshold_is_raised_while_the_engine_runs_and_put_back_after(
    python_thresholds: tuple[int, int, int],
) -> None:
    crawler = project_crawler(PGY_GC_THRESHOLD="250000")  # as -s gives it
    build_from_crawler(GcTuning, crawler)
    assert gc.get_threshold() == python_thresholds  # nothing changes before the engine starts
    crawler.signals.send_catch_log(signals.engine_started)
    assert gc.get_threshold() == (250_000, 9, 11)
    crawler.signals.send_catch_log(signals.engine_stopped)
    assert gc.get_threshold() == python_thresholds


def test_zero_leaves_pythons_collector_as_it_is(python_thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(NotConfigured):
        build_from_crawler(GcTuning, project_crawler(PGY_GC_THRESHOLD=0))
    assert gc.get_threshold() == python_thresholds


def test_the_project_tunes_the_collector_by_default() -> None:
    assert "pgy_spider.extensions.gctuning.GcTuning" in project_settings.EXTENSIONS
