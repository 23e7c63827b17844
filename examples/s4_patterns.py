"""Playbook section 4 on surge.aio and surge.http: connection pooling, request batching, and timeouts
with retries (exponential backoff, full jitter). Requests go to surge's embedded server on 127.0.0.1.

    python examples/s4_patterns.py
"""

from __future__ import annotations

import asyncio
import time

from surge.aio import Backoff, Batcher, amap, retrying, run
from surge.http import Client, Limits
from surge.server import serve


async def connection_pooling(base: str) -> None:
    print("== connection pooling: 15 requests, at most 5 connections ==")
    async with Client(limits=Limits(per_host=5)) as client:

        async def fetch(url: str) -> int:
            response = await client.request("GET", url)
            return response.status

        start = time.perf_counter()
        async with amap(fetch, [f"{base}/delay/20"] * 15, concurrency=5, on_error="return") as results:
            statuses = [s async for s in results]
        elapsed = time.perf_counter() - start
        stats = client.statistics()
    ok = sum(1 for s in statuses if s == 200)
    print(f"succeeded: {ok}/15 in {elapsed:.2f} s (3 rounds of 20 ms)")
    print(f"connections opened: {stats.opened}, requests on reused connections: {stats.reused}")


async def batching() -> None:
    print("== batching: 20 items, batches of 5 ==")
    sizes: list[int] = []

    async def process_batch(items: list[str]) -> list[str]:
        sizes.append(len(items))
        await asyncio.sleep(0.01)  # one bulk call instead of five single ones
        return [f"processed_{item}" for item in items]

    async with Batcher(process_batch, max_size=5, max_delay=0.05) as batcher:
        results = await asyncio.gather(*(batcher.submit(f"item_{i}") for i in range(20)))
    print(f"batches: {len(sizes)} of sizes {sizes}")
    print(f"processed: {len(results)} items, sample {results[:3]}")


async def resilient_fetch(name: str, durations: list[float], timeout: float) -> str:
    """Each try gets its own timeout; a timed-out try is retried after a jittered backoff."""
    async for attempt in retrying(attempts=3, on=TimeoutError, backoff=Backoff(base=0.01, cap=0.05, seed=1)):
        with attempt:
            print(f"  {name}: try {attempt.number}/3")
            async with asyncio.timeout(timeout):
                await asyncio.sleep(durations[attempt.number - 1])
            return f"Success: {name}"
    raise AssertionError("unreachable: retrying() raises when it gives up")


async def timeouts_and_retries() -> None:
    print("== timeouts + retry with backoff and jitter ==")
    calls = {
        "fast-api": [0.005],
        "slow-api": [0.05, 0.05, 0.005],  # times out twice, then succeeds
        "very-slow-api": [0.05, 0.05, 0.05],  # never in time
    }
    results = await asyncio.gather(
        *(resilient_fetch(name, durations, timeout=0.03) for name, durations in calls.items()),
        return_exceptions=True,
    )
    for name, result in zip(calls, results, strict=True):
        if isinstance(result, BaseException):
            print(f"{name}: failed after 3 tries ({type(result).__name__})")
        else:
            print(f"{name}: {result}")


async def main() -> None:
    async with serve() as base:
        await connection_pooling(base)
    await batching()
    await timeouts_and_retries()


if __name__ == "__main__":
    run(main())
