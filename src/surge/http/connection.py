"""One HTTP/1.1 connection: an asyncio Protocol feeding an httptools (llhttp) response parser.

Hot path: parser callbacks write into preallocated fields of the connection and resolve a single future when
the response is complete; no task, no queue, no per-chunk allocation beyond the chunk itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from time import perf_counter
from typing import Any, cast

import httptools

from surge.errors import BodyTooLarge, ConnectError, ProtocolError, ReadTimeout, SurgeError
from surge.http.head import head_end, head_problem, parse_head

__all__ = ["BufferedConnection", "Connection"]

# The receive buffer a client's BufferedConnections share: below glibc's 128 KiB mmap threshold.
RECV_BUFFER = 64 * 1024

# Caps on a response head, whatever the server sends (see head_problem): its bytes up to the end of the final
# head (interim heads included), as browsers and servers cap them; its header fields, as Python's http.client
# does; interim (1xx) responses before the final one. Protocol safety, not tuning: constants (Limits sizes
# the pool).
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
MAX_INTERIM = 10
# A head no longer than this breaks no cap: "a:\r\n" is the shortest field, so it holds at most MAX_HEADERS
# of them. Such heads (nearly all) have their fields counted by no one.
_SHORT_HEAD = 4 * (MAX_HEADERS + 1)
# Bytes of a response that are neither head nor body: chunk sizes, chunk extensions, trailers. Neither
# max_body nor the read timeout bounds them (a server may send chunk extensions forever), so this does:
# 64 KiB beyond the head, plus 8 bytes a body byte (1-byte chunks take 5).
_MAX_FRAMING = 64 * 1024
_FRAMING_PER_BYTE = 8
# Streamed bodies: stop reading from the socket while this much is buffered and not yet consumed.
_STREAM_HIGH_WATER = 256 * 1024
# surge.http.client.Submitted, set by that module (which imports this one): on_message_complete finishes
# such a waiter inline.
TICKET_TYPE: Any = type(None)


class Connection(asyncio.Protocol):
    """An HTTP/1.1 client connection; one request at a time (no pipelining).

    ``send()`` writes a request head and returns a future resolved when the whole response has arrived
    (or, when streaming, when its headers have). Response fields (``status``, ``head``,
    ``chunks``...) are read off the connection by the client.
    """

    __slots__ = (
        "_drain",
        "_loop",
        "_on_close",
        "_paused",
        "_read_timeout",
        "_timer",
        "_timer_at",
        "buffered",
        "chunks",
        "closed",
        "complete",
        "counted",
        "error",
        "first_byte",
        "head",
        "headers_done",
        "idle_since",
        "interim",
        "is_head",
        "keep",
        "keep_alive",
        "key",
        "last_io",
        "max_body",
        "num_bytes",
        "parser",
        "received",
        "requests",
        "status",
        "streaming",
        "transport",
        "waiter",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, key: Hashable,
                 on_close: Callable[[Connection], None]) -> None:
        self._loop = loop
        self._on_close = on_close
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.counted = False
        self.closed = False
        self.requests = 0
        self.waiter: asyncio.Future[None] | Any = None  # a future, or Client.submit's stand-in
        self.error: SurgeError | None = None
        self.status = 0
        self.head: list[bytes] = []  # the segments that carried the response head (parsed lazily)
        self.chunks: list[bytes] = []
        self.keep = True
        self.buffered = 0
        self.num_bytes = 0
        self.max_body: int | None = None
        self.complete = False
        self.headers_done = False
        self.interim = False
        self.is_head = False
        self.streaming = False
        self.keep_alive = False
        self.first_byte = -1.0  # loop time of the first response byte; negative until one arrives
        self.last_io = 0.0
        self.received = 0  # bytes of the response so far, counted only while it spans segments
        self._read_timeout: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._paused = False
        self._drain: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    # Hot path: every received segment.
    def data_received(self, data: bytes) -> None:
        first = self.first_byte < 0.0
        if first:
            # A clock finer than uvloop's millisecond loop time: latencies are often below a millisecond.
            self.first_byte = perf_counter()
        if self.complete or self.waiter is None:
            # Bytes nobody asked for: the connection's framing can no longer be trusted.
            self.abort()
            return
        if not self.headers_done:
            # Headers are parsed from these bytes only if someone looks at them: no per-header callback.
            self.head.append(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("protocol upgrade is not supported"))
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Stop):
                raise  # a bug in a callback, not a bad response
            return  # a callback failed the request (self.error) or ended a HEAD response
        except httptools.HttpParserError as exc:
            if self.complete:
                self.abort()  # bytes after the response: it stands, the connection's framing does not
            elif self.error is None:
                self._fail(ProtocolError(f"malformed response: {exc}"))
            return
        if not self.complete:
            # Only a wait for more bytes needs the time of this read (the read timer's reference): a segment
            # that completes the response costs no clock call, nor the byte count below.
            self.last_io = self._loop.time()
            received = len(data) if first else self.received + len(data)
            self.received = received
            if self.error is not None:
                return
            if not self.headers_done:
                # A head (interim heads included) that has not ended within MAX_HEAD bytes never will.
                if received > MAX_HEAD:
                    self._fail(ProtocolError(f"response head larger than {MAX_HEAD} bytes"))
            elif first:
                # The whole head came in this segment and the body goes on: on_message_complete will not
                # see this head in one piece, so its caps are checked here.
                self._refused()
            elif received - self.num_bytes > MAX_HEAD + _MAX_FRAMING + _FRAMING_PER_BYTE * self.num_bytes:
                self._fail(ProtocolError("chunked framing (sizes, extensions, trailers) out of proportion "
                                         "to the body"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        waiter = self.waiter
        in_flight = (waiter is not None and not waiter.done()) or (self.streaming and not self.complete)
        if in_flight and not self.complete and self.error is None:
            if self.headers_done and exc is None and self._body_ends_at_eof():
                # No Content-Length and not chunked: the body is whatever came before the close.
                self.keep_alive = False
                self._on_message_complete_final()
            elif self.first_byte < 0.0:
                self._fail(ConnectError("connection closed before any response byte"))
            else:
                self._fail(ProtocolError("connection closed in the middle of the response"))
        self._on_close(self)

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- httptools callbacks ----------------------------------------------------------------------

    # Hot path: every response.
    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.status = status
        head = self.head
        if status < 200:
            # 100 Continue, 103 Early Hints: skipped, the real response follows. Checked one by one as they
            # end (with what follows in the segment), so that a server cannot send them forever.
            if status < 100:
                self._fail(ProtocolError(f"status {status} is not an HTTP status"))
                raise _Stop
            self.interim = True
            if self._refused():
                raise _Stop
            return
        self.headers_done = True
        # Where the head caps (see head_problem) are checked: a head in one segment, nearly every response,
        # when the response ends (on_message_complete, which knows the body's size) or goes on to the next
        # segment (data_received); any other head here, before anyone sees it.
        if len(head) > 1 or self.is_head or self.streaming:
            if len(head) > 1:
                head = self.head = [b"".join(head)]  # one piece from here on, for the checks and the scanners
            if self._refused():
                raise _Stop
            if self.is_head:
                # llhttp cannot be told a HEAD response has no body: finish it here, stop this parser (it
                # would take what follows for a body), use a fresh one next. Bytes after the head: the
                # framing is lost.
                whole = b"".join(head)
                self.keep_alive = self.parser.should_keep_alive() and head_end(whole) == len(whole)
                self.parser = httptools.HttpResponseParser(self)
                self._on_message_complete_final()
                raise _Stop
            if self.streaming:
                waiter = self.waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    # Hot path: every body segment.
    def on_body(self, body: bytes) -> None:
        n = self.num_bytes + len(body)
        self.num_bytes = n
        if self.max_body is not None and n > self.max_body:
            if self.error is None:
                self._fail(BodyTooLarge(f"body exceeds {self.max_body} bytes"))
            raise _Stop
        if self.keep:
            self.chunks.append(body)
        if self.streaming:
            self.buffered += len(body)
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self.buffered > _STREAM_HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()

    # Hot path: every response.
    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False  # its head stays in ``head``; the head parser skips 1xx blocks
            return
        if self.complete:
            return
        # The head caps, for a head that came in the segment that ends the response. The segment less the
        # body bounds the head's size at no cost: nearly every head is short enough to break no cap; a
        # longer one costs one count of its line ends. data[5] is 49 ("1") for "HTTP/1.", and for nothing
        # else llhttp takes but "RTSP/1." (same layout). The exact check runs only when the bound is loose
        # (chunk framing) or a cap may be broken.
        data = self.head[0]
        size = len(data) - self.num_bytes
        if (data[5] != 49 or (size > _SHORT_HEAD and (
                size > MAX_HEAD or data.count(b"\r\n", 0, size) > MAX_HEADERS))) and self._refused():
            raise _Stop
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
        waiter: Any = self.waiter
        if waiter is None:
            return
        if type(waiter) is TICKET_TYPE:
            # Client.submit's ticket: Submitted.set_result, inlined (change both together): one Python call
            # less per response.
            if not waiter.finished:
                waiter.finished = True
                client = waiter.client
                completed = client._completed
                if not completed:
                    client._loop.call_soon(client._complete)
                completed.append(waiter)
            return
        # Hot path: asking done() first costs a call per response; a cancelled waiter is the rare case.
        try:
            waiter.set_result(None)
        except asyncio.InvalidStateError:
            pass

    def _on_message_complete_final(self) -> None:
        self.complete = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the client -----------------------------------------------------------------------

    # Hot path: once per request. Client.request's fast path inlines this: change both together.
    def prepare(self, keep: bool, max_body: int | None, read_timeout: float | None, is_head: bool,  # noqa: PLR0917 - positional on the hot path
                streaming: bool, now: float, waiter: asyncio.Future[None] | Any) -> None:
        """Get ready for the response to a request about to be written; ``waiter`` hears of its end.

        ``waiter`` is a future, or an object with the same ``done``/``set_result``/``set_exception``/
        ``exception`` methods (``Client.submit``'s). ``now`` is the loop's time, which the caller has just
        read. Positional arguments only in the client's calls: keyword passing costs time on this path.
        """
        self.status = 0
        self.head = []
        if self.chunks:
            self.chunks = []  # the last response kept it; a body that was not kept left it empty
        self.keep = keep
        self.num_bytes = 0
        self.max_body = max_body
        self.complete = False
        self.headers_done = False
        self.first_byte = -1.0
        self.error = None
        self.is_head = is_head
        self.streaming = streaming
        self.requests += 1
        self.waiter = waiter
        self._read_timeout = read_timeout
        self.last_io = now
        if read_timeout is not None and (self._timer is None or self._timer_at > now + read_timeout):
            self._arm(now)

    def send(self, head: bytes, body: bytes | None, keep: bool, max_body: int | None,  # noqa: PLR0917 - positional on the hot path
             read_timeout: float | None, is_head: bool, streaming: bool, now: float,
             ) -> asyncio.Future[None]:
        """Write a request head; the future resolves when the response is complete (streaming: its headers).

        ``now`` is the loop's time, which the caller has just read.
        """
        fut = self._loop.create_future()
        self.prepare(keep, max_body, read_timeout, is_head, streaming, now, fut)
        # One write (one syscall) for head and a small body.
        self.transport.write(head if body is None else head + body)  # type: ignore[union-attr]
        return fut

    def write(self, data: bytes) -> None:
        """Write request body bytes."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectError("connection closed while sending the request body")
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        drain = self._drain
        if drain is not None and not drain.done():
            await drain
        if self.closed:
            raise ConnectError("connection closed while sending the request body")

    async def read_chunks(self) -> list[bytes]:
        """Streaming: the body chunks received so far (waiting for at least one); [] once complete."""
        if not self.chunks and not self.complete:
            if self.error is not None:
                raise self.error
            if self.closed:
                raise ProtocolError("connection closed in the middle of the response")
            fut = self._loop.create_future()
            self.waiter = fut
            if self._read_timeout is not None:
                self._arm(self._loop.time())
            await fut
        if self.error is not None:
            raise self.error
        chunks = self.chunks
        self.chunks = []
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunks

    @property
    def reusable(self) -> bool:
        """The response is complete, the server allows keep-alive and the socket is open."""
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def abort(self) -> None:
        """Close the socket now (unread data is discarded)."""
        if self.transport is not None and not self.closed:
            self.transport.abort()
        self.closed = True

    def close(self) -> None:
        """Close the socket after flushing what is written."""
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def fail(self, exc: SurgeError) -> None:
        """Fail the request in flight with ``exc`` and close."""
        self._fail(exc)

    # -- internals ---------------------------------------------------------------------------------

    def _refused(self) -> bool:
        # Whether the head so far breaks a cap (see head_problem); if so the request is failed. A callback
        # that gets True raises _Stop: the parser would go on with the segment.
        head = self.head
        data = head[0] if len(head) == 1 else b"".join(head)
        problem = head_problem(data, MAX_HEAD, MAX_HEADERS, MAX_INTERIM)
        if problem is None:
            return False
        self._fail(ProtocolError(problem))
        return True

    def _fail(self, exc: SurgeError) -> None:
        self.error = exc
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
            # Whoever awaits it still gets the exception; nobody awaiting it is not an error here.
            waiter.exception()
        self.abort()

    def _body_ends_at_eof(self) -> bool:
        # llhttp's rule (RFC 9112 6.3): no Content-Length, and no Transfer-Encoding whose last coding is
        # chunked. Framing the two parsers disagree on is the shape of request smuggling.
        codings: list[bytes] = []
        for name, value in parse_head(b"".join(self.head))[1]:
            lname = name.lower()
            if lname == b"content-length":
                return False
            if lname == b"transfer-encoding":
                codings += value.lower().split(b",")
        return not codings or codings[-1].strip() != b"chunked"

    def _arm(self, now: float) -> None:
        # The read timer is lazy: armed once, it re-arms itself from ``last_io`` when it fires, so a busy
        # connection costs one timer per ``read`` seconds instead of one per request or per segment.
        self.last_io = now
        deadline = now + self._read_timeout  # type: ignore[operator]
        timer = self._timer
        if timer is None or self._timer_at > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self.waiter
        rt = self._read_timeout
        if waiter is None or waiter.done() or rt is None or self.closed:
            return  # nobody is waiting for bytes: disarm until the next wait
        deadline = self.last_io + rt
        if self._loop.time() >= deadline:
            self._fail(ReadTimeout(f"no response byte for {rt} s"))
        else:
            self._timer = self._loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline


class BufferedConnection(Connection, asyncio.BufferedProtocol):
    """A Connection that receives into a buffer it provides: for asyncio's own loops.

    Why: asyncio's selector transport otherwise calls ``recv(256 KiB)`` per read, a fresh bytes object
    above glibc's mmap threshold, so every response costs mmap + mremap + munmap (and the TLB shootdown
    of munmap): about three times the syscall time of the request itself, and whether it happens depends on
    the allocator's history (its threshold rises after any large free), which made throughput bimodal
    between runs. ``recv_into`` a buffer allocated once costs none of that. uvloop reuses its own buffer.
    """

    __slots__ = ("_buf", "_view")

    def __init__(self, loop: asyncio.AbstractEventLoop, key: Hashable,
                 on_close: Callable[[Connection], None], buffer: bytearray) -> None:
        super().__init__(loop, key, on_close)
        self._buf = buffer  # shared by the client's connections: each read is consumed before the next
        self._view = memoryview(buffer)

    def get_buffer(self, sizehint: int) -> bytearray:
        """The shared receive buffer."""
        return self._buf

    # Hot path: every received segment. One small copy: the parser's callbacks and the head keep bytes.
    def buffer_updated(self, nbytes: int) -> None:
        """Hand the bytes just received to ``data_received``."""
        self.data_received(self._view[:nbytes].tobytes())


class _Stop(Exception):
    """Raised in a parser callback to stop llhttp in the middle of a segment: the request has failed, or a
    HEAD response has ended. httptools hands it back as the ``__context__`` of an HttpParserCallbackError."""
