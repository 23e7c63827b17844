"""Playbook section 2 on surge.aio: tasks, cancellation, timeouts, errors, TaskGroup, back-pressure
and a graceful shutdown driven by a real signal.

    python examples/s2_tasks.py
"""

from __future__ import annotations

import asyncio
import os
import signal

from surge.aio import Shutdown, WatermarkQueue, amap, run


async def fetch_data(url: str, delay: float) -> str:
    await asyncio.sleep(delay)
    return f"Data from {url}"


async def task_creation() -> None:
    print("== create_task + gather ==")
    t1 = asyncio.create_task(fetch_data("api1", 0.02), name="API-1")
    t2 = asyncio.create_task(fetch_data("api2", 0.01), name="API-2")
    print(f"results: {await asyncio.gather(t1, t2)}")


async def long_running_task() -> str:
    try:
        await asyncio.sleep(10)
        return "Success"
    except asyncio.CancelledError:
        print("long task: cancelled, cleaning up")
        raise  # always re-raise


async def cancellation_and_timeout() -> None:
    print("== cancellation ==")
    task = asyncio.create_task(long_running_task())
    await asyncio.sleep(0.01)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print(f"task cancelled: {task.cancelled()}")
    print("== timeout ==")
    try:
        async with asyncio.timeout(0.02):
            await long_running_task()
    except TimeoutError:
        print("timed out after 0.02 s")


async def task_with_error(task_id: int) -> str:
    await asyncio.sleep(0.01)
    if task_id == 2:
        raise ValueError(f"Task {task_id} failed")
    return f"Task {task_id} success"


async def error_policies() -> None:
    print("== errors: amap(on_error='return') keeps going, one result per input ==")
    async with amap(task_with_error, [1, 2, 3], concurrency=3, ordered=True, on_error="return") as results:
        i = 0
        async for result in results:
            i += 1
            print(f"task {i}: {'failed: ' if isinstance(result, Exception) else ''}{result}")
    print("== TaskGroup: one failure cancels its siblings ==")
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(task_with_error(1))
            tg.create_task(task_with_error(2))
            tg.create_task(long_running_task())
    except* ValueError as group:
        print(f"TaskGroup failed with {len(group.exceptions)} error(s): {group.exceptions[0]}")


async def backpressure() -> None:
    print("== back-pressure: fast producer, slow consumer, WatermarkQueue(high=8, low=2) ==")
    queue: WatermarkQueue[int] = WatermarkQueue(high=8, low=2)
    deepest = 0

    async def producer() -> None:
        nonlocal deepest
        for i in range(40):
            await queue.put(i)  # really waits while paused, unlike the playbook's sketch
            deepest = max(deepest, queue.qsize())
        queue.close()

    consumed = 0

    async def consumer() -> None:
        nonlocal consumed
        async for _ in queue:
            consumed += 1
            await asyncio.sleep(0.002)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(producer())
        tg.create_task(consumer())
    stats = queue.statistics()
    print(f"produced 40, consumed {consumed}, pauses {stats.pauses}, max depth {stats.max_depth} (high 8)")


async def graceful_shutdown() -> None:
    print("== graceful shutdown on SIGTERM ==")
    drained = 0
    started = 0

    async def worker(sd: Shutdown, worker_id: int) -> None:
        nonlocal drained, started
        while not sd.requested:  # stop taking new work once a stop is requested
            started += 1
            await asyncio.sleep(0.01)  # a unit of work, finished even after the signal
            drained += 1

    async with Shutdown(drain_timeout=0.5) as sd:
        sd.on_stop(print, "stop requested: intake closed, draining")
        asyncio.get_running_loop().call_later(0.035, os.kill, os.getpid(), signal.SIGTERM)
        async with asyncio.TaskGroup() as tg:
            for i in range(3):
                tg.create_task(worker(sd, i))
    print(f"signal: {sd.received_signal.name if sd.received_signal else None}, "
          f"units started {started}, finished {drained}, forced: {sd.forced}")

    print("== a stuck worker: the drain deadline cancels it ==")
    async with Shutdown(drain_timeout=0.05, signals=(signal.SIGTERM,)) as sd:
        asyncio.get_running_loop().call_later(0.01, os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.sleep(10)  # never finishes on its own
    print(f"forced: {sd.forced}")


async def main() -> None:
    await task_creation()
    await cancellation_and_timeout()
    await error_policies()
    await backpressure()
    await graceful_shutdown()


if __name__ == "__main__":
    run(main())
