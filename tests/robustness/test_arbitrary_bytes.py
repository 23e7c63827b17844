"""Whatever a server answers with, surge.http.Client ends in a Response or one of surge's request errors.

Each example is served as the whole response by a server on 127.0.0.1 in the test's event loop, on the
virtual clock (a response that never completes ends at the read timeout at once). After each one the client
holds no busy connection, every connection it opened is closed or idle, and once it is closed the process
has the file descriptors it had before.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, given, settings

from surge.errors import DNSError, RequestError
from surge.http import Client, Limits, Resolver, Response, Timeout

pytestmark = pytest.mark.looptime

MAX_BODY = 64 * 1024
T = TypeVar("T")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class NoLookups(Resolver):
    """Only IP literals (which the client checks against the policy below); no query ever leaves."""

    async def lookup(self, host: str, port: int) -> list[tuple[int, str]]:
        raise DNSError(f"{host}: not resolved in this test")


def only_loopback(ip: str) -> bool:
    return ip == "127.0.0.1"  # a Location elsewhere must not reach another machine


@asynccontextmanager
async def serving(payload: bytes, close: bool) -> AsyncIterator[tuple[str, set[asyncio.Task[None]]]]:
    """A server that answers every request head with ``payload``, then closes or waits for the client."""
    handlers: set[asyncio.Task[None]] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    break
                writer.write(payload)
                await writer.drain()
                if close:
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(answer(reader, writer))
        handlers.add(task)

    srv = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/x", handlers
    finally:
        srv.close()
        await srv.wait_closed()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def exchange(payload: bytes, close: bool) -> None:
    before = open_fds()
    async with serving(payload, close) as (url, handlers):
        client = Client(timeout=Timeout(connect=2, read=2, total=5), max_body=MAX_BODY, max_redirects=3,
                        resolver=NoLookups(), address_policy=only_loopback, limits=Limits(per_host=2))
        async with client:
            try:
                async with asyncio.timeout(60):  # far past every client timeout: only a hang reaches it
                    result: Response | RequestError = await client.request("GET", url)
            except RequestError as exc:  # anything else is a bug and fails the example
                result = exc
            st_ = client.statistics()
            assert st_.active == 0, st_
            assert st_.idle == st_.opened - st_.closed, st_
        event(f"status {result.status}" if isinstance(result, Response) else result.kind)
        if isinstance(result, Response):
            assert 100 <= result.status <= 999
            assert len(result.content) <= MAX_BODY
        else:
            assert result.kind in ("timeout_read", "timeout_total", "connect", "protocol", "body_too_large",
                                   "too_many_redirects", "blocked", "dns"), repr(result)
        # Closing the client closed its connections: each server handler sees the end and finishes.
        async with asyncio.timeout(30):
            await asyncio.gather(*handlers)
    assert open_fds() == before


# -- arbitrary bytes ---------------------------------------------------------------------------------------


@SETTINGS
@given(payload=st.binary(max_size=2048), close=st.booleans())
async def test_arbitrary_bytes(payload: bytes, close: bool) -> None:
    await exchange(payload, close)


# -- near-valid responses --------------------------------------------------------------------------------

# Each part is mostly well formed and sometimes not, so most examples are one or two defects away from a
# valid response: the paths past the status line and the head get exercised, not just the first check.


def mostly(good: st.SearchStrategy[T], bad: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``good``, and ``bad`` about one time in eight (shrinking goes towards ``good``)."""
    return st.integers(0, 7).flatmap(lambda i: bad if i == 7 else good)


ODD = [b"\x00", b"\x7f", b"\xff", b"\x80", b"\r", b"\n", b" ", b"\t", b":", b"\xc3(", b"\r\n ", b"\x1b[31m"]
odd_bytes = st.lists(st.one_of(st.sampled_from(ODD), st.binary(max_size=6)), min_size=1, max_size=4).map(
    b"".join)
