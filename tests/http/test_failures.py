"""Every failure maps to exactly one surge.errors class: refused, DNS, blocked, framing, caps, timeouts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
from http_scripted import Script

from surge.errors import (
    BlockedAddress,
    BodyTooLarge,
    ConnectError,
    ConnectTimeout,
    DNSError,
    ProtocolError,
    ReadTimeout,
    TotalTimeout,
)
from surge.http import Client, Limits, Resolver, Timeout, deny_private


async def test_connection_refused(no_leaks: Callable[[Client], None]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connecting is refused
        async with Client() as c:
            with pytest.raises(ConnectError) as info:
                await c.request("GET", f"http://127.0.0.1:{port}/")
            assert info.value.kind == "connect"
            assert info.value.url == f"http://127.0.0.1:{port}/"
            no_leaks(c)
            assert c.statistics().opened == 0


async def test_dns_error(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def no_such_host(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # The OS resolver is the boundary: replaced so the test sends no DNS query off this machine.
    monkeypatch.setattr(loop, "getaddrinfo", no_such_host)
    async with Client() as c:
        with pytest.raises(DNSError) as info:
            await c.request("GET", "http://no-such-host.invalid/")
        assert info.value.kind == "dns"


async def test_dns_cache_with_ttl(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    resolver = Resolver(ttl=60)
    async with Client(resolver=resolver, limits=Limits(idle_expiry=0)) as c:  # a new connection each time
        for _ in range(3):
            r = await c.request("GET", f"http://localhost:{port}/")
            assert r.status == 200
        assert resolver.lookups == 1
        assert c.statistics().opened == 3
        resolver.forget("localhost")
        await c.request("GET", f"http://localhost:{port}/")
        assert resolver.lookups == 2


@pytest.mark.looptime
async def test_dns_ttl_expires(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    resolver = Resolver(ttl=5)
    # Idle connections expire after 1 s, so every request below opens a connection and resolves.
    async with Client(resolver=resolver, limits=Limits(idle_expiry=1)) as c:
        await c.request("GET", f"http://localhost:{port}/")
        await asyncio.sleep(4)
        await c.request("GET", f"http://localhost:{port}/")
        assert resolver.lookups == 1  # the answer is 4 s old: still cached
        await asyncio.sleep(2)
        await c.request("GET", f"http://localhost:{port}/")
        assert resolver.lookups == 2  # 6 s old: asked again
        assert c.statistics().opened == 3


async def test_address_policy(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    seen: list[str] = []

    def policy(ip: str) -> bool:
        seen.append(ip)
        return False

    async with Client(address_policy=policy) as c:
        with pytest.raises(BlockedAddress) as info:
            await c.request("GET", f"http://127.0.0.1:{port}/")
        assert info.value.kind == "blocked"
        assert seen == ["127.0.0.1"]
        assert c.statistics().opened == 0
    async with Client(address_policy=deny_private) as c:
        with pytest.raises(BlockedAddress):
            await c.request("GET", server + "/")
    async with Client(address_policy=lambda ip: ip == "127.0.0.1") as c:
        assert (await c.request("GET", server + "/")).status == 200
    assert not deny_private("10.0.0.1") and not deny_private("::1") and deny_private("93.184.216.34")


@pytest.mark.parametrize("fault", ["reset", "truncated-chunked", "short-body", "bad-status", "big-headers"])
async def test_broken_responses_are_protocol_errors(server: str, fault: str,
                                                    no_leaks: Callable[[Client], None]) -> None:
    async with Client() as c:
        with pytest.raises(ProtocolError) as info:
            await c.request("GET", f"{server}/fault/{fault}")
        assert info.value.kind == "protocol"
        no_leaks(c)
        assert c.statistics().idle == 0
        # The pool still works afterwards.
        assert (await c.request("GET", server + "/")).status == 200


async def test_body_cap(server: str, no_leaks: Callable[[Client], None]) -> None:
    async with Client(max_body=1000) as c:
        assert len((await c.request("GET", server + "/bytes/1000")).content) == 1000
        with pytest.raises(BodyTooLarge):
            await c.request("GET", server + "/bytes/1001")
        with pytest.raises(BodyTooLarge):
            await c.request("GET", server + "/fault/endless")
        no_leaks(c)
        r = await c.request("GET", server + "/bytes/5000", max_body=None)
        assert len(r.content) == 5000


@pytest.mark.looptime
async def test_read_timeout(server: str, no_leaks: Callable[[Client], None]) -> None:
    loop = asyncio.get_running_loop()
    async with Client(timeout=Timeout(read=5)) as c:
        t0 = loop.time()
        with pytest.raises(ReadTimeout) as info:
            await c.request("GET", server + "/fault/silence")
        assert info.value.kind == "timeout_read"
        assert loop.time() - t0 == pytest.approx(5, abs=0.01)
        no_leaks(c)


@pytest.mark.looptime
async def test_read_timeout_is_between_bytes(server: str) -> None:
    # One byte every 3 s for 4 bytes: 12 s in all, never 5 s of silence.
    async with Client(timeout=Timeout(read=5)) as c:
        r = await c.request("GET", server + "/fault/drip?bytes=4&interval_ms=3000")
        assert r.content == b"...."
        with pytest.raises(ReadTimeout):
            await c.request("GET", server + "/fault/drip?bytes=2&interval_ms=6000")


@pytest.mark.looptime
async def test_total_timeout(server: str, no_leaks: Callable[[Client], None]) -> None:
    loop = asyncio.get_running_loop()
    async with Client(timeout=Timeout(read=5, total=7)) as c:
        t0 = loop.time()
        with pytest.raises(TotalTimeout) as info:
            await c.request("GET", server + "/fault/drip?bytes=4&interval_ms=3000")
        assert info.value.kind == "timeout_total"
        assert loop.time() - t0 == pytest.approx(7, abs=0.01)
        no_leaks(c)
        # A per-request timeout overrides the client's.
        r = await c.request("GET", server + "/fault/drip?bytes=2&interval_ms=3000",
                            timeout=Timeout(read=5))
        assert r.content == b".."


@pytest.mark.looptime
async def test_connect_timeout_tls_handshake_never_completes(mute_server: int,
                                                              no_leaks: Callable[[Client], None]) -> None:
    loop = asyncio.get_running_loop()
    async with Client(timeout=Timeout(connect=3)) as c:
        t0 = loop.time()
        with pytest.raises(ConnectTimeout) as info:
            await c.request("GET", f"https://127.0.0.1:{mute_server}/")
        assert info.value.kind == "timeout_connect"
        assert loop.time() - t0 == pytest.approx(3, abs=0.01)
        no_leaks(c)
        assert c._state.total == 0


class SlowResolver(Resolver):
    async def lookup(self, host: str, port: int) -> list[tuple[int, str]]:
        await asyncio.sleep(10)
        return [(socket.AF_INET, "127.0.0.1")]


@pytest.mark.looptime
async def test_connect_timeout_covers_dns(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    async with Client(timeout=Timeout(connect=2), resolver=SlowResolver()) as c:
        with pytest.raises(ConnectTimeout):
            await c.request("GET", f"http://slow.test:{port}/")
        assert c._state.total == 0


async def test_server_closes_without_answer(scripted: Callable[[Script], Awaitable[str]],
                                            no_leaks: Callable[[Client], None]) -> None:
    url = await scripted(Script(lambda n, head, body: (None, True)))
    async with Client() as c:
        with pytest.raises(ConnectError):
            await c.request("GET", url + "/")
        no_leaks(c)


async def test_body_until_close(scripted: Callable[[Script], Awaitable[str]]) -> None:
    # No Content-Length, not chunked: the body ends when the server closes.
    url = await scripted(Script(lambda n, head, body: (b"HTTP/1.1 200 OK\r\n\r\nuntil close", True)))
    async with Client() as c:
        r = await c.request("GET", url + "/")
        assert r.content == b"until close"
        assert c.statistics().idle == 0


async def test_interim_100_continue_is_skipped(scripted: Callable[[Script], Awaitable[str]]) -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok"
    url = await scripted(Script(lambda n, head, body: (answer, False)))
    async with Client() as c:
        r = await c.request("GET", url + "/")
        assert (r.status, r.reason, r.headers.get("x-a"), r.content) == (201, "Created", "1", b"ok")
        assert (await c.request("GET", url + "/")).connection_reused
