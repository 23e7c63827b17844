"""Stats against hand-built outcome sequences, driven by a manual clock."""

from __future__ import annotations

import asyncio
import random

import pytest
from report_fakes import FakeOutcome, ManualClock

from surge.report.stats import Stats, _percentiles_of


def exact_percentile(values: list[int], percentile: float) -> int:
    """The value at a percentile with HdrHistogram's rank rule, from the raw data."""
    ordered = sorted(values)
    rank = max(1, int(percentile / 100.0 * len(ordered) + 0.5))
    return ordered[rank - 1]


def close_to_hdr(measured_ms: float, exact_us: int) -> bool:
    # 3 significant digits: HDR reports the top of a bucket at most 0.1% (or 1 µs) above the value.
    exact_ms = exact_us / 1000.0
    return exact_ms - 1e-9 <= measured_ms <= exact_ms * 1.001 + 0.001


def test_percentiles_match_exact_values_within_hdr_precision() -> None:
    clock = ManualClock()
    stats = Stats(clock=clock)
    rng = random.Random(7)
    values_us = [rng.randint(50, 2_000_000) for _ in range(20_000)]
    for i, us in enumerate(values_us):
        clock.now = 100.0 + i * 0.0005  # 10 s of traffic: several rollovers and flushes
        stats.record(FakeOutcome(elapsed_ms=us / 1000.0))
        if i % 3333 == 0:
            stats.snapshot()  # interleaved snapshots must not double-count
    snap = stats.snapshot()
    lat = snap.latency
    assert lat.count == len(values_us)
    for got, p in ((lat.p50, 50.0), (lat.p90, 90.0), (lat.p99, 99.0), (lat.p999, 99.9)):
        assert close_to_hdr(got, exact_percentile(values_us, p)), (p, got)
    assert lat.max == max(values_us) / 1000.0
    assert lat.min == min(values_us) / 1000.0
    assert lat.mean == pytest.approx(sum(values_us) / len(values_us) / 1000.0, rel=1e-9)
    curve = dict(snap.latency_curve)
    assert close_to_hdr(curve[99.99], exact_percentile(values_us, 99.99))
    assert list(curve) == sorted(curve)
    assert list(curve.values()) == sorted(curve.values())


def test_counts_by_status_error_bytes_and_retries() -> None:
    clock = ManualClock()
    stats = Stats(clock=clock, total=10)
    outcomes = [
        FakeOutcome(200, bytes=10),
        FakeOutcome(200, bytes=10, attempts=3),
        FakeOutcome(404, ok=False, bytes=5),
        FakeOutcome(503, ok=False, attempts=2, bytes=0),
        FakeOutcome(None, ok=False, error="timeout_read", attempts=3, bytes=0, elapsed_ms=30_000.0),
        FakeOutcome(None, ok=False, error="connect", bytes=0, elapsed_ms=0.2),
        FakeOutcome(None, ok=False, error="timeout_read", bytes=0),
        FakeOutcome(1234, ok=False, bytes=0),  # out of range status still counted
        FakeOutcome(None, ok=False, error="invalid_input", attempts=0, bytes=0, elapsed_ms=0.0),  # no request
    ]
    for o in outcomes:
        stats.record(o)
    clock.now += 2.0
    snap = stats.snapshot()
    assert snap.requests == 9
    assert snap.ok == 2
    assert snap.failed == 7
    assert dict(snap.status) == {200: 2, 404: 1, 503: 1, 1234: 1}
    assert dict(snap.errors) == {"timeout_read": 2, "connect": 1, "invalid_input": 1}
    assert next(iter(snap.errors)) == "timeout_read"  # most frequent first
    assert snap.bytes == 25
    # Retries are attempts beyond the first of each request made; the invalid line made none.
    assert snap.retries == (1 + 3 + 1 + 2 + 3 + 1 + 1 + 1) - 8
    # latency only for the five outcomes with a response
    assert snap.latency.count == 5
    assert snap.elapsed_s == pytest.approx(2.0)
    assert snap.rps == pytest.approx(4.5)
    assert snap.eta_s == pytest.approx(1 / 4.5)


def test_record_many_counts_like_record_one_by_one() -> None:
    rng = random.Random(3)
    outcomes = [FakeOutcome(rng.choice([200, 200, 404, 503, None, 1234]), ok=rng.random() < 0.7,
                            error=rng.choice([None, "connect", "timeout_read"]), attempts=rng.randint(0, 3),
                            elapsed_ms=rng.uniform(0.1, 50.0), bytes=rng.randint(0, 500))
                for _ in range(3000)]
    one, many = ManualClock(), ManualClock()
    a, b = Stats(clock=one), Stats(clock=many)
    for second in range(3):  # the same batches land in the same clock seconds
        one.now = many.now = 100.2 + second
        chunk = outcomes[second * 1000:(second + 1) * 1000]
        for o in chunk:
            a.record(o)
        b.record_many(chunk)
    b.record_many([])
    one.now = many.now = 103.5
    sa, sb = a.snapshot(), b.snapshot()
    assert (sa.requests, sa.ok, sa.failed, sa.bytes, sa.retries) == (sb.requests, sb.ok, sb.failed, sb.bytes,
                                                                      sb.retries)
    assert sa.requests == 3000 and sa.failed > 0 and sa.retries > 0
    assert dict(sa.status) == dict(sb.status) and dict(sa.errors) == dict(sb.errors)
    assert sa.latency == sb.latency and sa.series == sb.series


