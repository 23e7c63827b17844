"""Content decoding (gzip, deflate, br, zstd) with a cap on the decoded size.

Every decoder produces output in bounded steps, so a compression bomb stops at the cap with memory bounded
by the cap plus one step, never by what the bomb would expand to. A Content-Encoding surge cannot undo
(unknown, or more than MAX_CODINGS stacked) is refused when there is a body to decode: an empty body (a HEAD
response's, a 204's, a redirect's) decodes to itself whatever its coding says.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli
import zstandard

from surge.errors import BodyTooLarge, ProtocolError

__all__ = ["MAX_CODINGS", "SUPPORTED_ENCODINGS", "Decoder", "decode_body", "make_decoder"]

SUPPORTED_ENCODINGS = ("gzip", "deflate", "br", "zstd")
# Stacked codings ("gzip, gzip, ..."), as urllib3 and curl cap them: each costs a decoder and a pass.
MAX_CODINGS = 5
# The largest zstd window a frame may ask for (RFC 9659's cap for the "zstd" coding): the decoder allocates
# the window before any output, so without this a tiny frame could claim 128 MiB (libzstd's default cap).
ZSTD_MAX_WINDOW = 8 * 2**20

# Output produced per step while decompressing without a cap.
_STEP = 256 * 1024


class Decoder(Protocol):
    """Turns encoded chunks into decoded bytes, raising BodyTooLarge past ``limit`` decoded bytes."""

    def decode(self, data: bytes) -> bytes:
        """Decode the next chunk."""
        ...

    def flush(self) -> bytes:
        """Decode whatever is left once the encoded body has ended."""
        ...


class _Budget:
    __slots__ = ("limit", "produced")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.produced = 0

    def room(self) -> int:
        # One byte over the limit is enough to know the limit is exceeded.
        return _STEP if self.limit is None else min(_STEP, self.limit - self.produced + 1)

    def take(self, n: int) -> None:
        self.produced += n
        if self.limit is not None and self.produced > self.limit:
            raise BodyTooLarge(f"decoded body exceeds {self.limit} bytes")


class _ZlibDecoder:
    __slots__ = ("_budget", "_obj", "_raw_fallback", "_started")

    def __init__(self, wbits: int, limit: int | None, *, raw_fallback: bool = False) -> None:
        self._obj = zlib.decompressobj(wbits)
        self._budget = _Budget(limit)
        self._raw_fallback = raw_fallback
        self._started = False

    def decode(self, data: bytes) -> bytes:
        out: list[bytes] = []
        try:
            if not self._started and self._raw_fallback and data:
                self._started = True
                # "deflate" is zlib-wrapped by the RFC but raw deflate by some servers: detect which.
                try:
                    probe = zlib.decompressobj(zlib.MAX_WBITS)
                    probe.decompress(data[:2])
                except zlib.error:
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            while data:
                chunk = self._obj.decompress(data, self._budget.room())
                self._budget.take(len(chunk))
                out.append(chunk)
                data = self._obj.unconsumed_tail
                if self._obj.eof:
                    break
        except zlib.error as exc:
            raise ProtocolError(f"bad compressed body: {exc}") from None
        return b"".join(out)

    def flush(self) -> bytes:
        try:
            chunk = self._obj.flush()
        except zlib.error as exc:
            raise ProtocolError(f"bad compressed body: {exc}") from None
        self._budget.take(len(chunk))
        return chunk


class _BrotliDecoder:
    __slots__ = ("_budget", "_obj")

    def __init__(self, limit: int | None) -> None:
        self._obj = brotli.Decompressor()
        self._budget = _Budget(limit)

    def decode(self, data: bytes) -> bytes:
        out: list[bytes] = []
        try:
            chunk = self._obj.process(data, output_buffer_limit=self._budget.room())
            self._budget.take(len(chunk))
            out.append(chunk)
            while not self._obj.can_accept_more_data():
                chunk = self._obj.process(b"", output_buffer_limit=self._budget.room())
                self._budget.take(len(chunk))
                out.append(chunk)
        except brotli.error as exc:
            raise ProtocolError(f"bad brotli body: {exc}") from None
        return b"".join(out)

    def flush(self) -> bytes:
        return b""


class _CappedSink:
    """Receives zstandard's output a write_size piece at a time; raising stops the decompressor."""

    __slots__ = ("budget", "parts")

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.budget.take(len(data))
        self.parts.append(bytes(data))
        return len(data)


