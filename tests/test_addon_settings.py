"""In-process tests of the add-on's settings and of note_request()."""

from __future__ import annotations

import pickle

import pytest
from scrapy.settings import Settings
from scrapy.utils.request import request_from_dict

from pgy_spider import note_request
from pgy_spider.addon import PgyAddon


def _with_addon(**project: object) -> Settings:
    settings = Settings()
    settings.setdict(dict(project), priority="project")
    PgyAddon().update_settings(settings)
    return settings


def test_the_addon_configures_the_api_and_nothing_else() -> None:
    settings = _with_addon()
    handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
    assert handlers["http"] == "pgy_spider.handler.TokenHttpDownloadHandler"
    assert handlers["https"] == "pgy_spider.handler.TokenHttpsDownloadHandler"
    # The handler the project had is where every other request goes.
    base = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
    assert settings["PGY_FALLBACK_HTTP_HANDLER"] == base
    assert settings["PGY_FALLBACK_HTTPS_HANDLER"] == base
    assert settings["DOWNLOADER_MIDDLEWARES"]["pgy_spider.middlewares.api.PgyApiMiddleware"]
    assert settings["HTTPCACHE_POLICY"] == "pgy_spider.cachepolicy.ApiCachePolicy"
    assert settings.getint("PGY_RETRY_TIMES") == 5
    for untouched in ("CONCURRENT_ITEMS", "SCHEDULER", "DUPEFILTER_CLASS", "LOG_FORMATTER"):
        assert settings.getpriority(untouched) == 0, untouched
    assert not settings.getdict("SPIDER_MIDDLEWARES") and not settings.getdict("ITEM_PIPELINES")
    assert settings.get("PGY_FAILED_PATH") is None  # no failed file unless the project asks


def test_the_projects_own_settings_win() -> None:
    mine = "myproject.handlers.MyHttpHandler"
    settings = _with_addon(
        PGY_RETRY_TIMES=9,
        DOWNLOAD_HANDLERS={"http": mine},
        HTTPCACHE_POLICY="scrapy.extensions.httpcache.RFC2616Policy",
    )
    assert settings.getint("PGY_RETRY_TIMES") == 9
    assert settings["PGY_FALLBACK_HTTP_HANDLER"] == mine  # still used for other requests
    assert settings["HTTPCACHE_POLICY"] == "scrapy.extensions.httpcache.RFC2616Policy"


def test_applying_it_twice_changes_nothing() -> None:
    settings = _with_addon()
    PgyAddon().update_settings(settings)
    middlewares = settings["DOWNLOADER_MIDDLEWARES"]
    assert list(middlewares).count("pgy_spider.middlewares.api.PgyApiMiddleware") == 1
    assert settings["PGY_FALLBACK_HTTP_HANDLER"].endswith("HTTP11DownloadHandler")


def test_a_note_request_is_plain_data_for_disk_queues() -> None:
    request = note_request(
        "https://www.xiaohongshu.com/explore/65C0B3FC000000002C037A49?xsec_token=x",
        meta={"mine": 1},
    )
    assert request.meta["pgy_note_id"] == "65c0b3fc000000002c037a49"
    assert request.meta["pgy_as_item"] is True and request.meta["mine"] == 1
    assert request.meta["dont_obey_robotstxt"] and request.dont_filter
    assert "token=" not in request.url
    again = request_from_dict(pickle.loads(pickle.dumps(request.to_dict())))
    assert again.url == request.url and again.meta == request.meta


@pytest.mark.parametrize("seed", ["not-an-id", "http://xhslink.com/abc", "65c0b3fc"])
def test_a_note_request_for_what_cannot_be_a_note_is_refused(seed: str) -> None:
    with pytest.raises(ValueError, match="not a note ID or note link"):
        note_request(seed)
