"""Exit statuses of ``scrapy crawl note_detail`` (the README's table), from the close reason.

Plain module: the run's accounting picks the status once, when the crawl closes, and the
``crawl`` command returns it.
"""

from __future__ import annotations

from typing import Final

from pgy_spider import reasons

OK: Final = 0  # the run finished (individual failures are in the failed file)
ERROR: Final = 1  # an unexpected internal error
USAGE: Final = 2  # a user error, before any call
API_STOP: Final = 3  # a fatal API stop or the budget spent: resume with JOBDIR
INTERRUPTED: Final = 4  # SIGINT/SIGTERM: resume with JOBDIR
STORAGE: Final = 5  # notes not stored where they should be (spilled, lost, an output failed)


def exit_code_for(reason: str, *, storage_failed: bool = False) -> int:
    """The exit status of a crawl that closed with ``reason``."""
    if storage_failed or reason in (
        reasons.STORAGE_ERROR,
        reasons.OUTPUT_ERROR,
        reasons.QUEUE_ERROR,
    ):
        return STORAGE
    if reason == reasons.FINISHED:
        return OK
    if reason in reasons.API_STOP_REASONS:
        return API_STOP
    if reason == reasons.SHUTDOWN:
        return INTERRUPTED
    if reason in (reasons.SEED_ERROR, reasons.CONFIG_ERROR):
        return USAGE
    return ERROR
