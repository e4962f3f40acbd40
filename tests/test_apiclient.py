"""The API's HTTP client (pgy_spider.apiclient) against real servers on loopback.

Every server here is real: a raw HTTP/1.1 server that records every request head it got
(plain and TLS), and a forwarding proxy that requires a login (tests/support/proxy.py).
They run in an event loop of their own (a thread, stopped at the end of the module); each
test drives the client from ``asyncio.run``. What is checked is what Scrapy 2.19 documents
for download handlers, plus the two properties the project needs: no call is ever re-sent
behind the crawl's back, and no secret (the token, the proxy login) reaches a destination
header or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import ipaddress
import itertools
import json
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from scrapy import Request, Spider, signals
from scrapy.downloadermiddlewares.httpcache import HttpCacheMiddleware
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.exceptions import (
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
    StopDownload,
    UnsupportedURLSchemeError,
)
from scrapy.http import JsonResponse, Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.ssl import _make_ssl_context as make_ssl_context
from scrapy.utils.test import get_crawler

from pgy_spider import apiclient
from pgy_spider.api import with_token
from pgy_spider.apiclient import ApiHttpDownloadHandler
from pgy_spider.meta import API as META_API
from tests.support.proxy import AuthProxy

T = TypeVar("T")

TOKEN = "tok-Secret/42+x"  # characters that URL quoting changes
PROXY_USER = "analyst"
PROXY_PASSWORD = "pr0xy-Pa55"
API_OK = b'{"code": 0, "message": "ok", "data": {"noteId": "n1"}}'

# A self-signed certificate for localhost and 127.0.0.1 (test use only, valid to 2125).
CERT_PEM = """-----BEGIN CERTIFICATE-----
MIIBSTCB8KADAgECAhRvBfZKhmYaySRZ1j9T5CzjAMeeHzAKBggqhkjOPQQDAjAU
MRIwEAYDVQQDDAlsb2NhbGhvc3QwIBcNMjYwMTAxMDAwMDAwWhgPMjEyNTEyMDgw
MDAwMDBaMBQxEjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49
AwEHA0IABLl4/NWS9+yANkw2p7Yxut0R6N+2aTcAaNQ2UdgGjGgxjyWf+PprSAdQ
Zyr5nJbTBRDyePcpBZB1uC3E/DL2D7GjHjAcMBoGA1UdEQQTMBGCCWxvY2FsaG9z
dIcEfwAAATAKBggqhkjOPQQDAgNIADBFAiEAtpqH/T/Lhm+StHLkZ7Raw74SeOHp
Y30gPUCm3GTdwoECIBIrdgJf1DkPB4BmZ3O8frIqeK/o5JarcXTDGc3fOqm9
-----END CERTIFICATE-----
"""
KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKj81cLp52bTdz3gl
MjMJZHDWLsOlXPRv7JB6i1iGZYWhRANCAAS5ePzVkvfsgDZMNqe2MbrdEejftmk3
AGjUNlHYBoxoMY8ln/j6a0gHUGcq+ZyW0wUQ8nj3KQWQdbgtxPwy9g+x
-----END PRIVATE KEY-----
"""


# -- the servers --------------------------------------------------------------------------


