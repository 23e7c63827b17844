"""The pool: per-origin and total limits (counted on the server), reuse, idle expiry, stale keep-alive
retry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from http_scripted import OK, Script

from surge.errors import ConnectError, PoolClosed
from surge.http import Client, Limits
from surge.http.pool import PoolState

# -- bookkeeping, no I/O ---------------------------------------------------------------------------


@dataclass(eq=False)
class FakeConn:
    key: str
    idle_since: float = 0.0
    counted: bool = True
    closed: bool = False


def test_pool_state_per_host_and_total() -> None:
    st: PoolState[FakeConn, str] = PoolState(Limits(total=3, per_host=2, idle_expiry=10))
    a, b = st.origin("a"), st.origin("b")
    assert st.reserve(a) and st.reserve(a)
    assert not st.reserve(a)  # per-host limit
    assert st.reserve(b)
    assert not st.reserve(b)  # total limit, nothing idle to evict
    st.wait(b, "w-b")
    st.wait(a, "w-a")
    ca = FakeConn("a")
    st.checkin(ca, now=1.0)  # a's own waiter gets the connection
    assert st.grants == [("w-a", a, ca)]
    st.grants.clear()
    st.checkin(ca, now=2.0)  # no waiter of a left, b is starved by the total limit: close, give b the slot
    assert st.to_close == [ca] and st.grants == [("w-b", b, None)]
    assert st.total == 3 and a.count == 1 and b.count == 2


def test_pool_state_evicts_idle_of_other_origin() -> None:
    st: PoolState[FakeConn, str] = PoolState(Limits(total=1, per_host=5, idle_expiry=10))
    a, b = st.origin("a"), st.origin("b")
    assert st.reserve(a)
    ca = FakeConn("a")
    st.checkin(ca, now=0.0)
    assert st.idle == 1
    assert st.reserve(b)  # a's idle connection is closed to make room
    assert st.to_close == [ca] and st.idle == 0 and st.total == 1 and st.closed == 1


def test_pool_state_checkout_expiry_and_cancel() -> None:
    st: PoolState[FakeConn, str] = PoolState(Limits(total=10, per_host=10, idle_expiry=5))
    a = st.origin("a")
    st.reserve(a)
    st.reserve(a)
    old, new = FakeConn("a"), FakeConn("a")
    st.checkin(old, now=0.0)
    st.checkin(new, now=4.0)
    assert st.checkout(a, now=6.0) is new  # newest first
    st.checkin(new, now=6.0)
    assert st.checkout(a, now=6.5) is new
    assert st.checkout(a, now=6.5) is None  # the old one expired: closed, not handed out
    assert st.to_close == [old] and st.total == 1
    st.wait(a, "w")
    st.cancel_wait(a, "w")
    st.cancel_wait(a, "w")  # twice is harmless
    assert not a.waiters
    st.discard(new)
    assert (st.total == 0 and "a" not in st.origins) or st.origins["a"].count == 0


def test_pool_state_release_slot_serves_waiter() -> None:
    st: PoolState[FakeConn, str] = PoolState(Limits(total=1, per_host=1))
    a = st.origin("a")
    assert st.reserve(a)
    st.wait(a, "w")
    st.release_slot(a)  # the connect failed: the waiter may try
    assert st.grants == [("w", a, None)] and st.total == 1


# -- against servers -------------------------------------------------------------------------------


async def test_per_host_limit_counted_on_server(scripted: Callable[[Script], Awaitable[str]]) -> None:
    loop = asyncio.get_running_loop()

    def slow(n: int, head: bytes, body: bytes) -> tuple[bytes | None, bool]:
        return OK, False

    script = Script(slow)
    url = await scripted(script)
    async with Client(limits=Limits(per_host=3)) as c:
        results = await asyncio.gather(*(c.request("GET", f"{url}/{i}") for i in range(50)))
        assert all(r.status == 200 for r in results)
        assert script.max_open <= 3
        assert script.connections == 3
        st = c.statistics()
        assert st.opened == 3 and st.requests == 50 and st.reused == 47
    del loop


async def test_total_limit_across_origins(scripted: Callable[[Script], Awaitable[str]]) -> None:
    scripts = [Script(lambda n, h, b: (OK, False)) for _ in range(3)]
    urls = [await scripted(s) for s in scripts]
    async with Client(limits=Limits(total=2, per_host=2)) as c:
        rs = await asyncio.gather(*(c.request("GET", f"{urls[i % 3]}/{i}") for i in range(30)))
        assert all(r.status == 200 for r in rs)
        assert sum(s.max_open for s in scripts) >= 2
        assert c.statistics().idle <= 2
        assert c._state.total <= 2


async def test_server_delay_endpoint_limit(server: str) -> None:
    async with Client(limits=Limits(per_host=4)) as c:
        await asyncio.gather(*(c.request("GET", server + "/delay/20") for _ in range(12)))
        assert c.statistics().opened == 4


@pytest.mark.looptime
async def test_idle_expiry(server: str) -> None:
    async with Client(limits=Limits(idle_expiry=10)) as c:
        await c.request("GET", server + "/")
        await asyncio.sleep(9)
        assert (await c.request("GET", server + "/")).connection_reused
        await asyncio.sleep(16)  # the sweeper closes it even without another request
        st = c.statistics()
        assert (st.idle, st.closed) == (0, 1)
        r = await c.request("GET", server + "/")
        assert not r.connection_reused and c.statistics().opened == 2


@pytest.mark.looptime
async def test_fast_path_follows_a_recreated_origin(server: str) -> None:
    # The fast path remembers the last URL's pool entry; once the sweeper drops that entry, connections must
    # go to the new one (else they would idle where no request looks and every later request opens anew).
    url = server + "/"
    async with Client(limits=Limits(idle_expiry=10)) as c:
        await c.request("GET", url)
        await c.request("GET", url)
        await asyncio.sleep(16)  # the sweeper expires the connection and forgets the origin
        assert not c._state.origins
        await c.request("GET", url)
        r1 = await c.request("GET", url)
        r2 = await c.request("GET", url)
        assert r1.connection_reused and r2.connection_reused
        st = c.statistics()
        assert (st.opened, st.idle, st.reused) == (2, 1, 3)
        assert c._hot[3] is c._state.origins[c._hot[2].target.key]  # the fast path's memo is the live entry


def _close_second_request(n: int, head: bytes, body: bytes) -> tuple[bytes | None, bool]:
    # The race every keep-alive client meets: the server drops an idle connection just as a request arrives.
    return (None, True) if n == 2 else (OK, False)


async def test_stale_keepalive_retried_once(scripted: Callable[[Script], Awaitable[str]]) -> None:
    script = Script(_close_second_request)
    url = await scripted(script)
    async with Client() as c:
        assert (await c.request("GET", url + "/a")).status == 200
        r = await c.request("GET", url + "/b")  # stale connection, retried on a fresh one
        assert r.status == 200 and not r.connection_reused
        assert script.connections == 2
        st = c.statistics()
        assert (st.opened, st.closed, st.active) == (2, 1, 0)


async def test_stale_keepalive_not_retried_for_post(scripted: Callable[[Script], Awaitable[str]]) -> None:
    url = await scripted(Script(_close_second_request))
    async with Client() as c:
        await c.request("GET", url + "/a")
        with pytest.raises(ConnectError):
            await c.request("POST", url + "/b", content=b"x")


async def test_connection_close_header_not_reused(scripted: Callable[[Script], Awaitable[str]]) -> None:
    url = await scripted(Script(lambda n, h, b: (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", True)))
    async with Client() as c:
        await c.request("GET", url + "/")
        await c.request("GET", url + "/")
        st = c.statistics()
        assert (st.opened, st.reused, st.idle) == (2, 0, 0)


async def test_aclose_fails_waiters(server: str) -> None:
    c = Client(limits=Limits(per_host=1))
    slow = asyncio.ensure_future(c.request("GET", server + "/delay/200"))
    waiting = asyncio.ensure_future(c.request("GET", server + "/"))
    for _ in range(20):
        await asyncio.sleep(0)
    await c.aclose()
    with pytest.raises(PoolClosed):
        await waiting
    with pytest.raises(PoolClosed):
        await slow
    with pytest.raises(PoolClosed):
        await c.request("GET", server + "/")
    assert c.statistics().active == 0


# -- write coalescing --------------------------------------------------------------------------------


class CountingClient(Client):
    """Records how many request heads each flush wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes: list[int] = []

    def _flush_writes(self) -> None:
        if self._writes:
            self.flushes.append(len(self._writes))
        super()._flush_writes()


