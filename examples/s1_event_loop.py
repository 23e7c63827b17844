"""Playbook section 1 on surge.aio: two coroutines run concurrently, and the running loop inspected.

    python examples/s1_event_loop.py [--loop auto|asyncio|uvloop|rloop]
"""

from __future__ import annotations

import asyncio
import sys
import time

from surge.aio import available_loops, loop_name, run


async def task1() -> str:
    print("Task 1 started")
    await asyncio.sleep(0.10)
    print("Task 1 done")
    return "Result 1"


async def task2() -> str:
    print("Task 2 started")
    await asyncio.sleep(0.05)
    print("Task 2 done")
    return "Result 2"


async def inspect_event_loop() -> None:
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    print(f"event loop: {loop_name(loop)} ({type(loop).__module__}.{type(loop).__name__})")
    print(f"running: {loop.is_running()}, closed: {loop.is_closed()}")
    print(f"current task: {current.get_name() if current else None}")
    helpers = [asyncio.create_task(asyncio.sleep(0.01), name=f"helper-{i}") for i in range(2)]
    tasks = asyncio.all_tasks()
    print(f"tasks alive: {len(tasks)}")
    for task in sorted(tasks, key=lambda t: t.get_name()):
        print(f"  - {task.get_name()}")
    await asyncio.gather(*helpers)


async def main() -> None:
    start = time.perf_counter()
    results = await asyncio.gather(task1(), task2())
    elapsed = time.perf_counter() - start
    print(f"results: {results}")
    # Both sleeps overlap: the pair takes as long as the longer one, not the sum.
    print(f"elapsed: {elapsed:.2f} s (sequential would be 0.15 s)")
    await inspect_event_loop()


if __name__ == "__main__":
    choice = sys.argv[sys.argv.index("--loop") + 1] if "--loop" in sys.argv else "auto"
    print(f"available loops: {', '.join(available_loops())}")
    run(main(), loop=choice)
