"""Batcher: size and delay triggers, per-item results and failures, cancellation, close."""

from __future__ import annotations

import asyncio
import doctest

import pytest

import surge.aio.batching as batching_module
from surge.aio.batching import Batcher
from surge.errors import BatcherClosed


def test_docstring_examples_run() -> None:
    assert doctest.testmod(batching_module).failed == 0


class Recorder:
    """A batch function that records every batch and the loop time it was sent."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.times: list[float] = []
        self.delay = delay

    async def __call__(self, items: list[int]) -> list[str]:
        self.batches.append(list(items))
        self.times.append(asyncio.get_running_loop().time())
        if self.delay:
            await asyncio.sleep(self.delay)
        return [f"r{i}" for i in items]


@pytest.mark.looptime
async def test_twenty_items_batched_by_five() -> None:
    fn = Recorder(delay=0.5)
    async with Batcher(fn, max_size=5, max_delay=1.0) as batcher:
        results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
    assert results == [f"r{i}" for i in range(20)]
    assert fn.batches == [list(range(i, i + 5)) for i in range(0, 20, 5)]
    # Every batch was full at once: none waited for max_delay.
    assert fn.times == [0, 0, 0, 0]
    assert batcher.batches == 4


@pytest.mark.looptime
async def test_partial_batch_flushed_after_max_delay_from_first_item() -> None:
    fn = Recorder()
    batcher: Batcher[int, str] = Batcher(fn, max_size=10, max_delay=2.0)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(1.5)
    second = asyncio.create_task(batcher.submit(2))
    assert await first == "r1"
    assert await second == "r2"
    assert fn.times == [pytest.approx(2.0)]
    assert fn.batches == [[1, 2]]
    # The next batch gets its own timer.
    assert await batcher.submit(3) == "r3"
    assert fn.times[1] == pytest.approx(4.0)
    await batcher.close()


@pytest.mark.looptime
async def test_close_flushes_remainder_and_waits() -> None:
    fn = Recorder(delay=1.0)
    batcher: Batcher[int, str] = Batcher(fn, max_size=10, max_delay=100.0)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    await batcher.close()
    assert asyncio.get_running_loop().time() == pytest.approx(1.0)
    assert all(t.done() for t in tasks)
    assert [t.result() for t in tasks] == ["r0", "r1", "r2"]
    with pytest.raises(BatcherClosed):
        await batcher.submit(9)
    await batcher.close()  # idempotent


async def test_failing_batch_fails_each_item() -> None:
    calls = 0

    async def fn(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if 3 in items:
            raise RuntimeError("bulk insert failed")
        return items

    async with Batcher(fn, max_size=2, max_delay=0.1) as batcher:
        results = await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)
    assert results[0:2] == [0, 1] and results[4:6] == [4, 5]
    assert all(isinstance(r, RuntimeError) for r in results[2:4])
    assert calls == 3


async def test_wrong_number_of_results_fails_each_item() -> None:
    async def fn(items: list[int]) -> list[int]:
        return items[:-1]

    async with Batcher(fn, max_size=3, max_delay=0.1) as batcher:
        results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ValueError) and "2 results for 3 items" in str(r) for r in results)


@pytest.mark.looptime
async def test_cancelled_caller_before_send_is_withdrawn() -> None:
    fn = Recorder()
    batcher: Batcher[int, str] = Batcher(fn, max_size=3, max_delay=1.0)
    a = asyncio.create_task(batcher.submit(1))
    b = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0)
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b
    assert batcher.pending == 1
    c = asyncio.create_task(batcher.submit(3))
    assert await a == "r1"
    assert await c == "r3"
    assert fn.batches == [[1, 3]]  # 2 was not sent; nobody else's item was lost
    await batcher.close()


@pytest.mark.looptime
async def test_cancel_in_the_instant_before_the_flush() -> None:
    fn = Recorder()
    batcher: Batcher[int, str] = Batcher(fn, max_size=2, max_delay=1.0)
    a = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    a.cancel()  # its future is cancelled, but its except-block has not run yet
    b = asyncio.create_task(batcher.submit(2))  # fills the batch and flushes right away
    with pytest.raises(asyncio.CancelledError):
        await a
    await asyncio.sleep(1.5)
    assert await b == "r2"
    assert fn.batches == [[2]]
    await batcher.close()


@pytest.mark.looptime
async def test_cancelled_caller_after_send_result_discarded() -> None:
    fn = Recorder(delay=1.0)
    batcher: Batcher[int, str] = Batcher(fn, max_size=2, max_delay=5.0)
    a = asyncio.create_task(batcher.submit(1))
    b = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0.5)  # the batch is in flight
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    assert await b == "r2"
    assert fn.batches == [[1, 2]]
    await batcher.close()


@pytest.mark.looptime
async def test_only_cancelled_callers_cancel_the_timer() -> None:
    fn = Recorder()
    batcher: Batcher[int, str] = Batcher(fn, max_size=5, max_delay=1.0)
    a = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    assert batcher.pending == 0
    await asyncio.sleep(10)
    assert fn.batches == []  # nothing sent: the timer went with the last pending item
    await batcher.close()


@pytest.mark.looptime
async def test_cancelled_close_fails_items_with_batcher_closed() -> None:
    fn = Recorder(delay=10.0)
    batcher: Batcher[int, str] = Batcher(fn, max_size=2, max_delay=1.0)
    items = [asyncio.create_task(batcher.submit(i)) for i in range(2)]
    await asyncio.sleep(0)
    closer = asyncio.create_task(batcher.close())
    await asyncio.sleep(1)
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    results = await asyncio.gather(*items, return_exceptions=True)
    assert all(isinstance(r, BatcherClosed) for r in results)
    assert batcher.in_flight == 0


@pytest.mark.looptime
async def test_max_concurrency_runs_batches_one_at_a_time() -> None:
    fn = Recorder(delay=1.0)
    async with Batcher(fn, max_size=2, max_delay=0.1, max_concurrency=1) as batcher:
        await asyncio.gather(*(batcher.submit(i) for i in range(6)))
    assert asyncio.get_running_loop().time() == pytest.approx(3.0)


def test_bad_arguments() -> None:
    fn = Recorder()
    with pytest.raises(ValueError, match="max_size"):
        Batcher(fn, max_size=0, max_delay=1)
    with pytest.raises(ValueError, match="max_delay"):
        Batcher(fn, max_size=1, max_delay=-1)
    with pytest.raises(ValueError, match="max_concurrency"):
        Batcher(fn, max_size=1, max_delay=1, max_concurrency=0)
    assert "open" in repr(Batcher(fn, max_size=1, max_delay=1))