async def test_requests_started_together_are_written_in_batches(server: str) -> None:
    from surge.http.client import WRITE_BATCH

    n = 2 * WRITE_BATCH + 5
    async with CountingClient() as c:
        # Open n connections first: the fast path (which coalesces) runs on idle kept-alive connections.
        await asyncio.gather(*(c.request("GET", server + "/") for _ in range(n)))
        assert c.statistics().opened == n
        c.flushes.clear()
        resps = await asyncio.gather(*(c.request("GET", server + "/") for _ in range(n)))
    assert [r.status for r in resps] == [200] * n
    # All n start in one loop turn: two full batches written at once, the rest by the next turn.
    assert c.flushes == [WRITE_BATCH, WRITE_BATCH, 5]


async def test_a_connection_lost_before_its_write_is_skipped_and_the_request_retried(server: str) -> None:
    async with CountingClient() as c:
        await c.request("GET", server + "/")
        task = asyncio.create_task(c.request("GET", server + "/"))
        await asyncio.sleep(0)  # the request head waits for the next turn's flush
        [(transport, _)] = c._writes
        transport.abort()  # the kept-alive connection dies before anything was written on it
        resp = await task
        assert resp.status == 200  # retried once on a fresh connection, as for any stale keep-alive
        assert c.statistics().opened == 2
