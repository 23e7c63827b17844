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
from surge.http.decoding import MAX_CODINGS, decode_body, make_decoder
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


# -- hostile codings ----------------------------------------------------------------------------------------


def test_at_most_five_stacked_codings() -> None:
    data = b"x"
    for _ in range(MAX_CODINGS):
        data = gzip.compress(data)
    assert decode_body(", ".join(["gzip"] * MAX_CODINGS), [data], None) == b"x"
    with pytest.raises(ProtocolError, match="stacked"):
        decode_body(", ".join(["gzip"] * (MAX_CODINGS + 1)), [gzip.compress(data)], None)
    with pytest.raises(ProtocolError, match="stacked"):
        decode_body("identity, " * 6 + "gzip", [data], None)  # identity counts: it is a coding listed


@pytest.mark.parametrize("coding", ["compress", "gzip, compress", "x-unknown", ", ".join(["br"] * 6)])
def test_an_unusable_coding_refuses_a_body_not_its_absence(coding: str) -> None:
    d = make_decoder(coding, None)  # never raises: a HEAD response or a 204 may say anything
    assert d.decode(b"") == b"" and d.flush() == b""
    assert decode_body(coding, [], None) == b""
    with pytest.raises(ProtocolError):
        make_decoder(coding, None).decode(b"body")


def test_zstd_window_larger_than_rfc_9659_allows_is_refused() -> None:
    for window_log, ok in ((23, True), (24, False)):
        params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log)
        w = zstandard.ZstdCompressor(compression_params=params).compressobj()
        frame = w.compress(RAW) + w.flush()
        assert zstandard.get_frame_parameters(frame).window_size == 1 << window_log
        if ok:
            assert decode_body("zstd", [frame], None) == RAW
        else:
            with pytest.raises(ProtocolError, match="too much memory"):
                decode_body("zstd", [frame], None)


def _zstd_stream_bomb(mb: int) -> bytes:
    w = zstandard.ZstdCompressor(level=3, write_content_size=False).compressobj()
    return b"".join(w.compress(bytes(1 << 20)) for _ in range(mb)) + w.flush()


BOMBS = {
    "gzip": lambda: gzip_bomb_body(256),
    "deflate": lambda: zlib.compress(bytes(256 << 20), 9),
    "br": lambda: brotli.compress(bytes(64 << 20), quality=5),
    "zstd": lambda: _zstd_stream_bomb(256),  # no content size in the frame header
    "gzip, gzip": lambda: gzip.compress(gzip_bomb_body(256)),
    "gzip, br": lambda: brotli.compress(gzip_bomb_body(256)),
    "zstd, deflate": lambda: zlib.compress(_zstd_stream_bomb(256)),
}


@pytest.mark.parametrize("pieces", [1, 64], ids=["whole", "in-pieces"])
@pytest.mark.parametrize("coding", sorted(BOMBS))
def test_every_bomb_stops_at_the_cap_without_expanding(coding: str, pieces: int) -> None:
    bomb = BOMBS[coding]()
    if coding == "zstd":
        assert zstandard.get_frame_parameters(bomb).content_size == zstandard.CONTENTSIZE_UNKNOWN
    step = -(-len(bomb) // pieces)
    chunks = [bomb[i:i + step] for i in range(0, len(bomb), step)]
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            decode_body(coding, chunks, 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The cap (1 MiB) a layer, a decoding step each, the joins: far from the 64-256 MiB the bomb holds.
    assert peak < 8 << 20, peak
