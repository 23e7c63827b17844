"""Client.submit: the callback path engines use instead of awaiting request()."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from http_scripted import OK, Script

from surge.errors import ReadTimeout
from surge.http import Client, Submitted, Timeout


class Calls:
    """Collects callbacks; ``wait()`` returns once ``n`` have arrived."""

    def __init__(self) -> None:
        self.got: list[tuple[Any, Any, BaseException | None]] = []
        self.event = asyncio.Event()

    def __call__(self, ctx: Any, resp: Any, error: BaseException | None) -> None:
        self.got.append((ctx, resp, error))
        self.event.set()

    async def wait(self, n: int = 1) -> None:
        while len(self.got) < n:
            self.event.clear()
            await self.event.wait()


async def test_submit_needs_an_idle_connection_and_a_known_url(server: str) -> None:
    calls = Calls()
    async with Client() as c:
        ticket = Submitted(calls, "ctx")
        assert not c.submit("GET", server + "/", ticket)  # no connection yet: the caller awaits request()
        await c.request("GET", server + "/")
        assert c.submit("GET", server + "/bytes/10", ticket)  # a new path on a known origin
        with pytest.raises(RuntimeError):
            c.submit("GET", server + "/", ticket)  # one request at a time per ticket
        await calls.wait()
        ctx, resp, error = calls.got[0]
        assert (ctx, resp.status, resp.content, error) == ("ctx", 200, b"abcdefghij", None)
        assert resp.connection_reused and resp.elapsed > 0 and resp.url == server + "/bytes/10"
        # Called back: the ticket can go again, and the connection went back to the pool.
        assert c.submit("GET", server + "/", ticket, False)
        await calls.wait(2)
        assert calls.got[1][1].content == b"" and calls.got[1][1].num_bytes > 0
        assert c.statistics().opened == 1


async def test_a_callback_may_submit_the_next_request_at_once(server: str) -> None:
    seen: list[int] = []
    finished = asyncio.Event()
    async with Client() as c:
        await c.request("GET", server + "/")

        def again(ctx: Any, resp: Any, error: BaseException | None) -> None:
            seen.append(resp.status)
            if len(seen) < 50:
                assert c.submit("GET", server + "/", ticket)
            else:
                finished.set()

        ticket = Submitted(again)
        assert c.submit("GET", server + "/", ticket)
        await finished.wait()
        assert seen == [200] * 50
        assert c.statistics().opened == 1


async def test_submit_follows_redirects(server: str) -> None:
    calls = Calls()
    async with Client() as c:
        await c.request("GET", server + "/")
        assert c.submit("GET", server + "/redirect/2", Submitted(calls))
        await calls.wait()
        _, resp, error = calls.got[0]
        assert error is None and resp.status == 200
        assert [r.status for r in resp.history] == [302, 302]


async def test_submit_retries_a_stale_connection_once(scripted: Callable[[Script], Awaitable[str]]) -> None:
    # The server closes the kept-alive connection when the second request arrives on it.
    def respond(n: int, head: bytes, body: bytes) -> tuple[bytes | None, bool]:
        return (OK, False) if n == 1 else (None, True)

    script = Script(respond)
    url = await scripted(script)
    calls = Calls()
    async with Client() as c:
        await c.request("GET", url + "/a")
        assert c.submit("GET", url + "/b", Submitted(calls))
        await calls.wait()
        _, resp, error = calls.got[0]
        assert error is None and resp.status == 200 and not resp.connection_reused
        assert script.connections == 2


async def test_submit_reports_errors_through_the_callback(
        scripted: Callable[[Script], Awaitable[str]]) -> None:
    def respond(n: int, head: bytes, body: bytes) -> tuple[bytes | None, bool]:
        return (OK, False) if n == 1 else (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", True)

    url = await scripted(Script(respond))
    calls = Calls()
    async with Client() as c:
        await c.request("GET", url + "/")
        assert c.submit("GET", url + "/", Submitted(calls))
        await calls.wait()
        _, resp, error = calls.got[0]
        assert resp is None and type(error).__name__ == "ProtocolError"
        assert error.url == url + "/"  # type: ignore[union-attr]
        assert c.statistics().active == 0


@pytest.mark.looptime
async def test_submit_read_timeout(scripted: Callable[[Script], Awaitable[str]]) -> None:
    def respond(n: int, head: bytes, body: bytes) -> tuple[bytes | None, bool]:
        return (OK, False) if n == 1 else (b"", False)  # the second request is never answered

    url = await scripted(Script(respond))
    calls = Calls()
    loop = asyncio.get_running_loop()
    async with Client(timeout=Timeout(read=5)) as c:
        await c.request("GET", url + "/")
        t0 = loop.time()
        assert c.submit("GET", url + "/", Submitted(calls))
        await calls.wait()
        assert isinstance(calls.got[0][2], ReadTimeout)
        assert loop.time() - t0 == pytest.approx(5, abs=0.01)


async def test_cancel_before_the_answer(scripted: Callable[[Script], Awaitable[str]]) -> None:
    script = Script(lambda n, head, body: (OK, False))
    url = await scripted(script)
    calls = Calls()
    async with Client() as c:
        await c.request("GET", url + "/first")
        ticket = Submitted(calls)
        assert c.submit("GET", url + "/cancelled", ticket)
        c.cancel(ticket)
        with pytest.raises(RuntimeError):
            c.submit("GET", url + "/", ticket)  # a cancelled ticket is spent
        st = c.statistics()
        assert (st.active, st.closed) == (0, 1)  # the connection was cut, not reused
        # A whole exchange on a fresh connection later: the cancelled request was never written (its
        # connection was cut before the loop turn that writes), and nothing was called back.
        assert (await c.request("GET", url + "/later")).status == 200
        assert calls.got == []
        assert [r.split(b" ")[1] for r in script.requests] == [b"/first", b"/later"]


async def test_cancel_after_the_answer_arrived_keeps_the_connection(server: str) -> None:
    calls = Calls()
    async with Client() as c:
        await c.request("GET", server + "/")
        ticket = Submitted(calls)
        assert c.submit("GET", server + "/", ticket)
        while not ticket.finished:  # the response is in; the batch that calls back has not run yet
            await asyncio.sleep(0)
        c.cancel(ticket)
        await asyncio.sleep(0)
        assert calls.got == []
        st = c.statistics()
        assert (st.idle, st.closed) == (1, 0)


async def test_aclose_fails_submitted_requests(server: str) -> None:
    calls = Calls()
    c = Client()
    await c.request("GET", server + "/")
    assert c.submit("GET", server + "/delay/200", Submitted(calls))
    await c.aclose()
    await calls.wait()
    assert type(calls.got[0][2]).__name__ == "PoolClosed"
    assert not c.submit("GET", server + "/", Submitted(calls))


async def test_a_failing_callback_does_not_strand_the_others(server: str) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    calls = Calls()

    def broken(ctx: Any, resp: Any, error: BaseException | None) -> None:
        raise ValueError("bug in the caller")

    try:
        async with Client() as c:
            await asyncio.gather(c.request("GET", server + "/"), c.request("GET", server + "/"))
            assert c.submit("GET", server + "/", Submitted(broken))
            assert c.submit("GET", server + "/", Submitted(calls))
            await calls.wait()
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert calls.got[0][1].status == 200
    assert [type(e["exception"]) for e in errors] == [ValueError]




async def test_reuse_response_refills_one_object(server: str) -> None:
    seen: list[tuple[int, int, bytes, int]] = []
    finished = asyncio.Event()
    async with Client() as c:
        await c.request("GET", server + "/")
        paths = ["/bytes/3", "/status/404", "/redirect/1", "/bytes/5"]

        def again(ctx: Any, resp: Any, error: BaseException | None) -> None:
            seen.append((id(resp), resp.status, resp.content, len(resp.history)))
            if len(seen) < len(paths):
                assert c.submit("GET", server + paths[len(seen)], ticket)
            else:
                finished.set()

        ticket = Submitted(again, reuse_response=True)
        assert c.submit("GET", server + paths[0], ticket)
        await finished.wait()
    ids = [s[0] for s in seen]
    assert [(s[1], s[3]) for s in seen] == [(200, 0), (404, 0), (200, 1), (200, 0)]
    assert seen[0][2] == b"abc" and seen[3][2] == b"abcde"
    assert ids[0] == ids[1] == ids[3] and ids[2] != ids[0]  # a redirect makes a new one (with history)
