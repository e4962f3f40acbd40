"""The HTTP download handler the token handler wraps: one aiohttp session, Scrapy's contract.

It behaves as Scrapy 2.19 documents for download handlers (and as its own experimental
``AiohttpDownloadHandler`` does), with two differences that matter when every call is paid:

- it never re-sends a request by itself: aiohttp silently sends an idempotent request a
  second time when the connection drops before the answer, a call the crawl would never
  see or count; every retry is the API middleware's decision;
- the URL to send can be given apart from the request (``download_request(request, url=...)``):
  the token handler adds the token there, so no copy of the request or of the response is
  made per call, and logs, errors and the response only ever carry the tokenless URL.

What it honours: ``download_timeout``/``DOWNLOAD_TIMEOUT``; ``DOWNLOAD_MAXSIZE`` and
``DOWNLOAD_WARNSIZE`` (with their meta keys; the limit is checked against Content-Length and
again while the body streams in); ``DOWNLOAD_FAIL_ON_DATALOSS``; the ``proxy`` meta key set
by ``HttpProxyMiddleware`` (``HTTP_PROXY``/``HTTPS_PROXY``) or by hand, with credentials sent
to the proxy only; ``DOWNLOAD_BIND_ADDRESS`` and the ``bindaddress`` meta key;
``DOWNLOAD_VERIFY_CERTIFICATES`` and the TLS settings; ``verbatim_url``; the
``headers_received``/``bytes_received`` signals (a handler may stop the download with
``StopDownload``). Request headers are sent as given (no defaults added, repeated values as
repeated lines); the body is returned as received: decompressing is
``HttpCompressionMiddleware``'s job, so the HTTP cache stores what the wire carried.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import logging
import ssl
import time
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote

import aiohttp
import yarl
from pydispatch.dispatcher import getAllReceivers, liveReceivers
from scrapy import signals
from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
    StopDownload,
    UnsupportedURLSchemeError,
)
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.ssl import _make_ssl_context
from scrapy.utils.url import add_http_if_no_scheme
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

BindAddress = tuple[str, int]
PROXY_AUTHORIZATION = b"Proxy-Authorization"
# Nothing is added to the request headers Scrapy built (aiohttp adds only Host, and
# Content-Length for a body).
SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
_PROTOCOLS = {aiohttp.HttpVersion11: "HTTP/1.1", aiohttp.HttpVersion10: "HTTP/1.0"}
# A crawl talks to a handful of hosts: parse each peer address once.
_ip_address = functools.lru_cache(maxsize=64)(ipaddress.ip_address)


# The response class by (Content-Type, Content-Encoding): what Scrapy's responsetypes
# decides from these two headers alone (the URL and the body are looked at only when they
# name no class), so it is asked once per pair instead of once per call.
_CLASS_BY_TYPE: dict[tuple[bytes | None, bytes | None], type[Response]] = {}


# What the TLS context is made of (Scrapy's _make_ssl_context reads these).
TLS_SETTINGS = (
    "DOWNLOADER_CLIENT_TLS_CIPHERS",
    "DOWNLOAD_TLS_MIN_VERSION",
    "DOWNLOAD_TLS_MAX_VERSION",
)


def tls_settings_problem(settings: BaseSettings) -> str | None:
    """Why the TLS settings cannot make a context, or None. The client builds its context at
    its first TLS call: checked before the crawl, a wrong value is one clear line instead
    of every call failing. Only a project that changed them pays for building one here."""
    ciphers = settings.get("DOWNLOADER_CLIENT_TLS_CIPHERS")
    if ciphers == "DEFAULT" and all(settings.get(name) is None for name in TLS_SETTINGS[1:]):
        return None
    try:
        _make_ssl_context(settings)
    except ssl.SSLError as exc:
        detail = str(exc.args[-1] if exc.args else exc).rstrip(".")
        return (
            f"DOWNLOADER_CLIENT_TLS_CIPHERS={ciphers!r} is not valid ({detail}): "
            "give an OpenSSL cipher list, or DEFAULT"
        )
    except ValueError as exc:  # "Unknown DOWNLOAD_TLS_MIN_VERSION value: ..."
        return f"{exc}: use TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3"
    return None


def _response_class(headers: Headers, url: str, body: bytes) -> type[Response]:
    key = (headers.get(b"Content-Type"), headers.get(b"Content-Encoding"))
    cls = _CLASS_BY_TYPE.get(key)
    if cls is None:
        from_headers = responsetypes.from_headers(headers)
        if from_headers is Response:  # not told by these headers: URL, body, ...
            return responsetypes.from_args(headers=headers, url=url, body=body)
        cls = from_headers
        if len(_CLASS_BY_TYPE) < 256:  # a server's few content types, not any it invents
            _CLASS_BY_TYPE[key] = cls
    return cls


def _has_receivers(sender: Any, signal: object) -> bool:
    """Whether a receiver is connected to ``signal`` now (as Scrapy's send looks them up)."""
    return any(True for _ in liveReceivers(getAllReceivers(sender, signal)))


class _ClientResponse(aiohttp.ClientResponse):
    """Keeps the peer address and TLS object: for a small answer aiohttp hands the
    connection back to its pool before the response is returned."""

    peername: Any = None
    ssl_object: ssl.SSLObject | None = None

    async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        if transport is not None:
            self.peername = transport.get_extra_info("peername")
            self.ssl_object = transport.get_extra_info("ssl_object")
        return await super().start(connection)


class ApiHttpDownloadHandler(BaseDownloadHandler):
    lazy = False

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        settings = crawler.settings
        self._default_timeout = settings.getfloat("DOWNLOAD_TIMEOUT")
        self._maxsize = settings.getint("DOWNLOAD_MAXSIZE")
        self._warnsize = settings.getint("DOWNLOAD_WARNSIZE")
        self._fail_on_dataloss = settings.getbool("DOWNLOAD_FAIL_ON_DATALOSS")
        self._dataloss_warned = False
        self._tls_verbose = settings.getbool("DOWNLOADER_CLIENT_TLS_VERBOSE_LOGGING")
        self._proxy_auth_encoding = settings.get("HTTPPROXY_AUTH_ENCODING") or "latin-1"
        self._settings = settings
        # Built for the first call that may need TLS (an https URL, or any proxy), once:
        # loading the CA certificates costs ~25 ms of each client's start-up, for nothing
        # in a run whose calls are all plain HTTP (and the http and https handlers each
        # have a client).
        self._ssl: ssl.SSLContext | None = None
        self._limit = max(settings.getint("CONCURRENT_REQUESTS"), 1)
        self._bind_address = _bind_address(settings.get("DOWNLOAD_BIND_ADDRESS"))
        self._signals = crawler.signals
        # One session per local address (DOWNLOAD_BIND_ADDRESS, the bindaddress meta key).
        self._sessions: dict[BindAddress | None, aiohttp.ClientSession] = {}
        self._session: aiohttp.ClientSession | None = None  # the default one, looked up first
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._proxies: dict[tuple[str, bytes | None], tuple[str, str | None]] = {}

    # -- sessions ---------------------------------------------------------------------

    def _get_session(self, bind: BindAddress | None) -> aiohttp.ClientSession:
        # Created lazily: a session must be made inside the running event loop.
        session = self._sessions.get(bind)
        if session is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit, limit_per_host=0, local_addr=bind
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=SKIP_AUTO_HEADERS,
                auto_decompress=False,
                response_class=_ClientResponse,
            )
            # aiohttp re-sends an idempotent request once when the connection drops before
            # the answer (ClientSession._request): a possibly billed call nobody counts.
            # A private attribute, pinned by tests/test_apiclient.py.
            session._retry_connection = False
            self._sessions[bind] = session
        return session

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = _make_ssl_context(self._settings)
        return self._ssl

    # -- one download -----------------------------------------------------------------

    async def download_request(self, request: Request, url: str | None = None) -> Response:
        """Fetch ``url`` (default ``request.url``); the response carries ``request.url``."""
        meta = request.meta
        timeout = meta.get("download_timeout") or self._default_timeout
        bind = meta.get("bindaddress")
        if bind is None:
            session = self._session or self._default_session()
        else:
            session = self._get_session(_bind_address(bind))
        raw_url = request.url if url is None else url
        target: str | yarl.URL
        if url is not None:
            # The token handler's URL: request.url (percent-encoded by Scrapy) plus a quoted
            # token. Parsed as encoded: yarl's re-quoting of it was ~1 % of a crawl's CPU.
            target = yarl.URL(url, encoded=True)
        elif meta.get("verbatim_url"):
            target = yarl.URL(request.url, encoded=True)  # sent as is, no re-quoting
        else:
            target = request.url
        headers = [
            (key.decode(), value.decode())
            for key, values in request.headers.items()
            if key != PROXY_AUTHORIZATION
            for value in values
        ]
        proxy = meta.get("proxy")
        proxy_headers = None
        if proxy:
            proxy, proxy_auth = self._proxy(proxy, request.headers.get(PROXY_AUTHORIZATION))
            if proxy_auth is not None:
                if str(target).startswith("https:"):
                    # On the CONNECT handshake only: never inside the tunnel.
                    proxy_headers = {"Proxy-Authorization": proxy_auth}
                else:
                    # Plain HTTP goes to the proxy itself, which consumes this header.
                    headers.append(("Proxy-Authorization", proxy_auth))
        else:
            proxy = None  # a Proxy-Authorization without a proxy goes nowhere
        start = time.monotonic()
        try:
            async with session.request(
                request.method,
                target,
                data=request.body or None,
                headers=headers,
                timeout=self._timeout(timeout),
                ssl=self._tls() if proxy or raw_url[:6].lower() == "https:" else True,
                allow_redirects=False,
                proxy=proxy,
                proxy_headers=proxy_headers,
            ) as response:
                meta["download_latency"] = time.monotonic() - start
                return await self._read(request, response)  # type: ignore[arg-type]
        except TimeoutError as exc:
            raise DownloadTimeoutError(
                f"Getting {request.url} took longer than {timeout} seconds."
            ) from exc
        except (aiohttp.InvalidUrlClientError, aiohttp.NonHttpUrlClientError) as exc:
            raise UnsupportedURLSchemeError(str(exc)) from exc
        except aiohttp.ClientConnectorDNSError as exc:
            raise CannotResolveHostError(str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise DownloadConnectionRefusedError(str(exc)) from exc
        except aiohttp.ClientHttpProxyError as exc:
            # The proxy refused the tunnel (a 407 for a wrong login): nothing reached the API.
            raise DownloadConnectionRefusedError(
                f"the proxy refused the connection: {exc.status}, {exc.message}"
            ) from exc
        except aiohttp.ClientError as exc:
            raise DownloadFailedError(f"{type(exc).__name__}: {exc}") from exc

    def _default_session(self) -> aiohttp.ClientSession:
        self._session = self._get_session(self._bind_address)
        return self._session

    async def _read(self, request: Request, response: _ClientResponse) -> Response:
        meta = request.meta
        maxsize = meta.get("download_maxsize", self._maxsize)
        warnsize = meta.get("download_warnsize", self._warnsize)
        headers = Headers(response.raw_headers)
        expected = response.content_length
        if expected is not None:
            if maxsize and expected > maxsize:
                _cancel("Expected to receive", expected, maxsize, request)
            if warnsize and expected > warnsize:
                _warn_size("Expected to receive", expected, warnsize, request)
                warnsize = 0  # warned once
        if self._tls_verbose and response.ssl_object is not None:
            _log_tls(response.ssl_object)
        stop = self._stop_requested(
            signals.headers_received, request, headers=headers, body_length=expected
        )
        if stop is not None:
            return self._response(request, response, headers, b"", stop=stop)
        chunks: list[bytes] = []
        received = 0
        try:
            async for chunk in response.content.iter_any():
                chunks.append(chunk)
                received += len(chunk)
                stop = self._stop_requested(signals.bytes_received, request, data=chunk)
                if stop is not None:
                    return self._response(request, response, headers, b"".join(chunks), stop=stop)
                if maxsize and received > maxsize:
                    _cancel("Received", received, maxsize, request)
                if warnsize and received > warnsize:
                    _warn_size("Received", received, warnsize, request)
                    warnsize = 0
        except aiohttp.ClientPayloadError as exc:
            # The connection ended before the whole body (Content-Length or chunking) arrived.
            if meta.get("download_fail_on_dataloss", self._fail_on_dataloss):
                if not self._dataloss_warned:
                    self._dataloss_warned = True
                    logger.warning(
                        "Got data loss in %s. Set DOWNLOAD_FAIL_ON_DATALOSS = False to process "
                        "broken responses; this message is not repeated for further requests.",
                        request.url,
                    )
                raise ResponseDataLossError(str(exc)) from exc
            body = b"".join(chunks)
            return self._response(request, response, headers, body, flags=["dataloss"])
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self._response(request, response, headers, body)

    def _stop_requested(
        self, signal: object, request: Request, **kwargs: Any
    ) -> StopDownload | None:
        """Send a download signal; a handler that raised StopDownload ends the download."""
        if not _has_receivers(self._signals.sender, signal):
            # Nobody listens (the usual case): skip Scrapy's per-send setup, twice per call.
            return None
        for _, result in self._signals.send_catch_log(
            signal=signal, request=request, spider=self.crawler.spider, **kwargs
        ):
            if isinstance(result, Failure) and isinstance(result.value, StopDownload):
                return result.value
        return None

    @staticmethod
    def _response(
        request: Request,
        response: _ClientResponse,
        headers: Headers,
        body: bytes,
        *,
        flags: list[str] | None = None,
        stop: StopDownload | None = None,
    ) -> Response:
        url = request.url
        respcls = _response_class(headers, url, body)
        peer = response.peername
        ssl_object = response.ssl_object
        result = respcls(
            url=url,
            status=response.status,
            body=body,
            flags=flags,
            request=request,
            certificate=(
                ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            ),
            ip_address=_ip_address(peer[0]) if peer else None,
            protocol=_protocol(response.version),
        )
        # Set, not passed: Response.__init__ would copy the Headers (most of its cost).
        result.headers = headers
        if stop is not None:
            result.flags.append("download_stopped")
            if stop.fail:
                stop.response = result
                raise stop
        return result

    # -- proxies ----------------------------------------------------------------------

    def _proxy(self, proxy: str, auth: bytes | None) -> tuple[str, str | None]:
        """The proxy URL without credentials, and the Proxy-Authorization value to send it."""
        key = (proxy, auth)
        known = self._proxies.get(key)
        if known is None:
            url = yarl.URL(add_http_if_no_scheme(proxy))
            if url.scheme not in ("http", "https"):
                raise UnsupportedURLSchemeError(
                    f"{url.scheme} proxies are not supported: use an http:// or https:// proxy"
                )
            auth_value = auth.decode("latin-1") if auth else None
            if url.user is not None:
                # Credentials in the proxy URL itself (HttpProxyMiddleware off): sent the
                # same way, never left in a URL that an error message could quote.
                if auth_value is None:
                    pair = f"{unquote(url.user)}:{unquote(url.password or '')}"
                    token = base64.b64encode(pair.encode(self._proxy_auth_encoding))
                    auth_value = "Basic " + token.decode()
                url = url.with_user(None)
            if len(self._proxies) >= 256:  # a rotating proxy: don't grow without bound
                self._proxies.clear()
            known = self._proxies[key] = (str(url), auth_value)
        return known

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
        self._session = None


def _bind_address(value: Any) -> BindAddress | None:
    if not value:
        return None
    if isinstance(value, str):
        return (value, 0)
    host, port = value
    return (str(host), int(port))


def _protocol(version: aiohttp.HttpVersion | None) -> str:
    if version is None:
        return "HTTP/1.1"
    return _PROTOCOLS.get(version) or f"HTTP/{version.major}.{version.minor}"


def _cancel(prefix: str, size: int, limit: int, request: Request) -> NoReturn:
    message = (
        f"{prefix} {size} bytes which is larger than download max size ({limit}) "
        f"in request {request}."
    )
    logger.warning("%s", message)
    raise DownloadCancelledError(message)


def _warn_size(prefix: str, size: int, limit: int, request: Request) -> None:
    logger.warning(
        "%s %s bytes which is larger than download warn size (%s) in request %s.",
        prefix,
        size,
        limit,
        request,
    )


def _log_tls(ssl_object: ssl.SSLObject) -> None:
    cipher = ssl_object.cipher()
    logger.debug(
        "SSL connection to %s using protocol %s, cipher %s",
        ssl_object.server_hostname,
        ssl_object.version(),
        cipher[0] if cipher else None,
    )