@dataclass
class Received:
    """One request head (and body) as it arrived at a destination."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    peer: str
    connection: int

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


@dataclass
class Destination:
    """A raw HTTP/1.1 server (keep-alive; TLS when given a context) whose answers are
    chosen by path, some of them broken on purpose."""

    tls: ssl.SSLContext | None = None
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _closing: asyncio.Event | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, path: str) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    async def start(self) -> None:
        self._closing = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None and self._closing is not None
        self._server.close()
        self._closing.set()  # ends every wait below ...
        for writer in list(self._writers):
            writer.transport.abort()  # ... and every read
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _pause(self, seconds: float) -> None:
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        connection = next(self._ids)
        peer = writer.get_extra_info("peername")[0]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [
                    (k.strip(), v.strip())
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                ]
                length = int(next((v for k, v in headers if k.lower() == "content-length"), 0))
                body = await reader.readexactly(length) if length else b""
                received = Received(method, target, headers, body, peer, connection)
                self.received.append(received)
                if not await self._answer(received, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, req: Received, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False closes the connection."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(req.target).query).items()}
        path = req.path
        if path == "/drop":  # the request was read: drop the connection without an answer
            writer.transport.abort()
            return False
        if path == "/truncated":
            writer.write(_head(200, [("Content-Length", "100")]) + b'{"code": 0, "mess')
            await writer.drain()
            return False
        if path == "/truncated-chunked":
            writer.write(_head(200, [("Transfer-Encoding", "chunked")]) + b'9\r\n{"code": \r\n')
            await writer.drain()
            return False
        if path == "/hang":  # headers, then nothing until the client gives up
            writer.write(_head(200, [("Content-Length", "100")]))
            await writer.drain()
            await self._pause(60)
            return False
        if path == "/endless":  # a chunked body with no end: only a size limit stops it
            writer.write(_head(200, [("Transfer-Encoding", "chunked")]))
            for _ in range(6000):
                writer.write(b"4000\r\n" + b"x" * 0x4000 + b"\r\n")
                await writer.drain()
                await self._pause(0.01)
                if self._closing is None or self._closing.is_set():
                    break
            return False
        if path == "/large":
            size = int(query["size"])
            if "chunked" in query:
                writer.write(_head(200, [("Transfer-Encoding", "chunked")]))
                for start in range(0, size, 0x4000):
                    chunk = b"y" * min(0x4000, size - start)
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return True
            _respond(writer, b"y" * size, content_type="text/plain")
            return True
        if path == "/gzip":
            _respond(writer, gzip.compress(API_OK), extra=[("Content-Encoding", "gzip")])
            return True
        if path == "/cookies":
            _respond(writer, API_OK, extra=[("Set-Cookie", "a=b"), ("Set-Cookie", "c=d")])
            return True
        if path == "/client-ip":
            _respond(writer, req.peer.encode(), content_type="text/plain")
            return True
        if path == "/status":
            _respond(writer, API_OK, status=int(query["n"]))
            return True
        if path == "/typed":  # ?ct=<Content-Type, "" for none>&ce=<Content-Encoding>&body=...
            extra = [("Content-Encoding", query["ce"])] if query.get("ce") else []
            body = query.get("body", "").encode()
            _respond(writer, body, content_type=query.get("ct") or None, extra=extra)
            return True
        _respond(writer, API_OK)
        return True


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _respond(
    writer: asyncio.StreamWriter,
    body: bytes,
    *,
    status: int = 200,
    content_type: str | None = "application/json",
    extra: list[tuple[str, str]] | None = None,
) -> None:
    lines = [f"HTTP/1.1 {status} X"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{k}: {v}" for k, v in extra or []]
    lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


class ServerLoop:
    """An event loop in a thread, for the servers (the client runs in the test's loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-servers")
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@dataclass
class Servers:
    loop: ServerLoop
    http: Destination
    https: Destination
    tls: ssl.SSLContext

    def dest(self, scheme: str) -> Destination:
        return self.https if scheme == "https" else self.http


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    keys = tmp_path_factory.mktemp("tls")
    (keys / "cert.pem").write_text(CERT_PEM)
    (keys / "key.pem").write_text(KEY_PEM)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(keys / "cert.pem", keys / "key.pem")
    loop = ServerLoop()
    found = Servers(loop, Destination(), Destination(tls=tls), tls)
    try:
        loop.run(found.http.start())
        loop.run(found.https.start())
        yield found
    finally:
        for dest in (found.http, found.https):
            if dest._server is not None:
                loop.run(dest.close())
        loop.close()


@pytest.fixture
def dest(servers: Servers) -> Iterator[Servers]:
    """The servers, with nothing recorded yet."""
    servers.http.received.clear()
    servers.https.received.clear()
    yield servers


@pytest.fixture
def proxy(servers: Servers) -> Iterator[AuthProxy]:
    found = servers.loop.run(AuthProxy(PROXY_USER, PROXY_PASSWORD).start())
    try:
        yield found
    finally:
        servers.loop.run(found.close())


@pytest.fixture
def tls_proxy(servers: Servers) -> Iterator[AuthProxy]:
    """An HTTPS proxy (TLS between the client and the proxy) that requires a login."""
    found = servers.loop.run(AuthProxy(PROXY_USER, PROXY_PASSWORD, tls=servers.tls).start())
    try:
        yield found
    finally:
        servers.loop.run(found.close())


@pytest.fixture
def open_proxy(servers: Servers) -> Iterator[AuthProxy]:
    """A proxy that needs no login."""
    found = servers.loop.run(AuthProxy("", "").start())
    try:
        yield found
    finally:
        servers.loop.run(found.close())


# -- helpers --------------------------------------------------------------------------


class _Spider(Spider):
    name = "apiclient"


def make_handler(**settings: Any) -> ApiHttpDownloadHandler:
    crawler = get_crawler(_Spider, settings)
    return ApiHttpDownloadHandler.from_crawler(crawler)


def run(body: Callable[[ApiHttpDownloadHandler], Awaitable[T]], **settings: Any) -> T:
    """Run ``body`` with a fresh client in a fresh event loop; the client is closed after."""

    async def main() -> T:
        handler = make_handler(**settings)
        try:
            return await body(handler)
        finally:
            await handler.close()

    return asyncio.run(main())


def fetch(request: Request, url: str | None = None, **settings: Any) -> Response:
    return run(lambda h: h.download_request(request, url=url), **settings)


def fail(request: Request, url: str | None = None, **settings: Any) -> BaseException:
    async def body(handler: ApiHttpDownloadHandler) -> BaseException:
        try:
            await handler.download_request(request, url=url)
        except Exception as exc:
            return exc
        raise AssertionError("the download did not fail")

    return run(body, **settings)


def secret_forms() -> list[str]:
    """The token and the proxy login in every form they could travel in."""
    login = f"{PROXY_USER}:{PROXY_PASSWORD}"
    return [
        TOKEN,
        with_token("", TOKEN).removeprefix("&token="),  # URL-quoted
        PROXY_PASSWORD,
        base64.b64encode(login.encode()).decode(),
    ]


def assert_no_secret(texts: list[str], secrets: list[str] | None = None) -> None:
    for text in texts:
        for secret in secret_forms() if secrets is None else secrets:
            assert secret not in text, (secret, text)


def header_texts(received: list[Received]) -> list[str]:
    return [f"{k}: {v}" for r in received for k, v in r.headers]


# -- request headers and body -------------------------------------------------------------


def test_sends_the_request_headers_and_nothing_else(dest: Servers) -> None:
    request = Request(dest.http.url("/api"), headers={"User-Agent": "pgy-test"})
    response = fetch(request)
    assert response.status == 200
    [got] = dest.http.received
    # aiohttp adds only Host: no Accept */*, no Accept-Encoding, no Content-Length on a GET.
    assert sorted(k for k, _ in got.headers) == ["Host", "User-Agent"], got.headers
    assert got.header("User-Agent") == ["pgy-test"]


def test_none_header_is_not_sent_and_repeated_values_are_repeated_lines(
    dest: Servers,
) -> None:
    request = Request(
        dest.http.url("/api"),
        headers={"X-None": None, "Cookie": None, "X-Multi": ["a", "b"], "X-Utf8": "笔记"},
    )
    fetch(request)
    [got] = dest.http.received
    names = [k.lower() for k, _ in got.headers]
    assert "x-none" not in names and "cookie" not in names
    assert got.header("X-Multi") == ["a", "b"]  # two lines, not "a, b"
    assert got.header("X-Utf8") == ["笔记".encode().decode("latin-1")]  # UTF-8 bytes as given


def test_post_body_and_bodyless_post(dest: Servers) -> None:
    fetch(Request(dest.http.url("/api"), method="POST", body=b'{"a": 1}'))
    fetch(Request(dest.http.url("/api"), method="POST"))
    with_body, bodyless = dest.http.received
    assert with_body.body == b'{"a": 1}' and with_body.header("Content-Length") == ["8"]
    assert with_body.header("Content-Type") == []  # none added
    assert bodyless.body == b"" and bodyless.header("Content-Length") == ["0"]


def test_verbatim_url_is_sent_as_is(dest: Servers) -> None:
    url = dest.http.url("/api?data[0]=a")
    fetch(Request(url))
    fetch(Request(url, meta={"verbatim_url": True}))
    quoted, verbatim = dest.http.received
    assert quoted.target == "/api?data%5B0%5D=a"
    assert verbatim.target == "/api?data[0]=a"


def test_no_cookie_is_kept_between_calls(dest: Servers) -> None:
    async def body(handler: ApiHttpDownloadHandler) -> None:
        await handler.download_request(Request(dest.http.url("/cookies")))
        await handler.download_request(Request(dest.http.url("/api")))

    run(body)
    assert dest.http.received[1].header("Cookie") == []


# -- the response ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "ct=application/json",
        "ct=text/html;+charset=utf-8",
        "ct=application/json&ce=gzip",
        "ct=&body=<html><body>x</body></html>",  # no Content-Type: the body decides
        "ct=&body=plain",
        "ct=application/octet-stream",
    ],
)
def test_response_class_is_the_one_scrapy_chooses(dest: Servers, query: str) -> None:
    # The client remembers the class per content type: asked twice, each time Scrapy's.
    for _ in range(2):
        request = Request(dest.http.url(f"/typed?{query}"))
        response = fetch(request)
        expected = responsetypes.from_args(
            headers=response.headers, url=request.url, body=response.body
        )
        assert type(response) is expected
        assert response.headers.get("Content-Encoding") == (b"gzip" if "ce=" in query else None)


