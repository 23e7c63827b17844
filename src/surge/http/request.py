"""Turning (method, URL, headers, query, body) into the bytes of an HTTP/1.1 request head.

Pure and cacheable: the client keeps a prepared request per (method, URL) so a repeated plain GET costs a
dict lookup, not a URL parse and a header join.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from urllib.parse import SplitResult, quote, urlencode, urlsplit

from surge.errors import ConfigError, InvalidURL

__all__ = [
    "AUTHORITY_ENDS",
    "Body",
    "HeaderInput",
    "ParamInput",
    "Prepared",
    "Target",
    "build_head",
    "merge_headers",
    "origin_end",
    "parse_url",
    "prepare",
]

DEFAULT_PORTS = {"http": 80, "https": 443}
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_UNSAFE_TARGET = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%#\[\]]")
_BAD_HEADER = re.compile(r"[\r\n\0]")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

Body = bytes | AsyncIterable[bytes] | None
HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]] | None
ParamInput = Mapping[str, object] | Sequence[tuple[str, object]] | None


class Target:
    """A parsed http(s) URL: where to connect and what to put on the request line."""

    __slots__ = ("host", "host_header", "key", "port", "scheme", "target", "tls", "url")

    scheme: str
    host: str  # no brackets, IDNA-encoded
    port: int
    tls: bool
    key: tuple[str, str, int]  # the origin: one pool per key
    target: str  # origin-form: path and query
    host_header: str
    url: str  # normalized, without fragment

    def __repr__(self) -> str:
        return f"Target({self.url!r})"


# What may follow an authority: the end of a URL's origin part (see origin_end).
AUTHORITY_ENDS = ("/", "?", "#", "")


def origin_end(url: str) -> int:
    """Where ``url``'s origin part ends: after the first "://" and the authority that follows it (which
    ends at the first "/", "?" or "#", as urlsplit ends it); -1 when there is no "://".

    Hot path (every new URL of a list: input check, host policy, request preparation), hence no parsing. Code
    that sees many URLs of one origin in a row compares against the last origin's prefix first::

        url[:n] == last and url[n:n + 1] in AUTHORITY_ENDS   # n = len(last): same origin part
    """
    # str.find with bounds parses its arguments slowly (~500 instructions a call on 3.11): split and `in`
    # find the usual shape, "scheme://authority/...", in one call.
    parts = url.split("/", 3)
    if len(parts) > 2 and not parts[1] and parts[0][-1:] == ":":
        auth = parts[2]
        if "?" not in auth and "#" not in auth:
            return len(parts[0]) + 2 + len(auth)
    start = url.find("://") + 3
    if start < 3:
        return -1
    end = len(url)
    for delim in "/?#":
        i = url.find(delim, start, end)
        if i >= 0:
            end = i
    return end


def parse_url(url: str, params: ParamInput = None) -> Target:
    """Parse an absolute http or https URL (``params`` appended to its query); InvalidURL if unusable."""
    try:
        parts: SplitResult = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"unsupported URL {url!r}: only http:// and https:// URLs can be requested")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"invalid URL {url!r}: no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURL(f"invalid URL {url!r}: bad host name") from None
    default = DEFAULT_PORTS[scheme]
    if port is None:
        port = default
    path = parts.path or "/"
    query = parts.query
    if params:
        extra = urlencode(list(params.items()) if isinstance(params, Mapping) else list(params), doseq=True)
        query = f"{query}&{extra}" if query else extra
    target = f"{path}?{query}" if query else path
    if _UNSAFE_TARGET.search(target):
        target = quote(target, safe="-._~!$&'()*+,;=:@/?%[]")
    hostport = f"[{host}]" if ":" in host else host
    if port != default:
        hostport = f"{hostport}:{port}"
    t = Target()
    t.scheme = scheme
    t.host = host
    t.port = port
    t.tls = scheme == "https"
    t.key = (scheme, host, port)
    t.target = target
    t.host_header = hostport
    t.url = f"{scheme}://{hostport}{target}"
    return t


def merge_headers(defaults: Sequence[tuple[str, str]], extra: HeaderInput) -> list[tuple[str, str]]:
    """``defaults`` overridden (by case-insensitive name) by ``extra``, which may repeat names."""
    if not extra:
        return list(defaults)
    pairs = list(extra.items()) if isinstance(extra, Mapping) else list(extra)
    names = {k.lower() for k, _ in pairs}
    return [(k, v) for k, v in defaults if k.lower() not in names] + pairs


def build_head(method: str, target: str, host_header: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The request line and header block, ending in the blank line. Rejects CR/LF injection."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
    for name, value in headers:
        if not _TOKEN.match(name) or _BAD_HEADER.search(value):
            raise ConfigError(f"invalid header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError("header values must be latin-1 text") from None


class Prepared:
    """A request ready to send: its target, head bytes and body. Reusable when it has no streamed body."""

    __slots__ = ("body", "chunked", "head", "headers", "idempotent", "is_head", "method", "target")

    method: str
    target: Target
    headers: list[tuple[str, str]]  # the caller's own headers (client defaults excluded), for redirects
    head: bytes
    body: bytes | AsyncIterable[bytes] | None
    chunked: bool
    idempotent: bool
    is_head: bool


def prepare(
    method: str,
    target: Target,
    defaults: Sequence[tuple[str, str]],
    headers: HeaderInput,
    content: Body,
    *,
    absolute_form: bool = False,
) -> Prepared:
    """Build the request for ``target``: merged headers, body framing, head bytes."""
    method = method.upper()
    if not _TOKEN.match(method):
        raise ConfigError(f"invalid HTTP method {method!r}")
    own = merge_headers((), headers)
    merged = merge_headers(defaults, own)
    host_header = target.host_header
    if any(k.lower() == "host" for k, _ in merged):
        host_header = next(v for k, v in merged if k.lower() == "host")
        merged = [(k, v) for k, v in merged if k.lower() != "host"]
    names = {k.lower() for k, _ in merged}
    chunked = False
    if isinstance(content, bytes | bytearray | memoryview):
        content = bytes(content)
        if "content-length" not in names:
            merged.append(("Content-Length", str(len(content))))
    elif content is not None:
        if "content-length" not in names and "transfer-encoding" not in names:
            merged.append(("Transfer-Encoding", "chunked"))
            chunked = True
        elif "transfer-encoding" in names:
            chunked = True
    elif method in _METHODS_WITH_BODY and "content-length" not in names:
        merged.append(("Content-Length", "0"))
    p = Prepared()
    p.method = method
    p.target = target
    p.headers = own
    p.head = build_head(method, target.url if absolute_form else target.target, host_header, merged)
    p.body = content
    p.chunked = chunked
    p.idempotent = method in IDEMPOTENT
    p.is_head = method == "HEAD"
    return p
