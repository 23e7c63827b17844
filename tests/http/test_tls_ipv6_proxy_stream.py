"""TLS (verification, custom CA, SSLContext, verify=False), IPv6, HTTP proxies, and streamed bodies."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme
from conftest import ProxyLog, has_ipv6

from surge.errors import ConfigError, TLSError
from surge.http import Client, Limits
from surge.http.connection import _STREAM_HIGH_WATER
from surge.server import serve


async def test_tls_verified_with_context(server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext) -> None:
    async with serve(ssl=server_ssl) as url, Client(verify=client_ssl) as c:
        assert url.startswith("https://")
        r = await c.request("GET", url + "/")
        assert r.status == 200
        assert (await c.request("GET", url + "/")).connection_reused


async def test_tls_untrusted_certificate(server_ssl: ssl.SSLContext) -> None:
    async with serve(ssl=server_ssl) as url, Client() as c:  # system CAs do not know trustme's
        with pytest.raises(TLSError) as info:
            await c.request("GET", url + "/")
        assert info.value.kind == "tls"
        assert c.statistics().active == 0 and c._state.total == 0


async def test_tls_hostname_checked(ca: trustme.CA, client_ssl: ssl.SSLContext) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.test").configure_cert(ctx)
    async with serve(ssl=ctx) as url, Client(verify=client_ssl) as c:
        with pytest.raises(TLSError):
            await c.request("GET", url + "/")


async def test_tls_verify_false_and_ca_path(server_ssl: ssl.SSLContext, ca: trustme.CA,
                                            tmp_path: Path) -> None:
    async with serve(ssl=server_ssl) as url:
        async with Client(verify=False) as c:
            assert (await c.request("GET", url + "/")).status == 200
        pem = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(pem))
        async with Client(verify=str(pem)) as c:
            assert (await c.request("GET", url + "/")).status == 200
    with pytest.raises(ConfigError):
        Client(verify=str(tmp_path / "missing.pem"))


async def test_tls_sni_sent(ca: trustme.CA, client_ssl: ssl.SSLContext) -> None:
    names: list[str | None] = []
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    ctx.sni_callback = lambda sock, name, _ctx: names.append(name)  # type: ignore[assignment, func-returns-value]
    async with serve(ssl=ctx) as url, Client(verify=client_ssl) as c:
        port = url.rsplit(":", 1)[1]
        assert (await c.request("GET", f"https://localhost:{port}/")).status == 200
    assert names == ["localhost"]


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
async def test_ipv6(client: Client) -> None:
    async with serve(host="::1") as url:
        assert url.startswith("http://[::1]:")
        r = await client.request("GET", url + "/echo")
        assert r.status == 200
        assert r.json()["headers"]["host"] == url.removeprefix("http://")


async def test_proxy_absolute_form(server: str, proxy: tuple[str, ProxyLog]) -> None:
    proxy_url, log = proxy
    async with Client(proxy=proxy_url.replace("http://", "http://user:pw@")) as c:
        r = await c.request("GET", server + "/echo?x=1")
        assert r.json()["query"] == {"x": "1"}
        assert log.heads[0].startswith(f"GET {server}/echo?x=1 HTTP/1.1".encode())
        assert b"Proxy-Authorization: Basic dXNlcjpwdw==" in log.heads[0]


async def test_proxy_connect_for_https(server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext,
                                       proxy: tuple[str, ProxyLog]) -> None:
    proxy_url, log = proxy
    async with serve(ssl=server_ssl) as url, Client(proxy=proxy_url, verify=client_ssl) as c:
        r = await c.request("GET", url + "/echo")
        assert r.status == 200
        authority = url.removeprefix("https://")
        assert log.heads[0].startswith(f"CONNECT {authority} HTTP/1.1".encode())
        assert (await c.request("GET", url + "/")).connection_reused
    with pytest.raises(ConfigError):
        Client(proxy="socks5://127.0.0.1:1080")


async def test_stream_body(server: str) -> None:
    async with Client() as c:
        async with c.stream("GET", server + "/bytes/1000000") as r:
            assert r.status == 200
            sizes = [len(chunk) async for chunk in r.aiter_bytes()]
        assert sum(sizes) == 1000000 and len(sizes) > 1
        assert r.num_bytes == 1000000
        st = c.statistics()
        assert (st.idle, st.active) == (1, 0)  # read to the end: back in the pool


async def test_stream_left_early_closes_connection(server: str) -> None:
    async with Client() as c:
        async with c.stream("GET", server + "/fault/endless") as r:
            async for _ in r.aiter_bytes():
                break
        st = c.statistics()
        assert (st.idle, st.active, st.closed) == (0, 0, 1)
        async with c.stream("GET", server + "/gzip") as r:
            body = await r.aread()
        assert b"compression" in body


async def test_stream_flow_control_bounds_buffering(server: str) -> None:
    async with Client(limits=Limits(per_host=1)) as c, c.stream("GET", server + "/bytes/20000000") as r:
        conn = r._stream._conn  # type: ignore[union-attr]
        seen = 0
        most = 0
        async for chunk in r.aiter_bytes():
            seen += len(chunk)
            if seen < 4000000:
                for _ in range(50):  # a slow consumer: the server keeps sending meanwhile
                    await asyncio.sleep(0)
                most = max(most, conn.buffered)
        assert seen == 20000000
        assert 0 < most <= _STREAM_HIGH_WATER + 1024 * 1024  # reading paused at the high-water mark
