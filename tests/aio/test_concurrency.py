"""Concurrency limits: bounds as properties, adaptive behaviour against a simulated server, cancellation."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.aio import AIMD, ConcurrencyLimit, Gradient2, LimitAlgorithm

samples = st.lists(
    st.tuples(
        st.one_of(
            st.none(), st.floats(min_value=0.0, max_value=1e6), st.sampled_from([math.inf, math.nan, -1.0])
        ),
        st.integers(min_value=0, max_value=5000),
        st.booleans(),
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(
    make=st.sampled_from(
        [
            AIMD,
            lambda: AIMD(increase=50.0, backoff=0.5, timeout=1.0),
            Gradient2,
            lambda: Gradient2(min_window=1),
        ]
    ),
    bounds=st.tuples(st.integers(min_value=1, max_value=100), st.integers(min_value=0, max_value=1000)),
    start=st.floats(min_value=1.0, max_value=2000.0),
    samples=samples,
)
def test_algorithms_stay_within_bounds_for_any_samples(
    make: type[LimitAlgorithm],
    bounds: tuple[int, int],
    start: float,
    samples: list[tuple[float | None, int, bool]],
) -> None:
    low, extra = bounds
    high = low + extra
    algorithm = make()
    limit = start
    for rtt, in_flight, dropped in samples:
        limit = algorithm.update(
            limit, rtt=rtt, in_flight=in_flight, dropped=dropped, min_limit=low, max_limit=high
        )
        assert low <= limit <= high


def test_aimd_steps() -> None:
    aimd = AIMD(backoff=0.5)
    kw = {"min_limit": 1, "max_limit": 100}
    assert aimd.update(10.0, rtt=0.1, in_flight=2, dropped=False, **kw) == 10.0  # not using the limit
    assert aimd.update(10.0, rtt=0.1, in_flight=5, dropped=False, **kw) == 11.0
    assert aimd.update(10.0, rtt=0.1, in_flight=4, dropped=True, **kw) == 5.0
    # The other 3 requests in flight at the drop belong to the old round: no second decrease, no growth.
    assert [aimd.update(5.0, rtt=0.1, in_flight=5, dropped=True, **kw) for _ in range(3)] == [5.0] * 3
    assert aimd.update(5.0, rtt=0.1, in_flight=5, dropped=False, **kw) == 6.0


def test_aimd_timeout_counts_as_drop() -> None:
    aimd = AIMD(backoff=0.5, timeout=1.0)
    assert aimd.update(10.0, rtt=2.0, in_flight=1, dropped=False, min_limit=1, max_limit=100) == 5.0


def test_fixed_limit_ignores_samples_and_bounds() -> None:
    limit = ConcurrencyLimit(5000, max_limit=10)  # a fixed limit is what the caller asked for
    assert limit.limit == 5000
    for _ in range(10):
        assert limit.acquire_nowait()
    for _ in range(10):
        limit.release(rtt=100.0, dropped=True)
    assert limit.limit == 5000
    assert limit.statistics().dropped == 10


def test_release_without_acquire_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        ConcurrencyLimit(1).release()


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"min_limit": 0}, {"min_limit": 5, "max_limit": 4}])
def test_invalid_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ConcurrencyLimit(**kwargs)


def test_trajectory_is_bounded_and_records_changes() -> None:
    t = [0.0]
    limit = ConcurrencyLimit(10, algorithm=AIMD(backoff=0.5), min_limit=1, max_limit=20, clock=lambda: t[0])
    for step in range(5000):
        t[0] = float(step)
        assert limit.acquire_nowait()
        limit.release(rtt=0.1, dropped=step % 7 == 0)
    stats = limit.statistics()
    assert len(stats.trajectory) == ConcurrencyLimit.TRAJECTORY_LEN
    assert stats.trajectory[-1] == (pytest.approx(stats.trajectory[-1][0]), stats.limit)
    times = [when for when, _ in stats.trajectory]
    assert times == sorted(times)
    assert all(1 <= value <= 20 for _, value in stats.trajectory)
    assert stats.min_seen >= 1 and stats.max_seen <= 20 and stats.min_seen < stats.max_seen


async def test_waiters_are_served_in_order() -> None:
    limit = ConcurrencyLimit(1)
    order: list[int] = []

    async def hold(i: int) -> None:
        await limit.acquire()
        order.append(i)
        await asyncio.sleep(0)
        limit.release()

    async with asyncio.TaskGroup() as tg:
        for i in range(10):
            tg.create_task(hold(i))
    assert order == list(range(10))
    assert limit.in_flight == 0 and limit.statistics().waiting == 0


async def test_acquire_nowait_respects_queued_waiters() -> None:
    limit = ConcurrencyLimit(1)
    assert limit.acquire_nowait()
    waiter = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    limit.release()  # the slot goes to the waiter, not to whoever calls nowait next
    assert not limit.acquire_nowait()
    await waiter
    assert limit.in_flight == 1


async def test_shrinking_below_in_flight_holds_new_acquirers() -> None:
    limit = ConcurrencyLimit(4)
    for _ in range(4):
        await limit.acquire()
    limit.set_limit(2)
    waiter = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    limit.release()
    limit.release()  # in_flight 2 == limit: still full
    await asyncio.sleep(0)
    assert not waiter.done()
    limit.release()  # in_flight 1 < 2
    await asyncio.sleep(0)
    assert waiter.done()
    assert limit.in_flight == 2


async def test_cancelled_waiter_takes_no_slot() -> None:
    limit = ConcurrencyLimit(1)
    await limit.acquire()
    waiters = [asyncio.create_task(limit.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiters[1]
    assert limit.statistics().waiting == 2
    limit.release()
    await waiters[0]
    limit.release()
    await waiters[2]
    limit.release()
    assert limit.in_flight == 0 and limit.statistics().waiting == 0


async def test_slot_handed_to_a_cancelled_waiter_passes_on() -> None:
    limit = ConcurrencyLimit(1)
    await limit.acquire()
    first = asyncio.create_task(limit.acquire())
    second = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    limit.release()  # hands the slot to `first`, which has not resumed yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert limit.in_flight == 1
    limit.release()
    assert limit.in_flight == 0 and limit.statistics().acquired == 2


async def test_cancel_holders_and_waiters_at_every_point_leaks_nothing() -> None:
    limit = ConcurrencyLimit(3)

    async def use() -> None:
        async with limit:
            await asyncio.sleep(3600)

    tasks = [asyncio.create_task(use()) for _ in range(10)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert limit.in_flight == 3 and limit.statistics().waiting == 7
    for task in tasks:  # holders first, then each waiter in turn
        task.cancel()
        await asyncio.sleep(0)
        assert limit.in_flight <= 3
    await asyncio.gather(*tasks, return_exceptions=True)
    assert limit.in_flight == 0 and limit.statistics().waiting == 0
    assert limit._starts == {}


@pytest.mark.looptime
async def test_async_with_measures_rtt_and_timeout_is_a_drop() -> None:
    rtts: list[tuple[float | None, bool]] = []

    class Recorder:
        def update(self, limit: float, *, rtt: float | None, in_flight: int, dropped: bool,
                   min_limit: int, max_limit: int) -> float:
            rtts.append((rtt, dropped))
            return limit

    limit = ConcurrencyLimit(2, algorithm=Recorder())
    async with limit:
        await asyncio.sleep(0.25)
    with pytest.raises(TimeoutError):
        async with limit:
            raise TimeoutError
    with pytest.raises(KeyError):
        async with limit:
            raise KeyError
    async with limit.slot() as slot:
        await asyncio.sleep(0.5)
        slot.dropped = True
    assert rtts == [(pytest.approx(0.25, abs=1e-5), False), (None, True), (None, False),
                    (pytest.approx(0.5, abs=1e-5), True)]
    assert limit.in_flight == 0


class Server:
    """A simulated server: fast up to `capacity` requests in flight, then queueing (latency grows with
    the load) or, with `drop_over`, rejecting the excess quickly (like a 503)."""

    def __init__(self, capacity: int, base: float = 0.1, drop_over: int | None = None) -> None:
        self.capacity = capacity
        self.base = base
        self.drop_over = drop_over
        self.in_flight = 0

    async def handle(self) -> bool:
        """Serve one request; False if it was dropped."""
        self.in_flight += 1
        try:
            n = self.in_flight
            if self.drop_over is not None and n > self.drop_over:
                await asyncio.sleep(self.base / 10)
                return False
            await asyncio.sleep(self.base * max(1.0, n / self.capacity))
            return True
        finally:
            self.in_flight -= 1


async def drive(limit: ConcurrencyLimit, server: Server, seconds: float, workers: int = 200) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def worker() -> None:
        while loop.time() < end:
            async with limit.slot() as slot:
                slot.dropped = not await server.handle()

    async with asyncio.TaskGroup() as tg:
        for _ in range(workers):
            tg.create_task(worker())


@pytest.mark.looptime
async def test_aimd_grows_while_latency_is_flat() -> None:
    limit = ConcurrencyLimit(10, algorithm=AIMD(), max_limit=150)
    await drive(limit, Server(capacity=10_000), seconds=3)
    assert limit.limit == 150
    values = [value for _, value in limit.statistics().trajectory]
    assert values == sorted(values)


@pytest.mark.looptime
async def test_aimd_settles_around_capacity_when_the_server_drops() -> None:
    limit = ConcurrencyLimit(10, algorithm=AIMD(), max_limit=1000)
    await drive(limit, Server(capacity=50, drop_over=50), seconds=10)
    stats = limit.statistics()
    tail = [value for _, value in stats.trajectory[-200:]]
    assert min(tail) >= 25 and max(tail) <= 120
    assert stats.dropped > 0


@pytest.mark.looptime
async def test_gradient2_grows_while_latency_is_flat_and_shrinks_when_it_rises() -> None:
    limit = ConcurrencyLimit(10, algorithm=Gradient2(), max_limit=1000)
    server = Server(capacity=10_000)
    await drive(limit, server, seconds=10, workers=300)
    grown = limit.limit
    assert grown >= 60  # flat latency: it kept probing upwards
    server.capacity = 20  # the server slows down: above 20 in flight, requests queue
    await drive(limit, server, seconds=10, workers=300)
    assert limit.limit < grown / 2
    assert limit.limit <= 40  # near the capacity (20) plus a queue of about sqrt(limit)


@pytest.mark.looptime
async def test_gradient2_shrinks_on_drops() -> None:
    limit = ConcurrencyLimit(200, algorithm=Gradient2(), max_limit=1000)
    await drive(limit, Server(capacity=1000, drop_over=40), seconds=5, workers=300)
    assert limit.limit <= 60
