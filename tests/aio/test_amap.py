"""amap: order, bounded look-ahead, error policies, rate, cancellation and cleanup."""

from __future__ import annotations

import asyncio
import doctest
import importlib
import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

from surge.aio.amap import AsyncMap, amap
from surge.aio.ratelimit import RateLimiter

# surge.aio's ``amap`` attribute is the function, so reach the module through the import system.
amap_module = importlib.import_module("surge.aio.amap")


def test_docstring_examples_run() -> None:
    assert doctest.testmod(amap_module).failed == 0


async def ident(x: int) -> int:
    return x


async def sleepy(x: float) -> float:
    await asyncio.sleep(x)
    return x


def other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


class Source:
    """An endless sync source that counts what was pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        for i in itertools.count():
            self.pulled += 1
            yield i


@pytest.mark.looptime
async def test_completion_order_follows_finish_time() -> None:
    delays = [0.5, 0.1, 0.3, 0.2]
    out = [r async for r in amap(sleepy, delays, concurrency=4)]
    assert out == [0.1, 0.2, 0.3, 0.5]
    assert asyncio.get_running_loop().time() == pytest.approx(0.5)


@pytest.mark.looptime
async def test_ordered_yields_input_order() -> None:
    delays = [0.5, 0.1, 0.3, 0.2, 0.05]
    out = [r async for r in amap(sleepy, delays, concurrency=5, ordered=True)]
    assert out == delays


@pytest.mark.looptime
async def test_concurrency_bounds_running_calls() -> None:
    running = peak = 0

    async def fn(x: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(1)
        running -= 1
        return x

    out = [r async for r in amap(fn, range(10), concurrency=3)]
    assert sorted(out) == list(range(10))
    assert peak == 3
    # 10 items of 1 s, 3 at a time: 4 rounds.
    assert asyncio.get_running_loop().time() == pytest.approx(4)


async def test_async_iterable_source() -> None:
    async def gen() -> AsyncIterator[int]:
        for i in range(50):
            await asyncio.sleep(0)
            yield i

    out = [r async for r in amap(ident, gen(), concurrency=7, ordered=True)]
    assert out == list(range(50))


async def test_empty_input() -> None:
    assert [r async for r in amap(ident, [], concurrency=3)] == []


@pytest.mark.parametrize("ordered", [False, True])
@pytest.mark.looptime
async def test_endless_source_pulls_at_most_concurrency_plus_buffer(ordered: bool) -> None:
    source = Source()
    results = amap(ident, source, concurrency=4, buffer=3, ordered=ordered)
    async with results:
        taken = [await anext(results) for _ in range(5)]
        await asyncio.sleep(10)  # consumer stalls; workers must stop pulling
        assert source.pulled == 5 + 4 + 3  # they run ahead that far, and no further
    assert len(taken) == 5
    assert other_tasks() == set()


@pytest.mark.looptime
async def test_slow_head_back_pressures_input_when_ordered() -> None:
    source = Source()

    async def fn(x: int) -> int:
        await asyncio.sleep(100 if x == 0 else 0.01)
        return x

    async with amap(fn, source, concurrency=3, buffer=2, ordered=True) as results:
        first = asyncio.ensure_future(anext(results))
        await asyncio.sleep(50)
        # Item 0 is still running; the reorder buffer is full, so pulling stopped.
        assert not first.done()
        assert source.pulled == 3 + 2
        assert await first == 0
        assert await anext(results) == 1


@pytest.mark.looptime
async def test_async_source_also_bounded() -> None:
    pulled = 0

    async def gen() -> AsyncIterator[int]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield i

    async with amap(ident, gen(), concurrency=2, buffer=1) as results:
        await anext(results)
        await asyncio.sleep(1)
        assert pulled == 1 + 2 + 1


@pytest.mark.looptime
async def test_raise_cancels_the_rest_and_raises_after_cleanup() -> None:
    cancelled: list[int] = []

    async def fn(x: int) -> int:
        if x == 3:
            await asyncio.sleep(0.5)
            raise ValueError("boom")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(x)
            raise
        return x

    with pytest.raises(ValueError, match="boom"):
        async for _ in amap(fn, range(100), concurrency=5):
            pass
    # Every other in-flight call was cancelled before the error reached us; no worker is left.
    assert sorted(cancelled) == [0, 1, 2, 4]
    assert other_tasks() == set()
    assert asyncio.get_running_loop().time() == pytest.approx(0.5)


@pytest.mark.looptime
async def test_raise_delivers_results_finished_before_the_error() -> None:
    async def fn(x: int) -> int:
        await asyncio.sleep(x)
        if x == 2:
            raise KeyError(x)
        return x

    got: list[int] = []
    with pytest.raises(KeyError):
        async for r in amap(fn, [1, 2, 3], concurrency=3):
            got.append(r)
    assert got == [1]


async def test_return_policy_yields_exceptions_in_place() -> None:
    async def fn(x: int) -> float:
        return 1 / x

    out = [r async for r in amap(fn, [1, 0, 2], concurrency=2, ordered=True, on_error="return")]
    assert out[0] == 1.0 and out[2] == 0.5
    assert isinstance(out[1], ZeroDivisionError)


@pytest.mark.parametrize("ordered", [False, True])
async def test_skip_policy_drops_failures(ordered: bool) -> None:
    async def fn(x: int) -> int:
        if x % 3 == 0:
            raise RuntimeError(x)
        return x

    out = [r async for r in amap(fn, range(30), concurrency=4, ordered=ordered, on_error="skip", buffer=0)]
    expected = [x for x in range(30) if x % 3]
    assert (out if ordered else sorted(out)) == expected


@pytest.mark.parametrize("policy", ["return", "skip"])
async def test_source_errors_always_raise(policy: str) -> None:
    def source() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        async for _ in amap(ident, source(), concurrency=2, on_error=policy):  # type: ignore[call-overload]
            pass


async def start_times(n: int, *, concurrency: int, rate: float) -> list[float]:
    """When each of ``n`` calls started (loop time), after checking every item came back."""
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def fn(x: int) -> int:
        starts.append(loop.time())
        return x

    out = [r async for r in amap(fn, range(n), concurrency=concurrency, rate=rate)]
    assert sorted(out) == list(range(n))
    return starts


@pytest.mark.looptime
async def test_rate_limits_starts() -> None:
    starts = await start_times(11, concurrency=5, rate=10)
    # 10 per second, burst 1 (below 200/s): 11 starts span 1 s.
    assert starts[-1] - starts[0] == pytest.approx(1.0, abs=1e-3)
    for a, b in itertools.pairwise(starts):
        assert b - a == pytest.approx(0.1, abs=1e-3)


@pytest.mark.looptime
async def test_high_rate_starts_a_small_burst_then_keeps_the_rate() -> None:
    starts = await start_times(1010, concurrency=50, rate=1000)
    # Burst 10 (10 ms worth) at once, then one every millisecond: the last of 1010 starts at t = 1 s.
    assert starts[:10] == [starts[0]] * 10
    assert starts[10] - starts[0] == pytest.approx(0.001, abs=1e-6)
    assert starts[-1] - starts[0] == pytest.approx(1.0, abs=1e-6)
    # Never more than rate * window + burst starts in any window.
    for i, t in enumerate(starts):
        in_window = sum(1 for u in starts[i:] if u < t + 0.1)
        assert in_window <= 1000 * 0.1 + 10


def _admitted_in_one_second(rate: float, burst: int, late: float) -> int:
    # A caller that always wakes ``late`` seconds after the limiter said it may go, as real timers do.
    now = [0.0]
    limiter = RateLimiter(rate, burst, clock=lambda: now[0])
    admitted = 0
    while now[0] < 1.0:
        if limiter.acquire_nowait():
            admitted += 1
        else:
            now[0] += limiter.wait_time() + late
    return admitted


def test_amap_rate_burst_absorbs_late_timers() -> None:
    rate, late = 1000.0, 0.0005
    # What amap uses keeps the rate despite every wake-up being half an interval late ...
    assert _admitted_in_one_second(rate, amap_module._rate_burst(rate), late) >= rate
    # ... where burst 1 loses every late wake-up for good and runs a third below it.
    assert _admitted_in_one_second(rate, 1, late) < 0.7 * rate


@pytest.mark.looptime
async def test_cancelling_the_consumer_cancels_workers() -> None:
    cancelled = 0

    async def fn(x: int) -> int:
        nonlocal cancelled
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return x

    results = amap(fn, range(100), concurrency=4)

    async def consume() -> None:
        async for _ in results:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == 4
    assert other_tasks() == set()
    # Closed for good.
    with pytest.raises(StopAsyncIteration):
        await anext(results)


@pytest.mark.looptime
async def test_break_with_aclose_leaves_nothing() -> None:
    source = Source()
    async with amap(sleepy, (0.1 for _ in source), concurrency=3) as results:
        async for _ in results:
            break
    assert other_tasks() == set()


@pytest.mark.looptime
async def test_break_without_aclose_still_cancels_workers() -> None:
    async def gen_consumer() -> None:
        async for _ in amap(sleepy, itertools.repeat(0.1), concurrency=3):
            break

    await gen_consumer()
    # The dropped iterator's finalizer cancelled the driver: its tasks end by cancellation, while
    # workers left running would go on with the endless input until the (virtual) timeout.
    left = other_tasks()
    assert left
    _, pending = await asyncio.wait(left, timeout=60)
    assert not pending
    assert all(t.cancelled() for t in left)


@pytest.mark.looptime
async def test_aclose_while_gate_waiting() -> None:
    results = amap(ident, Source(), concurrency=2, buffer=0)
    assert await anext(results) in (0, 1)
    await asyncio.sleep(1)  # workers are blocked on the look-ahead gate
    await results.aclose()
    await results.aclose()  # idempotent
    assert other_tasks() == set()


async def test_aclose_before_start() -> None:
    results = amap(ident, range(3), concurrency=2)
    await results.aclose()
    assert [r async for r in results] == []


class Fatal(BaseException):
    pass


async def test_base_exceptions_are_not_item_errors() -> None:
    async def fn(x: int) -> int:
        raise Fatal

    with pytest.raises(Fatal):
        async for _ in amap(fn, range(3), concurrency=1, on_error="skip"):
            pass


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 1, "buffer": -1}, "buffer"),
        ({"concurrency": 1, "rate": 0}, "rate"),
        ({"concurrency": 1, "on_error": "ignore"}, "on_error"),
    ],
)
def test_bad_arguments(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        amap(ident, [], **kw)  # type: ignore[call-overload]


def test_returns_async_map() -> None:
    assert isinstance(amap(ident, [], concurrency=1), AsyncMap)


@pytest.mark.looptime
async def test_aclose_while_workers_wait_on_rate_and_source() -> None:
    """Workers parked in each await (rate limiter, async source's lock and __anext__, fn) all go."""
    closed: list[str] = []

    async def slow_source() -> AsyncIterator[float]:
        try:
            while True:
                await asyncio.sleep(5)
                yield 100.0
        finally:
            closed.append("source")

    source = slow_source()
    results = amap(sleepy, source, concurrency=4, rate=1)
    first = asyncio.ensure_future(anext(results))
    await asyncio.sleep(7)  # one worker in fn, one in __anext__, others waiting for the lock or rate
    assert not first.done()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert other_tasks() == set()
    await source.aclose()
    assert closed == ["source"]


@pytest.mark.looptime
async def test_cancel_ordered_consumer_waiting_for_head() -> None:
    async def fn(x: int) -> int:
        await asyncio.sleep(100 if x == 0 else 0)
        return x

    results = amap(fn, range(10), concurrency=3, ordered=True)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1):
            await anext(results)
    assert other_tasks() == set()
