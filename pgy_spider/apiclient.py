"""A lean HTTP download handler for the API: one aiohttp session, no streaming machinery.

At high concurrency the crawl is CPU-bound inside Scrapy, and the HTTP client is its
biggest single cost. API answers are small JSON bodies, so this handler sends a GET
with aiohttp and builds a plain Scrapy ``Response`` from the whole body. It honours
what matters of Scrapy's contract — ``download_timeout``/``DOWNLOAD_TIMEOUT``,
``DOWNLOAD_MAXSIZE``, the ``proxy`` meta key (``HttpProxyMiddleware``),
``DOWNLOAD_VERIFY_CERTIFICATES`` and Scrapy's download exception types — and never
re-sends a call by itself: every retry is the API middleware's decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    UnsupportedURLSchemeError,
)
from scrapy.http import Headers, Response
from scrapy.utils.ssl import _make_ssl_context

if TYPE_CHECKING:
    import ssl

    from scrapy import Request
    from scrapy.crawler import Crawler


class ApiHttpDownloadHandler(BaseDownloadHandler):
    lazy = False

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        settings = crawler.settings
        self._default_timeout = settings.getfloat("DOWNLOAD_TIMEOUT")
        self._maxsize = settings.getint("DOWNLOAD_MAXSIZE")
        self._ssl: ssl.SSLContext = _make_ssl_context(settings)
        self._limit = max(settings.getint("CONCURRENT_REQUESTS"), 1)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily: a session must be made inside the running event loop.
        if self._session is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, limit_per_host=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent",),
            )
            # aiohttp silently re-sends an idempotent request once when a kept-alive
            # connection turns out to be closed: a possibly billed call nobody counts.
            session._retry_connection = False
            self._session = session
        return self._session

    async def download_request(self, request: Request, url: str | None = None) -> Response:
        """Fetch ``url`` (default ``request.url``); the response carries ``request.url``."""
        target = url or request.url
        timeout = float(request.meta.get("download_timeout") or self._default_timeout)
        maxsize = int(request.meta.get("download_maxsize") or self._maxsize)
        headers = {
            k.decode("latin-1"): b", ".join(v).decode("latin-1") for k, v in request.headers.items()
        }
        proxy = request.meta.get("proxy")
        try:
            async with self._get_session().request(
                request.method,
                target,
                data=request.body or None,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                ssl=self._ssl,
                allow_redirects=False,
                proxy=proxy,
            ) as response:
                length = response.content_length
                if maxsize and length is not None and length > maxsize:
                    raise DownloadFailedError(f"answer of {length} bytes over DOWNLOAD_MAXSIZE")
                body = await response.read()
                if maxsize and len(body) > maxsize:
                    raise DownloadFailedError(f"answer of {len(body)} bytes over DOWNLOAD_MAXSIZE")
                return Response(
                    url=request.url,
                    status=response.status,
                    headers=Headers(list(response.headers.items())),
                    body=body,
                    request=request,
                )
        except TimeoutError as exc:
            raise DownloadTimeoutError(
                f"Getting {target} took longer than {timeout} seconds."
            ) from exc
        except (aiohttp.InvalidUrlClientError, aiohttp.NonHttpUrlClientError) as exc:
            raise UnsupportedURLSchemeError(str(exc)) from exc
        except aiohttp.ClientConnectorDNSError as exc:
            raise CannotResolveHostError(str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise DownloadConnectionRefusedError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise DownloadFailedError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