def test_response_over_http(dest: Servers) -> None:
    request = Request(dest.http.url("/cookies?noteId=n1"))
    response = fetch(request)
    assert type(response) is JsonResponse
    assert response.status == 200
    assert response.url == request.url
    assert response.body == API_OK
    assert response.headers.getlist("Set-Cookie") == [b"a=b", b"c=d"]
    assert response.headers["Content-Type"] == b"application/json"
    assert response.protocol == "HTTP/1.1"
    assert response.ip_address == ipaddress.IPv4Address("127.0.0.1")
    assert response.certificate is None
    assert response.request is request
    latency = request.meta["download_latency"]
    assert isinstance(latency, float) and 0 < latency < 10


def test_response_over_https_carries_the_server_certificate(dest: Servers) -> None:
    request = Request(dest.https.url("/api"))
    response = fetch(request)
    assert response.body == API_OK
    assert response.certificate == ssl.PEM_cert_to_DER_cert(CERT_PEM)
    assert response.ip_address == ipaddress.IPv4Address("127.0.0.1")
    assert response.protocol == "HTTP/1.1"
    assert request.meta["download_latency"] > 0


def test_certificates_are_verified_only_when_asked(dest: Servers) -> None:
    # DOWNLOAD_VERIFY_CERTIFICATES goes through scrapy.utils.ssl._make_ssl_context (private):
    # this pins it. The API's own certificate is checked in production when it is set.
    exc = fail(Request(dest.https.url("/api")), DOWNLOAD_VERIFY_CERTIFICATES=True)
    # a refused connection: the request (and the token in it) never left
    assert isinstance(exc, DownloadConnectionRefusedError), exc
    assert "CERTIFICATE_VERIFY_FAILED" in str(exc)
    assert dest.https.received == []  # the request never left
    fetch(Request(dest.https.url("/api")), DOWNLOAD_VERIFY_CERTIFICATES=False)
    assert len(dest.https.received) == 1


