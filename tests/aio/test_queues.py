"""WatermarkQueue: hysteresis, nowait variants, close, statistics, and cancellation at every await."""

from __future__ import annotations

import asyncio
import doctest

import pytest

import surge.aio.queues as queues_module
from surge.aio.queues import WatermarkQueue
from surge.errors import QueueClosed


def test_docstring_examples_run() -> None:
    assert doctest.testmod(queues_module).failed == 0


def test_bad_watermarks() -> None:
    with pytest.raises(ValueError, match="high"):
        WatermarkQueue(0)
    with pytest.raises(ValueError, match="low"):
        WatermarkQueue(4, 4)
    with pytest.raises(ValueError, match="low"):
        WatermarkQueue(4, -1)
    assert WatermarkQueue(9).low == 4


async def test_fifo_and_nowait() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=3, low=1)
    q.put_nowait(1)
    await q.put(2)
    assert q.qsize() == len(q) == 2
    assert q.get_nowait() == 1
    assert await q.get() == 2
    assert q.empty()
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


async def test_producer_pauses_at_high_until_drained_to_low() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=4, low=1)
    for i in range(4):
        q.put_nowait(i)
    assert q.paused
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(99)
    put = asyncio.create_task(q.put(4))
    await asyncio.sleep(0)
    assert not put.done()
    # Below high but above low: still paused (the playbook's queue would let the producer in here).
    q.get_nowait()
    q.get_nowait()
    await asyncio.sleep(0)
    assert not put.done()
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(99)
    q.get_nowait()  # depth 1 == low: resume
    await put
    assert not q.paused
    assert [q.get_nowait() for _ in range(2)] == [3, 4]
    stats = q.statistics()
    assert stats.pauses == 1 and stats.max_depth == 4 and stats.puts == 5 and stats.gets == 5


async def test_resumed_putters_are_served_in_order_and_pause_again() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=3, low=0)
    for i in range(3):
        q.put_nowait(i)
    putters = [asyncio.create_task(q.put(10 + i)) for i in range(5)]
    await asyncio.sleep(0)
    for _ in range(3):
        q.get_nowait()
    await asyncio.sleep(0)
    # Room for three: the first three putters went in, in order, and the queue paused again.
    assert [p.done() for p in putters] == [True, True, True, False, False]
    assert q.paused
    assert [q.get_nowait() for _ in range(3)] == [10, 11, 12]
    await asyncio.gather(*putters)
    assert [q.get_nowait() for _ in range(2)] == [13, 14]
    assert q.statistics().pauses == 2


async def test_getter_taking_below_high_lets_remaining_putters_in() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=4, low=2)
    for i in range(4):
        q.put_nowait(i)
    putters = [asyncio.create_task(q.put(10 + i)) for i in range(4)]
    await asyncio.sleep(0)
    q.get_nowait()
    q.get_nowait()  # depth 2: resume, two slots granted
    q.get_nowait()  # before they run: one more slot, granted as well
    await asyncio.sleep(0)
    assert sum(p.done() for p in putters) == 3
    assert q.qsize() == 4 and q.paused
    for _ in range(2):
        q.get_nowait()
    await asyncio.gather(*putters)


@pytest.mark.looptime
async def test_time_paused_uses_loop_clock() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=2, low=0)
    q.put_nowait(1)
    q.put_nowait(2)
    await asyncio.sleep(5)
    assert q.statistics().time_paused == pytest.approx(5)
    q.get_nowait()
    await asyncio.sleep(1)
    q.get_nowait()
    await asyncio.sleep(100)
    stats = q.statistics()
    assert stats.time_paused == pytest.approx(6)
    assert not stats.paused and stats.depth == 0


