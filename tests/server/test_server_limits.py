"""/ratelimit (GCRA on the loop clock, per key) and /flaky (seeded, reproducible failures)."""

from __future__ import annotations

import asyncio

import pytest
from server_raw import RawConnection

from surge.server import flaky_fails, serve
from surge.server.limits import ServerRateLimit


def test_gcra_arithmetic() -> None:
    limit = ServerRateLimit()
    assert [limit.check("a", 2.0, 0.0) for _ in range(2)] == [0.0, 0.0]
    assert limit.check("a", 2.0, 0.0) == pytest.approx(0.5)
    assert limit.check("a", 2.0, 0.5) == 0.0
    assert limit.check("a", 2.0, 0.5) > 0
    assert limit.check("b", 2.0, 0.5) == 0.0  # keys are independent
    assert ServerRateLimit.retry_after(0.2) == 1 and ServerRateLimit.retry_after(2.1) == 3


async def _statuses(conn: RawConnection, path: str, n: int) -> list[int]:
    return [(await conn.request("GET", path)).status for _ in range(n)]


@pytest.mark.looptime
async def test_ratelimit_429_with_retry_after() -> None:
    async with serve() as url:
        conn = await RawConnection.open(url)
        assert await _statuses(conn, "/ratelimit?rps=5", 5) == [200] * 5
        refused = await conn.request("GET", "/ratelimit?rps=5")
        assert refused.status == 429 and refused.header("Retry-After") == "1"
        # Another key has its own budget; the peer-address key is untouched by ?key= requests.
        assert await _statuses(conn, "/ratelimit?rps=5&key=other", 5) == [200] * 5
        await asyncio.sleep(1.0)
        assert await _statuses(conn, "/ratelimit?rps=5", 5) == [200] * 5
        assert (await conn.request("GET", "/ratelimit?rps=5")).status == 429
        await asyncio.sleep(0.2)
        assert await _statuses(conn, "/ratelimit?rps=5", 2) == [200, 429]
        await conn.aclose()


@pytest.mark.looptime
async def test_ratelimit_slow_rate_retry_after_is_whole_seconds() -> None:
    async with serve() as url:
        conn = await RawConnection.open(url)
        assert await _statuses(conn, "/ratelimit?rps=0.25&key=k", 1) == [200]
        refused = await conn.request("GET", "/ratelimit?rps=0.25&key=k")
        assert refused.status == 429 and refused.header("Retry-After") == "4"
        await asyncio.sleep(4.0)
        assert await _statuses(conn, "/ratelimit?rps=0.25&key=k", 1) == [200]
        await conn.aclose()


async def _flaky_run(path: str, n: int) -> list[int]:
    async with serve() as url:
        conn = await RawConnection.open(url)
        statuses = await _statuses(conn, path, n)
        await conn.aclose()
    return statuses


async def test_flaky_is_reproducible_from_the_seed() -> None:
    first = await _flaky_run("/flaky?p=0.3&seed=42&key=k", 100)
    again = await _flaky_run("/flaky?p=0.3&seed=42&key=k", 100)
    other = await _flaky_run("/flaky?p=0.3&seed=43&key=k", 100)
    assert first == again
    assert first != other
    assert first == [503 if flaky_fails(0.3, 42, "k", n) else 200 for n in range(100)]
    assert 15 <= first.count(503) <= 45
    assert set(first) == {200, 503}


async def test_flaky_extremes() -> None:
    assert await _flaky_run("/flaky?p=0&seed=1", 30) == [200] * 30
    assert await _flaky_run("/flaky?p=1&seed=1", 30) == [503] * 30
