"""The Scrapy request for one note, as every caller builds it.

The URL carries no token: the download handler adds it at the moment of sending.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrapy import Request

from pgy_spider import api, meta


def api_request(
    base_url: str,
    note_id: str,
    *,
    callback: Callable[..., Any] | None,
    errback: Callable[..., Any] | None,
    extra_meta: dict[str, Any] | None = None,
) -> Request:
    return Request(
        api.note_url(base_url, note_id),
        callback=callback,
        errback=errback,
        dont_filter=True,  # deduplicated by note ID before requests are made
        meta={
            **(extra_meta or {}),
            meta.API: True,
            meta.NOTE_ID: note_id,
            "dont_retry": True,  # the API middleware retries by business code
            "dont_redirect": True,
            "handle_httpstatus_all": True,  # 4xx/5xx may carry a JSON code
        },
    )
