"""The values surge's HTTP client takes and gives: timeouts, limits, headers, responses, pool statistics.

Plain data with no I/O; a ``Response`` decodes its headers lazily, so a load test that never looks
at them pays nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from surge.http.head import header_value, parse_head

if TYPE_CHECKING:
    from surge.http.client import ResponseStream

__all__ = ["Headers", "Limits", "PoolStatistics", "Response", "Timeout", "media_type"]

# Response._content_type before it is read (None is a valid value: no Content-Type).
NOT_READ: Any = object()
# The last raw head whose Content-Type was read, and that value (one tuple: replaced in one step).
_last_head: tuple[bytes, str | None] = (b"", None)


@dataclass(frozen=True, slots=True)
class Timeout:
    """Seconds allowed for each phase of a request; ``None`` means no limit.

    ``connect`` covers DNS, TCP and TLS; ``read`` is the longest silence while waiting for response
    bytes; ``total`` covers the whole request, redirects included.
    """

    connect: float | None = 10.0
    read: float | None = 30.0
    total: float | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Connection limits: ``total`` across all origins, ``per_host`` per origin, and how long
    (``idle_expiry`` seconds) an unused keep-alive connection is kept open."""

    total: int = 1000
    per_host: int = 100
    idle_expiry: float = 30.0

    def __post_init__(self) -> None:
        if self.total < 1 or self.per_host < 1:
            raise ValueError("Limits.total and Limits.per_host must be at least 1")
        if self.idle_expiry < 0:
            raise ValueError("Limits.idle_expiry must not be negative")


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of the connection pool: connections ``opened``, ``reused`` (requests sent on a kept-alive
    connection), ``closed``, currently ``idle`` and ``active``, and ``requests`` sent in all."""

    opened: int
    reused: int
    closed: int
    idle: int
    active: int
    requests: int


class Headers:
    """Multi-valued, case-insensitive HTTP headers that keep their order.

    ``get`` joins repeated values with ``", "`` (as RFC 9110 allows); ``get_all`` returns each one.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        """Headers from the parser's raw byte pairs (decoded as latin-1, as HTTP/1.1 says)."""
        h = cls.__new__(cls)
        h._items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        return h

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name`` (repeated values joined with ``", "``), or ``default``."""
        values = self.get_all(name)
        if not values:
            return default
        return values[0] if len(values) == 1 else ", ".join(values)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in the order received."""
        lname = name.lower()
        return [v for k, v in self._items if k.lower() == lname]

    def items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair in order, repeated names included."""
        return list(self._items)

    def keys(self) -> list[str]:
        """The distinct header names, lower-cased, in first-seen order."""
        return list(dict.fromkeys(k.lower() for k, _ in self._items))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lname = name.lower()
        return any(k.lower() == lname for k, _ in self._items)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k.lower(), v) for k, v in self._items] == [(k.lower(), v) for k, v in other._items]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Response:
    """One HTTP response: status, headers, final URL, redirect ``history``, body and timings.

    ``content`` is the decoded body (``b""`` when the request used ``keep_body=False``); ``num_bytes``
    counts the body bytes on the wire. ``elapsed`` and ``ttfb`` are seconds from the start of the
    request to its end and to the first response byte of the final hop.
    """

    # Hot path: created once per request, so slots and a lazy ``headers``.
    __slots__ = (
        "_content_type",
        "_head",
        "_headers",
        "_reason",
        "_stream",
        "connection_reused",
        "content",
        "elapsed",
        "history",
        "method",
        "num_bytes",
        "status",
        "ttfb",
        "url",
    )

    status: int
    url: str
    method: str
    history: list[Response]
    content: bytes
    num_bytes: int
    elapsed: float
    ttfb: float
    connection_reused: bool

    def __init__(
        self,
        status: int,
        *,
        headers: Headers | Iterable[tuple[str, str]] = (),
        url: str = "",
        content: bytes = b"",
        reason: str = "",
        method: str = "GET",
    ) -> None:
        self.status = status
        self._reason: str | None = reason
        self._headers: Headers | None = headers if isinstance(headers, Headers) else Headers(headers)
        self._head: list[bytes] | None = None
        self._content_type: str | None = NOT_READ
        self._stream: ResponseStream | None = None
        self.url = url
        self.method = method
        self.history = []
        self.content = content
        self.num_bytes = len(content)
        self.elapsed = 0.0
        self.ttfb = 0.0
        self.connection_reused = False

    @property
    def headers(self) -> Headers:
        """The response headers (decoded on first access)."""
        h = self._headers
        if h is None:
            self._parse_head()
            h = self._headers
            assert h is not None
        return h

    @property
    def content_type(self) -> str | None:
        """The Content-Type header's value (None when absent), equal to ``headers.get("content-type")``.

        Cheap: read straight from the raw head without decoding the other headers (once, then cached), so
        code that needs only this field on every response (the engine's outcome records) pays little.
        """
        ct = self._content_type
        if ct is NOT_READ:
            if self._headers is not None:
                ct = self._headers.get("content-type")
            elif self._head:
                global _last_head  # a one-entry memo shared by all responses
                head = self._head
                data = head[0] if len(head) == 1 else b"".join(head)
                last = _last_head
                # Responses in a row from one server are often byte for byte the same (a load test, a
                # static page): one comparison instead of a scan. Same bytes, same answer.
                if data == last[0]:
                    ct = last[1]
                else:
                    ct = header_value(data, b"content-type")
                    _last_head = (data, ct)
            else:
                ct = None
            self._content_type = ct
        return ct

    @property
    def http_version(self) -> str:
        """The protocol of the status line: "HTTP/1.1" or "HTTP/1.0"."""
        if not self._head:
            return "HTTP/1.1"
        # The connection took "HTTP/1.x" (or "RTSP/1.x", the same layout) only: the version is at 5..8.
        return "HTTP/" + self._head[0][5:8].decode("latin-1")

    @property
    def reason(self) -> str:
        """The reason phrase of the status line ("OK", "Not Found"...), possibly empty."""
        if self._reason is None:
            self._parse_head()
        return self._reason or ""

    def _parse_head(self) -> None:
        status_line, raw = parse_head(b"".join(self._head or ()))
        parts = status_line.split(None, 2)
        self._reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        self._headers = Headers.from_raw(raw)

    @property
    def is_redirect(self) -> bool:
        """True for 301, 302, 303, 307 and 308 responses that carry a Location."""
        return self.status in (301, 302, 303, 307, 308) and "location" in self.headers

    @property
    def ok(self) -> bool:
        """True for status codes below 400."""
        return self.status < 400

    def text(self, encoding: str | None = None) -> str:
        """The body as text: ``encoding``, else the Content-Type charset, else UTF-8 (bad bytes replaced).

        A charset Python does not know, one that is not a text encoding, or one that fails whatever the error
        handler says ("idna", "punycode", "undefined": the server chose it) falls back to UTF-8.
        """
        if encoding is None:
            encoding = _charset(self.headers.get("content-type")) or "utf-8"
        try:
            return self.content.decode(encoding, errors="replace")
        except (LookupError, UnicodeError):
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.content)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The decoded body in chunks as they arrive; for responses from ``Client.stream()``.

        A response that was read whole yields its ``content`` once.
        """
        stream = self._stream
        if stream is None:
            if self.content:
                yield self.content
            return
        async for chunk in stream.iter_chunks(self):
            yield chunk

    async def aread(self) -> bytes:
        """Read the rest of a streamed body into ``content`` and return it."""
        if self._stream is not None:
            parts = [chunk async for chunk in self.aiter_bytes()]
            self.content = b"".join(parts)
        return self.content

    def __repr__(self) -> str:
        return f"<Response [{self.status}] {self.url}>"


def media_type(content_type: str | None) -> str | None:
    """The media type of a Content-Type value, lower-cased, without parameters (``text/html``), or None.

    >>> media_type("Text/HTML; charset=utf-8")
    'text/html'
    """
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower()


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return None
