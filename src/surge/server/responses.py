"""Building HTTP/1.1 response bytes for the target server.

Routes build whole responses as bytes once (or per request for dynamic ones); nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

import orjson

_REASONS: dict[int, bytes] = {s.value: s.phrase.encode() for s in HTTPStatus}

TEXT = b"text/plain; charset=utf-8"
JSON = b"application/json"
HTML = b"text/html; charset=utf-8"
XML = b"application/xml"


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n`` with the standard reason phrase (``Unknown`` otherwise)."""
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))


def head(status: int, headers: Iterable[tuple[str, str]] = (), *, keep_alive: bool = True) -> bytes:
    """Status line and headers up to and including the blank line; the caller adds the body."""
    parts = [status_line(status), b"Server: surge\r\n"]
    parts.extend(b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def response(status: int, body: bytes = b"", *, content_type: bytes = TEXT,
             headers: Iterable[tuple[str, str]] = (), keep_alive: bool = True) -> bytes:
    """A complete response with ``Content-Length``; no body for 1xx, 204 and 304."""
    no_body = status < 200 or status in (204, 304)
    parts = [status_line(status), b"Server: surge\r\n"]
    if not no_body:
        parts.append(b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body)))
    parts.extend(b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    if not no_body:
        parts.append(body)
    return b"".join(parts)


def json_response(status: int, data: object, *, headers: Iterable[tuple[str, str]] = (),
                  keep_alive: bool = True) -> bytes:
    """A complete JSON response."""
    return response(status, orjson.dumps(data), content_type=JSON, headers=headers, keep_alive=keep_alive)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (``data`` must not be empty: an empty chunk ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