def test_the_tls_context_is_built_at_the_first_tls_call_only(
    dest: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loading the CA certificates is ~25 ms of start-up per client (one per scheme): a run
    # whose calls are all plain HTTP never pays it, a TLS run pays it once.
    built: list[object] = []

    def counting(settings: Any) -> ssl.SSLContext:
        built.append(settings)
        return make_ssl_context(settings)

    monkeypatch.setattr(apiclient, "_make_ssl_context", counting)

    async def body(handler: ApiHttpDownloadHandler) -> None:
        await handler.download_request(Request(dest.http.url("/api")))
        assert built == []
        await handler.download_request(Request(dest.https.url("/api")))
        await handler.download_request(Request(dest.https.url("/api")))
        assert len(built) == 1

    run(body, DOWNLOAD_VERIFY_CERTIFICATES=False)
    assert len(dest.https.received) == 2


def test_tls_details_are_logged_when_asked(dest: Servers, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="pgy_spider.apiclient"):
        fetch(Request(dest.https.url("/api")))
        assert "SSL connection" not in caplog.text
        fetch(Request(dest.https.url("/api")), DOWNLOADER_CLIENT_TLS_VERBOSE_LOGGING=True)
    assert "SSL connection to 127.0.0.1 using protocol TLSv1." in caplog.text


def test_tokened_url_is_sent_and_never_shown(
    dest: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    request = Request(dest.https.url("/api?noteId=n1"), meta={"download_maxsize": 10**6})
    with caplog.at_level(logging.DEBUG):
        response = fetch(request, url=with_token(request.url, TOKEN), DOWNLOAD_WARNSIZE=10)
    [got] = dest.https.received
    assert parse_qs(urlsplit(got.target).query)["token"] == [TOKEN]
    assert response.url == request.url and response.request is request
    assert "size" in caplog.text  # the warn-size line names the request ...
    assert_no_secret([caplog.text, *header_texts(dest.https.received)])  # ... without the token


def test_tokened_url_goes_out_exactly_as_scrapy_made_it(dest: Servers) -> None:
    # The token handler's URL is request.url (already percent-encoded by Scrapy) plus the
    # quoted token: sent byte for byte, not re-quoted (yarl would decode the %7e).
    request = Request(dest.http.url("/api?noteId=n1&data[0]=a%7e"))
    fetch(request, url=with_token(request.url, TOKEN))
    [got] = dest.http.received
    assert got.target == "/api?noteId=n1&data%5B0%5D=a%7e&token=tok-Secret%2F42%2Bx"


def test_timeout_quotes_the_tokenless_url(dest: Servers) -> None:
    request = Request(dest.http.url("/hang?noteId=n1"), meta={"download_timeout": 0.5})
    exc = fail(request, url=with_token(request.url, TOKEN))
    assert isinstance(exc, DownloadTimeoutError)
    assert request.url in str(exc)
    assert_no_secret([str(exc)])


# -- compression and the HTTP cache ------------------------------------------------------


def test_compressed_body_is_left_to_http_compression_middleware(
    dest: Servers, tmp_path: Path
) -> None:
    request = Request(dest.http.url("/gzip"), headers={"Accept-Encoding": "gzip"})
    response = fetch(request)
    # As on the wire: the body and the header that says how it is encoded stay together.
    assert response.headers["Content-Encoding"] == b"gzip"
    assert response.body[:2] == b"\x1f\x8b"
    # The HTTP cache stores and replays that pair unchanged ...
    crawler = get_crawler(
        _Spider, {"HTTPCACHE_ENABLED": True, "HTTPCACHE_DIR": str(tmp_path / "cache")}
    )
    crawler.spider = _Spider.from_crawler(crawler)
    cache = HttpCacheMiddleware.from_crawler(crawler)
    cache.spider_opened(crawler.spider)
    assert cache.process_response(request, response) is response
    replay = cache.process_request(Request(request.url, headers=request.headers))
    cache.spider_closed(crawler.spider)
    assert isinstance(replay, Response) and "cached" in replay.flags
    assert replay.body == response.body and replay.headers["Content-Encoding"] == b"gzip"
    # ... and Scrapy's compression middleware unpacks either of them.
    compression = HttpCompressionMiddleware.from_crawler(crawler)
    for answer in (response, replay):
        unpacked = compression.process_response(request, answer)
        assert isinstance(unpacked, Response)
        assert unpacked.body == API_OK and b"Content-Encoding" not in unpacked.headers


# -- size limits ----------------------------------------------------------------------


def test_maxsize_with_content_length(dest: Servers, caplog: pytest.LogCaptureFixture) -> None:
    request = Request(dest.http.url("/large?size=5000"))
    assert len(fetch(request, DOWNLOAD_MAXSIZE=5000).body) == 5000
    caplog.clear()
    exc = fail(request, DOWNLOAD_MAXSIZE=4999)
    message = "Expected to receive 5000 bytes which is larger than download max size (4999)"
    assert isinstance(exc, DownloadCancelledError) and message in str(exc)
    assert message in caplog.text  # logged as well
    assert isinstance(fail(Request(request.url, meta={"download_maxsize": 10})), type(exc))
    # download_maxsize=0 in meta lifts the setting's limit for that request
    big = Request(request.url, meta={"download_maxsize": 0})
    assert len(fetch(big, DOWNLOAD_MAXSIZE=10).body) == 5000


def test_maxsize_is_enforced_while_the_body_streams(
    dest: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    # No Content-Length and a body that never ends: only checking while reading stops it
    # (reading first and checking after would run into the timeout instead).
    request = Request(dest.http.url("/endless"), meta={"download_timeout": 20})
    exc = fail(request, DOWNLOAD_MAXSIZE=100_000)
    assert isinstance(exc, DownloadCancelledError), exc
    assert "larger than download max size (100000)" in caplog.text
    assert "Received " in str(exc)


def test_warnsize_logs_once(dest: Servers, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        fetch(Request(dest.http.url("/large?size=5000")), DOWNLOAD_WARNSIZE=1000)
    assert caplog.text.count("larger than download warn size (1000)") == 1
    assert "Expected to receive 5000 bytes" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        response = fetch(
            Request(dest.http.url("/large?size=100000&chunked=1")), DOWNLOAD_WARNSIZE=1000
        )
    assert len(response.body) == 100_000
    assert caplog.text.count("larger than download warn size (1000)") == 1
    assert "Received " in caplog.text


# -- data loss --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/truncated", "/truncated-chunked"])
def test_truncated_body_is_data_loss(
    dest: Servers, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    async def twice(handler: ApiHttpDownloadHandler) -> list[BaseException]:
        errors = []
        for _ in range(2):
            with pytest.raises(ResponseDataLossError) as info:
                await handler.download_request(Request(dest.http.url(path)))
            errors.append(info.value)
        return errors

    with caplog.at_level(logging.WARNING):
        run(twice)
    assert caplog.text.count("Got data loss") == 1  # warned once per crawl
    assert "DOWNLOAD_FAIL_ON_DATALOSS" in caplog.text


@pytest.mark.parametrize("path", ["/truncated", "/truncated-chunked"])
def test_truncated_body_is_kept_when_data_loss_is_allowed(dest: Servers, path: str) -> None:
    response = fetch(Request(dest.http.url(path)), DOWNLOAD_FAIL_ON_DATALOSS=False)
    assert response.flags == ["dataloss"]
    assert response.body in (b'{"code": 0, "mess', b'{"code": ')
    by_meta = Request(dest.http.url(path), meta={"download_fail_on_dataloss": False})
    assert fetch(by_meta).flags == ["dataloss"]


# -- never a re-send the crawl does not see -------------------------------------------------


def test_dropped_connection_is_not_resent(dest: Servers) -> None:
    exc = fail(Request(dest.http.url("/drop")))
    assert isinstance(exc, DownloadFailedError)
    assert dest.http.paths() == ["/drop"]  # exactly one request arrived


def test_dropped_kept_alive_connection_is_not_resent(dest: Servers) -> None:
    async def body(handler: ApiHttpDownloadHandler) -> BaseException:
        await handler.download_request(Request(dest.http.url("/api")))
        with pytest.raises(DownloadFailedError) as info:
            await handler.download_request(Request(dest.http.url("/drop")))
        return info.value

    run(body)
    first, dropped = dest.http.received
    assert dest.http.paths() == ["/api", "/drop"]
    assert dropped.connection == first.connection  # the pooled connection was reused


def test_the_no_resend_switch_is_still_aiohttps() -> None:
    # apiclient turns aiohttp's silent re-send off through a private attribute: if aiohttp
    # renames it, this fails (and so do the two tests above) instead of re-sending paid calls.
    assert "_retry_connection" in aiohttp.ClientSession.ATTRS

    async def body(handler: ApiHttpDownloadHandler) -> bool:
        return handler._get_session(None)._retry_connection

    assert run(body) is False


# -- bind address -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["127.0.0.2", ("127.0.0.2", 0)])
def test_bind_address_setting(dest: Servers, value: Any) -> None:
    response = fetch(Request(dest.http.url("/client-ip")), DOWNLOAD_BIND_ADDRESS=value)
    assert response.body == b"127.0.0.2"


@pytest.mark.parametrize("value", ["127.0.0.3", ("127.0.0.3", 0)])
def test_bindaddress_meta(dest: Servers, value: Any) -> None:
    async def body(handler: ApiHttpDownloadHandler) -> list[bytes]:
        bound = Request(dest.http.url("/client-ip"), meta={"bindaddress": value})
        plain = Request(dest.http.url("/client-ip"))
        return [(await handler.download_request(r)).body for r in (bound, plain, bound)]

    assert run(body, DOWNLOAD_BIND_ADDRESS="127.0.0.2") == [
        b"127.0.0.3",
        b"127.0.0.2",
        b"127.0.0.3",
    ]


# -- signals ------------------------------------------------------------------------------


def test_headers_and_bytes_received_signals(dest: Servers) -> None:
    seen: list[tuple[str, Any]] = []

    async def body(handler: ApiHttpDownloadHandler) -> Response:
        def on_headers(headers: Any, body_length: Any, request: Request, spider: Any) -> None:
            seen.append(("headers", (headers[b"Content-Length"], body_length, request.url)))

        def on_bytes(data: bytes, request: Request, spider: Any) -> None:
            seen.append(("bytes", len(data)))

        handler.crawler.signals.connect(on_headers, signal=signals.headers_received)
        handler.crawler.signals.connect(on_bytes, signal=signals.bytes_received)
        return await handler.download_request(Request(dest.http.url("/large?size=50000")))

    response = run(body)
    assert len(response.body) == 50_000
    assert seen[0] == ("headers", (b"50000", 50_000, dest.http.url("/large?size=50000")))
    assert all(kind == "bytes" for kind, _ in seen[1:]) and len(seen) > 1
    assert sum(n for _, n in seen[1:]) == 50_000


@pytest.mark.parametrize("fail_download", [True, False])
def test_stop_download_from_headers_received(dest: Servers, fail_download: bool) -> None:
    async def body(handler: ApiHttpDownloadHandler) -> Response | StopDownload:
        def stop(**_: Any) -> None:
            raise StopDownload(fail=fail_download)

        handler.crawler.signals.connect(stop, signal=signals.headers_received)
        try:
            return await handler.download_request(Request(dest.http.url("/large?size=50000")))
        except StopDownload as exc:
            return exc

    result = run(body)
    if fail_download:
        assert isinstance(result, StopDownload) and result.response is not None
        response = result.response
    else:
        assert isinstance(result, Response)
        response = result
    assert response.flags == ["download_stopped"]
    assert response.body == b"" and response.status == 200
    assert response.headers["Content-Length"] == b"50000"


def test_stop_download_from_bytes_received(dest: Servers) -> None:
    async def body(handler: ApiHttpDownloadHandler) -> StopDownload:
        def stop(data: bytes, **_: Any) -> None:
            raise StopDownload(fail=True)

        handler.crawler.signals.connect(stop, signal=signals.bytes_received)
        with pytest.raises(StopDownload) as info:
            await handler.download_request(Request(dest.http.url("/endless")))
        return info.value

    stopped = run(body)
    assert stopped.response is not None
    assert stopped.response.flags == ["download_stopped"]
    assert 0 < len(stopped.response.body) <= 0x4000 + 64  # the first chunk, no more


# -- proxies ------------------------------------------------------------------------------


def _through_proxy_middleware(
    request: Request, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> Request:
    """What Scrapy's HttpProxyMiddleware (enabled in the project) does with the request."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    middleware = HttpProxyMiddleware.from_crawler(get_crawler(_Spider))
    assert middleware.process_request(request) is None
    return request


def _assert_proxied(
    proxy: AuthProxy, dest: Destination, scheme: str, *, login: bool = True
) -> None:
    [handshake] = proxy.received
    host = f"127.0.0.1:{dest.port}"
    if scheme == "https":
        assert (handshake.method, handshake.target) == ("CONNECT", host)
    else:
        assert handshake.method == "GET" and handshake.target.startswith(f"http://{host}/")
    expected = [proxy.expected_authorization] if login else []
    assert handshake.header("Proxy-Authorization") == expected
    [got] = dest.received
    assert got.header("Host") == [host]
    assert got.header("Proxy-Authorization") == []


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize(
    "how", ["env", "meta", "meta-no-scheme", "meta-without-middleware", "no-scheme-no-middleware"]
)
def test_proxy_with_login(
    dest: Servers,
    proxy: AuthProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    scheme: str,
    how: str,
) -> None:
    target = dest.dest(scheme)
    request = Request(target.url("/api?noteId=n1"), headers={"User-Agent": "pgy-test"})
    with_login = proxy.url_with_login()
    if how == "env":
        env = {"HTTPS_PROXY" if scheme == "https" else "HTTP_PROXY": with_login}
        _through_proxy_middleware(request, monkeypatch, env)
    elif how == "meta-without-middleware":
        request.meta["proxy"] = with_login  # the handler alone keeps the login off the URL
    elif how == "no-scheme-no-middleware":
        request.meta["proxy"] = with_login.removeprefix("http://")
    else:
        if how == "meta-no-scheme":
            with_login = with_login.removeprefix("http://")
        request.meta["proxy"] = with_login
        _through_proxy_middleware(request, monkeypatch, {})
    with caplog.at_level(logging.DEBUG):
        response = fetch(request, url=with_token(request.url, TOKEN))
    assert response.status == 200 and response.body == API_OK
    _assert_proxied(proxy, target, scheme)
    [got] = target.received
    assert got.header("User-Agent") == ["pgy-test"]
    assert parse_qs(urlsplit(got.target).query)["token"] == [TOKEN]
    # Nothing of the login reached the destination, nothing secret reached a log line.
    assert_no_secret([caplog.text, *header_texts(target.received)])
    if scheme == "https":  # the proxy only saw host:port: the token stayed in the tunnel
        [connect] = proxy.received
        texts = [connect.target, *(f"{k}: {v}" for k, v in connect.headers)]
        assert_no_secret(texts, secret_forms()[:2])


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_https_proxy_with_login(
    dest: Servers,
    tls_proxy: AuthProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    scheme: str,
) -> None:
    target = dest.dest(scheme)
    request = Request(target.url("/api"))
    env = {f"{scheme}_proxy": tls_proxy.url_with_login()}
    _through_proxy_middleware(request, monkeypatch, env)
    with caplog.at_level(logging.DEBUG):
        assert fetch(request, url=with_token(request.url, TOKEN)).body == API_OK
    _assert_proxied(tls_proxy, target, scheme)
    assert_no_secret([caplog.text, *header_texts(target.received)])


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_without_login(
    dest: Servers, open_proxy: AuthProxy, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    target = dest.dest(scheme)
    request = Request(target.url("/api"))
    env = {"HTTPS_PROXY" if scheme == "https" else "HTTP_PROXY": open_proxy.url}
    _through_proxy_middleware(request, monkeypatch, env)
    assert fetch(request).body == API_OK
    _assert_proxied(open_proxy, target, scheme, login=False)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_with_a_wrong_login(
    dest: Servers,
    proxy: AuthProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    scheme: str,
) -> None:
    target = dest.dest(scheme)
    request = Request(target.url("/api"))
    wrong = proxy.url_with_login(password="not-" + PROXY_PASSWORD)
    _through_proxy_middleware(request, monkeypatch, {f"{scheme}_proxy": wrong})
    with caplog.at_level(logging.DEBUG):
        if scheme == "https":  # the CONNECT is refused: no tunnel, nothing reached the API
            exc = fail(request)
            assert isinstance(exc, DownloadConnectionRefusedError), exc
            assert "407" in str(exc) and "Proxy Authentication Required" in str(exc)
            texts = [str(exc)]
        else:  # the proxy answers the request itself
            assert fetch(request).status == 407
            texts = []
    assert target.received == []
    assert len(proxy.received) == 1 and not proxy.received[0].authorized
    assert_no_secret([*texts, caplog.text])
    assert "not-" + PROXY_PASSWORD not in caplog.text + "".join(texts)


def test_proxy_authorization_without_a_proxy_goes_nowhere(dest: Servers) -> None:
    request = Request(dest.https.url("/api"), headers={"Proxy-Authorization": "Basic c2VjcmV0"})
    fetch(request)
    [got] = dest.https.received
    assert got.header("Proxy-Authorization") == []


def test_proxy_that_is_down_is_a_connection_error(dest: Servers) -> None:
    # A closed loopback port: nothing was sent, so nothing can have been billed.
    with socket_port() as port:
        request = Request(dest.https.url("/api"), meta={"proxy": f"127.0.0.1:{port}"})
        exc = fail(request)
    assert isinstance(exc, DownloadConnectionRefusedError)
    assert dest.https.received == []


def test_socks_proxy_is_refused_with_a_clear_error(dest: Servers) -> None:
    request = Request(dest.https.url("/api"), meta={"proxy": "socks5://127.0.0.1:1080"})
    exc = fail(request)
    assert isinstance(exc, UnsupportedURLSchemeError)
    assert str(exc) == "socks5 proxies are not supported: use an http:// or https:// proxy"
    assert dest.https.received == []


@contextlib.contextmanager
def socket_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]  # bound, not listening: connections are refused


# -- through the token handler, in a crawl ------------------------------------------------


class _ApiSpider(Spider):
    """Sends the given URLs as API calls (the token handler adds the token)."""

    name = "apiclient_crawl"

    def __init__(self, urls: list[str], **kwargs: Any):
        super().__init__(**kwargs)
        self.urls = urls
        self.responses: list[Response] = []
        self.failures: list[Any] = []

    async def start(self) -> Any:
        for url in self.urls:
            yield Request(
                url,
                meta={META_API: True, "dont_retry": True, "handle_httpstatus_all": True},
                callback=self.parse,
                errback=self.failures.append,
                dont_filter=True,
            )

    def parse(self, response: Response) -> None:
        self.responses.append(response)


class RawLogs(logging.Handler):
    """Every record as emitted, before any filter on the root logger's handlers (the
    project masks tokens there) could change it."""

    NAMES = ("scrapy", "pgy_spider", "aiohttp", "asyncio", "py.warnings", "twisted")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __enter__(self) -> RawLogs:
        for name in self.NAMES:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        for name in self.NAMES:
            logging.getLogger(name).removeHandler(self)


def test_token_handler_through_a_proxy_with_login(
    dest: Servers,
    proxy: AuthProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    login = proxy.url_with_login()
    _through_proxy_middleware(Request("http://x/"), monkeypatch, {})  # clears the proxy env
    monkeypatch.setenv("HTTPS_PROXY", login)
    monkeypatch.setenv("HTTP_PROXY", login)
    monkeypatch.setenv("JUSTONEAPI_TOKEN", TOKEN)
    monkeypatch.delenv("PGY_TOKEN_FILE", raising=False)
    crawler = get_crawler(
        _ApiSpider,
        {
            "ADDONS": {"pgy_spider.addon.PgyAddon": 100},
            "PGY_RETRY_TIMES": 0,
            "LOG_LEVEL": "DEBUG",
        },
    )
    urls = [dest.https.url("/api?noteId=n1"), dest.http.url("/api?noteId=n2")]
    with RawLogs() as raw, caplog.at_level(logging.DEBUG):
        asyncio.run(crawler.crawl_async(urls=urls))
    spider = crawler.spider
    assert isinstance(spider, _ApiSpider)
    assert spider.failures == []
    assert sorted(r.url for r in spider.responses) == sorted(urls)  # tokenless
    assert sorted(r.method for r in proxy.received) == ["CONNECT", "GET"]
    assert all(r.authorized for r in proxy.received)
    for target in (dest.https, dest.http):
        [got] = target.received
        assert parse_qs(urlsplit(got.target).query)["token"] == [TOKEN]
        assert got.header("Proxy-Authorization") == []
        assert_no_secret(header_texts(target.received))
    assert raw.lines and any("Crawled (200)" in line for line in raw.lines)
    assert_no_secret(raw.lines)
    stats = crawler.stats
    assert stats is not None and stats.get_value("pgy/requests_sent") == 2
    assert_no_secret([json.dumps(stats.get_stats(), default=str)])