@pytest.mark.looptime
async def test_five_producers_three_consumers_never_exceed_high() -> None:
    q: WatermarkQueue[tuple[int, int]] = WatermarkQueue(high=8, low=2)
    got: list[tuple[int, int]] = []
    depths: list[int] = []

    async def producer(p: int) -> None:
        for i in range(20):
            await q.put((p, i))
            depths.append(q.qsize())
            await asyncio.sleep(0.01)

    async def consumer() -> None:
        async for item in q:
            got.append(item)
            await asyncio.sleep(0.05)

    async with asyncio.TaskGroup() as tg:
        consumers = [tg.create_task(consumer()) for _ in range(3)]
        async with asyncio.TaskGroup() as producers:
            for p in range(5):
                producers.create_task(producer(p))
        q.close()
    assert all(c.done() for c in consumers)
    assert sorted(got) == [(p, i) for p in range(5) for i in range(20)]
    for p in range(5):
        assert [i for (pp, i) in got if pp == p] == list(range(20))
    assert max(depths) <= 8
    stats = q.statistics()
    assert stats.max_depth == 8 and stats.pauses >= 2 and stats.time_paused > 0


async def test_close_drains_then_raises() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=5)
    q.put_nowait(1)
    q.put_nowait(2)
    q.close()
    q.close()
    assert q.closed
    with pytest.raises(QueueClosed):
        q.put_nowait(3)
    with pytest.raises(QueueClosed):
        await q.put(3)
    assert await q.get() == 1
    assert q.get_nowait() == 2
    with pytest.raises(QueueClosed):
        await q.get()
    with pytest.raises(QueueClosed):
        q.get_nowait()


async def test_close_wakes_waiting_getters_and_putters() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=1, low=0)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.put_nowait(1)
    assert await getter == 1
    q.put_nowait(2)
    putter = asyncio.create_task(q.put(3))
    getters = [asyncio.create_task(q.get()) for _ in range(2)]
    await asyncio.sleep(0)
    q.close()
    results = await asyncio.gather(putter, *getters, return_exceptions=True)
    assert isinstance(results[0], QueueClosed)
    assert sorted(map(repr, results[1:])) == sorted([repr(2), repr(QueueClosed("queue closed and drained"))])
    stats = q.statistics()
    assert stats.waiting_getters == 0 and stats.waiting_putters == 0 and stats.closed


async def test_cancel_waiting_putter_leaves_nothing() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=1, low=0)
    q.put_nowait(0)
    putter = asyncio.create_task(q.put(1))
    await asyncio.sleep(0)
    assert q.statistics().waiting_putters == 1
    putter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await putter
    assert q.statistics().waiting_putters == 0
    assert q.get_nowait() == 0
    assert q.empty()  # item 1 was not put
    q.put_nowait(2)  # no phantom waiter blocks the way
    assert q.get_nowait() == 2


async def test_cancel_granted_putter_passes_its_slot_on() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=1, low=0)
    q.put_nowait(0)
    first = asyncio.create_task(q.put(1))
    second = asyncio.create_task(q.put(2))
    await asyncio.sleep(0)
    q.get_nowait()  # resume: the slot is granted to `first`...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert q.get_nowait() == 2
    assert q.empty()
    q.put_nowait(3)  # nothing reserved is left behind
    assert q.get_nowait() == 3


async def test_cancel_waiting_getter_leaves_nothing() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=4)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert q.statistics().waiting_getters == 0
    q.put_nowait(1)
    assert q.get_nowait() == 1


async def test_cancel_woken_getter_passes_the_item_on() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=4)
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.put_nowait(7)  # wakes `first`...
    first.cancel()  # ...which is cancelled before it takes the item
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == 7


async def test_get_nowait_stealing_from_a_woken_getter() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=4)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.put_nowait(1)
    assert q.get_nowait() == 1  # taken before the woken getter runs: it waits again
    await asyncio.sleep(0)
    assert not getter.done()
    q.put_nowait(2)
    assert await getter == 2


def test_repr_and_stats_without_loop() -> None:
    q: WatermarkQueue[int] = WatermarkQueue(high=2, low=1, clock=lambda: 0.0)
    q.put_nowait(1)
    q.put_nowait(2)
    assert "paused" in repr(q)
    assert q.statistics().paused
