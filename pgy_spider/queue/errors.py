"""Why a process of a run stops because of the run itself (plain module).

Each carries the close reason the crawl stops with; before a crawl starts they are user
errors like any other (one line, exit 2, no call).
"""

from __future__ import annotations

from pgy_spider import reasons
from pgy_spider.errors import UserError


class QueueStop(UserError):
    """The run cannot go on in this process; ``reason`` is the crawl's close reason."""

    reason: str = reasons.QUEUE_ERROR


class QueueUnavailable(QueueStop):
    """Redis cannot be reached or used; the message names it with its password masked."""


class RunMissing(QueueStop):
    """A worker without seeds waited ``PGY_QUEUE_WAIT_SECONDS`` and its run never appeared."""

    reason = reasons.CONFIG_ERROR
