"""Playbook section 6 on surge.aio: the same gather of many short sleeps on asyncio and on uvloop.

Small N so it runs in a blink; `surge bench loops` is the real measurement.

    python examples/s6_uvloop.py [-n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from surge.aio import available_loops, loop_name, run


async def simple_task(task_id: int) -> int:
    await asyncio.sleep(0.001)
    return task_id


async def benchmark_event_loop(num_tasks: int) -> tuple[str, float, int]:
    start = time.perf_counter()
    results = await asyncio.gather(*(simple_task(i) for i in range(num_tasks)))
    return loop_name(), time.perf_counter() - start, len(results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000, help="tasks per loop")
    args = parser.parse_args()
    timings: dict[str, float] = {}
    for name in ("asyncio", "uvloop"):
        if name not in available_loops():
            print(f"=== {name}: not installed (pip install {name}) ===")
            continue
        used, elapsed, count = run(benchmark_event_loop(args.n), loop=name)
        timings[name] = elapsed
        print(f"=== {used} ===")
        print(f"  {count} tasks completed")
        print(f"  time: {elapsed:.3f} s")
        print(f"  throughput: {count / elapsed:,.0f} tasks/s")
    if len(timings) == 2:
        print(f"uvloop vs asyncio: {timings['asyncio'] / timings['uvloop']:.2f}x (one small noisy run)")


if __name__ == "__main__":
    main()
