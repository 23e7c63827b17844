"""Cancellation at every await point: the slot, the connection and the waiter queue are always restored."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine
from typing import Any

import pytest

from surge.http import Client, Limits, Response


async def _cancel_after(coro: Coroutine[Any, Any, Any], steps: int) -> bool:
    """Run ``coro`` as a task for ``steps`` loop turns, then cancel it; True if it had already finished."""
    task = asyncio.ensure_future(coro)
    for _ in range(steps):
        if task.done():
            break
        await asyncio.sleep(0)
    finished = task.done()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return finished


def _consistent(c: Client) -> None:
    st = c.statistics()
    assert st.active == 0, st
    assert c._state.total == st.idle == sum(len(o.idle) for o in c._state.origins.values())
    assert all(not o.waiters for o in c._state.origins.values())
    assert st.opened - st.closed == c._state.total


@pytest.mark.parametrize("path", ["/", "/delay/5", "/bytes/300000", "/bytes/300000?chunked=1"])
async def test_cancel_request_everywhere(server: str, path: str) -> None:
    async with Client() as c:
        steps = 0
        while steps < 100_000:
            finished = await _cancel_after(c.request("GET", server + path), steps)
            await asyncio.sleep(0)  # let aborted transports report connection_lost
            _consistent(c)
            if finished:
                break  # the sweep reached the end of the request
            steps = steps + 1 if steps < 40 else steps * 5 // 4
        assert finished
        assert (await c.request("GET", server + "/")).status == 200
        _consistent(c)


async def test_cancel_post_with_streamed_body(server: str) -> None:
    async def body() -> Any:
        for _ in range(20):
            await asyncio.sleep(0)
            yield b"x" * 1000

    async with Client() as c:
        for steps in range(0, 40, 3):
            await _cancel_after(c.request("POST", server + "/echo", content=body()), steps)
            await asyncio.sleep(0)
            _consistent(c)


async def test_cancel_while_waiting_for_a_slot(server: str) -> None:
    async with Client(limits=Limits(per_host=1)) as c:
        for steps in range(0, 30):
            busy = asyncio.ensure_future(c.request("GET", server + "/delay/10"))
            await asyncio.sleep(0)
            await _cancel_after(c.request("GET", server + "/"), steps)
            r = await busy
            assert r.status == 200
            _consistent(c)
        assert c.statistics().opened == 1  # nobody lost the one connection


async def test_cancel_during_tls_handshake(server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext) -> None:
    from surge.server import serve

    async with serve(ssl=server_ssl) as url, Client(verify=client_ssl) as c:
        for steps in range(0, 40, 2):
            await _cancel_after(c.request("GET", url + "/"), steps)
            await asyncio.sleep(0)
            _consistent(c)
        assert (await c.request("GET", url + "/")).status == 200


async def test_cancel_while_streaming(server: str) -> None:
    async with Client() as c:
        for steps in range(0, 30, 2):
            async def consume() -> None:
                async with c.stream("GET", server + "/bytes/2000000") as r:
                    async for _ in r.aiter_bytes():
                        pass

            await _cancel_after(consume(), steps)
            await asyncio.sleep(0)
            _consistent(c)


async def test_cancel_after_response_complete_keeps_connection(server: str) -> None:
    async with Client() as c:
        await c.request("GET", server + "/")
        conn = c._state.origins[next(iter(c._state.origins))].idle[0]
        task = asyncio.ensure_future(c.request("GET", server + "/"))
        # Wait until the response is in, then cancel before the task resumes.
        while not (conn.waiter is not None and conn.waiter.done() and conn.complete):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        st = c.statistics()
        assert (st.idle, st.active, st.closed) == (1, 0, 0)


async def test_waiter_gets_connection_of_cancelled_holder(server: str) -> None:
    async with Client(limits=Limits(per_host=1)) as c:
        holder = asyncio.ensure_future(c.request("GET", server + "/delay/50"))
        await asyncio.sleep(0)
        waiter = asyncio.ensure_future(c.request("GET", server + "/"))
        for _ in range(5):
            await asyncio.sleep(0)
        holder.cancel()  # its connection is closed mid-response; the slot passes to the waiter
        r: Response = await waiter
        assert r.status == 200
        _consistent(c)


