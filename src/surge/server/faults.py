"""The misbehaving endpoints under ``/fault/``: each breaks HTTP in one named way.

Every fault either answers at once with bytes or runs as the connection's one task (cancelled on close).
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from functools import lru_cache

from surge.server.protocol import HttpServerProtocol
from surge.server.responses import TEXT, chunk, head, response

_MB = 1 << 20
_FILLER = b"surge " * 10923  # ~64 KiB of body text


async def drip(conn: HttpServerProtocol, size: int, interval: float, keep_alive: bool) -> None:
    """Announce ``size`` bytes, then send one byte every ``interval`` seconds."""
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(size))]
    conn.write(head(200, headers, keep_alive=keep_alive))
    for _ in range(size):
        await asyncio.sleep(interval)
        conn.write(b".")


async def silence() -> None:
    """Read the request, never answer; ends only when the client goes (the task is cancelled)."""
    await asyncio.Future()


async def reset(conn: HttpServerProtocol) -> None:
    """Send the head and part of the body, then a TCP RST."""
    conn.write(head(200, [("Content-Type", "text/plain"), ("Content-Length", "100000")]))
    conn.write(_FILLER[:1000])
    await conn.drain()
    conn.reset()


def truncated_chunked(conn: HttpServerProtocol) -> bytes:
    """A chunked body that stops without its last chunk; the connection closes after it."""
    conn.close_after_write()
    return (head(200, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")], keep_alive=False)
            + chunk(b"x" * 100) + chunk(b"y" * 100) + b"64\r\n" + b"z" * 10)


def short_body(conn: HttpServerProtocol) -> bytes:
    """``Content-Length: 1000`` with 100 bytes of body, then close."""
    conn.close_after_write()
    headers = [("Content-Type", "text/plain"), ("Content-Length", "1000")]
    return head(200, headers, keep_alive=False) + b"x" * 100


def bad_status(conn: HttpServerProtocol) -> bytes:
    """A status line no HTTP parser accepts, then close."""
    conn.close_after_write()
    return b"HTTP/1.1 OK 200\r\nContent-Length: 2\r\n\r\nok"


def big_headers(kib: int) -> bytes:
    """A response with one header of ``kib`` KiB."""
    return response(200, b"big headers\n", headers=[("X-Big", "a" * (kib * 1024))])


@lru_cache(maxsize=1)
def _zero_block() -> bytes:
    # Deflate of 1 MiB of zeros after a full flush: the compressor starts afresh, so the bytes of every
    # such block are identical and a stream of N MiB is the block repeated N times.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(bytes(_MB)) + compressor.flush(zlib.Z_FULL_FLUSH)


@lru_cache(maxsize=8)
def gzip_bomb_body(mb: int) -> bytes:
    """A gzip member that decodes to ``mb`` MiB of zeros, about 1 KiB per MiB; computed once per size."""
    block = _zero_block()
    zeros = bytes(_MB)
    crc = 0
    for _ in range(mb):
        crc = zlib.crc32(zeros, crc)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block closes the stream
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * mb + end + struct.pack("<II", crc, (mb * _MB) & 0xFFFFFFFF)


def gzip_bomb(mb: int, keep_alive: bool) -> bytes:
    """``Content-Encoding: gzip`` whose body is small on the wire and ``mb`` MiB decoded."""
    body = gzip_bomb_body(mb)
    return response(200, body, content_type=b"application/octet-stream",
                    headers=[("Content-Encoding", "gzip")], keep_alive=keep_alive)


async def endless(conn: HttpServerProtocol) -> None:
    """A chunked body that never ends; stops when the client goes. Flow control bounds memory."""
    conn.write(head(200, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")]))
    piece = chunk(_FILLER[:16384])
    while True:
        conn.write(piece)
        await conn.drain()
        # A fast reader never pauses writing; yield anyway so other connections get the loop.
        await asyncio.sleep(0)


def redirect_loop(keep_alive: bool) -> bytes:
    """A redirect to itself."""
    return response(302, b"again\n", content_type=TEXT, headers=[("Location", "/fault/redirect-loop")],
                    keep_alive=keep_alive)


__all__ = [
    "bad_status", "big_headers", "drip", "endless", "gzip_bomb", "gzip_bomb_body", "redirect_loop", "reset",
    "short_body", "silence", "truncated_chunked",
]
