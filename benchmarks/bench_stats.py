"""Cost of ``surge.report.stats.Stats.record`` (the per-request hot path) and of ``snapshot()``.

Target: >= 1,000,000 record() calls/s, i.e. under 2% of a core at 50,000 req/s. Prints a Markdown
table (or JSON with --json). Run small while others share the machine:

    .venv/bin/python benchmarks/bench_stats.py --records 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from surge.bench.targets import command_line, machine_facts, markdown_header
from surge.report.stats import Stats


@dataclass(slots=True)
class Outcome:
    """The fields Stats reads, shaped like the engine's slotted Outcome."""

    status: int | None
    ok: bool
    error: str | None
    attempts: int
    elapsed_ms: float
    bytes: int


def outcomes(n: int, seed: int = 1) -> list[Outcome]:
    rng = random.Random(seed)
    result = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.98:
            result.append(Outcome(200, True, None, 1, rng.lognormvariate(0.7, 0.5), 120))
        elif roll < 0.995:
            result.append(Outcome(503, False, None, 2, rng.uniform(0.5, 3.0), 0))
        else:
            result.append(Outcome(None, False, "timeout_read", 3, 10_000.0, 0))
    return result


def stepping_clock(rate: float) -> Callable[[], float]:
    """Advances 1/rate seconds per reading, so one reading per record() gives ``rate`` records a second.

    Built from C callables so the clock itself costs about what uvloop's ``loop.time()`` does.
    """
    return functools.partial(next, itertools.count(0.0, 1.0 / rate))


def time_records(make_clock: Callable[[], Callable[[], float]], sample: list[Outcome], total: int) -> float:
    stats = Stats(clock=make_clock())
    record = stats.record
    rounds, rest = divmod(total, len(sample))
    start = time.perf_counter()
    for _ in range(rounds):
        for o in sample:
            record(o)
    for o in sample[:rest]:
        record(o)
    return total / (time.perf_counter() - start)


def time_snapshot(rate: float, seconds: int) -> float:
    stats = Stats(clock=stepping_clock(rate))
    sample = outcomes(int(rate))
    for _ in range(seconds):
        for o in sample:
            stats.record(o)
    start = time.perf_counter()
    stats.snapshot()
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000, help="record() calls per measurement")
    parser.add_argument("--rate", type=float, default=50_000.0, help="simulated requests per second")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per row (median reported)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()

    sample = outcomes(100_000)
    rows: list[dict[str, object]] = []
    cases: list[tuple[str, Callable[[], Callable[[], float]]]] = [
        (
            f"record(), virtual clock at {args.rate:,.0f} req/s (rollover every second)",
            lambda: stepping_clock(args.rate),
        ),
        ("record(), time.monotonic clock (no rollover in a short run)", lambda: time.monotonic),
    ]
    for name, make_clock in cases:
        runs = [time_records(make_clock, sample, args.records) for _ in range(args.repeat)]
        per_s = statistics.median(runs)
        rows.append(
            {
                "case": name,
                "calls_per_s": round(per_s),
                "ns_per_call": round(1e9 / per_s, 1),
                "cpu_share_at_rate": round(args.rate / per_s, 4),
            }
        )
    seconds = max(1, min(10, args.records // int(args.rate)))
    snap_ms = statistics.median(time_snapshot(args.rate, seconds) for _ in range(args.repeat))
    rows.append({"case": f"snapshot() after {seconds} s at {args.rate:,.0f} req/s", "ms": round(snap_ms, 2)})

    command, machine = command_line(), machine_facts()
    if args.json:
        print(json.dumps({"command": command, "machine": machine, "rows": rows}, indent=2))
        return
    print(markdown_header(command, machine, f"{args.records:,} records, median of {args.repeat}"))
    print("| case | calls/s | ns/call | CPU share at rate | snapshot ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        if "ms" in row:
            print(f"| {row['case']} | | | | {row['ms']} |")
        else:
            share = float(row["cpu_share_at_rate"])  # type: ignore[arg-type]
            print(f"| {row['case']} | {row['calls_per_s']:,} | {row['ns_per_call']} | {share:.2%} | |")


if __name__ == "__main__":
    main()
