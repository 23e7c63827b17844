"""Content decoding: every coding the server offers, chained codings, and bombs stopped at the cap."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import brotli
import pytest
import zstandard

from surge.errors import BodyTooLarge, ProtocolError
from surge.http import Client
from surge.http.decoding import decode_body, make_decoder
from surge.server.faults import gzip_bomb_body

RAW = b"surge " * 5000
ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/brotli", "/zstd"])
async def test_server_encodings(server: str, client: Client, path: str) -> None:
    r = await client.request("GET", server + path)
    assert r.headers["content-encoding"] in ("gzip", "deflate", "br", "zstd")
    assert r.json()["compression"] == path[1:]
    assert r.num_bytes < len(r.content)  # on the wire vs decoded


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_decode_in_small_pieces(coding: str) -> None:
    data = ENCODERS[coding](RAW)
    d = make_decoder(coding, None)
    out = b"".join(d.decode(data[i:i + 7]) for i in range(0, len(data), 7)) + d.flush()
    assert out == RAW


def test_raw_deflate_and_chain() -> None:
    c = zlib.compressobj(wbits=-15)
    raw_deflate = c.compress(RAW) + c.flush()
    assert decode_body("deflate", [raw_deflate], None) == RAW
    chained = brotli.compress(gzip.compress(RAW))
    assert decode_body("gzip, br", [chained], None) == RAW


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_cap_on_decoded_size(coding: str) -> None:
    data = ENCODERS[coding](RAW)
    assert decode_body(coding, [data], len(RAW)) == RAW  # exactly at the cap is fine
    with pytest.raises(BodyTooLarge):
        decode_body(coding, [data], len(RAW) - 1)


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_bomb_stops_at_cap_with_bounded_memory(coding: str) -> None:
    # 256 MiB of zeros compressed; decoding must stop at 1 MiB without ever holding much more.
    if coding == "gzip":
        bomb = gzip_bomb_body(256)
    elif coding == "zstd":
        cctx = zstandard.ZstdCompressor(level=19)
        w = cctx.compressobj()
        block = bytes(1 << 20)
        bomb = b"".join(w.compress(block) for _ in range(256)) + w.flush()
    elif coding == "br":
        bomb = brotli.compress(bytes(64 << 20), quality=5)
    else:
        c = zlib.compressobj(9)
        block = bytes(1 << 20)
        bomb = b"".join(c.compress(block) for _ in range(256)) + c.flush()
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            decode_body(coding, [bomb], 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_corrupt_body_is_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode_body("gzip", [b"definitely not gzip"], None)
    with pytest.raises(ProtocolError):
        decode_body("br", [b"\xff\xff\xff not brotli"], None)
    with pytest.raises(ProtocolError):
        decode_body("compress", [b"x"], None)


async def test_gzip_bomb_from_server(server: str) -> None:
    async with Client(max_body=1 << 20) as c:
        with pytest.raises(BodyTooLarge) as info:
            await c.request("GET", server + "/fault/gzip-bomb?mb=64")
        assert info.value.kind == "body_too_large"
        # The raw body was complete and small: the connection stays in the pool.
        assert c.statistics().idle == 1


async def test_streamed_decoding_with_cap(server: str) -> None:
    async with Client(max_body=1 << 20) as c:
        got = 0
        with pytest.raises(BodyTooLarge):
            async with c.stream("GET", server + "/fault/gzip-bomb?mb=64") as r:
                async for chunk in r.aiter_bytes():
                    got += len(chunk)
        assert got <= 1 << 20
        assert c.statistics().active == 0
