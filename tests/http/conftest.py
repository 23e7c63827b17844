"""Fixtures for the client tests: the embedded server, TLS certificates, and small scripted servers.

The scripted servers are real asyncio servers on 127.0.0.1 for behaviours the embedded server has no
endpoint for (closing a kept-alive connection at a chosen moment, counting connections, proxying).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest
import trustme

from surge.http import Client
from surge.server import serve


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async with serve() as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client() as c:
        yield c


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


from http_scripted import Script, ScriptedProtocol  # noqa: E402


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Script], asyncio.Future[str]]]:
    """Start a scripted server: ``url = await scripted(Script(respond))``."""
    servers: list[asyncio.Server] = []
    loop = asyncio.get_running_loop()

    async def start(script: Script) -> str:
        srv = await loop.create_server(lambda: ScriptedProtocol(script), "127.0.0.1", 0)
        servers.append(srv)
        return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"

    def factory(script: Script) -> asyncio.Future[str]:
        return asyncio.ensure_future(start(script))

    yield factory
    for srv in servers:
        srv.close()
        await srv.wait_closed()


# -- a server that accepts and never says a word ----------------------------------------------------


@pytest.fixture
async def mute_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never sends a byte (a TLS handshake never completes)."""
    transports: list[asyncio.BaseTransport] = []

    class Mute(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)

    srv = await asyncio.get_running_loop().create_server(Mute, "127.0.0.1", 0)
    yield srv.sockets[0].getsockname()[1]
    for t in transports:
        t.close()
    srv.close()
    await srv.wait_closed()


# -- a minimal HTTP proxy ---------------------------------------------------------------------------


@dataclass
class ProxyLog:
    heads: list[bytes] = field(default_factory=list)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[str, ProxyLog]]:
    """An HTTP proxy: absolute-form requests are forwarded in origin-form, CONNECT opens a tunnel."""
    log = ProxyLog()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        log.heads.append(head)
        method, target, _ = head.split(b"\r\n", 1)[0].split(b" ")
        if method == b"CONNECT":
            host, port = target.rsplit(b":", 1)
            up_r, up_w = await asyncio.open_connection(host.decode().strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            rest = target.split(b"://", 1)[1]
            authority, _, path = rest.partition(b"/")
            host, port = authority.rsplit(b":", 1)
            up_r, up_w = await asyncio.open_connection(host.decode().strip("[]"), int(port))
            _, _, headers = head.partition(b"\r\n")
            up_w.write(b"%s /%s HTTP/1.1\r\n%s" % (method, path, headers))
        t1 = asyncio.ensure_future(_pipe(reader, up_w))
        t2 = asyncio.ensure_future(_pipe(up_r, writer))
        for t in (t1, t2):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}", log
    for t in list(tasks):
        t.cancel()
    srv.close()
    await srv.wait_closed()


@pytest.fixture
def no_leaks() -> Iterator[Callable[[Client], None]]:
    """Assert a client holds no busy connection and no waiter."""

    def check(c: Client) -> None:
        st = c.statistics()
        assert st.active == 0, st
        assert all(not o.waiters for o in c._state.origins.values())
        assert c._state.total == st.idle

    yield check
