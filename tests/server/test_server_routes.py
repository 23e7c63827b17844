"""The httpbin-like endpoints, keep-alive, pipelining, request limits, IPv6 and TLS."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import zlib

import brotli
import orjson
import pytest
import trustme
import zstandard
from server_raw import RawConnection, fetch, fetch_raw, read_until_reset, wait_until

from surge.server import TargetServer, serve
from surge.server.routes import ROOT_BODY


async def test_root_is_100_bytes() -> None:
    async with serve() as url:
        resp = await fetch(url, "/")
    assert resp.status == 200 and resp.complete
    assert resp.body == ROOT_BODY and len(resp.body) == 100
    assert resp.header("Content-Length") == "100"


async def test_url_shape() -> None:
    async with serve() as url:
        assert url.startswith("http://127.0.0.1:")
        assert int(url.rsplit(":", 1)[1]) > 0


async def test_head_has_no_body() -> None:
    async with serve() as url:
        raw = await fetch_raw(url, "/bytes/50", method="HEAD")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 50\r\n" in raw
    assert raw.endswith(b"\r\n\r\n")


def _expected_bytes(n: int) -> bytes:
    line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-\n"
    return (line * (n // len(line) + 1))[:n]


@pytest.mark.parametrize("n", [0, 1, 1000, 3 * 2**20 + 7])
async def test_bytes(n: int) -> None:
    async with serve() as url:
        resp = await fetch(url, f"/bytes/{n}")
    assert resp.status == 200 and resp.complete
    assert len(resp.body) == n
    assert resp.header("Content-Length") == str(n)
    assert resp.body == _expected_bytes(n)


@pytest.mark.parametrize("n", [0, 5, 40000, 2**21 + 3])
async def test_bytes_chunked(n: int) -> None:
    async with serve() as url:
        resp = await fetch(url, f"/bytes/{n}?chunked=1&chunk=1000")
    assert resp.status == 200 and resp.complete
    assert resp.header("Transfer-Encoding") == "chunked"
    assert resp.header("Content-Length") is None
    assert resp.body == _expected_bytes(n)


async def test_bytes_chunked_wire_format() -> None:
    async with serve() as url:
        raw = await fetch_raw(url, "/bytes/7?chunked=1&chunk=3")
    assert raw.endswith(b"\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n1\r\ng\r\n0\r\n\r\n")


async def test_bad_numbers_are_400() -> None:
    async with serve() as url:
        for path in ("/bytes/abc", "/bytes/-1", "/delay/x", "/status/99", "/status/600", "/flaky?p=2",
                     "/ratelimit?rps=0", "/redirect-to"):
            resp = await fetch(url, path)
            assert resp.status == 400, path
        # The body says what was wrong with which parameter.
        for path, reason in (("/bytes/abc", b"n must be an integer"),
                             ("/ratelimit?rps=x", b"rps must be a number"),
                             ("/flaky?p=2", b"p must be between 0.0 and 1.0")):
            assert reason in (await fetch(url, path)).body, path


@pytest.mark.looptime
async def test_delay_waits_on_the_loop_clock() -> None:
    loop = asyncio.get_running_loop()
    async with serve() as url:
        start = loop.time()
        resp = await fetch(url, "/delay/5000")
        assert loop.time() - start >= 5.0
    assert resp.status == 200 and orjson.loads(resp.body) == {"delay_ms": 5000}


@pytest.mark.parametrize("code", [200, 201, 204, 304, 404, 418, 500, 503, 599])
async def test_status(code: int) -> None:
    async with serve() as url:
        resp = await fetch(url, f"/status/{code}")
    assert resp.status == code and resp.complete
    if code in (204, 304):
        assert resp.body == b""
    else:
        assert resp.body.startswith(str(code).encode())


async def test_status_redirect_and_retry_after() -> None:
    async with serve() as url:
        redirect = await fetch(url, "/status/301")
        busy = await fetch(url, "/status/429?retry_after=7")
    assert redirect.header("Location") == "/"
    assert busy.status == 429 and busy.header("Retry-After") == "7"


async def test_redirect_chain() -> None:
    async with serve() as url:
        conn = await RawConnection.open(url)
        path, hops = "/redirect/3", 0
        while True:
            resp = await conn.request("GET", path)
            if resp.status != 302:
                break
            location = resp.header("Location")
            assert location is not None
            path, hops = location, hops + 1
        await conn.aclose()
    assert hops == 3 and path == "/redirect/0"
    assert resp.status == 200 and orjson.loads(resp.body) == {"redirects": 0}


async def test_redirect_absolute_and_status() -> None:
    async with serve() as url:
        absolute = await fetch(url, "/redirect/2?absolute=1")
        temporary = await fetch(url, "/redirect/2?status=307")
    assert absolute.header("Location") == f"{url}/redirect/1?absolute=1"
    assert temporary.status == 307 and temporary.header("Location") == "/redirect/1?status=307"


async def test_redirect_to() -> None:
    async with serve() as url:
        resp = await fetch(url, "/redirect-to?url=http%3A%2F%2Fexample.invalid%2Fx&status=308")
        default = await fetch(url, "/redirect-to?url=/bytes/1")
    assert resp.status == 308 and resp.header("Location") == "http://example.invalid/x"
    assert default.status == 302 and default.header("Location") == "/bytes/1"


@pytest.mark.parametrize(("path", "coding", "decode"), [
    ("/gzip", "gzip", gzip.decompress),
    ("/deflate", "deflate", zlib.decompress),
    ("/brotli", "br", brotli.decompress),
    ("/zstd", "zstd", lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b)),
])
async def test_content_encodings(path: str, coding: str, decode: object) -> None:
    async with serve() as url:
        resp = await fetch(url, path)
    assert resp.header("Content-Encoding") == coding
    assert callable(decode)
    data = orjson.loads(decode(resp.body))
    assert data["compression"] == path[1:]
    assert len(resp.body) < len(orjson.dumps(data))


async def test_headers_multi_valued() -> None:
    async with serve() as url:
        resp = await fetch(url, "/headers", headers=[("X-One", "a"), ("X-Many", "1"), ("x-many", "2")])
    headers = orjson.loads(resp.body)["headers"]
    assert headers["x-one"] == "a"
    assert headers["x-many"] == ["1", "2"]
    assert headers["host"] == url.split("//")[1]


async def test_echo() -> None:
    async with serve() as url:
        resp = await fetch(url, "/echo?a=1&a=2&b=x%20y", method="PUT", body=b'{"k": 1}',
                           headers=[("Content-Type", "application/json")])
        binary = await fetch(url, "/echo", method="POST", body=b"\xff\x00")
    data = orjson.loads(resp.body)
    assert data["method"] == "PUT"
    assert data["path"] == "/echo"
    assert data["query"] == {"a": ["1", "2"], "b": "x y"}
    assert data["headers"]["content-type"] == "application/json"
    assert data["body"] == '{"k": 1}' and data["body_length"] == 8
    assert orjson.loads(binary.body)["body_base64"] == "/wA="


async def test_unknown_path_and_method() -> None:
    async with serve() as url:
        missing = await fetch(url, "/nope")
        post = await fetch(url, "/", method="POST", body=b"x")
    assert missing.status == 404
    assert post.status == 405


async def test_keep_alive_many_requests_one_connection() -> None:
    async with serve() as url:
        conn = await RawConnection.open(url)
        paths = ["/", "/bytes/10", "/delay/1", "/status/404", "/echo", "/gzip", "/", "/bytes/3?chunked=1"]
        for path in paths:
            resp = await conn.request("GET", path)
            assert resp.complete and resp.keep_alive, path
        await conn.aclose()


async def test_pipelining_keeps_order() -> None:
    paths = ["/delay/20", "/", "/bytes/5", "/delay/1", "/status/201", "/echo?n=7", "/bytes/4?chunked=1"] * 5
    async with serve() as url:
        conn = await RawConnection.open(url)
        conn.writer.write(b"".join(
            f"GET {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for p in paths))
        responses = [await conn.read_response() for _ in paths]
        await conn.aclose()
    for path, resp in zip(paths, responses, strict=True):
        assert resp.complete
        if path.startswith("/delay"):
            assert orjson.loads(resp.body)["delay_ms"] == int(path.rsplit("/", 1)[1])
        elif path == "/":
            assert resp.body == ROOT_BODY
        elif path == "/status/201":
            assert resp.status == 201
        elif path.startswith("/echo"):
            assert orjson.loads(resp.body)["query"] == {"n": "7"}
        else:
            assert len(resp.body) == int(path.split("/")[2].split("?")[0])


async def test_pipelined_flood_without_reading_is_bounded() -> None:
    # A client that sends many requests and reads nothing must not make the server buffer without bound.
    server = TargetServer()
    url = await server.start()
    try:
        conn = await RawConnection.open(url)
        request = b"GET /bytes/60000 HTTP/1.1\r\nHost: t\r\n\r\n"
        conn.writer.write(request * 2000)
        await wait_until(lambda: server.connections == 1)
        (proto,) = list(server.app.connections)
        # The server stops reading once it cannot write: from then on nothing more is buffered.
        await wait_until(lambda: proto._write_paused and proto._read_paused)
        assert proto.transport is not None
        assert proto.transport.get_write_buffer_size() < 4 * 2**20
        await conn.aclose()
    finally:
        await server.aclose()


async def test_connection_close_and_http10() -> None:
    async with serve() as url:
        conn = await RawConnection.open(url)
        resp = await conn.request("GET", "/bytes/3", headers=[("Connection", "close")])
        assert resp.header("Connection") == "close"
        assert await conn.reader.read() == b""
        await conn.aclose()
        conn = await RawConnection.open(url)
        conn.writer.write(b"GET / HTTP/1.0\r\n\r\n")
        raw = await conn.reader.read()
        await conn.aclose()
    assert raw.startswith(b"HTTP/1.1 200 OK") and raw.endswith(ROOT_BODY)


async def test_malformed_and_oversized_requests() -> None:
    async with serve() as url:
        conn = await RawConnection.open(url)
        conn.writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        raw = await conn.reader.read()
        await conn.aclose()
        assert raw.startswith(b"HTTP/1.1 400 ")
        big = await fetch(url, "/", headers=[("X-Big", "a" * 100_000)])
        assert big.status == 431
        long_url = await fetch(url, "/" + "a" * 10_000)
        assert long_url.status == 414


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback here")
async def test_ipv6() -> None:
    async with serve("::1") as url:
        assert url.startswith("http://[::1]:")
        resp = await fetch(url, "/bytes/3")
    assert resp.status == 200 and resp.body == b"abc"


async def test_tls() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with serve(ssl=server_ctx) as url:
        assert url.startswith("https://127.0.0.1:")
        conn = await RawConnection.open(url, ssl_context=client_ctx)
        first = await conn.request("GET", "/")
        second = await conn.request("GET", "/redirect/1?absolute=1")
        await conn.aclose()
    assert first.body == ROOT_BODY
    assert second.header("Location", ) is not None
    assert second.header("Location", ).startswith("https://")  # type: ignore[union-attr]


async def test_exit_closes_connections_and_cancels_routes() -> None:
    server = TargetServer()
    url = await server.start()
    idle = await RawConnection.open(url)
    busy = await RawConnection.open(url)
    busy.send("GET", "/delay/600000")
    await idle.request("GET", "/")
    await wait_until(lambda: server.connections == 2)
    before = len(asyncio.all_tasks())
    await server.aclose()
    assert server.connections == 0
    assert await idle.reader.read() == b""
    assert await busy.reader.read() == b""
    assert len(asyncio.all_tasks()) < before
    await idle.aclose()
    await busy.aclose()


async def test_redirect_keeps_absolute_and_status_on_every_hop() -> None:
    async with serve() as url:
        resp = await fetch(url, "/redirect/2?absolute=1&status=308")
    assert resp.status == 308
    assert resp.header("Location") == f"{url}/redirect/1?absolute=1&status=308"


def test_on_uvloop() -> None:
    # The CLI runs on uvloop by default: keep-alive, pipelining, reset and cancellation there too.
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        server = TargetServer()
        url = await server.start()
        conn = await RawConnection.open(url)
        conn.writer.write(b"GET /delay/5 HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        first, second = await conn.read_response(), await conn.read_response()
        assert orjson.loads(first.body) == {"delay_ms": 5} and second.body == ROOT_BODY
        reset = await RawConnection.open(url)
        reset.send("GET", "/fault/reset")
        assert b"Content-Length: 100000" in await read_until_reset(reset)
        await reset.aclose()
        conn.send("GET", "/delay/600000")
        await conn.aclose()
        await wait_until(lambda: server.connections == 0)
        await server.aclose()
        assert len(asyncio.all_tasks()) == 1

    uvloop.run(scenario())
