"""Run statistics: one cheap ``record()`` per outcome, and frozen snapshots for progress and reports.

Latency goes to an HDR histogram (microseconds, 3 significant digits) in batches, never per call.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from hdrh.histogram import HdrHistogram

__all__ = [
    "ConcurrencySummary",
    "ConnectionCounts",
    "LatencySummary",
    "OutcomeLike",
    "Series",
    "Stats",
    "StatsSnapshot",
]

# One hour in microseconds: anything slower is clamped (and still counted) rather than dropped.
_HDR_HIGHEST_US = 3_600_000_000
_HDR_DIGITS = 3
# Percentiles of the latency distribution curve kept in every snapshot (for percentile-curve charts).
CURVE_PERCENTILES: tuple[float, ...] = (
    0.0,
    10.0,
    25.0,
    50.0,
    75.0,
    90.0,
    95.0,
    99.0,
    99.5,
    99.9,
    99.95,
    99.99,
    100.0,
)
# Status codes index a flat list on the hot path; anything outside it goes to a dict.
_STATUS_SLOTS = 1000
# Concurrency changes closer together than this overwrite the previous point, so an adaptive
# limit that moves on every request cannot grow the trajectory without bound.
_TRAJECTORY_MIN_GAP_S = 0.05


class OutcomeLike(Protocol):
    """What ``Stats.record`` reads from an outcome (the engine's ``Outcome`` satisfies it)."""

    @property
    def status(self) -> int | None:
        """HTTP status of the final response, or None when no response arrived."""

    @property
    def ok(self) -> bool:
        """Whether the request counts as a success."""

    @property
    def error(self) -> str | None:
        """Outcome error class (``timeout_read``, ``connect``, ...), or None."""

    @property
    def attempts(self) -> int:
        """How many times the request was sent (1 = no retry)."""

    @property
    def elapsed_ms(self) -> float:
        """Whole request time in milliseconds."""

    @property
    def bytes(self) -> int:
        """Body bytes received."""


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency of requests that received a response, in milliseconds (HDR precision: 0.1%)."""

    count: int
    min: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    mean: float


@dataclass(frozen=True, slots=True)
class ConnectionCounts:
    """Connection pool totals as last reported by the client."""

    opened: int = 0
    reused: int = 0
    closed: int = 0

    @property
    def reuse_ratio(self) -> float:
        """Share of requests served on a reused connection (0.0 when nothing is known)."""
        total = self.opened + self.reused
        return self.reused / total if total else 0.0


@dataclass(frozen=True, slots=True)
class ConcurrencySummary:
    """The concurrency limit over the run: ``trajectory`` holds ``(seconds since start, limit)``."""

    final: int
    min: int
    max: int
    trajectory: tuple[tuple[float, int], ...]


@dataclass(frozen=True, slots=True)
class Series:
    """Per-second series; index i covers ``[t[i], t[i] + 1)`` seconds since start.

    ``p50_ms``/``p99_ms`` are None for a second in which no response arrived. The last point may
    cover a partial second; its ``rps`` is scaled to the part that elapsed.
    """

    t: tuple[float, ...]
    rps: tuple[float, ...]
    p50_ms: tuple[float | None, ...]
    p99_ms: tuple[float | None, ...]
    errors: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Everything a progress line, summary, JSON object or HTML report shows, at one moment."""

    requests: int
    ok: int
    failed: int
    elapsed_s: float
    rps: float
    status: Mapping[int, int]
    errors: Mapping[str, int]
    latency: LatencySummary
    latency_curve: tuple[tuple[float, float], ...]
    bytes: int
    retries: int
    connections: ConnectionCounts
    concurrency: ConcurrencySummary
    series: Series
    in_flight: int
    total: int | None
    loop: str
    finished: bool

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, when the total is known and the rate is not zero."""
        if self.total is None or self.rps <= 0.0:
            return None
        return max(self.total - self.requests, 0) / self.rps


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _loop_name(loop: asyncio.AbstractEventLoop | None) -> str:
    if loop is None:
        return "asyncio"
    module = type(loop).__module__
    for name in ("uvloop", "rloop"):
        if module.startswith(name):
            return name
    return "asyncio"


def _percentile_rank(percentile: float, total: int) -> int:
    # Same rank rule as HdrHistogram.get_value_at_percentile, so exact and HDR values agree.
    return max(1, int(percentile / 100.0 * total + 0.5))


def _percentiles_of(counts: Counter[int], percentiles: tuple[float, ...]) -> list[int]:
    """Exact percentiles of a value->count multiset (values in microseconds)."""
    total = sum(counts.values())
    ranks = [_percentile_rank(p, total) for p in percentiles]
    result = [0] * len(percentiles)
    order = sorted(range(len(ranks)), key=ranks.__getitem__)
    seen = 0
    i = 0
    for value, n in sorted(counts.items()):
        seen += n
        while i < len(order) and ranks[order[i]] <= seen:
            result[order[i]] = value
            i += 1
        if i == len(order):
            break
    return result


class Stats:
    """Collects one run's statistics; ``record()`` is called once per outcome.

    Time comes from ``clock`` (default: the running loop's ``time``, else ``time.monotonic``), so a
    virtual clock makes every rate and series deterministic in tests::

        stats = Stats(total=100)
        for outcome in outcomes:
            stats.record(outcome)
        print(stats.snapshot().latency.p99)
    """

    __slots__ = (
        "_attempts",
        "_bucket_end",
        "_bucket_failed",
        "_bucket_index",
        "_bucket_n",
        "_bytes",
        "_clock",
        "_conc_final",
        "_conc_max",
        "_conc_min",
        "_connections",
        "_cur_counts",
        "_errors",
        "_failed_done",
        "_finished_at",
        "_flushed",
        "_hdr",
        "_in_flight",
        "_in_flight_source",
        "_lat",
        "_lat_append",
        "_lat_max_us",
        "_lat_min_us",
        "_lat_sum_us",
        "_loop",
        "_n_done",
        "_s_errors",
        "_s_n",
        "_s_p50",
        "_s_p99",
        "_s_rps",
        "_start",
        "_status",
        "_status_other",
        "_total",
        "_trajectory",
        "_unattempted",
    )

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        total: int | None = None,
        loop: str | None = None,
    ) -> None:
        running = _running_loop()
        if clock is None:
            clock = running.time if running is not None else time.monotonic
        self._clock = clock
        self._loop = loop if loop is not None else _loop_name(running)
        self._total = total
        self._start = clock()
        self._finished_at: float | None = None
        # Totals of closed per-second buckets; the open bucket lives in the _bucket_* fields.
        self._n_done = 0
        self._bucket_index = 0
        self._bucket_end = self._start + 1.0
        self._bucket_n = 0
        self._bucket_failed = 0
        self._failed_done = 0
        self._bytes = 0
        self._attempts = 0
        self._unattempted = 0  # outcomes recorded without a request (invalid input, an open breaker)
        self._status = [0] * _STATUS_SLOTS
        self._status_other: dict[int, int] = {}
        self._errors: dict[str, int] = {}
        # Latencies (µs) of the open second; [:_flushed] are already in _hdr and _cur_counts.
        self._lat = array("q")
        self._lat_append = self._lat.append  # the array is reused, so the bound method stays valid
        self._flushed = 0
        self._lat_sum_us = 0
        self._lat_min_us = _HDR_HIGHEST_US
        self._lat_max_us = 0
        self._cur_counts: Counter[int] = Counter()
        self._hdr = HdrHistogram(1, _HDR_HIGHEST_US, _HDR_DIGITS)
        self._s_n: list[int] = []
        self._s_rps: list[float] = []
        self._s_p50: list[float | None] = []
        self._s_p99: list[float | None] = []
        self._s_errors: list[int] = []
        self._trajectory: list[tuple[float, int]] = []
        self._conc_final = 0
        self._conc_min = 0
        self._conc_max = 0
        self._connections = ConnectionCounts()
        self._in_flight = 0
        self._in_flight_source: Callable[[], int] | None = None

    # -- hot path --------------------------------------------------------------------------

    def record(self, outcome: OutcomeLike) -> None:
        """Count one finished request. Hot path: a few attribute updates, no allocation per call."""
        now = self._clock()
        if now >= self._bucket_end:
            self._roll(now)
        self._bucket_n += 1
        status = outcome.status
        if status is not None:
            try:
                self._status[status] += 1
            except IndexError:
                self._status_other[status] = self._status_other.get(status, 0) + 1
            # Latency only for requests that got a response, as wrk does: a refused connection's
            # 0.2 ms would otherwise pull the percentiles down.
            self._lat_append(int(outcome.elapsed_ms * 1000.0 + 0.5))
        # Successes are the common case, so only failures are counted (ok = requests - failed).
        if not outcome.ok:
            self._bucket_failed += 1
            error = outcome.error
            if error is not None:
                self._errors[error] = self._errors.get(error, 0) + 1
            if not outcome.attempts:
                self._unattempted += 1
        self._bytes += outcome.bytes
        self._attempts += outcome.attempts

    def record_many(self, outcomes: Iterable[OutcomeLike]) -> None:
        """Count a batch of finished requests, all at this moment (the engine's committer calls it per batch).

        Hot path: the same counts as :meth:`record` with the attribute lookups paid once per batch.
        """
        now = self._clock()
        if now >= self._bucket_end:
            self._roll(now)
        status_slots = self._status
        lat_append = self._lat_append
        n = 0
        failed = 0
        nbytes = 0
        attempts = 0
        for outcome in outcomes:
            n += 1
            status = outcome.status
            if status is not None:
                try:
                    status_slots[status] += 1
                except IndexError:
                    self._status_other[status] = self._status_other.get(status, 0) + 1
                lat_append(int(outcome.elapsed_ms * 1000.0 + 0.5))
            if not outcome.ok:
                failed += 1
                error = outcome.error
                if error is not None:
                    self._errors[error] = self._errors.get(error, 0) + 1
                if not outcome.attempts:
                    self._unattempted += 1
            nbytes += outcome.bytes
            attempts += outcome.attempts
        self._bucket_n += n
        self._bucket_failed += failed
        self._bytes += nbytes
        self._attempts += attempts

    def set_in_flight(self, n: int) -> None:
        """Report how many requests are currently being sent (shown by the live progress)."""
        self._in_flight = n

    def track_in_flight(self, source: Callable[[], int] | None) -> None:
        """Read the in-flight count from ``source()`` at each snapshot (None: back to :meth:`set_in_flight`).

        The engine registers its own count here, so the requests themselves never report anything: the
        number is read only when the progress line or a summary asks for it.
        """
        self._in_flight_source = source

    # -- occasional updates ------------------------------------------------------------------

    def set_concurrency(self, limit: int) -> None:
        """Record the concurrency limit now in force; only changes are kept."""
        if self._trajectory and self._conc_final == limit:
            return
        t = self._clock() - self._start
        if not self._trajectory:
            self._conc_min = self._conc_max = limit
        else:
            self._conc_min = min(self._conc_min, limit)
            self._conc_max = max(self._conc_max, limit)
        self._conc_final = limit
        if len(self._trajectory) >= 2 and t - self._trajectory[-2][0] < _TRAJECTORY_MIN_GAP_S:
            self._trajectory[-1] = (t, limit)
        else:
            self._trajectory.append((t, limit))

    def connections(self, opened: int, reused: int, closed: int) -> None:
        """Set the connection totals (absolute values, e.g. from ``Client.statistics()``)."""
        self._connections = ConnectionCounts(opened, reused, closed)

    def set_total(self, total: int | None) -> None:
        """Set how many requests the run will make, once known (enables the ETA)."""
        self._total = total

    def finish(self) -> None:
        """Freeze the run's elapsed time; later snapshots report rates up to this moment."""
        if self._finished_at is None:
            self._finished_at = self._clock()

    # -- batching into the histogram ---------------------------------------------------------

    def _flush(self) -> None:
        """Move the open second's unflushed latencies into the HDR histogram and its counter."""
        lat = self._lat
        if self._flushed == len(lat):
            return
        counts = Counter(lat[self._flushed :])
        self._flushed = len(lat)
        # One record_value per distinct value: HDR's pure-Python record costs ~1 µs a call.
        record = self._hdr.record_value
        lat_sum = 0
        for value, n in counts.items():
            clamped = min(max(value, 0), _HDR_HIGHEST_US)
            record(clamped, n)
            lat_sum += clamped * n
        self._lat_sum_us += lat_sum
        # HDR reports bucket edges for min/max; the exact extremes cost one pass per flush.
        self._lat_min_us = min(self._lat_min_us, max(min(counts), 0))
        self._lat_max_us = max(self._lat_max_us, min(max(counts), _HDR_HIGHEST_US))
        self._cur_counts.update(counts)

    def _bucket_point(self, width: float) -> tuple[float, float | None, float | None]:
        n = self._bucket_n
        if self._cur_counts:
            p50, p99 = _percentiles_of(self._cur_counts, (50.0, 99.0))
            return n / width, p50 / 1000.0, p99 / 1000.0
        return n / width, None, None

    def _roll(self, now: float) -> None:
        """Close the open second (and any empty seconds after it); runs at most once a second."""
        self._flush()
        rps, p50, p99 = self._bucket_point(1.0)
        self._append_point(self._bucket_n, rps, p50, p99, self._bucket_failed)
        self._n_done += self._bucket_n
        self._failed_done += self._bucket_failed
        self._bucket_n = 0
        self._bucket_failed = 0
        del self._lat[:]
        self._flushed = 0
        self._cur_counts = Counter()
        index = max(int(now - self._start), self._bucket_index + 1)
        for _ in range(self._bucket_index + 1, index):
            self._append_point(0, 0.0, None, None, 0)
        self._bucket_index = index
        self._bucket_end = self._start + index + 1.0

    def _append_point(self, n: int, rps: float, p50: float | None, p99: float | None, failed: int) -> None:
        self._s_n.append(n)
        self._s_rps.append(rps)
        self._s_p50.append(p50)
        self._s_p99.append(p99)
        self._s_errors.append(failed)

    # -- reading ----------------------------------------------------------------------------

    def snapshot(self, *, series: bool = True) -> StatsSnapshot:
        """A frozen view of everything so far. ``series=False`` skips the per-second series (cheaper)."""
        now = self._finished_at if self._finished_at is not None else self._clock()
        if now >= self._bucket_end:
            self._roll(now)
        self._flush()
        requests = self._n_done + self._bucket_n
        failed = self._failed_done + self._bucket_failed
        elapsed = max(now - self._start, 0.0)
        hdr = self._hdr
        count = hdr.get_total_count()
        if count:
            values = hdr.get_percentile_to_value_dict([*CURVE_PERCENTILES, 99.0])
            values[0.0] = self._lat_min_us
            values[100.0] = self._lat_max_us
            curve = tuple((p, values[p] / 1000.0) for p in CURVE_PERCENTILES)
            latency = LatencySummary(
                count=count,
                min=self._lat_min_us / 1000.0,
                p50=values[50.0] / 1000.0,
                p90=values[90.0] / 1000.0,
                p99=values[99.0] / 1000.0,
                p999=values[99.9] / 1000.0,
                max=self._lat_max_us / 1000.0,
                mean=self._lat_sum_us / count / 1000.0,
            )
        else:
            curve = ()
            latency = LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        status = {code: n for code, n in enumerate(self._status) if n}
        for code, n in self._status_other.items():
            status[code] = n
        return StatsSnapshot(
            requests=requests,
            ok=requests - failed,
            failed=failed,
            elapsed_s=elapsed,
            rps=requests / elapsed if elapsed > 0.0 else 0.0,
            status=dict(sorted(status.items())),
            errors=dict(sorted(self._errors.items(), key=lambda kv: (-kv[1], kv[0]))),
            latency=latency,
            latency_curve=curve,
            bytes=self._bytes,
            retries=max(self._attempts - (requests - self._unattempted), 0),
            connections=self._connections,
            concurrency=ConcurrencySummary(
                self._conc_final, self._conc_min, self._conc_max, tuple(self._trajectory)
            ),
            series=self._series(now) if series else Series((), (), (), (), ()),
            in_flight=self._in_flight if self._in_flight_source is None else self._in_flight_source(),
            total=self._total,
            loop=self._loop,
            finished=self._finished_at is not None,
        )

    def _series(self, now: float) -> Series:
        rps = list(self._s_rps)
        p50 = list(self._s_p50)
        p99 = list(self._s_p99)
        errors = list(self._s_errors)
        bucket_start = self._start + self._bucket_index
        width = min(now - bucket_start, 1.0)
        if self._bucket_n or width > 0.0:
            # The open second: its rate is scaled to the part of it that has elapsed.
            point_rps, point_p50, point_p99 = self._bucket_point(max(width, 1e-3))
            rps.append(point_rps)
            p50.append(point_p50)
            p99.append(point_p99)
            errors.append(self._bucket_failed)
        t = tuple(float(i) for i in range(len(rps)))
        return Series(t, tuple(rps), tuple(p50), tuple(p99), tuple(errors))
