"""The checks a process of a run makes before its crawl starts (before any call).

Redis reachable with the URL's login, version 7.0 or newer; and with seed arguments the run
created, or checked to read the same sources. A worker without seeds does not wait here:
it waits for its run once the crawl has started (``PGY_QUEUE_WAIT_SECONDS``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pgy_spider.config import QueueConfig
from pgy_spider.queue import identity, scripts
from pgy_spider.queue.client import check_server, redis_errors, sync_client, unavailable
from pgy_spider.queue.keys import GROUP, RunKeys
from pgy_spider.seeds import SeedFileError


def check_run(config: QueueConfig, sources: list[str] | None) -> None:
    """Raise a UserError (one line, the URL masked) for the first problem found."""
    client = sync_client(config.url)
    try:
        check_server(client, config.url)
        if sources is None:
            return
        k = RunKeys(config.run)
        try:
            status, theirs = client.register_script(scripts.JOIN)(
                keys=k.join_keys(),
                args=[identity.encode(sources), datetime.now(UTC).isoformat(), GROUP],
            )
        except redis_errors() as exc:
            raise unavailable(config.url, exc) from None
        if status == b"exists":
            problem = identity.difference(config.run, identity.decode(theirs), sources)
            if problem:
                raise SeedFileError(problem)
    finally:
        client.close()
