"""The request for one note (pgy_spider/noterequest.py): sent and fingerprinted as Scrapy would."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.utils.request import fingerprint

from pgy_spider import api
from pgy_spider.noterequest import api_request, note_request

NOTE = "64b95d01000000000c034587"


@pytest.mark.parametrize(
    "base_url", [*api.REGIONS.values(), "http://127.0.0.1:8080", "https://api.example.com/"]
)
def test_a_plain_base_url_is_sent_verbatim_with_scrapys_url_and_fingerprint(
    base_url: str,
) -> None:
    # verbatim_url spares Scrapy re-quoting every request's URL; the URL and the fingerprint
    # (which the HTTP cache keys on) are what they were without it.
    request = api_request(base_url, NOTE, callback=None, errback=None)
    assert request.meta["verbatim_url"] is True
    plain = Request(api.note_url(base_url, NOTE))  # as Scrapy builds it, no verbatim_url
    assert request.url == plain.url == api.note_url(base_url, NOTE)
    assert fingerprint(request) == fingerprint(plain)


@pytest.mark.parametrize(
    "base_url", ["https://API.Example.com", "https://例子.cn", "https://api.example.com/a b"]
)
def test_a_base_url_scrapy_would_change_is_left_to_scrapy(base_url: str) -> None:
    request = api_request(base_url, NOTE, callback=None, errback=None)
    assert "verbatim_url" not in request.meta
    plain = Request(api.note_url(base_url, NOTE))
    assert request.url == plain.url != api.note_url(base_url, NOTE)
    assert fingerprint(request) == fingerprint(plain)


def test_a_retry_copy_stays_verbatim() -> None:
    request = note_request(NOTE)
    retry = request.replace(priority=-1)
    assert retry.meta["verbatim_url"] is True
    assert retry.url == request.url