number = mostly(st.integers(0, 300), st.one_of(st.integers(-2, 0), st.integers(0, 2**70))).map(
    lambda n: str(n).encode())

BAD_VERSIONS = [b"HTTP/0.9", b"HTTP/2", b"HTTP/1.1\x00", b"ICY", b"http/1.1", b"HTTP/9.9", b"HTTP/1.", b"",
                b"RTSP/1.0"]
BAD_CODES = [b"0200", b"2OO", b"99", b"1000", b"-200", b"", b"101", b"100", b"103"]
NAMES = [b"Content-Length", b"content-length", b"Transfer-Encoding", b"Content-Encoding", b"Connection",
         b"Location", b"Content-Type", b"Retry-After", b"Set-Cookie", b"X-Odd"]
BAD_NAMES = [b"", b"Bad Name", b"Content-Length ", b"\x00", b"Content\xffLength"]
VALUES = [b"chunked", b"gzip", b"br", b"zstd", b"deflate", b"gzip, br", b"identity", b"gzip, chunked",
          b"chunked, gzip", b"close", b"keep-alive", b"/next", b"//127.0.0.1:1/", b"http://127.0.0.1:1/",
          b"http://[::1/", b"file:///etc/passwd", b"text/html; charset=\xff"]
CHUNK_SIZES = [b"-1", b"ffffffffffffffffff", b"5;ext=v", b" 5", b"0x5", b"", b"g"]

version = mostly(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]), st.sampled_from(BAD_VERSIONS))
code = mostly(st.sampled_from([200, 200, 201, 204, 206, 301, 302, 304, 400, 404, 429, 500, 503]).map(
    lambda n: b"%d" % n), st.one_of(st.sampled_from(BAD_CODES), st.integers(0, 999).map(lambda n: b"%d" % n),
                                    odd_bytes))
status_line = st.tuples(version, mostly(st.just(b" "), st.sampled_from([b"  ", b"\t", b""])), code,
                        mostly(st.just(b" OK"), st.one_of(st.just(b""), odd_bytes))).map(b"".join)
names = mostly(st.sampled_from(NAMES), st.one_of(st.sampled_from(BAD_NAMES), odd_bytes))
values = mostly(st.one_of(number, st.sampled_from(VALUES)), odd_bytes)
header = st.tuples(names, mostly(st.just(b": "), st.sampled_from([b":", b" : ", b""])), values).map(b"".join)
eol = mostly(st.just(b"\r\n"), st.sampled_from([b"\n", b"\r"]))


@st.composite
def chunked_body(draw: st.DrawFn) -> bytes:
    out = []
    for data in draw(st.lists(st.binary(max_size=40), max_size=4)):
        size = draw(mostly(st.just(b"%x" % len(data)), st.one_of(st.just(b"%X" % len(data)), number,
                                                                 st.sampled_from(CHUNK_SIZES))))
        out.append(size + b"\r\n" + data + draw(mostly(st.just(b"\r\n"), st.sampled_from([b"\n", b""]))))
    end = mostly(st.just(b"0\r\n\r\n"), st.sampled_from([b"0\r\nX-Trailer: v\r\n\r\n", b"0\r\n", b""]))
    out.append(draw(end))
    return b"".join(out)


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    line_end = draw(eol)
    fields = draw(st.lists(header, max_size=6))
    body = draw(st.one_of(st.binary(max_size=300), chunked_body()))
    if draw(st.booleans()):  # framing that matches the body, often enough to get past it
        chunked = body.endswith(b"\r\n")
        fields.append(b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body))
    head = draw(status_line) + line_end + b"".join(h + line_end for h in fields)
    return head + draw(mostly(st.just(line_end), st.sampled_from([b"\r\n", b""]))) + body


@SETTINGS
@given(payload=near_valid(), close=st.booleans())
async def test_near_valid_responses(payload: bytes, close: bool) -> None:
    await exchange(payload, close)
