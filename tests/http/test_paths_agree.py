"""The client's request paths give the same answer to every response shape, hostile ones included.

``Client.request`` has an inline fast path and a general path (``_send``/``_response``), ``Client.submit``
finishes its exchanges in ``_complete``, and ``Client.stream`` decodes as the body arrives: copies of the same
steps, kept fast on purpose. Each shape below is served as raw bytes by a scripted server on 127.0.0.1 and
requested through all four; the outcome (exception class, kind and URL, or status, headers, body, byte
count and Content-Type) must be the same, the expected one, and leave no connection behind.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import brotli
import hypothesis.strategies as st
import pytest
import zstandard
from http_scripted import OK, Script
from hypothesis import HealthCheck, given, settings

from surge.errors import (
    BodyTooLarge,
    ConnectError,
    ProtocolError,
    ReadTimeout,
    RequestError,
    TooManyRedirects,
)
from surge.http import Client, Submitted, Timeout
from surge.http.connection import MAX_HEAD, MAX_HEADERS, MAX_INTERIM

pytestmark = pytest.mark.looptime

CAP = 1 << 20  # the clients' max_body: bombs must stop here
READ = 5.0  # the clients' read timeout (virtual seconds)


def _head(*lines: bytes, status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def _ok(body: bytes, *lines: bytes, status: bytes = b"200 OK") -> bytes:
    return _head(b"Content-Length: %d" % len(body), b"Content-Type: text/plain", *lines, status=status) + body


def _zeros(mb: int, compress: Callable[[bytes], bytes]) -> bytes:
    return compress(bytes(mb << 20))


def _deflate_bomb(mb: int) -> bytes:
    c = zlib.compressobj(9)
    return b"".join(c.compress(bytes(1 << 20)) for _ in range(mb)) + c.flush()


def _zstd_bomb_without_size(mb: int) -> bytes:
    # Streamed: the frame header carries no content size, so the decoder cannot size its output up front.
    w = zstandard.ZstdCompressor(level=3, write_content_size=False).compressobj()
    return b"".join(w.compress(bytes(1 << 20)) for _ in range(mb)) + w.flush()


GZ = gzip.compress(b"hello " * 100)
GZ5 = gzip.compress(gzip.compress(gzip.compress(gzip.compress(gzip.compress(b"x")))))
BR_BOMB = brotli.compress(bytes(64 << 20), quality=5)
GZ_BOMB = _zeros(64, lambda b: gzip.compress(b, 9))
FIELDS = [b"X-F%d: v" % i for i in range(MAX_HEADERS - 2)]  # with Content-Length and -Type: the cap exactly
EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"


@dataclass(frozen=True)
class Shape:
    """A response as raw bytes; ``close``: the server closes after sending it (else it stays silent)."""

    raw: bytes | None  # None: close without answering
    expect: type[RequestError] | int  # the error class, or the status of a Response
    close: bool = False
    method: str = "GET"
    content: bytes | None = None  # the expected body, when it is a Response


SHAPES: dict[str, Shape] = {
    "normal": Shape(_ok(b"ok"), 200, content=b"ok"),
    "chunked": Shape(_head(b"Transfer-Encoding: chunked") + b"2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n", 200,
                     content=b"ok!!!"),
    "chunked-ext-trailer": Shape(_head(b"Transfer-Encoding: chunked") + b"2;x=y\r\nok\r\n0\r\nT: 1\r\n\r\n",
                                 200, content=b"ok"),
    "gzip": Shape(_ok(GZ, b"Content-Encoding: gzip"), 200, content=b"hello " * 100),
    "gzip-5-stacked": Shape(_ok(GZ5, b"Content-Encoding: gzip, gzip, gzip, gzip, gzip"), 200, content=b"x"),
    "gzip-6-stacked": Shape(_ok(GZ, b"Content-Encoding: gzip, gzip, gzip, gzip, gzip, gzip"), ProtocolError),
    "gzip-6-stacked-in-two-fields": Shape(_ok(GZ, b"Content-Encoding: gzip, gzip, gzip",
                                              b"Content-Encoding: gzip, gzip, gzip"), ProtocolError),
    "bad-gzip": Shape(_ok(b"definitely not gzip", b"Content-Encoding: gzip"), ProtocolError),
    "unknown-coding": Shape(_ok(b"abc", b"Content-Encoding: compress"), ProtocolError),
    "unknown-coding-empty-body": Shape(_ok(b"", b"Content-Encoding: compress"), 200, content=b""),
    "gzip-bomb": Shape(_ok(GZ_BOMB, b"Content-Encoding: gzip"), BodyTooLarge),
    "deflate-bomb": Shape(_ok(_deflate_bomb(64), b"Content-Encoding: deflate"), BodyTooLarge),
    "br-bomb": Shape(_ok(BR_BOMB, b"Content-Encoding: br"), BodyTooLarge),
    "zstd-bomb-no-size": Shape(_ok(_zstd_bomb_without_size(64), b"Content-Encoding: zstd"), BodyTooLarge),
    "stacked-bomb": Shape(_ok(gzip.compress(GZ_BOMB), b"Content-Encoding: gzip, gzip"), BodyTooLarge),
    "raw-body-over-cap": Shape(_ok(b"x" * (CAP + 1)), BodyTooLarge),
    "fields-at-cap": Shape(_ok(b"ok", *FIELDS), 200, content=b"ok"),
    "too-many-fields": Shape(_ok(b"ok", *FIELDS, b"X-One-More: v"), ProtocolError),
    "too-many-fields-small-head": Shape(_head(*[b"a:" for _ in range(MAX_HEADERS + 1)]), ProtocolError),
    "huge-head": Shape(_ok(b"ok", b"X-Big: " + b"a" * MAX_HEAD), ProtocolError),
    "huge-head-then-silence": Shape(_head(b"X-Big: " + b"a" * (2 * MAX_HEAD))[:-2], ProtocolError),
    "interim-then-200": Shape(EARLY_HINTS + b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(b"ok"), 200,
                              content=b"ok"),
    "interims-at-cap": Shape(EARLY_HINTS * MAX_INTERIM + _ok(b"ok"), 200, content=b"ok"),
    "too-many-interims": Shape(EARLY_HINTS * (MAX_INTERIM + 1) + _ok(b"ok"), ProtocolError),
    "too-many-interims-then-silence": Shape(EARLY_HINTS * (MAX_INTERIM + 1), ProtocolError),
    "interims-over-head-cap": Shape(_head(b"Link: " + b"a" * (MAX_HEAD // 3), status=b"103 Early Hints") * 4
                                    + _ok(b"ok"), ProtocolError),
    "interim-with-huge-final-head": Shape(EARLY_HINTS + _ok(b"ok", b"X-Big: " + b"a" * MAX_HEAD),
                                          ProtocolError),
    "switching-protocols": Shape(_head(b"Upgrade: x", b"Connection: upgrade", status=b"101 Switching"),
                                 ProtocolError),
    "nul-in-value": Shape(_ok(b"ok", b"X-A: a\x00b"), ProtocolError),
    "bare-cr-in-value": Shape(_ok(b"ok", b"X-A: a\rb"), ProtocolError),
    "bare-lf-in-value": Shape(_ok(b"ok", b"X-A: a\nb"), ProtocolError),
    "bare-lf-line-ends": Shape(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", ProtocolError),
    "folded-field": Shape(_ok(b"ok", b"X-A: a", b" b"), ProtocolError),
    "non-token-name": Shape(_ok(b"ok", b"X-\xe9: a"), ProtocolError),
    "non-utf8-value": Shape(_ok(b"ok", b"X-A: caf\xe9 \xff\xfe", b"Content-Disposition: x\x80\x9f"), 200,
                            content=b"ok"),
    "non-utf8-content-type": Shape(_head(b"Content-Length: 2", b"Content-Type: text/\xe9\xff") + b"ok", 200,
                                   content=b"ok"),
    # RFC 9110 8.6 lets a recipient accept repeated equal Content-Lengths or refuse them; llhttp refuses, and
    # so does surge: no second framing parser, which is where request smuggling starts.
    "duplicate-equal-content-length": Shape(_head(b"Content-Length: 2", b"Content-Length: 2") + b"ok",
                                            ProtocolError),
    "conflicting-content-length": Shape(_head(b"Content-Length: 2", b"Content-Length: 3") + b"ok!",
                                        ProtocolError),
    "content-length-list": Shape(_head(b"Content-Length: 2, 3") + b"ok!", ProtocolError),
    "content-length-and-chunked": Shape(_head(b"Content-Length: 2", b"Transfer-Encoding: chunked")
                                        + b"2\r\nok\r\n0\r\n\r\n", ProtocolError),
    "chunked-and-content-length": Shape(_head(b"Transfer-Encoding: chunked", b"Content-Length: 2")
                                        + b"2\r\nok\r\n0\r\n\r\n", ProtocolError),
    "negative-content-length": Shape(_head(b"Content-Length: -1") + b"ok", ProtocolError),
    "truncated-chunked": Shape(_head(b"Transfer-Encoding: chunked") + b"a\r\nonly", ProtocolError,
                               close=True),
    "chunk-size-overflow": Shape(_head(b"Transfer-Encoding: chunked") + b"f" * 20 + b"\r\n", ProtocolError),
    "content-length-overflow": Shape(_head(b"Content-Length: " + b"9" * 30) + b"ok", ProtocolError),
    "head-then-close": Shape(b"HTTP/1.1 200 OK\r\nContent-Le", ProtocolError, close=True),
    "bad-chunk-size": Shape(_head(b"Transfer-Encoding: chunked") + b"zz\r\nok\r\n0\r\n\r\n", ProtocolError),
    "short-body-then-close": Shape(_head(b"Content-Length: 10") + b"short", ProtocolError, close=True),
    "short-body-then-silence": Shape(_head(b"Content-Length: 10") + b"short", ReadTimeout),
    # Transfer-Encoding whose last coding is not chunked: the body ends at the close (RFC 9112 6.3, llhttp).
    "chunked-not-last-until-close": Shape(_head(b"Transfer-Encoding: chunked, gzip") + b"raw", 200,
                                          close=True, content=b"raw"),
    "xchunked-until-close": Shape(_head(b"Transfer-Encoding: xchunked") + b"raw", 200, close=True,
                                  content=b"raw"),
    "body-until-close": Shape(_head(b"Content-Type: text/plain") + b"until close", 200, close=True,
                              content=b"until close"),
    "head": Shape(_head(b"Content-Length: 10", b"Content-Type: text/html"), 200, method="HEAD", content=b""),
    "head-with-a-body": Shape(_ok(b"0123456789"), 200, method="HEAD", content=b""),
    "head-after-interim": Shape(EARLY_HINTS + _head(b"Content-Length: 10"), 200, method="HEAD", content=b""),
    "no-content": Shape(_head(status=b"204 No Content"), 204, content=b""),
    "no-content-with-a-body": Shape(_head(b"Content-Length: 5", status=b"204 No Content") + b"hello", 204,
                                    content=b""),
    "not-modified": Shape(_head(b"Content-Length: 10", b"ETag: \"x\"", status=b"304 Not Modified"), 304,
                          content=b""),
    "bytes-after-the-response": Shape(_ok(b"ok") + b"EXTRA", 200, content=b"ok"),
    "a-second-response-begun": Shape(_ok(b"ok") + b"HTTP/1.1 2", 200, content=b"ok"),
    # llhttp takes these status lines; an HTTP/1.1 client (and the head scanners) refuse them.
    "leading-blank-line": Shape(b"\r\n" + _ok(b"ok"), ProtocolError),
    "blank-line-after-interim": Shape(EARLY_HINTS + b"\r\n" + _ok(b"ok"), ProtocolError),
    "ice": Shape(b"ICE/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", ProtocolError),
    # RTSP/1.x has HTTP/1.x's layout: taken as HTTP/1.x, however long its head (one byte tells them apart).
    "rtsp": Shape(b"RTSP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, content=b"ok"),
    "rtsp-long-head": Shape(b"RTSP/1.0 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(60))
                            + b"Content-Length: 2\r\n\r\nok", 200, content=b"ok"),
    "http-2.0-status-line": Shape(b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", ProtocolError),
    "http-0.9-status-line": Shape(b"HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\nok", ProtocolError),
    "status-below-100": Shape(b"HTTP/1.1 099 Odd\r\n\r\n" + _ok(b"ok"), ProtocolError),
    # llhttp takes any byte but CR and LF in the reason phrase; Response.reason is informational, decoded as
    # latin-1, and rejecting it would cost a scan of every status line.
    "nul-in-reason": Shape(_ok(b"ok", status=b"200 O\x00K"), 200, content=b"ok"),
    "invalid-status-line": Shape(b"HTTP/1.1 2x0 OK\r\n\r\n", ProtocolError),
    "status-999": Shape(b"HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok", 999, content=b"ok"),
    "status-over-999": Shape(b"HTTP/1.1 1000 OK\r\nContent-Length: 0\r\n\r\n", ProtocolError),
    "icy": Shape(b"ICY 200 OK\r\nContent-Length: 2\r\n\r\nok", ProtocolError),
    "http-0.9-body": Shape(b"<html>no head</html>", ProtocolError, close=True),
    "garbage": Shape(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", ProtocolError),
    "close-without-answer": Shape(None, ConnectError),
    "silence": Shape(b"", ReadTimeout),
    "head-then-silence": Shape(b"HTTP/1.1 200 OK\r\nContent-Le", ReadTimeout),
    "redirect-to-bad-url": Shape(_head(b"Location: http://[::1/", b"Content-Length: 0", status=b"302 Found"),
                                 ProtocolError),
    "redirect-to-other-scheme": Shape(_head(b"Location: ftp://x/", b"Content-Length: 0", status=b"302 Found"),
                                      ProtocolError),
    "redirect-loop": Shape(_head(b"Location: /case/redirect-loop", b"Content-Length: 0", status=b"302 Found"),
                           TooManyRedirects),
    "redirect-with-a-bomb-body": Shape(_ok(GZ_BOMB, b"Content-Encoding: gzip", b"Location: /warm",
                                           status=b"302 Found"), BodyTooLarge),
    "redirect-to-latin1-location": Shape(_head(b"Location: /caf\xe9", b"Content-Length: 0",
                                               status=b"302 Found"), 404, content=b""),
    "redirect-then-ok": Shape(_head(b"Location: /warm", b"Content-Length: 0", status=b"301 Moved"), 200,
                              content=b"ok"),
    "endless-chunk-extension": Shape(_head(b"Transfer-Encoding: chunked") + b"1;" + b"e" * (4 * MAX_HEAD),
                                     ProtocolError),
    "endless-trailers": Shape(_head(b"Transfer-Encoding: chunked") + b"2\r\nok\r\n0\r\n"
                              + b"T: 1\r\n" * (MAX_HEAD // 2), ProtocolError),
    "endless-chunk-size-zeros": Shape(_head(b"Transfer-Encoding: chunked") + b"0" * (4 * MAX_HEAD),
                                      ProtocolError),
}


@dataclass(frozen=True)
class Seen:
    """What one path made of a response: every field the paths must agree on."""

    error: str | None
    kind: str | None
    url: str | None
    status: int | None = None
    headers: tuple[tuple[str, str], ...] | None = None
    content: bytes | None = None
    num_bytes: int | None = None
    content_type: str | None = None
    final_url: str | None = None
    history: tuple[int, ...] = ()


def _seen(resp: Any, error: BaseException | None) -> Seen:
    if error is not None:
        assert isinstance(error, RequestError), repr(error)  # only surge's own request errors come out
        return Seen(type(error).__name__, error.kind, error.url)
    return Seen(None, None, None, resp.status, tuple(resp.headers.items()), resp.content, resp.num_bytes,
                resp.content_type, resp.url, tuple(r.status for r in resp.history))


class Server:
    """A scripted server: ``/warm`` answers OK and keeps the connection; ``/case/<name>`` serves a shape."""

    def __init__(self, shapes: dict[str, Shape]) -> None:
        self.shapes = dict(shapes)
        self.script = Script(self.respond)
        self.url = ""

    def respond(self, n: int, head: bytes, body: bytes) -> tuple[bytes | None, bool]:
        path = head.split(b" ", 2)[1].decode()
        if path == "/warm":
            return OK, False
        shape = self.shapes.get(path.removeprefix("/case/"))
        if shape is None:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", False
        return shape.raw, shape.close


Path = Callable[[Client, str, str], Awaitable[Seen]]


async def fast(c: Client, method: str, url: str) -> Seen:
    try:
        resp = await c.request(method, url)
    except RequestError as exc:
        return _seen(None, exc)
    assert c._hot[1] == url  # the inline fast path looked this URL up
    return _seen(resp, None)


async def general(c: Client, method: str, url: str) -> Seen:
    # A per-request timeout (the same values) is what sends request() down the general path.
    try:
        resp = await c.request(method, url, timeout=Timeout(read=READ))
    except RequestError as exc:
        return _seen(None, exc)
    assert c._hot[1] != url
    return _seen(resp, None)


async def submitted(c: Client, method: str, url: str) -> Seen:
    done: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()

    def callback(ctx: Any, resp: Any, error: BaseException | None) -> None:
        done.set_result(_seen(resp, error))  # read here: the fields are those of the callback's moment

    assert c.submit(method, url, Submitted(callback))
    return await done


async def streamed(c: Client, method: str, url: str) -> Seen:
    # Client.stream: the head through the general path, the body through ResponseStream and its decoder.
    try:
        async with c.stream(method, url) as resp:
            await resp.aread()
            return _seen(resp, None)
    except RequestError as exc:
        return _seen(None, exc)


PATHS: dict[str, Path] = {"fast": fast, "general": general, "submit": submitted, "stream": streamed}


async def run(server: Server, name: str, path: Path) -> Seen:
    """One request for shape ``name`` through ``path`` on a fresh client whose connection was kept alive."""
    shape = server.shapes[name]
    url = f"{server.url}/case/{name}"
    async with Client(timeout=Timeout(read=READ), max_body=CAP) as c:
        await c.request("GET", server.url + "/warm")  # the fast paths need a kept-alive connection
        async with asyncio.timeout(10 * READ):  # virtual seconds: a hang fails here, not the whole run
            seen = await path(c, shape.method, url)
        await asyncio.sleep(0)  # connection_lost of an aborted transport runs
        _assert_no_leak(c, seen)
        # The pool still works. Bytes a server sent after its response that begin another one ("...okH") are
        # the start of the next response on that connection, which then fails (that connection only).
        try:
            resp = await c.request("GET", server.url + "/warm")
        except ProtocolError:
            resp = await c.request("GET", server.url + "/warm")
        assert resp.content == b"ok"
    return seen


def _assert_no_leak(c: Client, seen: Seen) -> None:
    stats = c.statistics()
    assert stats.active == 0, stats
    assert c._state.total == stats.idle
    idle = [conn for o in c._state.origins.values() for conn in o.idle]
    assert all(not conn.closed and conn.reusable for conn in idle)
    assert set(c._conns) == set(idle), "a connection is open but neither idle nor in use"
    assert all(not o.waiters for o in c._state.origins.values())


@pytest.fixture
async def shape_server(scripted: Callable[[Script], Awaitable[str]]) -> AsyncIterator[Server]:
    s = Server(SHAPES)
    s.url = await scripted(s.script)
    yield s


@pytest.mark.parametrize("name", sorted(SHAPES))
async def test_paths_agree(shape_server: Server, name: str) -> None:
    shape = SHAPES[name]
    url = f"{shape_server.url}/case/{name}"
    seen = {path: await run(shape_server, name, fn) for path, fn in PATHS.items()}
    for path in PATHS:
        assert seen[path] == seen["fast"], (name, path)
    s = seen["fast"]
    if isinstance(shape.expect, int):
        assert s.error is None, s
        assert s.status == shape.expect
        if shape.content is not None:
            assert s.content == shape.content
    else:
        assert s.error == shape.expect.__name__, s
        assert s.kind == shape.expect.kind
        assert s.url == url


async def test_header_bytes_that_are_not_utf8_read_as_latin1(shape_server: Server) -> None:
    # HTTP/1.1 header values are latin-1 (obs-text): every reader of the head decodes them so, none fails.
    for path in PATHS.values():
        seen = await run(shape_server, "non-utf8-value", path)
        assert seen.headers is not None
        assert ("X-A", "caf\xe9 \xff\xfe") in seen.headers
        assert ("Content-Disposition", "x\x80\x9f") in seen.headers
        seen = await run(shape_server, "non-utf8-content-type", path)
        assert seen.content_type == "text/\xe9\xff"
    async with Client() as c:
        r = await c.request("GET", shape_server.url + "/case/non-utf8-value")
        h = r.headers
        assert h["x-a"] == h.get("X-A") == "café \xff\xfe" == h.get_all("x-a")[0] and "x-a" in h
        assert r.reason == "OK" and r.http_version == "HTTP/1.1" and r.text() == "ok"


# -- any bytes at all ---------------------------------------------------------------------------------------


_PIECES = [OK, b"HTTP/1.1 ", b"HTTP/1.0 ", b"200 OK\r\n", b"100 Continue\r\n\r\n", b"103 Early\r\n", b"\r\n",
           b"\r\n\r\n", b"Content-Length: 3\r\n", b"Content-Length: 99\r\n",
           b"Transfer-Encoding: chunked\r\n",
           b"Content-Encoding: gzip\r\n", b"Content-Encoding: br\r\n", b"Content-Encoding: zstd, deflate\r\n",
           b"Connection: close\r\n", b"Location: /warm\r\n", b"Location: http://[::1/\r\n", b"302 Found\r\n",
           b"204 No\r\n", b"3\r\nabc\r\n", b"0\r\n\r\n", b"ffffffff\r\n", GZ[:20], GZ, b"\x00", b"\r", b"\n",
           b"\xff\xe9", b":", b" "]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=300),
                     st.lists(st.sampled_from(_PIECES), max_size=12).map(b"".join)),
       close=st.booleans())
async def test_any_bytes_end_in_a_response_or_a_surge_error(shape_server: Server, raw: bytes,
                                                           close: bool) -> None:
    # Whatever a server sends, the request ends (the server closes, or the read timeout fires on the virtual
    # clock) with a Response or a RequestError, the same on every path, and no connection is left behind.
    shape_server.shapes["any"] = Shape(raw, 200, close=close)
    seen = [await run(shape_server, "any", fn) for fn in PATHS.values()]
    assert all(s == seen[0] for s in seen), seen
