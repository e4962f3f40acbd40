"""How this project shapes Scrapy's settings when ``note_detail`` runs.

Applied by the spider's ``update_settings`` (so before any component reads them). Only
settings the user did not set themselves are changed: a value at ``project`` priority or
above (``settings.py``, ``-s``, the spider) is the user's.
"""

from __future__ import annotations

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

from pgy_spider import default_settings, jobstate


def _unset(settings: BaseSettings, name: str) -> bool:
    priority = settings.getpriority(name)
    return priority is None or priority < SETTINGS_PRIORITIES["project"]


def shape(settings: BaseSettings) -> None:
    # Every call goes to one host, whose per-domain limit (Scrapy's default 8) would
    # otherwise cap CONCURRENT_REQUESTS silently.
    if _unset(settings, "CONCURRENT_REQUESTS_PER_DOMAIN"):
        settings.set(
            "CONCURRENT_REQUESTS_PER_DOMAIN",
            settings.getint("CONCURRENT_REQUESTS"),
            priority="spider",
        )
    if not settings.getdict("FEEDS"):
        # No -o/-O/FEEDS given: the default JSON-lines feed (PGY_FEED_URI). A resumed job
        # appends to it, a new run replaces it.
        resuming = jobstate.probe(settings.get("JOBDIR")) is not None
        feed_uri = settings.get("PGY_FEED_URI") or default_settings.PGY_FEED_URI
        settings.set(
            "FEEDS",
            {feed_uri: {"format": "jsonlines", "encoding": "utf-8", "overwrite": not resuming}},
            priority="spider",
        )
