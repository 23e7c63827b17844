"""Benchmark: how many limiter calls per second surge.aio sustains on one core (the per-request cost).

Measures ``RateLimiter.acquire_nowait()`` (target: >= 1,000,000 calls/s on uvloop), the keyed limiter
over many hosts, and ``ConcurrencyLimit`` acquire_nowait + release; median of --repeat runs.

    .venv/bin/python benchmarks/bench_ratelimit.py [-n 2000000] [--repeat 5] [--loop uvloop] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from surge.aio import AIMD, ConcurrencyLimit, KeyedRateLimiter, RateLimiter, loop_name, run
from surge.bench.targets import command_line, machine_facts, markdown_header


def bench_rate_nowait(n: int) -> float:
    # A rate so high every call is admitted: the full path (clock read + state update) runs each time.
    limiter = RateLimiter(rate=1e12, burst=1_000_000)
    acquire = limiter.acquire_nowait
    start = time.perf_counter()
    for _ in range(n):
        acquire()
    return n / (time.perf_counter() - start)


def bench_rate_nowait_refused(n: int) -> float:
    limiter = RateLimiter(rate=0.001, burst=1)
    acquire = limiter.acquire_nowait
    acquire()
    start = time.perf_counter()
    for _ in range(n):
        acquire()
    return n / (time.perf_counter() - start)


def bench_keyed_nowait(n: int, hosts: int = 10_000) -> float:
    limiter = KeyedRateLimiter(rate=1e12, burst=1_000_000)
    acquire = limiter.acquire_nowait
    keys = [f"host-{i}.example" for i in range(hosts)]
    start = time.perf_counter()
    for i in range(n):
        acquire(keys[i % hosts])
    return n / (time.perf_counter() - start)


def bench_concurrency(n: int) -> float:
    limit = ConcurrencyLimit(100, algorithm=AIMD(), max_limit=1000)
    acquire, release = limit.acquire_nowait, limit.release
    start = time.perf_counter()
    for _ in range(n):
        acquire()
        release(rtt=0.001)
    return n / (time.perf_counter() - start)


CASES: dict[str, Callable[[int], float]] = {
    "RateLimiter.acquire_nowait (admitted)": bench_rate_nowait,
    "RateLimiter.acquire_nowait (refused)": bench_rate_nowait_refused,
    "KeyedRateLimiter.acquire_nowait (10k hosts)": bench_keyed_nowait,
    "ConcurrencyLimit nowait+release (AIMD)": bench_concurrency,
}


async def measure(n: int, repeat: int) -> tuple[str, dict[str, float]]:
    # Inside the loop: the limiters read the running loop's clock, as they do in production.
    results = {name: statistics.median(fn(n) for _ in range(repeat)) for name, fn in CASES.items()}
    return loop_name(), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2_000_000, help="calls per run")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--loop", default="uvloop", help="auto, asyncio, uvloop or rloop")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args()
    loop, results = run(measure(args.n, args.repeat), loop=args.loop)
    command, machine = command_line(), machine_facts()
    info = {
        "command": command,
        "machine": machine,
        "loop": loop,
        "n": args.n,
        "repeat": args.repeat,
        "calls_per_s": results,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(markdown_header(command, machine, f"loop {loop}, n={args.n}, median of {args.repeat}"))
    print("| operation | calls/s |")
    print("| --- | ---: |")
    for name, value in results.items():
        print(f"| {name} | {value:,.0f} |")
    target = results["RateLimiter.acquire_nowait (admitted)"]
    verdict = "met" if target >= 1e6 else "NOT met"
    print(f"\nTarget: RateLimiter.acquire_nowait >= 1,000,000 calls/s: {verdict}")


if __name__ == "__main__":
    main()
