"""Every reason the project names: why a seed did not become a note, why a crawl closed.

Plain module, the single definition of these strings: the failed file's ``reason``, the
``pgy/failed/<reason>`` and ``pgy/rejected/<reason>`` stats, the summary's ``*_by_reason``
keys and Scrapy's ``finish_reason`` all take their values from here.
"""

from __future__ import annotations

from typing import Final

# -- failure reasons: a seed that did not become a note -------------------------------

# Rejected before any call: the seed cannot succeed.
INVALID_ID: Final = "invalid_id"
SHORT_LINK: Final = "short_link"
REJECT_REASONS: Final = frozenset({INVALID_ID, SHORT_LINK})

# Failed after the API answered (or did not).
NOT_FOUND: Final = "not_found"  # code 201
BAD_REQUEST: Final = "bad_request"  # code 400
RETRIES_EXHAUSTED: Final = "retries_exhausted"  # 301/500 after PGY_RETRY_TIMES
RATE_LIMITED: Final = "rate_limited"  # 302 after PGY_RATE_LIMIT_RETRIES
TRANSPORT_ERROR: Final = "transport_error"  # no usable answer after retries
API_ERROR: Final = "api_error"  # any other code
EMPTY_DATA: Final = "empty_data"  # code 0 without a data object
INVALID_RESPONSE: Final = "invalid_response"  # data failed validation
DROPPED: Final = "dropped"  # an item pipeline dropped the note
PIPELINE_ERROR: Final = "pipeline_error"  # an item pipeline raised

# -- close reasons: Scrapy's finish_reason -------------------------------------------------

FINISHED: Final = "finished"  # Scrapy's own: every seed read and settled
SHUTDOWN: Final = "shutdown"  # Scrapy's own: SIGINT/SIGTERM

# The API refused the last usable token (the code each one stands for is in api.py).
INVALID_TOKEN: Final = "pgy_invalid_token"  # 100
QUOTA_EXCEEDED: Final = "pgy_quota_exceeded"  # 303
PERMISSION_DENIED: Final = "pgy_permission_denied"  # 600
INSUFFICIENT_BALANCE: Final = "pgy_insufficient_balance"  # 601
SPENDING_CAP: Final = "pgy_spending_cap"  # 602
TOKEN_CLOSE_REASONS: Final = frozenset(
    {INVALID_TOKEN, QUOTA_EXCEEDED, PERMISSION_DENIED, INSUFFICIENT_BALANCE, SPENDING_CAP}
)

# PGY_MAX_BILLED_CALLS: the job has received as many billable answers as it may.
BUDGET_EXHAUSTED: Final = "pgy_budget_exhausted"
# Stops that leave undone notes pending, to be resumed (exit status 3).
API_STOP_REASONS: Final = TOKEN_CLOSE_REASONS | {BUDGET_EXHAUSTED}

SEED_ERROR: Final = "pgy_seed_error"  # a seed source failed mid-run (ids_url, a changed file)
STORAGE_ERROR: Final = "pgy_storage_error"  # storage lost while checking freshness
OUTPUT_ERROR: Final = "pgy_output_error"  # an output file (feed, failed file, state) failed
CONFIG_ERROR: Final = "pgy_config_error"  # misconfigured where no preflight could stop it
QUEUE_ERROR: Final = "pgy_queue_error"  # the run's queue (Redis, PGY_QUEUE_URL) was lost mid-run
