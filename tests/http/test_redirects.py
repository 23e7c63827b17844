"""Redirects: following, the maximum, method and body rules, credentials across origins, final URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote

import pytest
from http_scripted import Script

from surge.errors import ProtocolError, TooManyRedirects
from surge.http import Client
from surge.http.redirects import plan_redirect, redirect_method
from surge.server import serve


async def test_follow_chain(server: str, client: Client) -> None:
    r = await client.request("GET", server + "/redirect/3")
    assert r.status == 200
    assert r.url == server + "/redirect/0"
    assert [h.status for h in r.history] == [302, 302, 302]
    assert [h.url for h in r.history] == [server + f"/redirect/{n}" for n in (3, 2, 1)]
    assert client.statistics().opened == 1  # every hop on the same kept-alive connection


async def test_absolute_redirects(server: str, client: Client) -> None:
    r = await client.request("GET", server + "/redirect/2?absolute=1")
    assert r.status == 200 and len(r.history) == 2


async def test_no_follow(server: str, client: Client) -> None:
    r = await client.request("GET", server + "/redirect/2", follow_redirects=False)
    assert r.status == 302
    assert r.headers["location"] == "/redirect/1"
    assert r.is_redirect


async def test_no_follow_for_the_whole_client_request_and_submit(server: str) -> None:
    import asyncio

    from surge.http.client import Submitted

    async with Client(follow_redirects=False) as c:
        r = await c.request("GET", server + "/redirect/2")
        assert (r.status, r.headers["location"], r.history) == (302, "/redirect/1", [])
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        ticket = Submitted(lambda ctx, resp, exc: done.set_result(resp.status if resp else -1))
        for _ in range(2):  # the first may find no idle connection; then the connection is kept alive
            if c.submit("GET", server + "/redirect/3", ticket):
                assert await done == 302
                break
        else:
            raise AssertionError("submit never started")


async def test_max_redirects(server: str) -> None:
    async with Client(max_redirects=2) as c:
        await c.request("GET", server + "/redirect/2")
        with pytest.raises(TooManyRedirects) as info:
            await c.request("GET", server + "/redirect/3")
        assert info.value.kind == "too_many_redirects"
        with pytest.raises(TooManyRedirects):
            await c.request("GET", server + "/fault/redirect-loop")
        assert c.statistics().active == 0


def _to(server: str, path: str, status: int) -> str:
    return f"{server}/redirect-to?status={status}&url={quote(server + path, safe='')}"


def _redirecting(status: int) -> Script:
    def respond(n: int, head: bytes, body: bytes) -> tuple[bytes | None, bool]:
        line = head.split(b"\r\n", 1)[0]
        method, path, _ = line.split(b" ")
        if path == b"/start":
            return (b"HTTP/1.1 %d Moved\r\nLocation: /end\r\nContent-Length: 0\r\n\r\n" % status, False)
        has_type = b"\r\ncontent-type:" in head.lower()
        answer = json.dumps({"method": method.decode(), "body": body.decode(), "typed": has_type}).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer), False)

    return Script(respond)


@pytest.mark.parametrize(("status", "method", "expect_method", "body_kept"), [
    (303, "POST", "GET", False),
    (303, "PUT", "GET", False),
    (301, "POST", "GET", False),
    (302, "POST", "GET", False),
    (302, "PUT", "PUT", True),
    (307, "POST", "POST", True),
    (308, "PUT", "PUT", True),
])
async def test_method_and_body_rules(  # noqa: PLR0917 - pytest fixtures and parameters
    scripted: Callable[[Script], Awaitable[str]], client: Client, status: int, method: str,
    expect_method: str, body_kept: bool,
) -> None:
    url = await scripted(_redirecting(status))
    r = await client.request(method, url + "/start", content=b"payload",
                             headers={"Content-Type": "text/plain"})
    data = r.json()
    assert r.url == url + "/end"
    assert data["method"] == expect_method
    assert (data["body"] == "payload") is body_kept
    assert data["typed"] is body_kept


async def test_streamed_body_is_not_replayed(scripted: Callable[[Script], Awaitable[str]],
                                             client: Client) -> None:
    url = await scripted(_redirecting(307))

    async def parts() -> AsyncIterator[bytes]:
        yield b"once"

    r = await client.request("POST", url + "/start", content=parts(), headers={"Content-Length": "4"})
    assert r.status == 307  # cannot be sent twice: the redirect itself is the answer


def test_redirect_method_rules() -> None:
    assert redirect_method(303, "POST") == "GET"
    assert redirect_method(303, "HEAD") == "HEAD"
    assert redirect_method(302, "POST") == "GET"
    assert redirect_method(302, "PUT") == "PUT"
    assert redirect_method(307, "POST") == "POST"
    assert redirect_method(308, "DELETE") == "DELETE"


def test_plan_drops_credentials_across_origins() -> None:
    headers = [("Authorization", "Bearer x"), ("X-Keep", "1")]
    same = plan_redirect("GET", "http://a.test/x", 302, "/y", headers)
    assert same.url == "http://a.test/y"
    assert ("Authorization", "Bearer x") in same.headers
    other = plan_redirect("GET", "http://a.test/x", 302, "http://b.test/y#frag", headers)
    assert other.url == "http://b.test/y"
    assert other.headers == [("X-Keep", "1")]
    port = plan_redirect("GET", "http://a.test/x", 302, "http://a.test:8080/y", headers)
    assert all(k != "Authorization" for k, _ in port.headers)
    default_port = plan_redirect("GET", "http://a.test/x", 302, "http://a.test:80/y", headers)
    assert ("Authorization", "Bearer x") in default_port.headers


async def test_authorization_dropped_across_origins(server: str, client: Client) -> None:
    async with serve() as other:
        r = await client.request("GET", _to(server, "/echo", 302).replace(quote(server, safe=""),
                                                                          quote(other, safe="")),
                                 headers={"Authorization": "Bearer secret", "X-Other": "1"})
        data = r.json()
        assert r.url.startswith(other)
        assert "authorization" not in data["headers"]
        assert data["headers"]["x-other"] == "1"
    r = await client.request("GET", _to(server, "/echo", 302), headers={"Authorization": "Bearer secret"})
    assert r.json()["headers"]["authorization"] == "Bearer secret"


async def test_redirect_to_unusable_url(server: str, client: Client) -> None:
    with pytest.raises(ProtocolError):
        await client.request("GET", f"{server}/redirect-to?url={quote('ftp://x/', safe='')}")
