"""Concurrency limits: a fixed cap on work in flight, or one that adapts to the server's latency and drops.

The algorithms (AIMD, Gradient2) are pure classes with no I/O: each ``update`` takes one sample and
returns the new limit. ``ConcurrencyLimit`` applies them, queues waiters first come first served, and
records the trajectory.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from surge.aio._clock import LoopClock

__all__ = ["AIMD", "ConcurrencyLimit", "Gradient2", "LimitAlgorithm", "LimitStatistics", "Slot"]


class LimitAlgorithm(Protocol):
    """How an adaptive limit moves: one sample in, the new (unrounded) limit out.

    ``limit`` is the current estimate (a float: small steps accumulate), ``rtt`` the seconds the request
    took (None when unknown), ``in_flight`` the requests in flight when it finished (itself included),
    ``dropped`` whether it was rejected or timed out (429, 503, timeout). The result must lie in
    ``[min_limit, max_limit]``.

    >>> class Halve:
    ...     def update(self, limit, *, rtt, in_flight, dropped, min_limit, max_limit):
    ...         return max(min_limit, limit / 2) if dropped else limit
    >>> Halve().update(10.0, rtt=0.1, in_flight=10, dropped=True, min_limit=1, max_limit=100)
    5.0
    """

    def update(
        self,
        limit: float,
        *,
        rtt: float | None,
        in_flight: int,
        dropped: bool,
        min_limit: int,
        max_limit: int,
    ) -> float: ...


def _check_backoff(backoff: float) -> None:
    if not 0.0 < backoff < 1.0:
        raise ValueError(f"backoff must be in (0, 1), got {backoff!r}")


def _clamp(value: float, low: float, high: float) -> float:
    if math.isnan(value):  # NaN from a pathological sample: keep the floor rather than poison the state
        return low
    return low if value < low else high if value > high else value


class AIMD:
    """Additive increase, multiplicative decrease (as in TCP congestion control).

    A request that completes while the limit is being used (``in_flight * 2 >= limit``) adds ``increase``;
    a drop (or an ``rtt`` over ``timeout``) multiplies the limit by ``backoff`` (and takes off at least 1).
    As in TCP, one decrease per round: the requests already in flight when it shrank were sent under the
    old limit, so their drops and successes (the next ``limit`` samples) neither shrink nor grow it again.

    >>> aimd = AIMD(backoff=0.5)
    >>> aimd.update(10.0, rtt=0.01, in_flight=8, dropped=False, min_limit=1, max_limit=100)
    11.0
    >>> aimd.update(10.0, rtt=0.01, in_flight=8, dropped=True, min_limit=1, max_limit=100)
    5.0
    """

    __slots__ = ("_recovering", "backoff", "increase", "timeout")

    def __init__(self, *, increase: float = 1.0, backoff: float = 0.9, timeout: float | None = None) -> None:
        _check_backoff(backoff)
        if not increase > 0:
            raise ValueError(f"increase must be > 0, got {increase!r}")
        self.increase = increase
        self.backoff = backoff
        self.timeout = timeout
        self._recovering = 0  # samples left that were sent under the limit before the last decrease

    def __repr__(self) -> str:
        return f"AIMD(increase={self.increase!r}, backoff={self.backoff!r}, timeout={self.timeout!r})"

    def update(
        self,
        limit: float,
        *,
        rtt: float | None,
        in_flight: int,
        dropped: bool,
        min_limit: int,
        max_limit: int,
    ) -> float:
        """Return the limit after one sample (see the class docstring)."""
        if self._recovering > 0:
            self._recovering -= 1
            return _clamp(limit, min_limit, max_limit)
        if dropped or (self.timeout is not None and rtt is not None and rtt > self.timeout):
            new = min(limit - 1.0, limit * self.backoff)
            self._recovering = max(0, in_flight - 1)
        elif in_flight * 2 >= limit:
            new = limit + self.increase
        else:
            new = limit  # not using the limit: a success says nothing about a higher one
        return _clamp(new, min_limit, max_limit)


class Gradient2:
    """Latency-gradient limit in the spirit of Netflix concurrency-limits' Gradient2.

    Samples are gathered in windows of about one round trip (``max(min_window, limit)`` samples: by then
    every slot has turned over once). At the end of each window, the window's average RTT (short term) is
    compared with the long-term RTT (exponential average over ``long_window`` windows, after a plain
    average over the first ``warmup`` windows):

        gradient = clamp(long / short, 0.5, 1.0)         # < 1 when requests start queueing
        target   = limit * gradient + queue_size(limit)  # sqrt(limit) by default: room to probe upwards
        limit    = limit * (1 - smoothing) + target * smoothing

    So it grows while latency stays flat and shrinks when latency rises. Unlike the original, a window
    with a drop (429, 503, timeout) multiplies the limit by ``backoff`` instead. When the long RTT is more
    than twice the short one (latency recovered after a long overload) the long RTT decays faster. It
    does not grow while the limit is not being used (never more than half in flight in the window).
    Updating once per window rather than per sample keeps the limit from running ahead of the latency
    it has not measured yet.

    >>> g = Gradient2()
    >>> def run(limit: float, rtt: float, windows: int) -> float:
    ...     for _ in range(windows):
    ...         for _ in range(int(limit)):  # one window: every slot turns over once
    ...             limit = g.update(limit, rtt=rtt, in_flight=int(limit), dropped=False,
    ...                              min_limit=1, max_limit=200)
    ...     return limit
    >>> grown = run(20.0, rtt=0.010, windows=100); grown > 100     # flat latency: grows
    True
    >>> run(grown, rtt=0.050, windows=3) < grown                    # latency rises: shrinks
    True
    """

    __slots__ = ("_long", "_long_n", "_short", "_win_drop", "_win_in_flight", "_win_n", "_win_sum", "backoff",
                 "long_window", "min_window", "queue_size", "smoothing", "warmup")

    def __init__(
        self,
        *,
        smoothing: float = 0.2,
        long_window: int = 600,
        min_window: int = 10,
        warmup: int = 10,
        queue_size: Callable[[float], float] = math.sqrt,
        backoff: float = 0.9,
    ) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing!r}")
        if long_window < 1 or min_window < 1 or warmup < 0:
            raise ValueError("long_window and min_window must be >= 1 and warmup >= 0")
        _check_backoff(backoff)
        self.smoothing = smoothing
        self.long_window = long_window
        self.min_window = min_window
        self.warmup = warmup
        self.queue_size = queue_size
        self.backoff = backoff
        self._long = 0.0
        self._long_n = 0
        self._short = 0.0
        self._win_n = 0
        self._win_sum = 0.0
        self._win_drop = False
        self._win_in_flight = 0

    def __repr__(self) -> str:
        return (f"Gradient2(smoothing={self.smoothing!r}, long_window={self.long_window}, "
                f"min_window={self.min_window}, backoff={self.backoff!r})")

    @property
    def long_rtt(self) -> float:
        """The long-term (baseline) RTT estimate in seconds; 0.0 before the first window.

        >>> Gradient2().long_rtt
        0.0
        """
        return self._long

    @property
    def short_rtt(self) -> float:
        """The last window's average RTT in seconds; 0.0 before the first window.

        >>> g = Gradient2(min_window=1)
        >>> _ = g.update(1.0, rtt=0.02, in_flight=1, dropped=False, min_limit=1, max_limit=100)
        >>> g.short_rtt
        0.02
        """
        return self._short

    def update(
        self,
        limit: float,
        *,
        rtt: float | None,
        in_flight: int,
        dropped: bool,
        min_limit: int,
        max_limit: int,
    ) -> float:
        """Add one sample; at the end of a window return the new limit, otherwise the current one."""
        if dropped:
            self._win_drop = True
        elif rtt is not None and rtt > 0.0 and math.isfinite(rtt):
            self._win_sum += rtt
        else:
            return _clamp(limit, min_limit, max_limit)  # no information in this sample
        self._win_n += 1
        self._win_in_flight = max(self._win_in_flight, in_flight)
        if self._win_n < max(self.min_window, int(limit)):
            return _clamp(limit, min_limit, max_limit)
        return _clamp(self._close_window(limit), min_limit, max_limit)

    def _close_window(self, limit: float) -> float:
        measured, total, dropped, peak = self._win_n, self._win_sum, self._win_drop, self._win_in_flight
        self._win_n = 0
        self._win_sum = 0.0
        self._win_drop = False
        self._win_in_flight = 0
        if dropped:
            return limit * self.backoff
        if measured <= 0 or total <= 0.0:
            return limit
        short = total / measured
        self._short = short
        # Long: plain mean while warming up (an EMA seeded by one window would overweight it), then EMA.
        self._long_n += 1
        if self._long_n <= self.warmup:
            self._long += (short - self._long) / self._long_n
        else:
            self._long += (short - self._long) * (2.0 / (self.long_window + 1))
        if self._long > 2.0 * short:
            self._long *= 0.9
        if peak < limit / 2:
            return limit  # app-limited: the latency says nothing about a higher limit
        gradient = max(0.5, min(1.0, self._long / short))
        target = limit * gradient + self.queue_size(limit)
        return limit * (1.0 - self.smoothing) + target * self.smoothing


@dataclass(frozen=True, slots=True)
class LimitStatistics:
    """A snapshot of a ``ConcurrencyLimit``.

    ``trajectory`` holds ``(time, limit)`` for the most recent changes of the (integer) limit, oldest first,
    starting with the initial value; at most ``ConcurrencyLimit.TRAJECTORY_LEN`` entries.

    >>> ConcurrencyLimit(5, clock=lambda: 0.0).statistics().trajectory
    ((0.0, 5),)
    """

    limit: int
    in_flight: int
    waiting: int
    min_seen: int
    max_seen: int
    acquired: int
    dropped: int
    trajectory: tuple[tuple[float, int], ...]


class ConcurrencyLimit:
    """At most ``limit`` holders at a time; fixed, or adaptive with ``algorithm=AIMD()`` / ``Gradient2()``.

    ``acquire()`` waits first come first served; ``release(rtt=..., dropped=...)`` frees the slot and, when
    adaptive, feeds the sample to the algorithm (a drop means 429/503/timeout: the limit shrinks). When the
    limit shrinks below the number in flight, new acquirers wait until enough holders have released.
    The limit stays within ``[min_limit, max_limit]``. A waiter cancelled before it resumes takes no slot.

    ``async with limit:`` acquires, measures the time the block took and releases with it as ``rtt``;
    a builtin ``TimeoutError`` leaving the block counts as a drop, any other exception gives no sample.

    >>> import asyncio
    >>> async def main() -> int:
    ...     limit = ConcurrencyLimit(10, algorithm=AIMD(), max_limit=100)
    ...     async def call() -> None:
    ...         async with limit:
    ...             await asyncio.sleep(0.001)
    ...     async with asyncio.TaskGroup() as tg:
    ...         for _ in range(200):
    ...             tg.create_task(call())
    ...     return limit.limit
    >>> asyncio.run(main()) > 10
    True
    """

    TRAJECTORY_LEN = 1000

    __slots__ = ("_acquired", "_algorithm", "_clock", "_dropped", "_estimate", "_in_flight", "_limit",
                 "_max_seen", "_min_seen", "_starts", "_trajectory", "_waiters", "max_limit", "min_limit")

    def __init__(
        self,
        limit: int = 100,
        *,
        algorithm: LimitAlgorithm | None = None,
        min_limit: int = 1,
        max_limit: int = 1000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if min_limit < 1 or max_limit < min_limit:
            raise ValueError(f"need 1 <= min_limit <= max_limit, got {min_limit}, {max_limit}")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        if algorithm is None:
            # A fixed limit is what the caller asked for; bounds only constrain adaptation.
            min_limit = min(min_limit, limit)
            max_limit = max(max_limit, limit)
        limit = int(_clamp(limit, min_limit, max_limit))
        self.min_limit = min_limit
        self.max_limit = max_limit
        self._algorithm = algorithm
        self._clock: Callable[[], float] = clock if clock is not None else LoopClock()
        self._estimate = float(limit)
        self._limit = limit
        self._in_flight = 0
        self._acquired = 0
        self._dropped = 0
        self._min_seen = limit
        self._max_seen = limit
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._starts: dict[asyncio.Task[object] | None, list[float]] = {}
        self._trajectory: deque[tuple[float, int]] = deque(
            [(self._clock(), limit)], maxlen=self.TRAJECTORY_LEN
        )

    def __repr__(self) -> str:
        return (f"ConcurrencyLimit(limit={self._limit}, in_flight={self._in_flight}, "
                f"waiting={len(self._waiters)}, algorithm={self._algorithm!r})")

    @property
    def limit(self) -> int:
        """The current limit.

        >>> ConcurrencyLimit(7).limit
        7
        """
        return self._limit

    @property
    def in_flight(self) -> int:
        """Slots held now.

        >>> limit = ConcurrencyLimit(2)
        >>> limit.acquire_nowait(), limit.in_flight
        (True, 1)
        """
        return self._in_flight

    @property
    def algorithm(self) -> LimitAlgorithm | None:
        """The adaptive algorithm, or None for a fixed limit.

        >>> ConcurrencyLimit(3).algorithm is None
        True
        """
        return self._algorithm

    def acquire_nowait(self) -> bool:
        """Take a slot if one is free and nobody is queued; return whether it did.

        >>> limit = ConcurrencyLimit(1)
        >>> limit.acquire_nowait(), limit.acquire_nowait()
        (True, False)
        """
        # Hot path.
        if self._in_flight < self._limit and not self._waiters:
            self._in_flight += 1
            self._acquired += 1
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a slot (first come, first served). Pair with ``release()``.

        >>> import asyncio
        >>> async def main() -> int:
        ...     limit = ConcurrencyLimit(2)
        ...     await limit.acquire()
        ...     limit.release(rtt=0.01)
        ...     return limit.in_flight
        >>> asyncio.run(main())
        0
        """
        if self.acquire_nowait():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # The slot was handed to us before we could resume: hand it on.
                self._acquired -= 1
                self._in_flight -= 1
                self._wake()
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            raise

    def unacquire(self) -> None:
        """Give back a slot that was not used (the work went elsewhere): no sample for an adaptive limit.

        >>> limit = ConcurrencyLimit(2, algorithm=AIMD(), clock=lambda: 0.0)
        >>> limit.acquire_nowait()
        True
        >>> limit.unacquire()
        >>> limit.in_flight, limit.limit
        (0, 2)
        """
        if self._in_flight <= 0:
            raise RuntimeError("unacquire() without a matching acquire()")
        self._in_flight -= 1
        self._wake()

    def release(self, *, rtt: float | None = None, dropped: bool = False) -> None:
        """Free a slot; an adaptive limit learns from ``rtt`` (seconds) and ``dropped``.

        >>> limit = ConcurrencyLimit(10, algorithm=AIMD(backoff=0.5), clock=lambda: 0.0)
        >>> limit.acquire_nowait()
        True
        >>> limit.release(dropped=True)
        >>> limit.limit
        5
        """
        if self._in_flight <= 0:
            raise RuntimeError("release() without a matching acquire()")
        if dropped:
            self._dropped += 1
        algorithm = self._algorithm
        if algorithm is not None:
            estimate = algorithm.update(
                self._estimate, rtt=rtt, in_flight=self._in_flight, dropped=dropped,
                min_limit=self.min_limit, max_limit=self.max_limit,
            )
            self._set(_clamp(estimate, self.min_limit, self.max_limit))
        self._in_flight -= 1
        self._wake()

    def set_limit(self, limit: int) -> None:
        """Set the limit by hand (clamped to the bounds); an adaptive algorithm continues from it.

        >>> limit = ConcurrencyLimit(10, clock=lambda: 0.0)
        >>> limit.set_limit(20); limit.limit
        20
        """
        self._set(_clamp(float(limit), self.min_limit, self.max_limit))
        self._wake()

    def _set(self, estimate: float) -> None:
        self._estimate = estimate
        new = int(estimate)
        if new != self._limit:
            self._limit = new
            self._min_seen = min(self._min_seen, new)
            self._max_seen = max(self._max_seen, new)
            self._trajectory.append((self._clock(), new))

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self._in_flight < self._limit:
            fut = waiters.popleft()
            if fut.done():
                continue
            self._in_flight += 1
            self._acquired += 1
            fut.set_result(None)

    def statistics(self) -> LimitStatistics:
        """A frozen snapshot: limit, in flight, waiting, min/max seen, counts and the trajectory.

        >>> limit = ConcurrencyLimit(4, clock=lambda: 0.0)
        >>> limit.acquire_nowait()
        True
        >>> s = limit.statistics(); (s.limit, s.in_flight, s.acquired)
        (4, 1, 1)
        """
        return LimitStatistics(
            limit=self._limit, in_flight=self._in_flight, waiting=len(self._waiters),
            min_seen=self._min_seen, max_seen=self._max_seen, acquired=self._acquired,
            dropped=self._dropped, trajectory=tuple(self._trajectory),
        )

    def slot(self) -> Slot:
        """A context manager for one slot that measures the rtt and lets the block report a drop.

        >>> import asyncio
        >>> async def main() -> int:
        ...     limit = ConcurrencyLimit(10, algorithm=AIMD(backoff=0.5))
        ...     async with limit.slot() as slot:
        ...         slot.dropped = True          # e.g. the server answered 503
        ...     return limit.limit
        >>> asyncio.run(main())
        5
        """
        return Slot(self)

    async def __aenter__(self) -> None:
        await self.acquire()
        task = asyncio.current_task()
        # Keyed by task (one limit serves many tasks at once); a list so a task may nest holds.
        self._starts.setdefault(task, []).append(self._clock())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = asyncio.current_task()
        starts = self._starts[task]
        start = starts.pop()
        if not starts:
            del self._starts[task]
        _release_after(self, start, exc)


def _release_after(
    limit: ConcurrencyLimit, start: float, exc: BaseException | None, dropped: bool = False
) -> None:
    if exc is None:
        limit.release(rtt=limit._clock() - start, dropped=dropped)
    else:
        limit.release(dropped=dropped or isinstance(exc, TimeoutError))


class Slot:
    """One slot of a ``ConcurrencyLimit`` held by ``async with limit.slot() as slot``.

    Set ``slot.dropped = True`` inside the block when the request was rejected (429, 503) so an adaptive
    limit shrinks; the rtt is measured from entering the block.

    >>> import asyncio
    >>> async def main() -> int:
    ...     limit = ConcurrencyLimit(3)
    ...     async with limit.slot():
    ...         return limit.in_flight
    >>> asyncio.run(main())
    1
    """

    __slots__ = ("_limit", "_start", "dropped")

    def __init__(self, limit: ConcurrencyLimit) -> None:
        self._limit = limit
        self._start = 0.0
        self.dropped = False

    async def __aenter__(self) -> Slot:
        await self._limit.acquire()
        self._start = self._limit._clock()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _release_after(self._limit, self._start, exc, self.dropped)
