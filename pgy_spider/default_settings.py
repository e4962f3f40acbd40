"""The defaults of every ``PGY_*`` and ``MONGO_*`` setting: their one definition.

Plain module, like Scrapy's own ``default_settings``. The project's ``settings.py`` takes
them from here, and :mod:`pgy_spider.config` falls back to them for a setting that is not
set at all (another project's settings). Each is documented with its default in the README.
"""

from __future__ import annotations

PGY_TOKEN = None  # else PGY_TOKEN_FILE, else the JUSTONEAPI_TOKEN environment variable
PGY_TOKEN_FILE = None  # else the PGY_TOKEN_FILE environment variable
PGY_REGION = None  # else the PGY_REGION environment variable, else "global"
PGY_BASE_URL = None
PGY_RETRY_TIMES = 5
PGY_RETRY_BACKOFF = 1.0
PGY_RETRY_BACKOFF_MAX = 60.0
PGY_RATE_LIMIT_DELAY = 5.0
PGY_RATE_LIMIT_MAX_DELAY = 60.0
PGY_RATE_LIMIT_RETRIES = 30
PGY_MAX_BILLED_CALLS = 0  # billable answers a job may receive; 0 = no cap
PGY_FAILED_PATH = "output/failed.jsonl"
PGY_SUMMARY_PATH = "output/summary.json"
PGY_FEED_URI = "output/notes.jsonl"
PGY_ID_TIME_CHECK = True
PGY_PROGRESS = "auto"  # auto / bar / log / off (pgy_spider.config.PROGRESS_MODES)
PGY_PROGRESS_INTERVAL = 60.0  # seconds between progress lines in the log; 0 = none
PGY_CHECKPOINT_SECONDS = 1.0  # how often a JOBDIR job makes its resume state durable
PGY_INNER_DOWNLOAD_HANDLER = "pgy_spider.apiclient.ApiHttpDownloadHandler"
PGY_GC_THRESHOLD = 500_000  # the collector's first threshold during a crawl; 0 = Python's own
PGY_REFRESH_HOURS = 24.0
MONGO_URI = None  # else the MONGO_URI environment variable; unset = no MongoDB
MONGO_DATABASE = "pgy"
MONGO_COLLECTION = "notes"
PGY_MONGO_BATCH_SIZE = 500
PGY_MONGO_FLUSH_SECONDS = 2.0
PGY_MONGO_RETRIES = 3
PGY_MONGO_RETRY_BACKOFF = 0.5
PGY_MONGO_SPILL_PATH = "output/mongo-spill.jsonl"
PGY_QUEUE_URL = None  # else the PGY_QUEUE_URL environment variable; unset = one process
PGY_RUN = None  # else the PGY_RUN environment variable; required with PGY_QUEUE_URL
PGY_QUEUE_WAIT_SECONDS = 600.0  # how long a worker without seeds waits for its run to exist
PGY_QUEUE_CLAIM_SECONDS = 60.0  # no sign of life this long: a worker's notes are taken over
PGY_QUEUE_MAX_UNSETTLED = 10_000  # the most notes of a run queued and not settled at once
PGY_QUEUE_OUTAGE_SECONDS = 300.0  # how long a lost Redis is waited for mid-run, then exit 5
PGY_RUN_TTL_HOURS = 72.0  # a finished run's keys expire after this; 0 = never

__all__ = [name for name in dir() if name.isupper()]  # what settings.py takes


def defaults() -> dict[str, object]:
    """Every default above, by setting name."""
    return {name: value for name, value in globals().items() if name.isupper()}
