"""GCRA rate limiters: the admission bound as a property, exact waits on a virtual clock, cancellation."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.aio import KeyedRateLimiter, RateLimiter


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def assert_window_bound(times: list[float], rate: float, burst: int) -> None:
    """Every window [times[i], times[j]] holds at most rate * width + burst admissions."""
    times = sorted(times)
    for i in range(len(times)):
        for j in range(i, len(times)):
            width = times[j] - times[i]
            assert j - i + 1 <= rate * width + burst + 1e-6, (i, j, width)


rates = st.floats(min_value=0.5, max_value=1000.0, allow_nan=False)
bursts = st.integers(min_value=1, max_value=20)
steps = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=0.5), st.integers(min_value=1, max_value=5)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(rate=rates, burst=bursts, steps=steps)
def test_rate_limiter_never_admits_more_than_rate_times_window_plus_burst(
    rate: float, burst: int, steps: list[tuple[float, int]]
) -> None:
    clock = ManualClock()
    limiter = RateLimiter(rate, burst, clock=clock)
    admitted: list[float] = []
    for advance, tries in steps:
        clock.t += advance
        for _ in range(tries):
            if limiter.acquire_nowait():
                admitted.append(clock.t)
    assert_window_bound(admitted, rate, burst)


@settings(max_examples=100, deadline=None)
@given(rate=rates, burst=bursts, steps=steps, keys=st.lists(st.sampled_from("abc"), min_size=60, max_size=60))
def test_keyed_limiter_bound_holds_per_key(
    rate: float, burst: int, steps: list[tuple[float, int]], keys: list[str]
) -> None:
    clock = ManualClock()
    limiter = KeyedRateLimiter(rate, burst, idle_ttl=0.1, clock=clock)
    admitted: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    for (advance, tries), key in zip(steps, keys, strict=False):
        clock.t += advance
        for _ in range(tries):
            if limiter.acquire_nowait(key):
                admitted[key].append(clock.t)
    for times in admitted.values():
        assert_window_bound(times, rate, burst)


@settings(max_examples=100, deadline=None)
@given(rate=rates, burst=bursts, advance=st.floats(min_value=0.0, max_value=5.0))
def test_wait_time_is_exactly_when_acquire_nowait_succeeds(rate: float, burst: int, advance: float) -> None:
    clock = ManualClock()
    limiter = RateLimiter(rate, burst, clock=clock)
    while limiter.acquire_nowait():
        pass
    clock.t += advance
    wait = limiter.wait_time()
    if wait > 0:
        assert not limiter.acquire_nowait()
    clock.t += wait
    assert limiter.acquire_nowait()


def test_burst_then_steady_rate() -> None:
    clock = ManualClock(100.0)
    limiter = RateLimiter(rate=10, burst=3, clock=clock)
    assert [limiter.acquire_nowait() for _ in range(4)] == [True, True, True, False]
    assert limiter.wait_time() == pytest.approx(0.1)
    clock.t += 0.1
    assert limiter.acquire_nowait()
    assert not limiter.acquire_nowait()


@pytest.mark.parametrize(
    "rate, burst", [(0, 1), (-1, 1), (float("inf"), 1), (float("nan"), 1), (1, 0), (1, 1.5)]
)
def test_invalid_arguments(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)
    with pytest.raises(ValueError):
        KeyedRateLimiter(rate, burst)


@pytest.mark.looptime
async def test_acquire_waits_exactly_the_virtual_time_needed() -> None:
    loop = asyncio.get_running_loop()
    limiter = RateLimiter(rate=4, burst=2)
    start = loop.time()
    times = []
    for _ in range(6):
        await limiter.acquire()
        times.append(loop.time() - start)
    assert times == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.75, 1.0], abs=1e-5)


@pytest.mark.looptime
async def test_waiters_are_served_first_come_first_served() -> None:
    limiter = RateLimiter(rate=10)
    order: list[int] = []

    async def take(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    async with asyncio.TaskGroup() as tg:
        for i in range(20):
            tg.create_task(take(i))
            await asyncio.sleep(0)  # make the arrival order explicit
    assert order == list(range(20))
    assert limiter.waiting == 0


@pytest.mark.looptime
async def test_acquire_nowait_refuses_while_others_wait() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.acquire_nowait()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.waiting == 1
    await asyncio.sleep(1.5)  # the slot at t=1 went to the waiter; the next is at t=2
    assert waiter.done()
    assert not limiter.acquire_nowait()


@pytest.mark.looptime
async def test_cancelled_waiter_takes_no_slot_and_leaves_no_timer() -> None:
    loop = asyncio.get_running_loop()
    limiter = RateLimiter(rate=1)
    start = loop.time()
    assert limiter.acquire_nowait()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.5)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.waiting == 0
    assert limiter._timer is None
    await limiter.acquire()  # the slot at t=1 is still there
    assert loop.time() - start == pytest.approx(1.0, abs=1e-5)


@pytest.mark.looptime
async def test_slot_granted_to_a_cancelled_waiter_passes_to_the_next() -> None:
    clock = ManualClock()
    limiter = RateLimiter(rate=1, clock=clock)
    assert limiter.acquire_nowait()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    clock.t = 1.0
    limiter._wake()  # grants `first` its slot; it has not resumed yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second  # got first's slot at t=1, no need to wait for t=2
    assert clock.t == 1.0
    assert not limiter.acquire_nowait()
    clock.t = 2.0
    assert limiter.acquire_nowait()


@pytest.mark.looptime
async def test_slot_granted_to_a_cancelled_last_waiter_is_given_back() -> None:
    clock = ManualClock()
    limiter = RateLimiter(rate=1, clock=clock)
    assert limiter.acquire_nowait()
    only = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    clock.t = 1.0
    limiter._wake()
    only.cancel()
    with pytest.raises(asyncio.CancelledError):
        await only
    assert limiter._timer is None
    assert limiter.acquire_nowait()  # the slot at t=1 was returned
    assert not limiter.acquire_nowait()


@pytest.mark.looptime
async def test_cancel_every_waiter_at_every_point() -> None:
    loop = asyncio.get_running_loop()
    limiter = RateLimiter(rate=10)
    tasks = [asyncio.create_task(limiter.acquire()) for _ in range(10)]
    await asyncio.sleep(0.35)  # 4 served (t=0, .1, .2, .3)
    for t in tasks:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    served = sum(r is None for r in results)
    assert served == 4
    assert limiter.waiting == 0 and limiter._timer is None
    start = loop.time()
    await limiter.acquire()  # next slot is t=0.4: nothing was consumed by the cancelled ones
    assert loop.time() - start == pytest.approx(0.05, abs=1e-5)


def test_keyed_limiter_is_independent_per_key() -> None:
    clock = ManualClock()
    limiter = KeyedRateLimiter(rate=1, burst=1, clock=clock)
    assert limiter.acquire_nowait("a")
    assert not limiter.acquire_nowait("a")
    assert limiter.acquire_nowait("b")
    assert limiter.wait_time("a") == pytest.approx(1.0)
    assert limiter.wait_time("new") == 0.0
    clock.t = 1.0
    assert limiter.acquire_nowait("a")


def test_keyed_limiter_forgets_idle_keys_and_stays_bounded() -> None:
    clock = ManualClock()
    limiter = KeyedRateLimiter(rate=10, burst=5, idle_ttl=1.0, clock=clock)
    # 100,000 distinct hosts, one request each, 1 ms apart: only about the last idle_ttl's worth stay.
    for i in range(100_000):
        clock.t = i * 0.001
        assert limiter.acquire_nowait(i)
        assert len(limiter._tats) <= 1_000 + 200 + 2
    assert len(limiter) <= 1_000 + 200
    clock.t += 10.0
    assert len(limiter) == 0


def test_keyed_limiter_keeps_active_keys() -> None:
    clock = ManualClock()
    limiter = KeyedRateLimiter(rate=1, burst=1, idle_ttl=0.5, clock=clock)
    for step in range(100):
        clock.t = step * 1.0
        assert limiter.acquire_nowait("busy")
        assert not limiter.acquire_nowait("busy")  # its state is remembered while it is used
        limiter.acquire_nowait(f"once-{step}")
    assert len(limiter) <= 3


@pytest.mark.looptime
async def test_keyed_acquire_waits_per_key_in_order() -> None:
    loop = asyncio.get_running_loop()
    limiter = KeyedRateLimiter(rate=2)
    start = loop.time()
    done: list[tuple[str, float]] = []

    async def take(key: str) -> None:
        await limiter.acquire(key)
        done.append((key, loop.time() - start))

    async with asyncio.TaskGroup() as tg:
        for key in ["a", "a", "b", "a", "b"]:
            tg.create_task(take(key))
    assert done == [("a", 0.0), ("b", 0.0), ("a", 0.5), ("b", 0.5), ("a", 1.0)]


@pytest.mark.looptime
async def test_keyed_cancelled_latest_waiter_gives_its_slot_back() -> None:
    loop = asyncio.get_running_loop()
    limiter = KeyedRateLimiter(rate=1)
    await limiter.acquire("k")
    waiter = asyncio.create_task(limiter.acquire("k"))
    await asyncio.sleep(0.5)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    start = loop.time()
    await limiter.acquire("k")
    assert loop.time() - start == pytest.approx(0.5, abs=1e-5)  # slot at t=1, not t=2


async def test_limiter_survives_a_second_event_loop() -> None:
    limiter = RateLimiter(rate=1000, burst=5)
    assert limiter.acquire_nowait()

    def other_loop() -> bool:
        async def use() -> bool:
            return limiter.acquire_nowait()

        return asyncio.run(use())

    assert await asyncio.to_thread(other_loop)


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_real_clocks_are_recognised_and_close_turns_are_spun(loop_name: str) -> None:
    from surge.aio import run
    from surge.aio._clock import is_real

    async def check() -> tuple[bool, bool, bool]:
        limiter = RateLimiter(rate=1000)  # next slot 1 ms away: closer than a timer can hit
        slow = RateLimiter(rate=10)  # 100 ms away: a timer
        assert limiter.acquire_nowait() and slow.acquire_nowait()
        fast_waiter = asyncio.create_task(limiter.acquire())
        slow_waiter = asyncio.create_task(slow.acquire())
        await asyncio.sleep(0)
        # A timer handle has when() (asyncio's and uvloop's alike); a call_soon handle has not.
        spun = not hasattr(limiter._timer, "when")
        timed = hasattr(slow._timer, "when")
        slow_waiter.cancel()
        await fast_waiter
        return is_real(asyncio.get_running_loop()), spun, timed

    assert run(check(), loop=loop_name) == (True, True, True)


@pytest.mark.looptime
async def test_virtual_clocks_are_never_spun() -> None:
    from surge.aio._clock import is_real

    assert not is_real(asyncio.get_running_loop())
    limiter = RateLimiter(rate=1000)
    assert limiter.acquire_nowait()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert isinstance(limiter._timer, asyncio.TimerHandle)  # a spin would never let virtual time move
    await waiter
