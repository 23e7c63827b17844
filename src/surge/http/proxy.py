"""HTTP proxies: absolute-form requests for http:// targets, a CONNECT tunnel for https:// targets.

Only ``http://`` proxies are supported (the hop to the proxy itself is not encrypted); credentials in the
proxy URL are sent as Basic Proxy-Authorization.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from surge.errors import ConfigError, ConnectError

if TYPE_CHECKING:
    from surge.http.connection import Connection
    from surge.http.request import Target

__all__ = ["Proxy", "open_tunnel", "parse_proxy"]

_MAX_CONNECT_RESPONSE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Proxy:
    """Where the proxy listens, and the Proxy-Authorization value to send it (if any)."""

    host: str
    port: int
    authorization: str | None = None


def parse_proxy(url: str) -> Proxy:
    """Parse ``http://[user:password@]host[:port]``; ConfigError for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid proxy URL {url!r}: {exc}") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ConfigError(f"invalid proxy URL {url!r}: expected http://host[:port]")
    auth = None
    if parts.username is not None:
        userpass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(userpass.encode()).decode("ascii")
    return Proxy(parts.hostname, port or 80, auth)


class _ConnectResponse(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT: everything up to the blank line, nothing more."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[int] = loop.create_future()
        self._buf = b""

    def data_received(self, data: bytes) -> None:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_CONNECT_RESPONSE and not self.done.done():
                self.done.set_exception(ConnectError("proxy sent an oversized CONNECT response"))
            return
        if self.done.done():
            return
        line = self._buf.split(b"\r\n", 1)[0].split()
        try:
            status = int(line[1])
        except (IndexError, ValueError):
            self.done.set_exception(ConnectError("proxy sent a malformed CONNECT response"))
            return
        self.done.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectError("proxy closed the connection during CONNECT"))


async def open_tunnel(  # noqa: PLR0917
    loop: asyncio.AbstractEventLoop,
    factory: Callable[[], Connection],
    proxy: Proxy,
    proxy_ip: str,
    target: Target,
    ctx: ssl.SSLContext,
) -> Connection:
    """Connect to the proxy, CONNECT to ``target``, then run TLS to the target through the tunnel."""
    reader = _ConnectResponse(loop)
    transport, _ = await loop.create_connection(lambda: reader, proxy_ip, proxy.port)
    try:
        authority = f"{target.host_header}" if target.port != 443 else f"{target.host_header}:443"
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        if proxy.authorization:
            head += f"Proxy-Authorization: {proxy.authorization}\r\n"
        transport.write((head + "\r\n").encode("latin-1"))
        status = await reader.done
        if status != 200:
            raise ConnectError(f"proxy refused CONNECT to {authority}: status {status}")
        conn = factory()
        tls = await loop.start_tls(transport, conn, ctx, server_hostname=target.host)
        if tls is None:
            raise ConnectError("proxy tunnel closed during the TLS handshake")
        conn.connection_made(tls)
        return conn
    except BaseException:
        transport.abort()
        raise
