"""The add-on: what a Scrapy project needs to request PGY notes, and nothing more.

Enable it with ``ADDONS = {"pgy_spider.addon.PgyAddon": 100}``. It configures, at the
add-on priority (so the project's own settings win):

- the token download handler for ``http``/``https``: it adds the token to API requests at
  the moment of sending and hands every other request to the handler the project had
  before (Scrapy's own by default), kept in ``PGY_FALLBACK_HTTP_HANDLER`` /
  ``PGY_FALLBACK_HTTPS_HANDLER``;
- the business-code middleware (retries with backoff, the 302 pause, failures, token
  retirement, the fatal stop, note validation);
- the HTTP cache policy that never caches an API failure;
- the API's settings with this project's defaults (:mod:`pgy_spider.default_settings`).

It changes nothing else: not the project's middlewares, ``CONCURRENT_ITEMS``, the
scheduler, the dupefilter or logging. This project's own ``settings.py`` uses it too, and
adds its speed shaping there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.settings import default_settings as scrapy_defaults
from scrapy.utils.misc import load_object

from pgy_spider import default_settings

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

HANDLERS = {
    "http": "pgy_spider.handler.TokenHttpDownloadHandler",
    "https": "pgy_spider.handler.TokenHttpsDownloadHandler",
}
_SCRAPY_HANDLERS = frozenset(scrapy_defaults.DOWNLOAD_HANDLERS_BASE.values())
MIDDLEWARE = "pgy_spider.middlewares.api.PgyApiMiddleware"
MIDDLEWARE_ORDER = 585  # answers reach it after decompression (590), before Scrapy's retry (550)
CACHE_POLICY = "pgy_spider.cachepolicy.ApiCachePolicy"
# The settings of the API itself; output paths, MongoDB and progress are this project's.
API_SETTINGS = (
    "PGY_TOKEN",
    "PGY_TOKEN_FILE",
    "PGY_REGION",
    "PGY_BASE_URL",
    "PGY_RETRY_TIMES",
    "PGY_RETRY_BACKOFF",
    "PGY_RETRY_BACKOFF_MAX",
    "PGY_RATE_LIMIT_DELAY",
    "PGY_RATE_LIMIT_MAX_DELAY",
    "PGY_RATE_LIMIT_RETRIES",
    "PGY_INNER_DOWNLOAD_HANDLER",
)


class PgyAddon:
    def update_settings(self, settings: BaseSettings) -> None:
        handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
        for scheme, ours in HANDLERS.items():
            fallback = f"PGY_FALLBACK_{scheme.upper()}_HANDLER"
            current = handlers.get(scheme)
            if not settings.get(fallback) and current and not _is(current, ours):
                settings.set(fallback, current, "addon")
            settings["DOWNLOAD_HANDLERS"][scheme] = ours
        _add_component(settings, "DOWNLOADER_MIDDLEWARES", MIDDLEWARE, MIDDLEWARE_ORDER)
        settings.set("HTTPCACHE_POLICY", CACHE_POLICY, "addon")
        for name in API_SETTINGS:
            settings.set(name, getattr(default_settings, name), "addon")


def _is(value: Any, path: str) -> bool:
    if value == path:
        return True
    if isinstance(value, str) and value in _SCRAPY_HANDLERS:
        # Scrapy's own handler, not ours: known without importing it (the HTTP/1.1
        # handler's TLS modules cost ~100 ms of every start-up; it is built only if used).
        return False
    try:
        return load_object(value) is load_object(path) if value else False
    except (ImportError, AttributeError, ValueError, NameError):
        return False


def _add_component(settings: BaseSettings, name: str, path: str, order: int) -> None:
    """Add a component unless the project lists it already (by path or class)."""
    components = settings[name]
    if any(_is(existing, path) for existing in components):
        return
    components[path] = order
