"""The endpoints of ``surge serve``: an httpbin-like set, a synthetic website and misbehaving endpoints.

Every endpoint answers GET (``/echo`` any method); HEAD gets the head of the GET answer, except on
routes that stream or wait (``/delay``, ``/bytes`` over 1 MiB or chunked, faults), which answer it like GET.

``/``                          about 100 bytes of text; precomputed, the hot path of load tests
``/bytes/{n}``                 ``n`` bytes of text; ``?chunked=1`` sends them chunked (``&chunk=`` bytes)
``/delay/{ms}``                answers after ``ms`` milliseconds (JSON ``{"delay_ms": ms}``)
``/status/{code}``             that status (200–599); 3xx (but 304) carry ``Location: /``;
                               ``?retry_after=S`` adds ``Retry-After: S``
``/redirect/{n}``              302 to ``/redirect/{n-1}``; ``/redirect/0`` answers 200; ``?absolute=1`` for
                               absolute Locations, ``?status=`` for 301/303/307/308
``/redirect-to?url=&status=``  redirect to ``url`` (status 302 unless given)
``/gzip`` ``/deflate`` ``/brotli`` ``/zstd``  a JSON body with that ``Content-Encoding`` (deflate = zlib)
``/headers``                   JSON ``{"headers": {...}}`` of the request headers
``/echo``                      JSON: ``method``, ``path``, ``query``, ``headers``, ``body`` (text; or
                               ``body_base64`` when not UTF-8), ``body_length``, ``http_version``;
                               header names are lowercase and a repeated header or query key gives a list
``/ratelimit?rps=R&key=K``     200 while the client (``key``, else the peer address) stays within R requests/s
                               (burst R), else 429 with ``Retry-After`` (whole seconds); loop clock
``/flaky?p=P&seed=S&key=K``    503 with probability P; the n-th request of a key fails iff
                               ``surge.server.limits.flaky_fails(P, S, K, n)``: reproducible from the seed
``/site/``, ``/site/p/{i}``    the synthetic site's pages (``site_pages``, ``site_links``, ``seed``): each has
                               ``site_links`` links: relative, absolute, duplicates, fragments, disallowed
                               (``/site/private/{i}``), the alias host (``localhost`` for ``127.0.0.1`` and
                               back) and ``external.invalid``
``/site/private/{i}``          pages robots.txt disallows
``/site/stats``                JSON: ``pages``, ``links``, ``seed``, ``reachable`` (= ``site_reachable(...)``)
``/robots.txt``                disallows ``/site/private/`` and ``/fault/``; names the sitemap
``/sitemap.xml``               every page of the site (at most 50,000)
``/fault/drip?bytes=N&interval_ms=M``  announces N bytes (default 10), sends one every M ms (default 100)
``/fault/silence``             reads the request and never answers
``/fault/reset``               head and 1,000 of 100,000 announced bytes, then a TCP RST
``/fault/truncated-chunked``   a chunked body cut off in a chunk, no last chunk; then close
``/fault/short-body``          ``Content-Length: 1000`` but 100 bytes; then close
``/fault/bad-status``          an invalid status line (``HTTP/1.1 OK 200``); then close
``/fault/big-headers?kb=N``    one response header of N KiB (default 100)
``/fault/gzip-bomb?mb=N``      gzip body of about N KiB that decodes to N MiB of zeros (default 100, max 4096)
``/fault/endless``             a chunked body that never ends (until the client goes)
``/fault/redirect-loop``       302 to itself
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import zlib
from collections.abc import Callable
from http import HTTPStatus
from typing import TypeVar
from urllib.parse import parse_qsl

import brotli
import orjson
import zstandard

from surge.server import faults, site
from surge.server.limits import FlakyCounter, ServerRateLimit, flaky_fails
from surge.server.protocol import HttpServerProtocol, Reply, Request
from surge.server.responses import HTML, JSON, LAST_CHUNK, TEXT, XML, chunk, head, json_response, response

_N = TypeVar("_N", int, float)

ROOT_BODY = (b"surge serve: hello, from the embedded target server. "
             b"This page is 100 bytes for load testing: okay.\n")
assert len(ROOT_BODY) == 100

MAX_DELAY_MS = 600_000
MAX_BYTES = 2**34
_SYNC_BYTES = 1 << 20
_PATTERN = (b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-\n" * 16384)  # 1 MiB
_PATTERN_TWICE = _PATTERN * 2

Route = Callable[[Request, HttpServerProtocol, str], Reply]


class BadRequest(Exception):
    """A request the route cannot answer: a 400 with this message."""


def params(request: Request) -> dict[str, str]:
    """The query as a dict (last value wins)."""
    return dict(parse_qsl(request.query.decode("latin-1"), keep_blank_values=True))


def _bounded(value: str | None, default: _N, low: _N, high: _N, name: str, *, parse: Callable[[str], _N],
             kind: str) -> _N:
    if value is None or value == "":
        return default
    try:
        number = parse(value)
    except ValueError:
        raise BadRequest(f"{name} must be {kind}") from None
    if not low <= number <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return number


def _int(value: str | None, default: int, low: int, high: int, name: str) -> int:
    return _bounded(value, default, low, high, name, parse=int, kind="an integer")


def _float(value: str | None, default: float, low: float, high: float, name: str) -> float:
    return _bounded(value, default, low, high, name, parse=float, kind="a number")


def _multi(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    for key, value in pairs:
        old = out.get(key)
        if old is None:
            out[key] = value
        elif isinstance(old, list):
            old.append(value)
        else:
            out[key] = [old, value]
    return out


def _headers_dict(request: Request) -> dict[str, str | list[str]]:
    return _multi([(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers])


def _static(body: bytes, content_type: bytes, headers: list[tuple[str, str]] | None = None,
            ) -> tuple[bytes, bytes]:
    # (keep-alive answer, Connection: close answer), built once.
    extra = headers or ()
    return (response(200, body, content_type=content_type, headers=extra),
            response(200, body, content_type=content_type, headers=extra, keep_alive=False))


def _compressed_routes() -> dict[bytes, tuple[bytes, bytes]]:
    routes: dict[bytes, tuple[bytes, bytes]] = {}
    for name, encode in (
        ("gzip", lambda b: gzip.compress(b, mtime=0)),
        ("deflate", zlib.compress),
        ("brotli", brotli.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
    ):
        raw = orjson.dumps({"compression": name, "text": "surge " * 200})
        coding = "br" if name == "brotli" else name
        routes[f"/{name}".encode()] = _static(encode(raw), JSON, [("Content-Encoding", coding)])
    return routes


class TargetApp:
    """Routes requests to endpoints and holds the state some endpoints keep (rate limits, counters)."""

    def __init__(self, *, host: str, port: int, site_pages: int, site_links: int, seed: int) -> None:
        self.host = host
        self.port = port
        self.site_pages = site_pages
        self.site_links = site_links
        self.seed = seed
        self.connections: set[HttpServerProtocol] = set()
        self.static: dict[bytes, tuple[bytes, bytes]] = {b"/": _static(ROOT_BODY, TEXT)}
        self.static.update(_compressed_routes())
        self._ratelimit = ServerRateLimit()
        self._flaky = FlakyCounter()
        self._routes: dict[str, Route] = {
            "": self._root, "bytes": self._bytes, "delay": self._delay, "status": self._status,
            "redirect": self._redirect, "redirect-to": self._redirect_to, "headers": self._headers,
            "echo": self._echo, "ratelimit": self._ratelimit_route, "flaky": self._flaky_route,
            "site": self._site, "robots.txt": self._robots, "sitemap.xml": self._sitemap,
            "fault": self._fault,
        }

    def dispatch(self, request: Request, conn: HttpServerProtocol) -> Reply:
        """Answer one request (see the module docstring for the endpoints)."""
        path = request.path.decode("latin-1")
        _, _, rest = path.partition("/")
        first, _, rest = rest.partition("/")
        route = self._routes.get(first)
        if route is None:
            return response(404, b"not found\n", keep_alive=request.keep_alive)
        if first != "echo" and request.method not in (b"GET", b"HEAD"):
            return response(405, b"method not allowed\n", headers=[("Allow", "GET, HEAD")],
                            keep_alive=request.keep_alive)
        try:
            return route(request, conn, rest)
        except BadRequest as exc:
            return response(400, f"{exc}\n".encode(), keep_alive=request.keep_alive)
        except Exception as exc:
            # A bug in a route must not take the connection's parser down with it: answer 500, report it.
            conn.loop.call_exception_handler({"message": f"surge serve: {path} failed", "exception": exc})
            return response(500, b"internal error\n", keep_alive=False)

    # --- authority helpers ------------------------------------------------------------------------

    def _authority(self, request: Request) -> str:
        host = request.header(b"host")
        if host:
            return host.decode("latin-1")
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _alias(self, authority: str) -> str:
        name = authority.rsplit(":", 1)[0] if not authority.endswith("]") else authority
        return f"127.0.0.1:{self.port}" if name == "localhost" else f"localhost:{self.port}"

    # --- httpbin-like -----------------------------------------------------------------------------

    def _root(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        if request.path != b"/":
            return response(404, b"not found\n", keep_alive=request.keep_alive)
        return self.static[b"/"][0 if request.keep_alive else 1]

    def _bytes(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        size = _int(rest, 0, 0, MAX_BYTES, "n")
        query = params(request)
        if query.get("chunked") in ("1", "true", "yes"):
            piece = _int(query.get("chunk"), 16384, 1, _SYNC_BYTES, "chunk")
            return _send_chunked(conn, size, piece, request.keep_alive)
        if size <= _SYNC_BYTES:
            return response(200, _PATTERN[:size], content_type=b"application/octet-stream",
                            keep_alive=request.keep_alive)
        return _send_large(conn, size, request.keep_alive)

    def _delay(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        ms = _int(rest, 0, 0, MAX_DELAY_MS, "ms")
        return _after(conn, ms / 1000, json_response(200, {"delay_ms": ms}, keep_alive=request.keep_alive))

    def _status(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        code = _int(rest, 200, 200, 599, "code")
        headers: list[tuple[str, str]] = []
        if 300 <= code < 400 and code != 304:
            headers.append(("Location", "/"))
        retry_after = params(request).get("retry_after")
        if retry_after:
            headers.append(("Retry-After", retry_after))
        try:
            reason = HTTPStatus(code).phrase
        except ValueError:
            reason = "Unknown"
        return response(code, f"{code} {reason}\n".encode(), headers=headers, keep_alive=request.keep_alive)

    def _redirect(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        n = _int(rest, 0, 0, 1000, "n")
        if n == 0:
            return json_response(200, {"redirects": 0}, keep_alive=request.keep_alive)
        query = params(request)
        status = _int(query.get("status"), 302, 300, 399, "status")
        location = f"/redirect/{n - 1}"
        absolute = query.get("absolute") in ("1", "true", "yes")
        if absolute:
            scheme = "https" if conn.transport and conn.transport.get_extra_info("sslcontext") else "http"
            location = f"{scheme}://{self._authority(request)}{location}"
        # Every hop keeps the options, so the whole chain has the same shape.
        keep = ["absolute=1"] * absolute + [f"status={status}"] * ("status" in query)
        if keep:
            location += "?" + "&".join(keep)
        return response(status, b"redirect\n", headers=[("Location", location)],
                        keep_alive=request.keep_alive)

    def _redirect_to(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        query = params(request)
        url = query.get("url")
        if not url or any(c in url for c in "\r\n"):
            raise BadRequest("url is required")
        status = _int(query.get("status"), 302, 300, 399, "status")
        return response(status, b"redirect\n", headers=[("Location", url)], keep_alive=request.keep_alive)

    def _headers(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        return json_response(200, {"headers": _headers_dict(request)}, keep_alive=request.keep_alive)

    def _echo(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        data: dict[str, object] = {
            "method": request.method.decode("latin-1"),
            "path": request.path.decode("latin-1"),
            "query": _multi(parse_qsl(request.query.decode("latin-1"), keep_blank_values=True)),
            "headers": _headers_dict(request),
            "body_length": len(request.body),
            "http_version": request.version,
        }
        try:
            data["body"] = request.body.decode()
        except UnicodeDecodeError:
            data["body_base64"] = base64.b64encode(request.body).decode()
        return json_response(200, data, keep_alive=request.keep_alive)

    # --- limits -----------------------------------------------------------------------------------

    def _ratelimit_route(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        query = params(request)
        rps = _float(query.get("rps"), 10.0, 1e-3, 1e9, "rps")
        key = query.get("key") or conn.peer_host
        wait = self._ratelimit.check(key, rps, conn.loop.time())
        if wait:
            return response(429, b"too many requests\n",
                            headers=[("Retry-After", str(ServerRateLimit.retry_after(wait)))],
                            keep_alive=request.keep_alive)
        return response(200, b"ok\n", keep_alive=request.keep_alive)

    def _flaky_route(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        query = params(request)
        p = _float(query.get("p"), 0.5, 0.0, 1.0, "p")
        seed = _int(query.get("seed"), 0, -(2**63), 2**63, "seed")
        key = query.get("key") or conn.peer_host
        n = self._flaky.next(seed, key)
        headers = [("X-Flaky-Request", str(n))]
        if flaky_fails(p, seed, key, n):
            return response(503, b"flaky: failed\n", headers=headers, keep_alive=request.keep_alive)
        return response(200, b"flaky: ok\n", headers=headers, keep_alive=request.keep_alive)

    # --- synthetic site ---------------------------------------------------------------------------

    def _site(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        keep_alive = request.keep_alive
        if rest == "stats":
            return json_response(200, {
                "pages": self.site_pages, "links": self.site_links, "seed": self.seed,
                "reachable": site.site_reachable(self.site_pages, self.site_links, self.seed),
            }, keep_alive=keep_alive)
        if rest == "":
            page = 0
        elif rest.startswith("p/"):
            page = _page_number(rest[2:], self.site_pages)
            if page <= 0:
                return response(404, b"no such page\n", keep_alive=keep_alive)
        elif rest.startswith("private/"):
            number = _page_number(rest[8:], self.site_pages)
            if number < 0:
                return response(404, b"no such page\n", keep_alive=keep_alive)
            return response(200, site.render_private(number), content_type=HTML, keep_alive=keep_alive)
        else:
            return response(404, b"no such page\n", keep_alive=keep_alive)
        if self.site_pages <= 0:
            return response(404, b"no such page\n", keep_alive=keep_alive)
        authority = self._authority(request)
        body = site.render_page(page, self.site_pages, self.site_links, self.seed,
                                authority=authority, alias=self._alias(authority))
        return response(200, body, content_type=HTML, keep_alive=keep_alive)

    def _robots(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        return response(200, site.robots_txt(self._authority(request)), keep_alive=request.keep_alive)

    def _sitemap(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        return response(200, site.sitemap_xml(self.site_pages, self._authority(request)), content_type=XML,
                        keep_alive=request.keep_alive)

    # --- faults -----------------------------------------------------------------------------------

    def _fault(self, request: Request, conn: HttpServerProtocol, rest: str) -> Reply:
        keep_alive = request.keep_alive
        query = params(request)
        if rest == "drip":
            size = _int(query.get("bytes"), 10, 0, 10**9, "bytes")
            interval = _int(query.get("interval_ms"), 100, 0, MAX_DELAY_MS, "interval_ms") / 1000
            return faults.drip(conn, size, interval, keep_alive)
        if rest == "silence":
            return faults.silence()
        if rest == "reset":
            return faults.reset(conn)
        if rest == "truncated-chunked":
            return faults.truncated_chunked(conn)
        if rest == "short-body":
            return faults.short_body(conn)
        if rest == "bad-status":
            return faults.bad_status(conn)
        if rest == "big-headers":
            return faults.big_headers(_int(query.get("kb"), 100, 1, 16 * 1024, "kb"))
        if rest == "gzip-bomb":
            return faults.gzip_bomb(_int(query.get("mb"), 100, 1, 4096, "mb"), keep_alive)
        if rest == "endless":
            return faults.endless(conn)
        if rest == "redirect-loop":
            return faults.redirect_loop(keep_alive)
        return response(404, b"no such fault\n", keep_alive=keep_alive)


def _page_number(text: str, pages: int) -> int:
    if not text.isdigit() or len(text) > 18:
        return -1
    number = int(text)
    return number if number < pages else -1


async def _after(conn: HttpServerProtocol, seconds: float, reply: bytes) -> None:
    await asyncio.sleep(seconds)
    conn.write(reply)


async def _send_large(conn: HttpServerProtocol, size: int, keep_alive: bool) -> None:
    conn.write(head(200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
                    keep_alive=keep_alive))
    await _stream(conn, size, None)


async def _send_chunked(conn: HttpServerProtocol, size: int, piece: int, keep_alive: bool) -> None:
    conn.write(head(200, [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")],
                    keep_alive=keep_alive))
    await _stream(conn, size, piece)
    conn.write(LAST_CHUNK)


async def _stream(conn: HttpServerProtocol, size: int, piece: int | None) -> None:
    # Writes in pieces with flow control, so a 16 GiB body costs one buffer of memory.
    # The body continues the pattern across pieces, so /bytes/N is the same however it is sent.
    period = len(_PATTERN)
    step = piece or period
    sent = 0
    while sent < size:
        n = min(step, size - sent)
        start = sent % period
        data = _PATTERN_TWICE[start:start + n]
        conn.write(chunk(data) if piece else data)
        sent += n
        await conn.drain()
        await asyncio.sleep(0)
