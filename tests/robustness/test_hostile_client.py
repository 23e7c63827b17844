"""The hostile server in-process, against surge.http.Client on the virtual clock: one error class per case,
no connection left behind, and the stale keep-alive retry."""

from __future__ import annotations

from pathlib import Path

import hostile
import pytest
from client_checks import EXPECT, PENDING, check_case, client

pytestmark = pytest.mark.looptime


@pytest.mark.parametrize("name", [n for n in EXPECT if n not in PENDING])
async def test_case(hostile_server: hostile.Hostile, hostile_ca_file: Path, name: str) -> None:
    await check_case(hostile_server, str(hostile_ca_file), name)


async def test_saved_bytes_are_the_servers(hostile_server: hostile.Hostile, hostile_ca_file: Path) -> None:
    async with client(str(hostile_ca_file)) as c:
        r = await c.request("GET", hostile_server.url("non_utf8"))
        assert r.content == hostile.NON_UTF8_BODY
        assert r.headers.get("x-latin") == hostile.NON_UTF8_HEADER.decode("latin-1")


async def test_connection_closed_by_the_server_is_retried_once(hostile_server: hostile.Hostile,
                                                               hostile_ca_file: Path) -> None:
    async with client(str(hostile_ca_file)) as c:
        for i in range(3):
            r = await c.request("GET", hostile_server.url("keepalive_close", f"?i={i}"))
            assert (r.status, r.content) == (200, hostile.OK_BODY)
        # Each request after the first met its connection closed unanswered and went on a new one.
        assert hostile_server.stale_closes == 2
        st = c.statistics()
        assert (st.opened, st.active) == (3, 0)
