"""Requests and responses against the embedded server: methods, headers, query, bodies, HEAD, keep-alive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from surge.errors import ConfigError, InvalidURL
from surge.http import Client, Headers, Response
from surge.server.routes import ROOT_BODY


async def test_get_root(server: str, client: Client) -> None:
    r = await client.request("GET", server + "/")
    assert r.status == 200
    assert r.reason == "OK"
    assert r.content == ROOT_BODY
    assert r.num_bytes == len(ROOT_BODY)
    assert r.url == server + "/"
    assert r.http_version == "HTTP/1.1"
    assert r.history == []
    assert r.headers.get("content-length") == str(len(ROOT_BODY))
    assert 0 <= r.ttfb <= r.elapsed
    assert not r.connection_reused
    r2 = await client.request("GET", server + "/")
    assert r2.connection_reused
    st = client.statistics()
    assert (st.opened, st.reused, st.requests, st.idle, st.active) == (1, 1, 2, 1, 0)


async def test_query_params_and_headers_sent(server: str, client: Client) -> None:
    r = await client.request("GET", server + "/echo?a=1", params={"b": "two words", "c": ["x", "y"]},
                             headers=[("X-Multi", "1"), ("X-Multi", "2"), ("User-Agent", "mine")])
    data = r.json()
    assert data["query"] == {"a": "1", "b": "two words", "c": ["x", "y"]}
    assert data["headers"]["x-multi"] == ["1", "2"]
    assert data["headers"]["user-agent"] == "mine"  # a request header overrides the client default
    assert "gzip" in data["headers"]["accept-encoding"]


async def test_client_default_headers(server: str) -> None:
    async with Client(headers={"X-Team": "surge"}, user_agent="ua/1") as c:
        data = (await c.request("GET", server + "/echo")).json()
    assert data["headers"]["x-team"] == "surge"
    assert data["headers"]["user-agent"] == "ua/1"


async def test_post_bytes(server: str, client: Client) -> None:
    r = await client.request("POST", server + "/echo", content=b"hello body",
                             headers={"Content-Type": "text/plain"})
    data = r.json()
    assert (data["method"], data["body"], data["body_length"]) == ("POST", "hello body", 10)
    assert data["headers"]["content-length"] == "10"


async def test_post_without_body_sends_zero_length(server: str, client: Client) -> None:
    data = (await client.request("POST", server + "/echo")).json()
    assert data["headers"]["content-length"] == "0"


async def test_chunked_upload_from_async_iterable(server: str, client: Client) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"part{i};".encode()
        yield b""  # empty pieces are skipped, not sent as the terminating chunk

    data = (await client.request("PUT", server + "/echo", content=parts())).json()
    assert data["headers"]["transfer-encoding"] == "chunked"
    assert data["body"] == "part0;part1;part2;part3;part4;"


async def test_large_upload(server: str, client: Client) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: written after the head, with flow control
    data = (await client.request("POST", server + "/echo", content=body)).json()
    assert data["body_length"] == len(body)


async def test_upload_with_content_length_is_not_chunked(server: str, client: Client) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"def"

    data = (await client.request("POST", server + "/echo", content=parts(),
                                 headers={"Content-Length": "6"})).json()
    assert data["body"] == "abcdef"
    assert "transfer-encoding" not in data["headers"]


async def test_head_has_no_body_and_connection_stays_usable(server: str, client: Client) -> None:
    r = await client.request("HEAD", server + "/bytes/5000")
    assert r.status == 200
    assert r.content == b""
    assert r.headers["content-length"] == "5000"
    r2 = await client.request("GET", server + "/bytes/10")
    assert r2.content and len(r2.content) == 10
    assert r2.connection_reused


async def test_status_codes_and_multi_valued_headers(server: str, client: Client) -> None:
    r = await client.request("GET", server + "/status/404")
    assert r.status == 404 and not r.ok
    assert r.reason == "Not Found"
    r = await client.request("GET", server + "/status/204")
    assert r.status == 204 and r.content == b""


async def test_keep_body_false_counts_bytes(server: str, client: Client) -> None:
    r = await client.request("GET", server + "/bytes/12345", keep_body=False)
    assert r.content == b""
    assert r.num_bytes == 12345


async def test_chunked_response(server: str, client: Client) -> None:
    r = await client.request("GET", server + "/bytes/100000?chunked=1&chunk=1000")
    assert r.headers["transfer-encoding"] == "chunked"
    assert len(r.content) == 100000
    plain = await client.request("GET", server + "/bytes/100000")
    assert r.content == plain.content


async def test_text_and_json(server: str, client: Client) -> None:
    r = await client.request("GET", server + "/headers")
    assert isinstance(r.json(), dict)
    assert r.text().startswith("{")


async def test_bad_urls(client: Client) -> None:
    for url in ("ftp://x/", "http://", "not a url", "http://host:99999/"):
        with pytest.raises(InvalidURL):
            await client.request("GET", url)


async def test_header_injection_refused(server: str, client: Client) -> None:
    with pytest.raises(ConfigError):
        await client.request("GET", server + "/", headers={"X-A": "1\r\nX-B: 2"})


async def test_unicode_path_is_percent_encoded(server: str, client: Client) -> None:
    data = (await client.request("GET", server + "/echo/é x")).json()
    assert data["path"] == "/echo/%C3%A9%20x"


def test_headers_model() -> None:
    h = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/html")])
    assert h.get("SET-COOKIE") == "a=1, b=2"
    assert h.get_all("set-cookie") == ["a=1", "b=2"]
    assert h["content-type"] == "text/html"
    assert "CONTENT-TYPE" in h and "x" not in h
    assert h.get("missing", "d") == "d"
    with pytest.raises(KeyError):
        h["missing"]
    assert len(h) == 3 and list(h) == ["set-cookie", "content-type"]
    assert h.items()[0] == ("Set-Cookie", "a=1")


def test_response_model() -> None:
    r = Response(200, headers=[("Content-Type", "text/plain; charset=latin-1")],
                 content="é".encode("latin-1"))
    assert r.text() == "é"
    assert r.num_bytes == 1 and r.ok


async def test_concurrent_bodies_through_the_shared_receive_buffer(server: str, client: Client) -> None:
    # On asyncio's loop every connection of a client receives into one buffer; bodies larger than it,
    # read concurrently over several connections (plain and chunked), must come out intact and unmixed.
    from surge.http.connection import RECV_BUFFER, BufferedConnection

    sizes = [RECV_BUFFER * 3 + 7, 100, RECV_BUFFER + 1, 5000]
    urls = [f"{server}/bytes/{n}" + ("?chunked=1" if i % 2 else "") for i, n in enumerate(sizes)]
    rs = await asyncio.gather(*(client.request("GET", u) for u in urls * 3))
    direct = [await client.request("GET", u) for u in urls]
    for r, d in zip(rs, direct * 3, strict=True):
        assert r.status == 200
        assert r.content == d.content
        assert len(r.content) == r.num_bytes
    assert [len(r.content) for r in direct] == sizes
    assert client.statistics().opened > 1
    assert all(isinstance(c, BufferedConnection) for c in client._conns)
