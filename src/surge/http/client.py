"""surge's HTTP/1.1 client: a connection pool per origin over asyncio Protocols and the llhttp parser.

The per-request path (prepared-request cache, idle-connection pop, one write, one future) is kept lean on
purpose: this client exists because generic clients are ten times slower at the same job.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from time import perf_counter
from types import TracebackType
from typing import Any

from surge.errors import (
    BlockedAddress,
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    PoolClosed,
    ProtocolError,
    RequestError,
    SurgeError,
    TLSError,
    TooManyRedirects,
    TotalTimeout,
)
from surge.http import connection as _connection
from surge.http import models as _models
from surge.http.connection import RECV_BUFFER, BufferedConnection, Connection
from surge.http.decoding import Decoder, decode_body, make_decoder
from surge.http.head import content_encoding
from surge.http.models import NOT_READ, Limits, PoolStatistics, Response, Timeout
from surge.http.pool import Origin, PoolState
from surge.http.proxy import Proxy, open_tunnel, parse_proxy
from surge.http.redirects import REDIRECT_STATUSES, plan_redirect
from surge.http.request import (
    _UNSAFE_TARGET,
    AUTHORITY_ENDS,
    Body,
    HeaderInput,
    ParamInput,
    Prepared,
    Target,
    merge_headers,
    origin_end,
    parse_url,
    prepare,
)
from surge.http.resolver import (
    PUBLIC,
    AddressPolicy,
    Resolver,
    address_class,
    apply_policy,
    literal_address,
    public_only,
)
from surge.http.tls import VerifyTypes, make_ssl_context

__all__ = ["Client", "ResponseStream", "Submitted"]


class _Unset:
    def __repr__(self) -> str:
        return "<default>"


_UNSET: Any = _Unset()
_DEFAULT_TIMEOUT = Timeout()
_DEFAULT_LIMITS = Limits()
_PREPARED_CACHE_MAX = 4096
_ORIGIN_CACHE_MAX = 1024
_NO_BODY_STATUS = frozenset({204, 304})
# What Client._peers keeps of a host: the classes of the addresses connected to for it, as bits, for the
# _PEERS_MAX hosts connected to last.
_PEER_PUBLIC = 1
_PEER_PRIVATE = 2
_PEER_CLASSES = (None, "public", "private", "mixed")
_PEERS_MAX = 10_000

_Waiter = asyncio.Future[Connection | None]
_new_response = object.__new__
_dead_origin: Origin[Connection, _Waiter] = Origin(None)
_dead_origin.alive = False
# Fast-path request heads written together at most this many at a time (see Client._flush_writes).
WRITE_BATCH = 32

_NO_HOT = ("", "", Prepared(), _dead_origin)

# Client.submit's completion callback: (the caller's context, the response or None, the error or None).
Done = Callable[[Any, "Response | None", "BaseException | None"], None]


class Submitted:
    """The caller's handle for requests started by :meth:`Client.submit`: one at a time, reusable.

    ``callback(ctx, response, error)`` is called once per submitted request. The handle may be submitted
    again once its callback has run (an engine keeps one per worker: no allocation per request); after
    :meth:`Client.cancel` it is spent.

    To the connection it stands in for the waiter future (``done``/``set_result``/``set_exception``/
    ``exception``): the connection reports the end of the exchange here, and the client finishes it, with
    every other exchange that ended in the same loop turn, in one call (see ``Client._complete``).
    """

    __slots__ = ("active", "callback", "cancelled", "client", "conn", "ctx", "error", "finished", "keep",
                 "max_body", "origin", "req", "response", "start", "task", "url")

    def __init__(self, callback: Done, ctx: Any = None, *, reuse_response: bool = False) -> None:
        self.callback = callback
        self.ctx = ctx
        # With reuse_response, every callback gets the same Response object, refilled: valid during the
        # callback only (keep what is needed, not the object). Saves building one per request.
        self.response: Response | None = _new_response(Response) if reuse_response else None
        if self.response is not None:
            self.response.history = []
            self.response._reason = None
            self.response._stream = None
        self.active = False  # submitted, not yet called back
        self.cancelled = False
        self.finished = False  # the exchange has ended (the connection said so)
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.client: Client | None = None
        self.conn: Connection | None = None
        self.req: Prepared | None = None
        self.origin: Origin[Connection, _Waiter] | None = None
        self.url = ""
        self.keep = True
        self.max_body: int | None = None
        self.start = 0.0

    def done(self) -> bool:
        """Whether the exchange has ended (or was cancelled)."""
        return self.finished

    # Hot path: every response.
    def set_result(self, _: None) -> None:
        """The response is complete (called by the connection)."""
        # Connection.on_message_complete inlines this for the common case: change both together.
        if not self.finished:
            self.finished = True
            client = self.client
            completed = client._completed  # type: ignore[union-attr]
            if not completed:
                client._loop.call_soon(client._complete)  # type: ignore[union-attr]
            completed.append(self)

    def set_exception(self, exc: BaseException) -> None:
        """The exchange failed (called by the connection)."""
        if not self.finished:
            self.error = exc
            self.set_result(None)

    def exception(self) -> BaseException | None:
        """The failure, if any."""
        return self.error


_connection.TICKET_TYPE = Submitted


class Client:
    """An HTTP/1.1 client with one keep-alive connection pool per origin.

    >>> async def main() -> None:
    ...     async with Client() as client:
    ...         r = await client.request("GET", "http://127.0.0.1:8080/")
    ...         print(r.status, r.headers.get("content-type"), len(r.content))

    Every failure raises exactly one ``surge.errors.RequestError`` subclass (or ``PoolClosed`` after
    ``aclose()``); cancellation propagates untouched and leaves the pool consistent.

    A redirect from a public address may not lead to one that is not (loopback, private, link-local...: see
    :func:`surge.http.address_class`): it fails with ``BlockedAddress``, checked on the addresses connected
    to, unless ``allow_private=True``. The URL asked for is never refused by this, nor a redirect from a
    private address (a local server's own redirects); ``address_policy`` is the policy for every request.
    """

    def __init__(
        self,
        *,
        timeout: Timeout = _DEFAULT_TIMEOUT,
        limits: Limits = _DEFAULT_LIMITS,
        max_redirects: int = 10,
        follow_redirects: bool = True,
        max_body: int | None = 64 * 2**20,
        headers: Mapping[str, str] | None = None,
        verify: VerifyTypes = True,
        address_policy: AddressPolicy | None = None,
        dns_ttl: float = 60.0,
        user_agent: str = "surge/0.1",
        proxy: str | None = None,
        resolver: Resolver | None = None,
        accept_encoding: str = "gzip, deflate, br, zstd",
        allow_private: bool = False,
    ) -> None:
        self._timeout = timeout
        self._limits = limits
        self._max_redirects = max_redirects
        self._follow_redirects = follow_redirects
        self._max_body = max_body
        defaults = [("User-Agent", user_agent), ("Accept", "*/*")]
        if accept_encoding:
            defaults.append(("Accept-Encoding", accept_encoding))
        self._defaults = merge_headers(defaults, headers)
        self._verify = verify
        self._ssl_ctx: ssl.SSLContext | None = None
        if verify is not True:
            self._ssl_ctx = make_ssl_context(verify)  # a bad CA path is a ConfigError now, not per request
        self._policy = address_policy
        self._guard = not allow_private  # see _follow
        self._peers: dict[str, int] = {}  # host -> _PEER_PUBLIC | _PEER_PRIVATE (see _note_peer)
        self._resolver = resolver if resolver is not None else Resolver(dns_ttl)
        self._proxy: Proxy | None = parse_proxy(proxy) if proxy else None
        self._state: PoolState[Connection, _Waiter] = PoolState(limits)
        self._prepared: dict[tuple[str, str], Prepared] = {}
        self._origins: dict[tuple[str, str], _OriginTemplate] = {}
        # The template _from_origin used last, with its method and origin part ("\0": matches no URL).
        self._last_template: tuple[str, str, _OriginTemplate | None] = ("", "\0", None)
        self._conns: set[Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recv_buffer: bytearray | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        self._fast = timeout.total is None  # the inline fast path handles no total timeout
        self._read_timeout = timeout.read
        self._idle_expiry = limits.idle_expiry
        # The last fast-path request: (method, url, its Prepared, its origin's pool entry).
        self._hot: tuple[str, str, Prepared, Origin[Connection, _Waiter]] = _NO_HOT
        # Fast-path request heads not yet written: (transport, bytes), flushed by the next loop turn.
        self._writes: list[tuple[asyncio.Transport, bytes]] = []
        # Exchanges started by submit() that ended in this loop turn, finished together by _complete().
        self._completed: list[Submitted] = []

    # -- public API -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: HeaderInput = None,
        params: ParamInput = None,
        content: Body = None,
        timeout: Timeout | None = None,  # noqa: ASYNC109 - per phase, not one deadline
        follow_redirects: bool = True,
        max_body: int | None = _UNSET,
        keep_body: bool = True,
        refuse_private: bool = False,
    ) -> Response:
        """Send one request and read the whole response (following redirects unless told not to).

        ``content`` is bytes or an async iterable of bytes (sent chunked unless a Content-Length header
        is given). ``max_body`` caps the body on the wire and after decoding (None = no cap).
        ``keep_body=False`` reads and counts the body without storing it (load tests).
        ``refuse_private=True`` refuses an address that is not public for this request and its redirects
        (``BlockedAddress``): for a URL found on a public page.
        """
        if max_body is _UNSET:
            max_body = self._max_body
        if headers is None and params is None and content is None and timeout is None and self._fast \
                and not refuse_private:
            # Hot path: a plain request to a URL seen before, with an idle kept-alive connection to its
            # origin, runs inline here: no extra coroutine frames, no parsing, one write, one future.
            state = self._state
            hot = self._hot
            if url == hot[1] and method == hot[0] and hot[3].alive:
                # The same URL as the last fast request (a load test): no key tuples to build and hash.
                req: Prepared | None = hot[2]
                o: Origin[Connection, _Waiter] | None = hot[3]
            else:
                req, o = self._lookup(method, url)
            if req is not None and o is not None and o.idle:
                # PoolState.checkout's common case, inlined: the newest idle connection is fresh.
                loop = self._loop
                assert loop is not None
                conn: Connection | None = o.idle[-1]
                assert conn is not None
                now = loop.time()
                if not conn.closed and now - conn.idle_since < self._idle_expiry:
                    o.idle.pop()
                    state.idle -= 1
                    state.reused += 1
                else:
                    conn = state.checkout(o, now)
                    if state.to_close:
                        self._flush()
                if conn is not None:
                    start = perf_counter()
                    state.requests += 1
                    # Connection.send, inlined (keep the two in step): its call with eight arguments was
                    # about 2% of a request's instructions.
                    conn.status = 0
                    conn.head = []
                    if conn.chunks:
                        conn.chunks = []
                    conn.keep = keep_body
                    conn.num_bytes = 0
                    conn.max_body = max_body
                    conn.complete = False
                    conn.headers_done = False
                    conn.first_byte = -1.0
                    conn.error = None
                    conn.is_head = req.is_head
                    conn.streaming = False
                    conn.requests += 1
                    fut = conn.waiter = loop.create_future()
                    # Coalesced with the other requests written in this loop turn (see _flush_writes).
                    writes = self._writes
                    if not writes:
                        loop.call_soon(self._flush_writes)
                    writes.append((conn.transport, req.head))  # type: ignore[arg-type]
                    if len(writes) >= WRITE_BATCH:
                        self._flush_writes()
                    read_timeout = conn._read_timeout = self._read_timeout
                    conn.last_io = now
                    if read_timeout is not None and (conn._timer is None
                                                     or conn._timer_at > now + read_timeout):
                        conn._arm(now)
                    try:
                        await fut
                    except asyncio.CancelledError:
                        self._abandon(conn)
                        raise
                    except RequestError as exc:
                        self._drop(conn)
                        if exc.url is None:
                            exc.url = url
                        if not self._stale(exc, conn, req):
                            raise
                        try:
                            resp = await self._send(req, self._timeout, max_body, keep_body, False,
                                                    start, True)
                        except RequestError as again:
                            if again.url is None:
                                again.url = url
                            raise
                    else:
                        # Client._response's common case, inlined (one call frame and one origin lookup
                        # less per request): the connection goes back on the idle stack it came from.
                        resp = _new_response(Response)
                        resp.status = conn.status
                        resp._reason = None
                        head = resp._head = conn.head
                        resp._headers = None
                        resp._content_type = NOT_READ
                        resp._stream = None
                        resp.url = req.target.url
                        resp.method = req.method
                        resp.history = []
                        resp.num_bytes = conn.num_bytes
                        resp.ttfb = conn.first_byte - start
                        resp.connection_reused = conn.requests > 1
                        if conn.keep_alive and not conn.closed:
                            if o.waiters or state._starved:
                                state.checkin(conn, conn.last_io)
                                if state.grants or state.to_close:
                                    self._flush()
                            else:
                                # The loop time of the last read before the one that completed the response
                                # (or of the request's start): at most that much early, never late.
                                conn.idle_since = conn.last_io
                                o.idle.append(conn)
                                state.idle += 1
                        else:
                            self._drop(conn)
                        if keep_body:
                            chunks = conn.chunks
                            content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                            if content:
                                encoding = content_encoding(head[0] if len(head) == 1 else b"".join(head))
                                if encoding is not None:
                                    try:
                                        content = decode_body(encoding, [content], max_body)
                                    except RequestError as exc:  # bad, or decoded too large
                                        exc.url = url
                                        raise
                            resp.content = content
                        else:
                            resp.content = b""
                    if follow_redirects and resp.status in REDIRECT_STATUSES:
                        try:
                            resp = await self._follow(resp, req, self._timeout, max_body, keep_body, False,
                                                      start)
                        except RequestError as exc:
                            if exc.url is None:
                                exc.url = url
                            raise
                    resp.elapsed = perf_counter() - start
                    return resp
        to = self._timeout if timeout is None else timeout
        try:
            if to.total is None:
                return await self._request(method, url, headers, params, content, to,
                                           follow_redirects, max_body, keep_body, False, refuse_private)
            return await self._with_total(method, url, headers, params, content, to,
                                          follow_redirects, max_body, keep_body, False, refuse_private)
        except RequestError as exc:
            if exc.url is None:
                exc.url = url
            raise

    def submit(self, method: str, url: str, ticket: Submitted, keep_body: bool = True) -> bool:
        """Start a plain request without a coroutine, if it can start at once; return whether it did.

        For engines that keep thousands of requests going: ``ticket``'s callback gets
        ``(ctx, response, None)`` or ``(ctx, None, error)`` from the event loop when the request ends, once,
        unless :meth:`cancel` is called first. The request is what ``request(method, url,
        keep_body=...)`` would send, redirects and the stale keep-alive retry included, with the same
        response or error. It starts only on an idle kept-alive connection to an origin the client has
        prepared a request for before, and without a total timeout; otherwise nothing is sent, False is
        returned, and the caller should ``await request(...)``, which opens or waits for a connection.
        Exchanges that end in the same loop turn are finished by one call and their callbacks run there,
        outside the parser: a callback may submit its ticket again at once.

        Why: awaiting ``request()`` costs a coroutine, a future, a task switch and a response's worth of
        bookkeeping per request, several percent of the CPU a load test spends per request.
        """
        if not self._fast:
            return False
        if ticket.active or ticket.cancelled:
            raise RuntimeError("this ticket is in use or was cancelled")
        state = self._state
        hot = self._hot
        if url == hot[1] and method == hot[0] and hot[3].alive:
            req: Prepared | None = hot[2]
            o: Origin[Connection, _Waiter] | None = hot[3]
        else:
            req, o = self._lookup(method, url)
        if req is None or o is None or not o.idle:
            return False
        loop = self._loop
        assert loop is not None
        conn: Connection | None = o.idle[-1]
        assert conn is not None
        now = loop.time()
        if not conn.closed and now - conn.idle_since < self._idle_expiry:
            o.idle.pop()
            state.idle -= 1
            state.reused += 1
        else:
            conn = state.checkout(o, now)
            if state.to_close:
                self._flush()
            if conn is None:
                return False
        state.requests += 1
        max_body = self._max_body
        ticket.active = True
        ticket.finished = False
        ticket.error = None
        ticket.client = self
        ticket.conn = conn
        ticket.req = req
        ticket.origin = o
        ticket.url = url
        ticket.keep = keep_body
        ticket.max_body = max_body
        ticket.start = perf_counter()
        # Connection.prepare, inlined (keep the two in step): its call with seven arguments cost ~3% here.
        conn.status = 0
        conn.head = []
        if conn.chunks:
            conn.chunks = []
        conn.keep = keep_body
        conn.num_bytes = 0
        conn.max_body = max_body
        conn.complete = False
        conn.headers_done = False
        conn.first_byte = -1.0
        conn.error = None
        conn.is_head = req.is_head
        conn.streaming = False
        conn.requests += 1
        conn.waiter = ticket
        read_timeout = conn._read_timeout = self._read_timeout
        conn.last_io = now
        if read_timeout is not None and (conn._timer is None or conn._timer_at > now + read_timeout):
            conn._arm(now)
        writes = self._writes
        if not writes:
            loop.call_soon(self._flush_writes)
        writes.append((conn.transport, req.head))  # type: ignore[arg-type]
        if len(writes) >= WRITE_BATCH:
            self._flush_writes()
        return True

    def cancel(self, ticket: Submitted) -> None:
        """Give up on the request ``ticket`` carries: its callback will not be called; the ticket is spent.

        The connection is kept if its response had fully arrived, else closed (as for a cancelled
        ``request()``). Cancelling a ticket whose callback has run already does nothing more.
        """
        ticket.cancelled = True
        if not ticket.active:
            return
        ticket.active = False
        task = ticket.task
        if task is not None:
            # A redirect or retry is under way; the connection was dealt with when it started.
            ticket.task = None
            task.cancel()
            return
        ticket.finished = True  # whatever the connection reports from now on is ignored
        conn = ticket.conn
        assert conn is not None
        conn.waiter = None
        if ticket.error is not None:
            self._drop(conn)
        else:
            self._abandon(conn)

    def _complete(self) -> None:
        # The exchanges submit() started that ended since the last call (see Submitted.set_result).
        completed = self._completed
        self._completed = []
        state = self._state
        # They all ended in the loop's last I/O phase, before this call: one clock read times them all. A
        # read per response would also count the callbacks of the responses before it in this batch.
        end = perf_counter()
        for t in completed:
            if not t.active:
                continue  # cancelled
            conn: Connection = t.conn  # type: ignore[assignment]
            conn.waiter = None  # the ticket may be submitted again: the connection forgets it
            error = t.error
            resp: Response | None = None
            if error is None:
                # The Response, and the connection back on its idle stack: request()'s fast path inlines the
                # same (change both together); a call here cost ~2% of a request.
                req: Prepared = t.req  # type: ignore[assignment]
                start = t.start
                status = conn.status
                resp = t.response
                if resp is None or status in REDIRECT_STATUSES:
                    resp = _new_response(Response)
                    resp._reason = None
                    resp._stream = None
                    resp.history = []
                resp.status = status
                head = resp._head = conn.head
                resp._headers = None
                # The Content-Type when the head is byte for byte the last one read (Response.content_type's
                # memo; a load test: nearly always), so that reading it costs no call (the engine reads it
                # for every outcome).
                last = _models._last_head
                resp._content_type = last[1] if len(head) == 1 and head[0] == last[0] else NOT_READ
                resp.url = req.target.url
                resp.method = req.method
                resp.num_bytes = conn.num_bytes
                resp.ttfb = conn.first_byte - start
                resp.connection_reused = conn.requests > 1
                if conn.keep_alive and not conn.closed:
                    o = t.origin
                    assert o is not None
                    if o.waiters or state._starved:
                        state.checkin(conn, conn.last_io)
                        if state.grants or state.to_close:
                            self._flush()
                    else:
                        conn.idle_since = conn.last_io
                        o.idle.append(conn)
                        state.idle += 1
                else:
                    self._drop(conn)
                resp.content = b""
                if t.keep:
                    chunks = conn.chunks
                    content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    if content:
                        encoding = content_encoding(head[0] if len(head) == 1 else b"".join(head))
                        if encoding is not None:
                            try:
                                content = decode_body(encoding, [content], t.max_body)
                            except RequestError as exc:  # the body could not be decoded, or decoded too large
                                exc.url = exc.url or t.url
                                error = exc
                                resp = None
                    if resp is not None:
                        resp.content = content
                if resp is not None:
                    if resp.status in REDIRECT_STATUSES:
                        t.task = self._loop.create_task(self._submitted_slow(t, resp))  # type: ignore[union-attr]
                        continue
                    resp.elapsed = end - t.start
            else:
                self._drop(conn)
                if isinstance(error, RequestError):
                    if error.url is None:
                        error.url = t.url
                    if self._stale(error, conn, t.req):  # type: ignore[arg-type]
                        t.task = self._loop.create_task(self._submitted_slow(t, None))  # type: ignore[union-attr]
                        continue
            t.active = False
            try:
                t.callback(t.ctx, resp, error)
            except Exception as exc:  # one caller's bug must not strand the others' requests
                self._loop.call_exception_handler(  # type: ignore[union-attr]
                    {"message": "exception in a Client.submit callback", "exception": exc})
        # Requests the callbacks started go out now, not a loop turn later.
        self._flush_writes()

    async def _submitted_slow(self, t: Submitted, resp: Response | None) -> None:
        # The rest of a submitted request that needs awaiting: following a redirect (``resp`` is its answer),
        # or (``resp`` None) the stale keep-alive retry of request(), once, on a fresh connection.
        req: Prepared = t.req  # type: ignore[assignment]
        try:
            if resp is None:
                resp = await self._send(req, self._timeout, t.max_body, t.keep, False, t.start, True)
            if resp.status in REDIRECT_STATUSES:
                resp = await self._follow(resp, req, self._timeout, t.max_body, t.keep, False, t.start)
            resp.elapsed = perf_counter() - t.start
        except (RequestError, PoolClosed, OSError) as exc:
            if isinstance(exc, RequestError) and exc.url is None:
                exc.url = t.url
            self._call_back(t, None, exc)
        except Exception as bug:
            # Not a request failure but a bug: the submitter hears of it (the engine stops the run) rather
            # than waiting for ever for a callback that would never come.
            self._call_back(t, None, bug)
        else:
            self._call_back(t, resp, None)

    def _call_back(self, t: Submitted, resp: Response | None, error: BaseException | None) -> None:
        t.task = None
        if t.active:
            t.active = False
            t.callback(t.ctx, resp, error)
            self._flush_writes()

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: HeaderInput = None,
        params: ParamInput = None,
        content: Body = None,
        timeout: Timeout | None = None,  # noqa: ASYNC109 - per phase, not one deadline
        follow_redirects: bool = True,
        max_body: int | None = _UNSET,
    ) -> AsyncIterator[Response]:
        """Send one request and yield the response once its headers arrive; read the body with
        ``async for chunk in response.aiter_bytes()``. Leaving the block returns the connection to the
        pool if the body was read to the end, and closes it otherwise."""
        if max_body is _UNSET:
            max_body = self._max_body
        to = self._timeout if timeout is None else timeout
        try:
            if to.total is None:
                resp = await self._request(method, url, headers, params, content, to,
                                           follow_redirects, max_body, True, True)
            else:
                resp = await self._with_total(method, url, headers, params, content, to,
                                              follow_redirects, max_body, True, True)
        except RequestError as exc:
            if exc.url is None:
                exc.url = url
            raise
        if resp._stream is not None:
            resp._stream.url = url  # the body's errors name the request, as the head's do
        try:
            yield resp
        finally:
            if resp._stream is not None:
                resp._stream.close()
                await asyncio.sleep(0)  # let the transport finish closing before the caller moves on

    def statistics(self) -> PoolStatistics:
        """Connections opened, reused, closed, now idle and active, and requests sent."""
        return self._state.statistics()

    def peer_class(self, url: str) -> str | None:
        """What this client's connections to ``url``'s host led to: ``"public"``, ``"private"`` (any class but
        public), ``"mixed"``, or None (no connection yet; only the last 10,000 hosts connected to are known).
        """
        try:
            host = parse_url(url).host
        except InvalidURL:
            return None
        return _PEER_CLASSES[self._peers.get(host, 0)]

    @property
    def resolver(self) -> Resolver:
        """The DNS resolver and its cache."""
        return self._resolver

    async def aclose(self) -> None:
        """Close every connection; requests waiting for a connection fail with PoolClosed."""
        if self._closed:
            return
        self._closed = True
        self._fast = False
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for waiter in self._state.close_all():
            if not waiter.done():
                waiter.set_exception(PoolClosed("the client was closed"))
        self._flush()
        for conn in list(self._conns):
            conn.fail(PoolClosed("the client was closed"))
        # One loop turn lets connection_lost() run for every aborted transport.
        await asyncio.sleep(0)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- one request, redirects included ----------------------------------------------------------

    async def _with_total(self, method: str, url: str, headers: HeaderInput, params: ParamInput,  # noqa: PLR0917 - positional on the hot path
                          content: Body, to: Timeout, follow: bool, max_body: int | None, keep: bool,
                          streaming: bool, guard: bool = False) -> Response:
        total = to.total
        assert total is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + total
        try:
            async with asyncio.timeout_at(deadline) as cm:
                resp = await self._request(method, url, headers, params, content, to, follow, max_body,
                                           keep, streaming, guard)
        except TimeoutError:
            if cm.expired():
                raise TotalTimeout(f"request took longer than {total} s") from None
            raise
        if resp._stream is not None:
            resp._stream.deadline = deadline
        return resp

    async def _request(self, method: str, url: str, headers: HeaderInput, params: ParamInput,  # noqa: PLR0917 - positional on the hot path
                       content: Body, to: Timeout, follow: bool, max_body: int | None, keep: bool,
                       streaming: bool, guard: bool = False) -> Response:
        if self._loop is None:
            self._bind_loop()
        start = perf_counter()
        if headers is None and params is None and content is None:
            # Hot path: a plain request to a URL seen before costs one dict lookup.
            req = self._prepared.get((method, url))
            if req is None:
                req = self._prepare_cached(method, url)
        else:
            req = self._prepare(method, parse_url(url, params), headers, content)
        resp = await self._send(req, to, max_body, keep, streaming, start, guard=guard)
        if follow and resp.status in REDIRECT_STATUSES:
            resp = await self._follow(resp, req, to, max_body, keep, streaming, start, guard)
        resp.elapsed = perf_counter() - start
        return resp

    async def _follow(self, resp: Response, req: Prepared, to: Timeout, max_body: int | None, keep: bool,  # noqa: PLR0917 - positional on the hot path
                      streaming: bool, start: float, guard: bool = False) -> Response:
        if not self._follow_redirects:
            return resp  # the caller follows (a crawler: the target goes through its own rules)
        history: list[Response] = []
        while resp.status in REDIRECT_STATUSES:
            location = resp.headers.get("location")
            if location is None:
                break
            if len(history) >= self._max_redirects:
                if resp._stream is not None:
                    resp._stream.close()
                raise TooManyRedirects(f"more than {self._max_redirects} redirects")
            if resp._stream is not None:
                await resp.aread()
            try:
                plan = plan_redirect(req.method, req.target.url, resp.status, location, req.headers)
                target = parse_url(plan.url)
            except (InvalidURL, ValueError):  # urljoin raises ValueError too ("http://[::1/")
                raise ProtocolError(f"redirect to an unusable URL: {location!r}") from None
            body = req.body if plan.keep_body else None
            if plan.keep_body and body is not None and not isinstance(body, bytes):
                break  # a streamed body cannot be sent twice: the redirect response is the answer
            # A hop from a public address (or from one that had to be public) may not lead to a private
            # one: the guard is off only after a host this client has reached at private addresses only.
            guard = guard or (self._guard and self._peers.get(req.target.host) != _PEER_PRIVATE)
            req = self._prepare(plan.method, target, plan.headers, body)
            history.append(resp)
            resp = await self._send(req, to, max_body, keep, streaming, start, guard=guard)
        resp.history = history
        return resp

    # -- one hop ----------------------------------------------------------------------------------

    async def _send(self, req: Prepared, to: Timeout, max_body: int | None, keep: bool, streaming: bool,  # noqa: PLR0917 - positional on the hot path
                    start: float, fresh: bool = False, guard: bool = False) -> Response:
        """One hop: a connection (idle, new or waited for), the request, the response head or whole.

        ``guard``: the hop may reach public addresses only (BlockedAddress).
        """
        if self._closed:
            raise PoolClosed("the client was closed")
        state = self._state
        key = req.target.key
        o = state.origins.get(key)
        if o is None:
            o = state.origin(key)
        loop = self._loop
        assert loop is not None
        conn = state.checkout(o, loop.time()) if o.idle and not fresh else None
        if state.to_close:
            self._flush()
        while True:
            if conn is None:
                conn = await self._acquire(o, req, to, guard)
            if guard and conn.requests and self._private_peer(conn, req.target.host):
                # Kept alive from a request without the guard (one asked for directly): not for this one.
                self._release(conn)
                raise BlockedAddress(f"{req.target.host} is not a public address (a kept-alive connection "
                                     "to it leads to a private one); a redirect or a link from a public "
                                     "address may not lead there")
            state.requests += 1
            body = req.body
            small = type(body) is bytes and len(body) < 65536
            fut = conn.send(req.head, body if small else None, keep or streaming,  # type: ignore[arg-type]
                            max_body, to.read, req.is_head, streaming, loop.time())
            try:
                if body is not None and not small:
                    await self._write_body(conn, req)
                await fut
            except asyncio.CancelledError:
                self._abandon(conn)
                raise
            except RequestError as exc:
                if not fut.done():
                    fut.cancel()
                elif not fut.cancelled():
                    fut.exception()  # retrieved: it is the same failure, or a consequence of it
                self._drop(conn)
                if not fresh and self._stale(exc, conn, req):
                    fresh = True
                    conn = None
                    continue
                raise
            return self._response(conn, req, start, keep, max_body, streaming)

    def _stale(self, exc: RequestError, conn: Connection, req: Prepared) -> bool:
        # A kept-alive connection the server had closed: retried once, on a fresh connection, if replayable.
        body = req.body
        return (isinstance(exc, ConnectError) and conn.requests > 1 and conn.first_byte < 0
                and req.idempotent and (body is None or type(body) is bytes))

    # Hot path: once per request.
    def _response(self, conn: Connection, req: Prepared, start: float, keep: bool, max_body: int | None,  # noqa: PLR0917 - positional on the hot path
                  streaming: bool = False) -> Response:
        """The Response for the exchange that just completed on ``conn``; the connection goes back."""
        r = Response.__new__(Response)
        r.status = conn.status
        r._reason = None
        r._head = conn.head
        r._headers = None
        r._content_type = NOT_READ
        r.url = req.target.url
        r.method = req.method
        r.history = []
        r.num_bytes = conn.num_bytes
        r.ttfb = conn.first_byte - start
        r.connection_reused = conn.requests > 1
        if streaming:
            r.content = b""
            r.elapsed = 0.0
            decoder = None
            if not req.is_head and r.status not in _NO_BODY_STATUS:
                encoding = content_encoding(b"".join(conn.head))
                if encoding is not None:
                    decoder = make_decoder(encoding, max_body)
            r._stream = stream = ResponseStream(self, conn, decoder)
            if conn.complete and not conn.chunks:
                stream._finish()
            return r
        r._stream = None
        if keep:
            chunks = conn.chunks
            content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        else:
            content = b""
        head = conn.head
        if conn.keep_alive and not conn.closed:
            state = self._state
            o = state.origins[conn.key]
            if o.waiters or state._starved:
                state.checkin(conn, self._loop.time())  # type: ignore[union-attr]
                if state.grants or state.to_close:
                    self._flush()
            else:
                # PoolState.checkin's common case, inlined: back on the idle stack.
                conn.idle_since = self._loop.time()  # type: ignore[union-attr]
                o.idle.append(conn)
                state.idle += 1
        else:
            self._drop(conn)
        if keep and content:
            encoding = content_encoding(head[0] if len(head) == 1 else b"".join(head))
            if encoding is not None:
                content = decode_body(encoding, [content], max_body)
        r.content = content
        return r

    async def _write_body(self, conn: Connection, req: Prepared) -> None:
        body = req.body
        if type(body) is bytes:
            conn.write(body)
            return
        assert isinstance(body, AsyncIterable)
        async for chunk in body:
            if conn.complete or conn.error is not None:
                break  # the server answered before the upload ended
            if not chunk:
                continue
            if req.chunked:
                conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                conn.write(chunk)
            await conn.drain()
        else:
            if req.chunked:
                conn.write(b"0\r\n\r\n")

    # -- the pool at the I/O edge -----------------------------------------------------------------

    async def _acquire(self, o: Origin[Connection, _Waiter], req: Prepared, to: Timeout,
                       guard: bool = False) -> Connection:
        state = self._state
        loop = self._loop
        assert loop is not None
        while True:
            if self._closed:
                raise PoolClosed("the client was closed")
            if state.reserve(o):
                if state.to_close:
                    self._flush()
                return await self._open(o, req.target, to, guard)
            fut: _Waiter = loop.create_future()
            state.wait(o, fut)
            try:
                conn = await fut
            except asyncio.CancelledError:
                if not fut.done() or fut.cancelled():
                    state.cancel_wait(o, fut)
                else:
                    granted = fut.result()  # served just before the cancellation landed: give it back
                    if granted is None:
                        state.release_slot(o)
                    else:
                        state.checkin(granted, loop.time())
                    self._flush()
                raise
            if conn is None:
                return await self._open(o, req.target, to, guard)
            if not conn.closed:
                return conn

    async def _open(self, o: Origin[Connection, _Waiter], target: Target, to: Timeout,
                    guard: bool = False) -> Connection:
        """Open a connection into a reserved slot; the slot is released if that fails or is cancelled."""
        state = self._state
        try:
            if to.connect is None:
                conn = await self._connect(target, guard)
            else:
                try:
                    async with asyncio.timeout(to.connect) as cm:
                        conn = await self._connect(target, guard)
                except TimeoutError:
                    if cm.expired():
                        raise ConnectTimeout(f"no connection to {target.host} within {to.connect} s"
                                             ) from None
                    raise
        except BaseException:
            state.release_slot(o)
            self._flush()
            raise
        if conn.closed:
            state.release_slot(o)
            self._flush()
            raise ConnectError(f"connection to {target.host} closed as soon as it opened")
        conn.counted = True
        state.opened += 1
        self._conns.add(conn)
        if self._sweeper is None:
            self._arm_sweeper()
        return conn

    async def _connect(self, target: Target, guard: bool = False) -> Connection:
        loop = self._loop
        assert loop is not None
        proxy = self._proxy
        host, port = (proxy.host, proxy.port) if proxy is not None else (target.host, target.port)
        addrs = await self._resolver.resolve(host, port)
        # The policies judge the very addresses connected to below: no second lookup in between.
        literal = None
        if proxy is None:
            addrs = apply_policy(addrs, self._policy, host)
            if guard:
                addrs = public_only(addrs, host)
        else:
            # Through a proxy the target is resolved by the proxy; the policy cannot see its address, and the
            # guard sees it only when the URL spells it (2130706433 included).
            literal = literal_address(target.host)
            if guard and literal is not None:
                public_only([(0, literal)], target.host)
        ctx = self._ssl_context() if target.tls else None
        key = target.key

        buffer = self._recv_buffer
        if buffer is None and isinstance(loop, asyncio.BaseEventLoop):
            # asyncio's own loops: receive into one buffer (see BufferedConnection); uvloop needs none.
            buffer = self._recv_buffer = bytearray(RECV_BUFFER)

        def factory() -> Connection:
            if buffer is not None:
                return BufferedConnection(loop, key, self._connection_lost, buffer)
            return Connection(loop, key, self._connection_lost)

        last: RequestError | None = None
        for _family, ip in addrs:
            try:
                if proxy is not None and target.tls:
                    assert ctx is not None
                    conn = await open_tunnel(loop, factory, proxy, ip, target, ctx)
                else:
                    _, conn = await loop.create_connection(
                        factory, ip, port, ssl=ctx,
                        server_hostname=target.host if ctx is not None else None,
                    )
                self._note_peer(target.host, ip if proxy is None else literal)
                return conn
            except ssl.SSLError as exc:
                raise TLSError(f"TLS with {target.host} failed: {exc.reason or exc}") from None
            except ssl.CertificateError as exc:
                raise TLSError(f"TLS with {target.host} failed: {exc}") from None
            except OSError as exc:
                last = ConnectError(f"cannot connect to {ip} port {port}: {exc.strerror or exc}")
            except RequestError as exc:
                last = exc
        assert last is not None
        raise last

    def _note_peer(self, host: str, ip: str | None) -> None:
        # What _follow and peer_class know of a host: the classes of the addresses its connections went to.
        if ip is None:
            return  # through a proxy, to a name: unknown, which counts as public
        peers = self._peers
        seen = peers.pop(host, 0)
        if len(peers) >= _PEERS_MAX:
            del peers[next(iter(peers))]  # the host connected to longest ago
        peers[host] = seen | (_PEER_PUBLIC if address_class(ip) == PUBLIC else _PEER_PRIVATE)

    def _private_peer(self, conn: Connection, host: str) -> bool:
        """Whether ``conn`` (to ``host``) leads to an address that is not public."""
        if self._proxy is not None:
            literal = literal_address(host)  # the peer is the proxy: the target is known only if spelled
            return literal is not None and address_class(literal) != PUBLIC
        transport = conn.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        return peer is None or address_class(peer[0]) != PUBLIC

    def _flush_writes(self) -> None:
        # Why requests are written by the batch rather than at once: on a busy client each write found the
        # server's process asleep (it answers faster than the client asks), and waking it, inside our
        # write(), cost more than the write itself. Written back to back, the first write wakes the server
        # and the next ones find it running: +8-10% requests per second against nginx on 2 cores (the same
        # idea as Netty's FlushConsolidationHandler). A request waits at most one loop turn or WRITE_BATCH
        # others; its latency is still timed from the call.
        writes = self._writes
        if writes:
            self._writes = []
            for transport, data in writes:
                if not transport.is_closing():  # aborted meanwhile: its request has already failed
                    transport.write(data)

    def _connection_lost(self, conn: Connection) -> None:
        self._conns.discard(conn)
        if conn.counted:
            self._state.discard(conn)
            self._flush()

    def _drop(self, conn: Connection) -> None:
        """Close a connection that cannot be reused and free its slot now."""
        conn.abort()
        if conn.counted:
            self._state.discard(conn)
            self._flush()

    def _abandon(self, conn: Connection) -> None:
        """A request was cancelled: keep its connection if the response had fully arrived."""
        if conn.reusable:
            self._release(conn)
        else:
            self._drop(conn)

    def _release(self, conn: Connection) -> None:
        """A response was read to its end: the connection goes back to the pool or is closed."""
        if conn.reusable and conn.counted and not self._closed:
            assert self._loop is not None
            self._state.checkin(conn, self._loop.time())
            if self._state.grants or self._state.to_close:
                self._flush()
        else:
            self._drop(conn)

    def _flush(self) -> None:
        """Carry out what the pool bookkeeping decided: close connections, serve waiters."""
        state = self._state
        while state.grants or state.to_close:
            if state.to_close:
                closing = state.to_close
                state.to_close = []
                for closing_conn in closing:
                    closing_conn.close()
            if state.grants:
                grants = state.grants
                state.grants = []
                for waiter, o, conn in grants:
                    if not waiter.done():
                        waiter.set_result(conn)
                    elif conn is None:
                        state.release_slot(o)  # the waiter gave up: pass the slot on
                    else:
                        assert self._loop is not None
                        state.checkin(conn, self._loop.time())

    def _arm_sweeper(self) -> None:
        assert self._loop is not None
        interval = max(self._limits.idle_expiry / 2, 0.01)
        self._sweeper = self._loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        # Idle connections past their expiry are closed here even if their origin is never used again.
        self._sweeper = None
        assert self._loop is not None
        self._state.expired(self._loop.time())
        self._flush()
        if self._state.total and not self._closed:
            self._arm_sweeper()

    # -- preparation ------------------------------------------------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        self._loop = loop
        return loop

    def _prepare(self, method: str, target: Target, headers: HeaderInput, content: Body) -> Prepared:
        absolute = self._proxy is not None and not target.tls
        defaults = self._defaults
        if absolute and self._proxy is not None and self._proxy.authorization:
            defaults = [*defaults, ("Proxy-Authorization", self._proxy.authorization)]
        return prepare(method, target, defaults, headers, content, absolute_form=absolute)

    def _lookup(self, method: str, url: str) -> tuple[Prepared | None, Origin[Connection, _Waiter] | None]:
        """The fast path's request and pool entry for a URL other than the last one (both may be None).

        A URL seen before costs a dict lookup; a new URL on a known origin is built from the origin's template
        without parsing. The pair found becomes the "hot" one that request() and submit() check first.
        """
        req = self._prepared.get((method, url))
        if req is None and self._loop is not None:
            req = self._from_origin(method, url)
        o = None
        if req is not None:
            o = self._state.origins.get(req.target.key)
            if o is not None:
                self._hot = (method, url, req, o)
        return req, o

    def _prepare_cached(self, method: str, url: str) -> Prepared:
        req = self._from_origin(method, url)
        if req is None:
            req = self._prepare(method, parse_url(url), None, None)
            self._remember(method, url, req)
        return req

    def _remember(self, method: str, url: str, req: Prepared) -> None:
        if len(self._prepared) >= _PREPARED_CACHE_MAX:
            self._prepared.clear()  # crawls see each URL once: a bounded cache, not an LRU
        self._prepared[(method, url)] = req

    # Hot path: once per new URL (a URL list, a crawl). Only the path and query are looked at; the origin is
    # parsed once and its request-head tail reused. Returns None for anything unusual (the caller then
    # parses the whole URL, which also reports errors).
    def _from_origin(self, method: str, url: str) -> Prepared | None:
        if self._proxy is not None:
            return None
        # A list comes host by host: the last template's origin part first (one comparison), then the
        # origin part found anew (see origin_end) and the templates by origin.
        last_method, prefix, last = self._last_template
        end = len(prefix)
        if url[:end] == prefix and url[end:end + 1] in AUTHORITY_ENDS and method == last_method \
                and last is not None:
            tmpl = last
        else:
            end = origin_end(url)
            if end < 0:
                return None
            prefix = url[:end]
            if url[0] <= " " or not prefix.isascii():
                return None  # parse_url strips and IDNA-encodes: leave such URLs to it
            found = self._origins.get((method, prefix))
            if found is None:
                found = self._origin_template(method, prefix)
                if found is None:
                    return None
            tmpl = found
            self._last_template = (method, prefix, tmpl)
        if url[-1] <= " ":
            return None  # parse_url strips: leave it to it
        rest = url[end:]
        if "#" in rest:
            rest = rest[:rest.find("#")]
        if not rest or rest[0] == "?":
            rest = "/" + rest
        if rest[-1] == "?" or _UNSAFE_TARGET.search(rest):
            return None  # an empty query or bytes to quote: parse_url's rules apply
        base = tmpl.target
        t = Target()
        t.scheme = base.scheme
        t.host = base.host
        t.port = base.port
        t.tls = base.tls
        t.key = base.key
        t.host_header = base.host_header
        t.target = rest
        t.url = tmpl.url_prefix + rest
        p = Prepared()
        p.method = tmpl.method
        p.target = t
        p.headers = []
        p.head = tmpl.head_start + rest.encode("ascii") + tmpl.head_tail
        p.body = None
        p.chunked = False
        p.idempotent = tmpl.idempotent
        p.is_head = tmpl.is_head
        self._remember(method, url, p)
        return p

    def _origin_template(self, method: str, prefix: str) -> _OriginTemplate | None:
        try:
            base = self._prepare(method, parse_url(prefix + "/"), None, None)
        except SurgeError:
            return None
        if len(self._origins) >= _ORIGIN_CACHE_MAX:
            self._origins.clear()
        tmpl = _OriginTemplate(base)
        self._origins[(method, prefix)] = tmpl
        return tmpl

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = self._ssl_ctx
        if ctx is None:
            ctx = self._ssl_ctx = make_ssl_context(self._verify)
        return ctx



class _OriginTemplate:
    """A plain request to the root of one origin, cut so a request to any path there is two joins away."""

    __slots__ = ("head_start", "head_tail", "idempotent", "is_head", "method", "target", "url_prefix")

    def __init__(self, base: Prepared) -> None:
        self.method = base.method
        self.target = base.target
        self.url_prefix = base.target.url[:-1]  # the URL of "/" without its slash
        head = base.head
        self.head_start = head[:len(base.method) + 1]  # "GET "
        self.head_tail = head[head.index(b" HTTP/1.1\r\n"):]
        self.idempotent = base.idempotent
        self.is_head = base.is_head


class ResponseStream:
    """The body of a streamed response, read from its connection as the caller iterates."""

    __slots__ = ("_client", "_conn", "_decoder", "_done", "deadline", "url")

    def __init__(self, client: Client, conn: Connection, decoder: Decoder | None) -> None:
        self._client = client
        self._conn = conn
        self._decoder = decoder
        self._done = False
        self.deadline: float | None = None
        self.url: str | None = None  # the URL the caller asked for

    async def iter_chunks(self, resp: Response) -> AsyncIterator[bytes]:
        """Decoded body chunks until the body ends; the connection is released at the end."""
        if self._done:
            return
        conn = self._conn
        decoder = self._decoder
        try:
            while True:
                chunks = await self._read(conn)
                resp.num_bytes = conn.num_bytes
                if not chunks:
                    break
                for chunk in chunks:
                    out = decoder.decode(chunk) if decoder is not None else chunk
                    if out:
                        yield out
            if decoder is not None:
                tail = decoder.flush()
                if tail:
                    yield tail
        except BaseException as exc:
            self.close()
            if isinstance(exc, RequestError) and exc.url is None:
                exc.url = self.url
            raise
        self._finish()

    async def _read(self, conn: Connection) -> list[bytes]:
        if self.deadline is None:
            return await conn.read_chunks()
        try:
            async with asyncio.timeout_at(self.deadline) as cm:
                return await conn.read_chunks()
        except TimeoutError:
            if cm.expired():
                raise TotalTimeout("request took longer than its total timeout") from None
            raise

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._client._release(self._conn)

    def close(self) -> None:
        """Stop reading: the connection is reused if its body had ended, closed otherwise."""
        if not self._done:
            self._done = True
            if self._conn.reusable and not self._conn.chunks:
                self._client._release(self._conn)
            else:
                self._client._drop(self._conn)

