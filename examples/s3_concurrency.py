"""Playbook section 3 on surge.aio: a concurrency limit instead of a bare Semaphore, Lock and Event,
and 5 producers / 3 consumers on a WatermarkQueue.

    python examples/s3_concurrency.py
"""

from __future__ import annotations

import asyncio
import random
import time

from surge.aio import ConcurrencyLimit, WatermarkQueue, amap, run


async def limited_fetches() -> None:
    print("== at most 3 at a time: ConcurrencyLimit(3) ==")
    limit = ConcurrencyLimit(3)
    peak = 0

    async def fetch_url(url: str) -> str:
        nonlocal peak
        async with limit:
            peak = max(peak, limit.in_flight)
            await asyncio.sleep(0.02)  # the network request
            return f"Data from {url}"

    urls = [f"https://example.com/page{i}" for i in range(10)]
    start = time.perf_counter()
    results = await asyncio.gather(*(fetch_url(u) for u in urls))
    elapsed = time.perf_counter() - start
    print(f"{len(results)} URLs, peak in flight {peak}, {elapsed:.2f} s (4 rounds of 0.02 s)")

    print("== the same with amap: 3 workers, no task per URL ==")
    running = peak = 0

    async def fetch(url: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return f"Data from {url}"

    async with amap(fetch, urls, concurrency=3, ordered=True) as results_iter:
        ordered = [r async for r in results_iter]
    print(f"{len(ordered)} URLs in input order: {ordered[0]!r} .. {ordered[-1]!r}, peak {peak}")


async def lock_and_event() -> None:
    print("== Lock: 5 workers increment a shared value ==")
    lock = asyncio.Lock()
    value = 0

    async def increment() -> None:
        nonlocal value
        async with lock:
            current = value
            await asyncio.sleep(0.001)  # without the lock, every worker would read 0
            value = current + 1

    await asyncio.gather(*(increment() for _ in range(5)))
    print(f"final value: {value}")

    print("== Event: 3 waiters released at once ==")
    event = asyncio.Event()
    released: list[int] = []

    async def waiter(i: int) -> None:
        await event.wait()
        released.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    print(f"before set: {len(released)} released")
    event.set()
    await asyncio.gather(*tasks)
    print(f"after set: {len(released)} released")


async def producers_consumers() -> None:
    print("== 5 producers / 3 consumers on WatermarkQueue(high=6, low=2) ==")
    rng = random.Random(7)
    queue: WatermarkQueue[str] = WatermarkQueue(high=6, low=2)
    handled: dict[int, int] = {0: 0, 1: 0, 2: 0}

    async def producer(pid: int) -> None:
        for i in range(5):
            await queue.put(f"P{pid}-Item{i}")
            await asyncio.sleep(rng.uniform(0.0005, 0.002))

    async def consumer(cid: int) -> None:
        async for _item in queue:  # ends when the queue is closed and drained
            await asyncio.sleep(rng.uniform(0.002, 0.006))
            handled[cid] += 1

    async with asyncio.TaskGroup() as tg:
        for c in range(3):
            tg.create_task(consumer(c))
        async with asyncio.TaskGroup() as producing:
            for p in range(5):
                producing.create_task(producer(p))
        queue.close()  # no sentinel values needed
    stats = queue.statistics()
    print(f"produced {stats.puts}, consumed {sum(handled.values())} "
          f"({', '.join(f'consumer {c}: {n}' for c, n in handled.items())})")
    print(f"max depth {stats.max_depth}, pauses {stats.pauses}")


async def main() -> None:
    await limited_fetches()
    await lock_and_event()
    await producers_consumers()


if __name__ == "__main__":
    run(main())
