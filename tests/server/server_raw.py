"""A tiny raw HTTP/1.1 client for the server tests: asyncio streams plus the httptools response parser.

Kept independent of surge.http on purpose: the server's tests must not depend on the client they serve.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools


@dataclass
class RawResponse:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False
    keep_alive: bool = True

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class _Collector:
    """Parses a stream of responses; finished ones queue up in ``done`` (pipelining keeps order)."""

    def __init__(self) -> None:
        self.current = RawResponse()
        self.done: deque[RawResponse] = deque()
        self._body: list[bytes] = []
        self._parser = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.current = RawResponse()
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.current.status = self._parser.get_status_code()
        self.current.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.current.body = b"".join(self._body)
        self.current.complete = True
        self.done.append(self.current)

    def partial(self) -> RawResponse:
        self.current.body = b"".join(self._body)
        return self.current


def build_request(method: str, path: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                  host: str = "test") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for key, value in headers or []:
        lines.append(f"{key}: {value}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RawConnection:
    """One connection: send requests, read their responses in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str = "test") -> None:
        self.host = host
        self.reader = reader
        self.writer = writer
        self._collector = _Collector()

    @classmethod
    async def open(cls, url: str, *, ssl_context: ssl.SSLContext | None = None) -> RawConnection:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        reader, writer = await asyncio.open_connection(
            parts.hostname, parts.port, ssl=ssl_context,
            server_hostname=parts.hostname if ssl_context else None, limit=2**20)
        return cls(reader, writer, parts.netloc)

    def send(self, method: str, path: str, headers: list[tuple[str, str]] | None = None,
             body: bytes = b"") -> None:
        self.writer.write(build_request(method, path, headers, body, host=self.host))

    async def read_response(self) -> RawResponse:
        """Read one response; at EOF returns what arrived with ``complete=False``."""
        collector = self._collector
        while not collector.done:
            data = await self.reader.read(65536)
            if not data:
                return collector.partial()
            collector.feed(data)
        return collector.done.popleft()

    async def request(self, method: str, path: str, headers: list[tuple[str, str]] | None = None,
                      body: bytes = b"") -> RawResponse:
        self.send(method, path, headers, body)
        return await self.read_response()

    async def read_all(self) -> bytes:
        chunks = []
        while data := await self.reader.read(65536):
            chunks.append(data)
        return b"".join(chunks)

    async def aclose(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def fetch(url: str, path: str, *, method: str = "GET", headers: list[tuple[str, str]] | None = None,
                body: bytes = b"", ssl_context: ssl.SSLContext | None = None) -> RawResponse:
    conn = await RawConnection.open(url, ssl_context=ssl_context)
    try:
        return await conn.request(method, path, headers, body)
    finally:
        await conn.aclose()


async def fetch_raw(url: str, path: str, *, method: str = "GET",
                    headers: list[tuple[str, str]] | None = None) -> bytes:
    """Everything the server sends for one ``Connection: close`` request, unparsed."""
    conn = await RawConnection.open(url)
    try:
        conn.send(method, path, [("Connection", "close"), *(headers or [])])
        return await conn.read_all()
    finally:
        await conn.aclose()


async def read_until_reset(conn: RawConnection) -> bytes:
    """Everything the server sent before it reset the connection; fails if it closed cleanly instead."""
    received = b""
    try:
        while chunk := await conn.reader.read(65536):
            received += chunk
    except ConnectionResetError:
        return received
    raise AssertionError("the connection ended without a reset")


async def wait_until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait for a state the server reaches on its own (a closed connection, paused reading).

    The server signals nothing a test could await, so this polls; the limit only bounds a failing test
    and nothing asserts how long it took.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)