class _ZstdDecoder:
    __slots__ = ("_sink", "_writer")

    def __init__(self, limit: int | None) -> None:
        self._sink = _CappedSink(_Budget(limit))
        # stream_writer hands output over in write_size pieces, which is what bounds memory on a bomb.
        self._writer = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_writer(
            self._sink,  # type: ignore[arg-type]  # only .write() is used
            write_size=_STEP,
            write_return_read=True,
        )

    def decode(self, data: bytes) -> bytes:
        try:
            self._writer.write(data)
        except zstandard.ZstdError as exc:
            raise ProtocolError(f"bad zstd body: {exc}") from None
        parts = self._sink.parts
        self._sink.parts = []
        return b"".join(parts)

    def flush(self) -> bytes:
        return b""


class _Identity:
    __slots__ = ("_budget",)

    def __init__(self, limit: int | None) -> None:
        self._budget = _Budget(limit)

    def decode(self, data: bytes) -> bytes:
        self._budget.take(len(data))
        return data

    def flush(self) -> bytes:
        return b""


class _Refused:
    """A Content-Encoding surge cannot undo: a ProtocolError as soon as there is a body byte to decode."""

    __slots__ = ("_reason",)

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def decode(self, data: bytes) -> bytes:
        if data:
            raise ProtocolError(self._reason)
        return b""

    def flush(self) -> bytes:
        return b""


class _Chain:
    """Several codings applied in turn (``Content-Encoding: gzip, br``): undo them last-first."""

    __slots__ = ("_decoders",)

    def __init__(self, decoders: list[Decoder]) -> None:
        self._decoders = decoders

    def decode(self, data: bytes) -> bytes:
        for d in self._decoders:
            data = d.decode(data)
        return data

    def flush(self) -> bytes:
        data = b""
        for d in self._decoders:
            data = d.decode(data) + d.flush() if data else d.flush()
        return data


def _one(coding: str, limit: int | None) -> Decoder | None:
    if coding in ("gzip", "x-gzip"):
        return _ZlibDecoder(16 + zlib.MAX_WBITS, limit)
    if coding == "deflate":
        return _ZlibDecoder(zlib.MAX_WBITS, limit, raw_fallback=True)
    if coding == "br":
        return _BrotliDecoder(limit)
    if coding == "zstd":
        return _ZstdDecoder(limit)
    if coding in ("identity", ""):
        return _Identity(limit)
    return None


def make_decoder(content_encoding: str, limit: int | None) -> Decoder:
    """A decoder for a Content-Encoding header value, capping decoded output at ``limit`` bytes.

    Never raises: a coding that cannot be undone gives a decoder that raises ProtocolError on the first body
    byte, so a body-less response is not failed for what it claims.
    """
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    if len(codings) > MAX_CODINGS:
        return _Refused(f"more than {MAX_CODINGS} stacked Content-Encodings: {content_encoding}")
    decoders = []
    for c in reversed(codings):
        d = _one(c, limit)
        if d is None:
            return _Refused(f"unsupported Content-Encoding: {c}")
        decoders.append(d)
    if len(decoders) == 1:
        return decoders[0]
    return _Chain(decoders) if decoders else _Identity(limit)


def decode_body(content_encoding: str, chunks: list[bytes], limit: int | None) -> bytes:
    """Decode a whole encoded body given as chunks, raising BodyTooLarge past ``limit`` decoded bytes."""
    decoder = make_decoder(content_encoding, limit)
    out = [decoder.decode(c) for c in chunks]
    out.append(decoder.flush())
    return b"".join(out)
