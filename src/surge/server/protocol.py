"""One HTTP/1.1 server connection: an asyncio Protocol driving the httptools (llhttp) parser.

Keep-alive and pipelining are handled here; what to answer is the application's business (``routes``).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, cast

import httptools

from surge.server.responses import response

#: What a route returns: finished response bytes (written at once, no task), or a coroutine that writes
#: through the connection itself (run as one task, cancelled when the connection goes away).
Reply = bytes | Coroutine[Any, Any, None]

# Bounds that keep one connection's memory small whatever the client sends.
MAX_URL = 8 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY = 16 * 2**20
MAX_PIPELINED = 32


class Request:
    """A parsed request. Raw bytes where the hot path needs no decoding; helpers decode on demand."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query", "version")

    def __init__(self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]], body: bytes, *,
                 keep_alive: bool, version: str) -> None:
        path, _, query = url.partition(b"?")
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.version = version

    def header(self, name: bytes) -> bytes | None:
        """The last value of header ``name`` (lowercase bytes), or None."""
        found = None
        for key, value in self.headers:
            if key.lower() == name:
                found = value
        return found


class Application(Protocol):
    """What a connection needs from the server that owns it."""

    connections: set[HttpServerProtocol]
    static: dict[bytes, tuple[bytes, bytes]]

    def dispatch(self, request: Request, conn: HttpServerProtocol) -> Reply:
        """Answer ``request``: response bytes, or a coroutine that writes through ``conn``."""
        ...


class _ParseAbort(Exception):
    """Raised from a parser callback to stop parsing; ``status`` is what to answer."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class HttpServerProtocol(asyncio.Protocol):
    """A server connection: parses requests, answers them in order, honours keep-alive and back-pressure."""

    def __init__(self, app: Application) -> None:
        self._app = app
        self._static = app.static
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.peer_host = ""
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._pending: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._close_after = False
        self._write_paused = False
        self._read_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = cast(asyncio.Transport, transport)
        peer = self.transport.get_extra_info("peername")
        self.peer_host = str(peer[0]) if isinstance(peer, tuple) else ""
        self._app.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._app.connections.discard(self)
        self._pending.clear()
        if self._task is not None:
            self._task.cancel()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("connection lost"))
        self._drain_waiter = None

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self._fail(cause.status if isinstance(cause, _ParseAbort) else 400)

    def pause_writing(self) -> None:
        # The client is not reading: stop reading its requests too, so neither buffer grows.
        self._write_paused = True
        self._set_reading(False)

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        self._drain_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._task is None:
            self._answer_pending()

    # --- httptools callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._body = []
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_URL:
            raise _ParseAbort(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _ParseAbort(431)
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_BODY:
            raise _ParseAbort(413)
        self._body.append(body)

    def on_message_complete(self) -> None:
        # Hot path: fixed-content routes answered from precomputed bytes, no Request object, no task.
        parser = self._parser
        keep_alive = parser.should_keep_alive()
        if self._task is None and not self._pending and not self._write_paused:
            static = self._static.get(self._url)
            if static is not None and parser.get_method() == b"GET":
                transport = self.transport
                assert transport is not None
                if keep_alive:
                    transport.write(static[0])
                else:
                    transport.write(static[1])
                    self._close()
                return
        request = Request(parser.get_method(), self._url, self._headers, b"".join(self._body),
                          keep_alive=keep_alive, version=parser.get_http_version())
        if self._task is not None or self._pending or self._write_paused:
            # Answer in order, and not while the client is not reading what we already sent.
            self._pending.append(request)
            if len(self._pending) >= MAX_PIPELINED:
                self._set_reading(False)
            return
        self._handle(request)

    # --- answering --------------------------------------------------------------------------------

    def _handle(self, request: Request) -> None:
        reply = self._app.dispatch(request, self)
        if isinstance(reply, bytes):
            if request.method == b"HEAD":
                reply = reply[: reply.find(b"\r\n\r\n") + 4]
            assert self.transport is not None
            self.transport.write(reply)
            if not request.keep_alive or self._close_after:
                self._close()
            return
        self._task = self.loop.create_task(self._run(reply, request.keep_alive))

    async def _run(self, reply: Coroutine[Any, Any, None], keep_alive: bool) -> None:
        try:
            await reply
        except ConnectionError:
            self.abort()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A route failed after possibly writing part of a response: the stream is unusable.
            self.abort()
            self.loop.call_exception_handler({"message": "surge serve: route failed", "exception": exc})
            return
        finally:
            self._task = None
        if self._closing:
            return
        if not keep_alive:
            self._close()
            return
        self._answer_pending()

    def _answer_pending(self) -> None:
        while self._pending and self._task is None and not self._closing and not self._write_paused:
            self._handle(self._pending.popleft())
        if not self._closing and not self._write_paused and len(self._pending) < MAX_PIPELINED:
            self._set_reading(True)

    def _set_reading(self, on: bool) -> None:
        transport = self.transport
        if transport is None or self._closing or on != self._read_paused:
            return
        self._read_paused = not on
        if on:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def _fail(self, status: int) -> None:
        if self.transport is not None and self._task is None and not self._pending:
            self.transport.write(response(status, b"bad request\n", keep_alive=False))
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    # --- for routes that write themselves ---------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the connection is closed or closing."""
        return self._closing

    def write(self, data: bytes) -> None:
        """Queue ``data`` on the transport; pair with :meth:`drain` in loops that write a lot."""
        if self._closing or self.transport is None:
            raise ConnectionResetError("connection closed")
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self._closing:
            raise ConnectionResetError("connection closed")
        if not self._write_paused:
            return
        if self._drain_waiter is None or self._drain_waiter.done():
            self._drain_waiter = self.loop.create_future()
        await self._drain_waiter

    def close_after_write(self) -> None:
        """Close (after flushing) once the bytes the route returns are written."""
        self._close_after = True

    def close(self) -> None:
        """Flush what is written, then close (FIN)."""
        self._close()

    def abort(self) -> None:
        """Close at once, dropping unsent data."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), as a crashed peer would."""
        transport = self.transport
        if transport is not None:
            sock: Any = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
        self.abort()


ProtocolFactory = Callable[[], HttpServerProtocol]
