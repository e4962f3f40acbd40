"""A small forwarding HTTP proxy that requires a login, for the client's proxy tests.

It does what a company proxy (Squid and the like) does with the two kinds of request a
client sends it, and records every request head it received:

- ``CONNECT host:port`` (an https destination): checks ``Proxy-Authorization``, answers
  ``200 Connection established`` and then relays bytes both ways; it never sees what goes
  through the tunnel;
- an absolute-form request (``GET http://host:port/path``, an http destination): checks
  ``Proxy-Authorization``, consumes it (the header is meant for the proxy) and forwards the
  request in origin form with every other header as received, one request per connection.

A missing or wrong login gets ``407 Proxy Authentication Required`` (an empty ``user`` makes
a proxy that needs no login). Runs in whatever event
loop starts it: ``await proxy.start()`` ... ``await proxy.close()``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024


@dataclass
class ProxyRecord:
    method: str
    target: str
    headers: list[tuple[str, str]]
    authorized: bool

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class AuthProxy:
    user: str
    password: str
    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None  # an HTTPS proxy: TLS between the client and the proxy
    received: list[ProxyRecord] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """The proxy's URL without credentials."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def url_with_login(self, user: str | None = None, password: str | None = None) -> str:
        login = f"{user or self.user}:{password or self.password}"
        return f"{self.scheme}://{login}@{self.host}:{self.port}"

    @property
    def expected_authorization(self) -> str:
        pair = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    async def start(self) -> AuthProxy:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()  # ends every relay still open
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._handle(reader, writer)
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ssl.SSLError,
        ):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = [
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        ]
        auth = [v for k, v in headers if k.lower() == "proxy-authorization"]
        authorized = auth == [self.expected_authorization] if self.user else True
        self.received.append(ProxyRecord(method, target, headers, authorized))
        if not authorized:
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\n'
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _relay(reader, writer, up_reader, up_writer)
            return
        parts = urlsplit(target)
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        forwarded = [
            (k, v)
            for k, v in headers
            if k.lower() not in ("proxy-authorization", "proxy-connection", "connection")
        ]
        forwarded.append(("Connection", "close"))
        out = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in forwarded)
        up_writer.write(out.encode("latin-1") + b"\r\n")
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        if length:
            up_writer.write(await reader.readexactly(length))
        await up_writer.drain()
        await _relay(reader, writer, up_reader, up_writer)


async def _relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()

    try:
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    finally:
        up_writer.close()
        with contextlib.suppress(Exception):
            await up_writer.wait_closed()