def test_series_buckets_by_clock_second_with_gaps() -> None:
    clock = ManualClock(50.0)
    stats = Stats(clock=clock)
    # second 0: 3 ok (1, 2, 3 ms); second 1: nothing; second 2: 2 (one failed); second 3 (open, half): 1
    for t, ms, ok in ((50.1, 1.0, True), (50.5, 2.0, True), (50.99, 3.0, True)):
        clock.now = t
        stats.record(FakeOutcome(elapsed_ms=ms, ok=ok))
    for t, ms, ok in ((52.0, 10.0, True), (52.7, 20.0, False)):
        clock.now = t
        stats.record(FakeOutcome(elapsed_ms=ms, ok=ok, status=500 if not ok else 200))
    clock.now = 53.2
    stats.record(FakeOutcome(elapsed_ms=7.0))
    clock.now = 53.5
    series = stats.snapshot().series
    assert series.t == (0.0, 1.0, 2.0, 3.0)
    assert series.rps[:3] == (3.0, 0.0, 2.0)
    assert series.rps[3] == pytest.approx(2.0)  # one request in the first half of second 3
    assert series.p50_ms == (2.0, None, 10.0, 7.0)
    assert series.p99_ms == (3.0, None, 20.0, 7.0)
    assert series.errors == (0, 0, 1, 0)


def test_finish_freezes_elapsed_and_rate() -> None:
    clock = ManualClock()
    stats = Stats(clock=clock)
    for _ in range(10):
        stats.record(FakeOutcome())
    clock.now += 0.5
    stats.finish()
    clock.now += 100.0
    snap = stats.snapshot()
    assert snap.finished
    assert snap.elapsed_s == pytest.approx(0.5)
    assert snap.rps == pytest.approx(20.0)
    assert snap.series.rps == (pytest.approx(20.0),)


def test_concurrency_trajectory_keeps_changes_min_max() -> None:
    clock = ManualClock(0.0)
    stats = Stats(clock=clock)
    for t, limit in ((0.0, 10), (0.5, 10), (1.0, 20), (2.0, 5), (2.01, 6), (2.02, 7), (3.0, 40)):
        clock.now = t
        stats.set_concurrency(limit)
    conc = stats.snapshot().concurrency
    assert (conc.final, conc.min, conc.max) == (40, 5, 40)
    # 2.01 and 2.02 arrive within 50 ms of each other: the later one overwrites
    assert conc.trajectory == ((0.0, 10), (1.0, 20), (2.0, 5), (2.02, 7), (3.0, 40))


def test_connections_in_flight_and_loop_name() -> None:
    stats = Stats(clock=ManualClock(), loop="uvloop")
    stats.connections(opened=4, reused=96, closed=1)
    stats.set_in_flight(17)
    snap = stats.snapshot()
    assert snap.connections.reuse_ratio == pytest.approx(0.96)
    assert snap.in_flight == 17
    assert snap.loop == "uvloop"
    assert snap.latency.count == 0 and snap.rps == 0.0 and snap.eta_s is None


async def test_default_clock_is_the_running_loop() -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    assert stats._clock == loop.time
    assert stats.snapshot().loop in {"asyncio", "uvloop", "rloop"}


@pytest.mark.looptime
async def test_series_follows_virtual_loop_time() -> None:
    stats = Stats()
    for _ in range(3):
        for _ in range(5):
            stats.record(FakeOutcome())
        await asyncio.sleep(1.0)
    snap = stats.snapshot()
    assert snap.elapsed_s == pytest.approx(3.0)
    assert snap.series.rps[:3] == (5.0, 5.0, 5.0)


def test_percentiles_of_counter_uses_rank_rule() -> None:
    from collections import Counter

    values = [5, 1, 3, 3, 9, 2]
    assert _percentiles_of(Counter(values), (0.0, 50.0, 99.0, 100.0)) == [
        exact_percentile(values, 0.0),
        exact_percentile(values, 50.0),
        exact_percentile(values, 99.0),
        9,
    ]


def test_records_the_engines_outcome_type() -> None:
    from surge.engine.items import Outcome

    stats = Stats(clock=ManualClock())
    common = {"method": "GET", "ttfb_ms": 1.0, "content_type": "text/plain", "started_at": 0.0}
    stats.record(
        Outcome("u", "u", status=200, ok=True, error=None, attempts=1, elapsed_ms=2.5, bytes=7, **common)
    )
    stats.record(
        Outcome("u", "u", status=None, ok=False, error="dns", attempts=2, elapsed_ms=1.0, bytes=0, **common)
    )
    snap = stats.snapshot()
    assert (snap.requests, snap.ok, snap.bytes, snap.retries) == (2, 1, 7, 1)
    assert dict(snap.errors) == {"dns": 1} and snap.latency.max == 2.5


def test_in_flight_is_read_from_a_tracked_source_at_snapshot_time() -> None:
    stats = Stats(clock=lambda: 0.0)
    count = [3]
    stats.track_in_flight(lambda: count[0])
    assert stats.snapshot(series=False).in_flight == 3
    count[0] = 9
    assert stats.snapshot(series=False).in_flight == 9
    stats.track_in_flight(None)
    stats.set_in_flight(0)
    assert stats.snapshot(series=False).in_flight == 0
