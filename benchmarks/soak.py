"""Soak: a long surge fetch against healthy and hostile endpoints; every resource must stay flat.

``surge serve`` runs in its own process (pinned to the server core); the fetch runs in this process (pinned to
the client core) so that a sampler task can read, every ``--every`` seconds: RSS, open file descriptors, the
number of asyncio tasks, and the event loop's lag (how late a short timer fires). The input cycles through a
mix of healthy URLs and every misbehaving endpoint of ``surge serve`` (resets, truncations, silence, drips,
bombs, redirect loops, huge heads, 429s with absurd Retry-After, 503s), at fixed concurrency.

Reported: each metric's first and last sample, its maximum, and its slope over the run after the warm-up
(least squares, per 10 minutes), with the outcome counts. Flat means a slope near zero against the mean.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--every 10] [-c 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from surge.aio.loops import run
from surge.bench.targets import pinned, plan_cores
from surge.engine.fetcher import Fetcher
from surge.engine.input import ArgsSource, RequestDefaults

HEALTHY = ["/", "/bytes/5000", "/gzip", "/brotli", "/delay/50", "/site/", "/redirect/2", "/status/404"]
HOSTILE = ["/fault/reset", "/fault/short-body", "/fault/truncated-chunked", "/fault/bad-status",
           "/fault/silence", "/fault/drip?bytes=20&interval_ms=200", "/fault/gzip-bomb?mb=64",
           "/fault/endless", "/fault/redirect-loop", "/fault/big-headers?kb=100", "/status/500"]
# On a second server (another host): a 429 pauses its whole host, and these ask for pauses all the time.
PAUSING = ["/status/429?retry_after=99999999", "/status/503?retry_after=1", "/"]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def slope_per_10min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per 600 seconds."""
    if len(points) < 2:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else 600.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


async def soak(base: str, other: str, seconds: float, every: float, concurrency: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    counts: Counter[str] = Counter()

    class CountingSink:
        """Counts outcomes by status or error class: the soak keeps no records."""

        path = "(counted)"

        def open(self, resume_at: int | None = None) -> None:
            pass

        def write(self, outcomes: Any) -> None:
            for o in outcomes:
                counts[o.error or str(o.status)] += 1

        def flush(self) -> int:
            return 0

        def close(self) -> None:
            pass

    urls = [base + p for p in HEALTHY * 3 + HOSTILE] + [other + p for p in PAUSING]
    fetcher = Fetcher(concurrency=concurrency, per_host=concurrency, duration=seconds, retries=1,
                      connect_timeout=2.0, read_timeout=2.0, timeout=5.0, max_body=1 << 20, max_redirects=5,
                      max_retry_after=5.0, save_body=True, output=CountingSink())
    samples: list[dict[str, float]] = []
    start = loop.time()

    async def sampler() -> None:
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.01)
            lag = loop.time() - t0 - 0.01
            samples.append({"t": loop.time() - start, "rss_mib": rss_kib() / 1024, "fds": open_fds(),
                            "tasks": len(asyncio.all_tasks()), "lag_ms": max(lag, 0.0) * 1000})
            await asyncio.sleep(every)

    task = loop.create_task(sampler())
    try:
        result = await fetcher.run(ArgsSource(urls, RequestDefaults(), forever=True))
    finally:
        task.cancel()
    # After the warm-up, and before the drain at the end (the run stops taking work at ``seconds``).
    warm = [s for s in samples if min(60.0, seconds / 5) <= s["t"] <= seconds - every]
    metrics = {}
    for key in ("rss_mib", "fds", "tasks", "lag_ms"):
        values = [s[key] for s in warm] or [0.0]
        metrics[key] = {"first": warm[0][key] if warm else 0.0, "last": warm[-1][key] if warm else 0.0,
                        "max": max(values), "mean": statistics.fmean(values),
                        "slope_per_10min": slope_per_10min([(s["t"], s[key]) for s in warm])}
    return {"seconds": seconds, "requests": result.done if hasattr(result, "done") else sum(counts.values()),
            "outcomes": dict(counts.most_common()), "samples": len(samples), "metrics": metrics}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("-c", "--concurrency", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cores = plan_cores()
    client_core, server_core = cores.client, cores.server
    serve = pinned([sys.executable, "-m", "surge", "serve", "--port", "0"], server_core)
    servers = [subprocess.Popen(serve, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
               for _ in range(2)]
    try:
        base, other = (s.stdout.readline().split()[0].rstrip("/") for s in servers if s.stdout is not None)
        if client_core is not None:
            os.sched_setaffinity(0, {client_core})
        t0 = time.monotonic()
        report = run(soak(base, other, args.minutes * 60, args.every, args.concurrency), loop="uvloop")
        report["wall_s"] = round(time.monotonic() - t0, 1)
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"soak: {report['seconds']:.0f} s, {report['requests']} requests, {report['samples']} samples")
    print("| metric | first | last | max | slope per 10 min |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key, m in report["metrics"].items():
        row = (m["first"], m["last"], m["max"], m["slope_per_10min"])
        print(f"| {key} | {row[0]:.1f} | {row[1]:.1f} | {row[2]:.1f} | {row[3]:+.2f} |")
    print("outcomes:", ", ".join(f"{k} {v}" for k, v in report["outcomes"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
