"""Benchmark: surge.aio.amap against a hand-written worker pool and the playbook's Semaphore + gather.

Each runs N trivial coroutines (one ``await asyncio.sleep(0)``) at concurrency C on uvloop; the table
reports items/s (median of --repeat runs) and the ratios the issue sets as targets:
amap >= 0.7 x pool and >= 2 x semaphore+gather.

    .venv/bin/python benchmarks/bench_amap.py -n 100000 -c 100 [--repeat 5] [--loop uvloop] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from surge.aio.amap import amap
from surge.bench.targets import command_line, machine_facts, markdown_header


async def work(i: int) -> int:
    await asyncio.sleep(0)
    return i


async def run_amap(n: int, c: int) -> int:
    count = 0
    async for _ in amap(work, range(n), concurrency=c):
        count += 1
    return count


async def run_pool(n: int, c: int) -> int:
    """The hand-written reference: C workers pull from one shared iterator."""
    items = iter(range(n))
    results: list[int] = []

    async def worker() -> None:
        for i in items:
            results.append(await work(i))

    async with asyncio.TaskGroup() as tg:
        for _ in range(c):
            tg.create_task(worker())
    return len(results)


async def run_semaphore_gather(n: int, c: int) -> int:
    """The playbook's pattern (section 7): Semaphore(C), a task per item, batches of 1000 gathered."""
    sem = asyncio.Semaphore(c)

    async def guarded(i: int) -> int:
        async with sem:
            return await work(i)

    count = 0
    for start in range(0, n, 1000):
        batch = range(start, min(start + 1000, n))
        count += len(await asyncio.gather(*(guarded(i) for i in batch)))
    return count


CONTENDERS: dict[str, Callable[[int, int], Awaitable[int]]] = {
    "amap": run_amap,
    "hand-written pool": run_pool,
    "Semaphore + gather": run_semaphore_gather,
}


def make_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="items per run")
    parser.add_argument("-c", type=int, default=100, help="concurrency")
    parser.add_argument("--repeat", type=int, default=5, help="runs per contender (median reported)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args()

    rates: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    # Interleave contenders so that noise from a shared machine hits all of them alike.
    for _ in range(args.repeat):
        for name, contender in CONTENDERS.items():
            loop = make_loop(args.loop)
            try:
                t0 = time.perf_counter()
                count = loop.run_until_complete(contender(args.n, args.c))
                elapsed = time.perf_counter() - t0
            finally:
                loop.close()
            if count != args.n:
                sys.exit(f"{name} returned {count} results for {args.n} items")
            rates[name].append(args.n / elapsed)

    medians = {name: statistics.median(r) for name, r in rates.items()}
    pool = medians["hand-written pool"]
    gather = medians["Semaphore + gather"]
    command, machine = command_line(), machine_facts()
    meta = {
        "command": command,
        "machine": machine,
        "loop": args.loop,
        "n": args.n,
        "concurrency": args.c,
        "repeat": args.repeat,
    }
    if args.json:
        print(json.dumps({**meta, "items_per_s": medians,
                          "amap_vs_pool": medians["amap"] / pool,
                          "amap_vs_semaphore_gather": medians["amap"] / gather}, indent=2))
        return
    print(markdown_header(command, machine,
                          f"{args.n:,} items, concurrency {args.c}, {args.loop}, median of {args.repeat}"))
    print("| contender | items/s | amap ÷ this | target |")
    print("| --- | ---: | ---: | --- |")
    targets = {"amap": "", "hand-written pool": "≥ 0.7", "Semaphore + gather": "≥ 2"}
    for name, rate in medians.items():
        print(f"| {name} | {rate:,.0f} | {medians['amap'] / rate:.2f} | {targets[name]} |")


if __name__ == "__main__":
    main()
