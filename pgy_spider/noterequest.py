"""The Scrapy request for one note.

:func:`note_request` is the public way (another project's spiders yield it); the
``note_detail`` spider builds its requests with :func:`api_request`. The URL carries no
token: the download handler adds it at the moment of sending. Everything in the request
is plain data, so it survives Scrapy's disk queues (a ``JOBDIR``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from scrapy import Request
from w3lib.url import canonicalize_url, safe_url_string

from pgy_spider import api, meta
from pgy_spider.noteid import parse_seed


def note_request(
    note_id: str,
    *,
    callback: Callable[..., Any] | None = None,
    errback: Callable[..., Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Request:
    """A request for one note (a note ID, or a note link).

    With no ``callback`` the validated, normalised note is the request's item (it reaches
    the project's pipelines and feeds); with one, the callback gets the response with the
    note in ``response.meta["pgy_note"]``. A note that fails (not found, retries exhausted,
    invalid data, ...) is logged as a warning and counted in ``pgy/failed/<reason>``, and
    goes to ``errback`` when there is one. The region's base URL is applied when the request
    is sent (``PGY_REGION`` / ``PGY_BASE_URL``). Raises ValueError for a seed that cannot
    be a note (it would be a paid, wasted call).
    """
    parsed, reason = parse_seed(note_id)
    if parsed is None:
        raise ValueError(f"{note_id[:80]!r} is not a note ID or note link ({reason})")
    extra = dict(meta or {})
    if callback is None:
        extra[_meta.AS_ITEM] = True
    return api_request(
        api.REGIONS[api.DEFAULT_REGION],
        parsed,
        callback=callback,
        errback=errback,
        extra_meta=extra,
    )


def api_request(
    base_url: str,
    note_id: str,
    *,
    callback: Callable[..., Any] | None,
    errback: Callable[..., Any] | None,
    extra_meta: dict[str, Any] | None = None,
) -> Request:
    meta = {
        **(extra_meta or {}),
        _meta.API: True,
        _meta.NOTE_ID: note_id,
        "dont_retry": True,  # the API middleware retries by business code
        "dont_redirect": True,
        "dont_obey_robotstxt": True,  # an API endpoint, not a page
        "handle_httpstatus_all": True,  # 4xx/5xx may carry a JSON code
    }
    if _url_is_final(base_url):
        meta["verbatim_url"] = True
    return Request(
        api.note_url(base_url, note_id),
        callback=callback,
        errback=errback,
        dont_filter=True,  # deduplicated by note ID before requests are made
        meta=meta,
    )


@functools.lru_cache(maxsize=16)
def _url_is_final(base_url: str) -> bool:
    """Whether every note URL on ``base_url`` is already what Scrapy would make of it.

    Then the request is marked ``verbatim_url`` (Scrapy's meta key): Scrapy skips re-quoting
    the URL on every request (``safe_url_string``, ~2 % of a busy crawl's CPU) and
    fingerprints it as is, which is the same fingerprint as before (the URL is already
    canonical), so an HTTP cache made earlier still answers. A note ID is 24 hex digits, so
    one sample ID stands for all; a base URL that quoting or canonicalising would change
    (a space, non-ASCII, upper-case host, ...) is left to Scrapy as usual.
    """
    url = api.note_url(base_url, "0" * 24)
    return safe_url_string(url) == url and canonicalize_url(url) == url


def note_item(response: Any) -> dict[str, Any]:
    """The callback of a note_request() without one: the validated note is the item."""
    note: dict[str, Any] = response.meta[_meta.NOTE]
    return note


_meta = meta  # the module, under a name the ``meta`` parameter does not shadow
