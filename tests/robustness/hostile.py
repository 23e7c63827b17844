"""A misbehaving HTTP/1.1 server for surge's robustness tests: raw asyncio streams, one path per case.

In-process: ``async with Hostile(ca) as hostile: hostile.url("silence")``. As a process:
``python hostile.py --port P [--ports-per-case] [--ca-file F] [--stats F] [-- CMD ...]`` serves, and with a
command runs it as a child (in the same network namespace) and exits with its status once it ends.

Ports (``layout``): all plain-HTTP cases share the base port; each TLS case and the stalled handshake need a
listener of their own (a certificate is per listener), on the ports after it. With ``--ports-per-case``, case
number i of ``CASES`` listens on ``base + i``. The ``dns`` case has no listener: its host name never resolves.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import email.utils
import functools
import gzip
import json
import signal
import socket
import ssl
import struct
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brotli
import trustme
import zstandard

__all__ = ["CASES", "Case", "Exchange", "Hostile", "layout"]

MAX_REQUEST_HEAD = 1 << 20  # the 100 KB URL case must be readable
DRIP_INTERVAL = 0.5
BOMB_DECODED = 32 << 20  # decoded size of each bomb; the tests cap bodies at 1 MB
HUGE_BODY = 2 << 20
CHUNK = 64 * 1024
TLS_HOST = "127.0.0.1"  # the name the good certificates carry (the URLs use the address)


@dataclass
class Exchange:
    """One request on one connection, as a case handler sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    method: str
    target: str
    n: int  # this request's number on its connection, from 1
    server: Hostile

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        q = self.target.partition("?")[2]
        return dict(p.partition("=")[::2] for p in q.split("&") if p)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


Fields = list[tuple[str, str | bytes]]  # a response head's fields, values as text or raw bytes
Handler = Callable[[Exchange], Awaitable[bool]]  # True: keep the connection for another request


@dataclass(frozen=True)
class Case:
    name: str
    handler: Handler
    listener: str = "http"  # "http", "tls-good", "tls-self-signed", "tls-wrong-host", "tls-expired", "stall"
    about: str = ""

    @property
    def path(self) -> str:
        return f"/case/{self.name}"


def _head(status: str, headers: Fields | None = None, *, length: int | None = None,
          extra: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}".encode()]
    for k, v in headers or []:
        lines.append(k.encode() + b": " + (v if isinstance(v, bytes) else v.encode("latin-1")))
    if length is not None:
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"


def _response(status: str, body: bytes = b"", headers: Fields | None = None) -> bytes:
    return _head(status, headers, length=len(body)) + body


OK_BODY = b"ok\n"


async def _drain_until_eof(x: Exchange) -> bool:
    while await x.reader.read(CHUNK):
        pass
    return False


# -- the cases ----------------------------------------------------------------------------------------


async def ok(x: Exchange) -> bool:
    await x.send(_response("200 OK", OK_BODY, [("Content-Type", "text/plain")]))
    return True


async def slow_drip(x: Exchange) -> bool:
    await x.send(_head("200 OK", [("Content-Type", "text/plain")], length=100))
    for _ in range(100):
        await x.send(b".")
        await asyncio.sleep(DRIP_INTERVAL)
    return False


async def silence(x: Exchange) -> bool:
    return await _drain_until_eof(x)  # the request was read; not a byte goes back


async def reset_mid_body(x: Exchange) -> bool:
    await x.send(_head("200 OK", [("Content-Type", "text/plain")], length=1000) + b"x" * 100)
    # In the kernel now (abort() drops what the transport still buffers); the RST comes after it in order.
    assert x.writer.transport.get_write_buffer_size() == 0
    sock = x.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    x.writer.transport.abort()
    return False


async def truncated_chunked(x: Exchange) -> bool:
    await x.send(_head("200 OK", [("Transfer-Encoding", "chunked")]) + b"10\r\n" + b"y" * 16 + b"\r\n5\r\nab")
    return False


