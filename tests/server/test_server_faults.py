"""Each /fault/ endpoint misbehaves exactly as named, and cleans up when the client goes."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import httptools
import pytest
from server_raw import RawConnection, fetch, fetch_raw, read_until_reset, wait_until

from surge.server import TargetServer, serve
from surge.server.faults import gzip_bomb_body


@pytest.mark.looptime
async def test_drip_sends_one_byte_per_interval() -> None:
    loop = asyncio.get_running_loop()
    async with serve() as url:
        conn = await RawConnection.open(url)
        conn.send("GET", "/fault/drip?bytes=5&interval_ms=1000")
        start = loop.time()
        resp = await conn.read_response()
        elapsed = loop.time() - start
        await conn.aclose()
    assert resp.complete and resp.body == b"....."
    assert elapsed >= 5.0


@pytest.mark.looptime
async def test_silence_never_answers_and_is_cleaned_up() -> None:
    server = TargetServer()
    url = await server.start()
    conn = await RawConnection.open(url)
    conn.send("GET", "/fault/silence")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(conn.reader.read(1), timeout=60)
    await conn.aclose()
    await wait_until(lambda: server.connections == 0)
    await server.aclose()


async def test_reset_mid_body() -> None:
    async with serve() as url:
        conn = await RawConnection.open(url)
        conn.send("GET", "/fault/reset")
        received = await read_until_reset(conn)
        await conn.aclose()
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Content-Length: 100000" in head
    assert 0 < len(body) < 100_000


async def test_truncated_chunked() -> None:
    async with serve() as url:
        raw = await fetch_raw(url, "/fault/truncated-chunked")
        resp = await fetch(url, "/fault/truncated-chunked")
    assert b"Transfer-Encoding: chunked" in raw
    assert not raw.endswith(b"0\r\n\r\n")
    assert resp.status == 200 and not resp.complete


async def test_content_length_longer_than_body() -> None:
    async with serve() as url:
        resp = await fetch(url, "/fault/short-body")
    assert resp.header("Content-Length") == "1000"
    assert not resp.complete and len(resp.body) == 100


async def test_invalid_status_line() -> None:
    async with serve() as url:
        with pytest.raises(httptools.HttpParserError):
            await fetch(url, "/fault/bad-status")
        raw = await fetch_raw(url, "/fault/bad-status")
    assert raw.startswith(b"HTTP/1.1 OK 200\r\n")


async def test_oversized_headers() -> None:
    async with serve() as url:
        resp = await fetch(url, "/fault/big-headers")
        small = await fetch(url, "/fault/big-headers?kb=2")
    assert len(resp.header("X-Big") or "") == 100 * 1024
    assert len(small.header("X-Big") or "") == 2 * 1024
    assert resp.complete and resp.body == b"big headers\n"


async def test_gzip_bomb() -> None:
    async with serve() as url:
        resp = await fetch(url, "/fault/gzip-bomb?mb=8")
    assert resp.header("Content-Encoding") == "gzip"
    assert len(resp.body) < 8 * 2**20 // 500
    decoded = gzip.decompress(resp.body)
    assert len(decoded) == 8 * 2**20 and decoded.count(0) == len(decoded)


def test_gzip_bomb_is_one_valid_member_for_streaming_decoders() -> None:
    body = gzip_bomb_body(3)
    decoder = zlib.decompressobj(wbits=31)
    total = 0
    data = body
    while data:
        out = decoder.decompress(data, 2**20)
        total += len(out)
        data = decoder.unconsumed_tail
    total += len(decoder.flush())
    assert total == 3 * 2**20
    assert decoder.eof and decoder.unused_data == b""
    assert gzip_bomb_body(3) is body  # computed once


async def test_endless_body_stops_when_client_goes() -> None:
    server = TargetServer()
    url = await server.start()
    conn = await RawConnection.open(url)
    conn.send("GET", "/fault/endless")
    received = 0
    while received < 4 * 2**20:
        received += len(await conn.reader.read(65536))
    # Stop reading: the server must block on flow control, not buffer the endless body.
    (proto,) = list(server.app.connections)
    assert proto.transport is not None
    await wait_until(lambda: proto._write_paused)
    assert proto.transport.get_write_buffer_size() < 2**20
    tasks_before = len(asyncio.all_tasks())
    await conn.aclose()
    await wait_until(lambda: server.connections == 0)
    await wait_until(lambda: len(asyncio.all_tasks()) < tasks_before)
    await server.aclose()


async def test_redirect_loop() -> None:
    async with serve() as url:
        conn = await RawConnection.open(url)
        for _ in range(20):
            resp = await conn.request("GET", "/fault/redirect-loop")
            assert resp.status == 302 and resp.header("Location") == "/fault/redirect-loop"
        await conn.aclose()


async def test_unknown_fault_is_404() -> None:
    async with serve() as url:
        assert (await fetch(url, "/fault/nope")).status == 404


async def test_cancelled_delay_when_client_leaves() -> None:
    server = TargetServer()
    url = await server.start()
    conn = await RawConnection.open(url)
    conn.send("GET", "/delay/600000")
    await wait_until(lambda: server.connections == 1 and any(p._task for p in server.app.connections))
    (proto,) = list(server.app.connections)
    task = proto._task
    assert task is not None
    await conn.aclose()
    await wait_until(task.done)
    assert task.cancelled()
    assert server.connections == 0
    await server.aclose()