async def short_body(x: Exchange) -> bool:
    await x.send(_head("200 OK", length=1000) + b"z" * 10)
    return False


async def keepalive_close(x: Exchange) -> bool:
    """Answers the first request on a connection and keeps it open; a later request on it is read and the
    connection closed without an answer: what a client sees when it reuses a connection the server has
    just closed. A client must retry that once, on a new connection."""
    if x.n > 1:
        x.server.stale_closes += 1
        return False
    await x.send(_response("200 OK", OK_BODY, [("Content-Type", "text/plain")]))
    return True


async def huge_body(x: Exchange) -> bool:
    await x.send(_head("200 OK", [("Content-Type", "application/octet-stream")], length=HUGE_BODY))
    for _ in range(HUGE_BODY // CHUNK):
        await x.send(b"\0" * CHUNK)
    return True


async def endless(x: Exchange) -> bool:
    await x.send(_head("200 OK", [("Transfer-Encoding", "chunked")]))
    chunk = b"%x\r\n" % CHUNK + b"e" * CHUNK + b"\r\n"
    while True:
        await x.send(chunk)


@functools.cache
def bomb(coding: str) -> bytes:
    """BOMB_DECODED zero bytes, compressed (a few tens of KB)."""
    zeros = b"\0" * BOMB_DECODED
    if coding == "gzip":
        return gzip.compress(zeros, compresslevel=9)
    if coding == "br":
        return bytes(brotli.compress(zeros, quality=5))
    return zstandard.ZstdCompressor(level=3).compress(zeros)


def _bomb(coding: str) -> Handler:
    async def handler(x: Exchange) -> bool:
        body = bomb(coding)
        headers: Fields = [("Content-Type", "text/plain"), ("Content-Encoding", coding)]
        await x.send(_response("200 OK", body, headers))
        return True

    return handler


@functools.cache
def stacked_body(layers: int = 6) -> bytes:
    body = b"stacked\n"
    for _ in range(layers):
        body = gzip.compress(body)
    return body


async def stacked_codings(x: Exchange) -> bool:
    codings = ", ".join(["gzip"] * 6)
    await x.send(_response("200 OK", stacked_body(), [("Content-Type", "text/plain"),
                                                      ("Content-Encoding", codings)]))
    return True


def _redirect(location: str | Callable[[Exchange], str], status: str = "302 Found") -> Handler:
    async def handler(x: Exchange) -> bool:
        where = location(x) if callable(location) else location
        await x.send(_response(status, b"", [("Location", where)]))
        return True

    return handler


def _next_hop(x: Exchange) -> str:
    n = int(x.query.get("n", "20"))
    return f"/case/redirect_hops?n={n - 1}" if n > 1 else "/case/ok?from=hops"


async def redirect_hops(x: Exchange) -> bool:
    if x.query.get("n") == "0":
        return await ok(x)
    return await _redirect(_next_hop)(x)


async def bad_status(x: Exchange) -> bool:
    await x.send(b"HTTP/1.1 abc Nope\r\nContent-Length: 2\r\n\r\nno")
    return False


async def icy(x: Exchange) -> bool:
    await x.send(b"ICY 200 OK\r\nicy-name: hostile radio\r\nContent-Type: audio/mpeg\r\n\r\n"
                 + b"\xff\xfb" * 512)
    return False


async def big_head(x: Exchange) -> bool:
    await x.send(_response("200 OK", OK_BODY, [("X-Big", "b" * (70 * 1024))]))
    return False


async def many_headers(x: Exchange) -> bool:
    await x.send(_response("200 OK", OK_BODY, [(f"X-Field-{i}", "v") for i in range(500)]))
    return False


async def nul_header(x: Exchange) -> bool:
    await x.send(_response("200 OK", OK_BODY, [("X-Nul", b"before\0after")]))
    return False


async def dup_content_length(x: Exchange) -> bool:
    await x.send(_head("200 OK", [("Content-Length", "3"), ("Content-Length", "7")]) + b"abcdefg")
    return False


NON_UTF8_BODY = bytes(range(256)) + b"\xff\xfe\xc3("
NON_UTF8_HEADER = b"caf\xe9 \xff\xfe \x80"


async def non_utf8(x: Exchange) -> bool:
    await x.send(_response("200 OK", NON_UTF8_BODY, [("Content-Type", "application/octet-stream"),
                                                     ("X-Latin", NON_UTF8_HEADER)]))
    return True


NON_UTF8_TEXT = b"<p>caf\xe9 cr\xe8me \xff\xfe</p>\n"


async def non_utf8_text(x: Exchange) -> bool:
    await x.send(_response("200 OK", NON_UTF8_TEXT, [("Content-Type", "text/html; charset=utf-8")]))
    return True


def _retry_after(value: Callable[[], str], status: str = "429 Too Many Requests", *,
                 always: bool = False) -> Handler:
    """The first request to a URL gets ``status`` with ``Retry-After: value()``; later ones 200 (or, with
    ``always``, the same refusal again)."""

    async def handler(x: Exchange) -> bool:
        if always or x.server.hits[x.target] == 1:
            headers: Fields = [("Retry-After", value()), ("Content-Type", "text/plain")]
            await x.send(_response(status, b"slow down\n", headers))
            return True
        return await ok(x)

    return handler


def _http_date_in(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


async def long_url(x: Exchange) -> bool:
    await x.send(_response("414 URI Too Long", b"", []))
    return True


async def stall(x: Exchange) -> bool:
    return await _drain_until_eof(x)


CASES: tuple[Case, ...] = (
    Case("ok", ok, about="healthy: 200, keep-alive"),
    Case("slow_drip", slow_drip, about=f"Content-Length 100, one byte every {DRIP_INTERVAL} s"),
    Case("silence", silence, about="reads the request, never answers"),
    Case("reset_mid_body", reset_mid_body, about="100 of 1000 body bytes, then an RST (SO_LINGER 0)"),
    Case("truncated_chunked", truncated_chunked, about="one chunk and part of another, then close"),
    Case("short_body", short_body, about="Content-Length 1000, 10 bytes, then close"),
    Case("keepalive_close", keepalive_close, about="request 2+ on a connection: closed unanswered"),
    Case("huge_body", huge_body, about=f"Content-Length {HUGE_BODY}, sent in full"),
    Case("endless", endless, about="chunked, never ends"),
    Case("gzip_bomb", _bomb("gzip"), about=f"{BOMB_DECODED} zero bytes, gzip"),
    Case("br_bomb", _bomb("br"), about=f"{BOMB_DECODED} zero bytes, brotli"),
    Case("zstd_bomb", _bomb("zstd"), about=f"{BOMB_DECODED} zero bytes, zstd"),
    Case("stacked_codings", stacked_codings, about="Content-Encoding: gzip six times over"),
    Case("redirect_loop", _redirect("/case/redirect_loop"), about="302 to itself"),
    Case("redirect_hops", redirect_hops, about="?n=20: 20 hops to a 200"),
    Case("redirect_file", _redirect("file:///etc/passwd"), about="302 to file:///etc/passwd"),
    Case("redirect_ftp", _redirect("ftp://127.0.0.1/pub/x"), about="302 to ftp://"),
    Case("bad_status", bad_status, about="HTTP/1.1 abc Nope"),
    Case("icy", icy, about="ICY 200 OK (SHOUTcast)"),
    Case("big_head", big_head, about="a 70 KiB header field"),
    Case("many_headers", many_headers, about="500 header fields"),
    Case("nul_header", nul_header, about="NUL byte in a header value"),
    Case("dup_content_length", dup_content_length, about="Content-Length: 3 and Content-Length: 7"),
    Case("non_utf8", non_utf8, about="latin-1/invalid bytes in a header value and a binary body"),
    Case("non_utf8_text", non_utf8_text, about="text/html said to be UTF-8, in latin-1 bytes"),
    Case("ra_seconds", _retry_after(lambda: "2"), about="429 Retry-After: 2 once, then 200"),
    Case("ra_date", _retry_after(lambda: _http_date_in(3)), about="429 Retry-After: <HTTP date 3 s on> once"),
    Case("ra_absurd", _retry_after(lambda: "99999999", always=True), about="429 Retry-After: 99999999"),
    Case("ra_garbage", _retry_after(lambda: "soon, maybe"), about="429 Retry-After: soon, maybe once"),
    Case("ra_negative", _retry_after(lambda: "-5"), about="429 Retry-After: -5 once"),
    Case("ra_503", _retry_after(lambda: "1", "503 Service Unavailable"), about="503 Retry-After: 1 once"),
    Case("ra_ten", _retry_after(lambda: "10", always=True), about="429 Retry-After: 10, always"),
    Case("long_url", long_url, about="the 100 KB URL's target: 414"),
    Case("tls_ok", ok, "tls-good", about="TLS, a certificate the test CA issued for 127.0.0.1"),
    Case("tls_self_signed", ok, "tls-self-signed", about="TLS, a certificate from an untrusted CA"),
    Case("tls_wrong_host", ok, "tls-wrong-host", about="TLS, trusted CA, issued for another name"),
    Case("tls_expired", ok, "tls-expired", about="TLS, trusted CA, expired a year ago"),
    Case("tls_stall", stall, "stall", about="accepts, never answers the ClientHello"),
    Case("dns", ok, "none", about="a host name under .invalid"),
)

BY_NAME = {c.name: c for c in CASES}
DNS_HOST = "no-such-host.invalid"


def layout(base: int, *, per_case: bool) -> dict[str, int]:
    """Each case's port. Cases with no listener (dns) get the base port, which their URL never reaches."""
    if per_case:
        return {c.name: base + i for i, c in enumerate(CASES)}
    ports: dict[str, int] = {}
    extra = 0
    for c in CASES:
        if c.listener in ("http", "none"):
            ports[c.name] = base
        else:
            extra += 1
            ports[c.name] = base + extra
    return ports


def url(name: str, ports: dict[str, int], suffix: str = "") -> str:
    case = BY_NAME[name]
    scheme = "https" if case.listener.startswith("tls") or case.listener == "stall" else "http"
    host = DNS_HOST if case.listener == "none" else "127.0.0.1"
    return f"{scheme}://{host}:{ports[name]}{case.path}{suffix}"


# -- certificates ---------------------------------------------------------------------------------------


def tls_contexts(ca: trustme.CA) -> dict[str, ssl.SSLContext]:
    """Server contexts for the TLS listeners; clients trust ``ca`` and nothing else."""
    now = datetime.datetime.now(datetime.UTC)
    certs = {
        "tls-good": ca.issue_cert(TLS_HOST, "localhost"),
        "tls-self-signed": trustme.CA().issue_cert(TLS_HOST, "localhost"),
        "tls-wrong-host": ca.issue_cert("wrong-host.example.test"),
        "tls-expired": ca.issue_cert(TLS_HOST, "localhost", not_before=now - datetime.timedelta(days=730),
                                     not_after=now - datetime.timedelta(days=365)),
    }
    contexts = {}
    for kind, cert in certs.items():
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        contexts[kind] = ctx
    return contexts


# -- the server ---------------------------------------------------------------------------------------


@dataclass
class Hostile:
    """The hostile listeners on 127.0.0.1. ``base=0``: ports chosen by the OS (in-process use)."""

    ca: trustme.CA = field(default_factory=trustme.CA)
    base: int = 0
    per_case: bool = False
    ports: dict[str, int] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)  # request target -> requests seen
    times: dict[str, list[float]] = field(default_factory=dict)  # request target -> time.monotonic() of each
    connections: int = 0
    stale_closes: int = 0
    _servers: list[asyncio.Server] = field(default_factory=list)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def url(self, name: str, suffix: str = "") -> str:
        return url(name, self.ports, suffix)

    async def __aenter__(self) -> Hostile:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        contexts = tls_contexts(self.ca)
        groups: dict[str, list[Case]] = {}  # listener name -> the cases it serves
        for c in CASES:
            if c.listener != "none":
                groups.setdefault(c.name if self.per_case or c.listener != "http" else "http", []).append(c)
        planned = layout(self.base, per_case=self.per_case)
        for cases in groups.values():
            kind = cases[0].listener
            on_connect = functools.partial(self._on_connect, stall=kind == "stall")
            srv = await asyncio.start_server(
                on_connect, "127.0.0.1",
                planned[cases[0].name] if self.base else 0, ssl=contexts.get(kind), limit=MAX_REQUEST_HEAD,
                reuse_address=True)
            self._servers.append(srv)
            for c in cases:
                self.ports[c.name] = srv.sockets[0].getsockname()[1]
        first = self.ports[CASES[0].name]
        for c in CASES:
            self.ports.setdefault(c.name, first)

    async def close(self) -> None:
        for srv in self._servers:
            srv.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for srv in self._servers:
            await srv.wait_closed()

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stall: bool) -> None:
        # A task of our own, not asyncio's: cancelling asyncio's per-connection task at close makes its
        # done-callback log a traceback (Python 3.11).
        self.connections += 1
        task = asyncio.ensure_future(self._stall(reader, writer) if stall else self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stall(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(CHUNK):
                pass
        except ConnectionError:
            pass
        finally:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                n += 1
                request_line, _, fields = head.partition(b"\r\n")
                parts = request_line.decode("latin-1").split(" ")
                if len(parts) != 3:
                    return
                method, target, _ = parts
                length = 0
                for line in fields.split(b"\r\n"):
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                if length:
                    await reader.readexactly(length)
                x = Exchange(reader, writer, method, target, n, self)
                self.hits[target] += 1
                self.times.setdefault(target, []).append(time.monotonic())
                name = x.path.removeprefix("/case/").split("/", 1)[0]
                case = BY_NAME.get(name)
                if case is None:
                    await x.send(_response("404 Not Found", b"no such case\n"))
                    continue
                if not await case.handler(x):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            if not writer.transport.is_closing():
                writer.close()

    def stats(self) -> dict[str, Any]:
        return {"hits": dict(self.hits), "times": self.times, "connections": self.connections,
                "stale_closes": self.stale_closes, "ports": self.ports}


# -- as a process ---------------------------------------------------------------------------------------


async def _main(args: argparse.Namespace) -> int:
    ca = trustme.CA()
    if args.ca_file:
        ca.cert_pem.write_to_path(args.ca_file)
    for coding in ("gzip", "br", "zstd"):
        bomb(coding)  # built before the first request, not during it
    hostile = Hostile(ca, base=args.port, per_case=args.ports_per_case)
    code = 0
    async with hostile:
        print(json.dumps({"ports": hostile.ports}), flush=True)
        if args.command:
            child = await asyncio.create_subprocess_exec(*args.command)
            code = await child.wait()
        else:
            stop = asyncio.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
            await stop.wait()
    if args.stats:
        Path(args.stats).write_text(json.dumps(hostile.stats()))
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True, help="the base port")
    parser.add_argument("--ports-per-case", action="store_true", help="one port per case, from --port on")
    parser.add_argument("--ca-file", help="write the CA certificate clients should trust here (PEM)")
    parser.add_argument("--stats", help="at exit, write what the server saw here (JSON)")
    parser.add_argument("--list", action="store_true", help="print each case's URL and what it does")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- CMD ARGS...: run it, then exit with its status")
    args = parser.parse_args(argv)
    if args.list:
        ports = layout(args.port, per_case=args.ports_per_case)
        for c in CASES:
            print(f"{c.name:20} {url(c.name, ports):50} {c.about}")
        return 0
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())

