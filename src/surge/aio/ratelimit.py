"""Rate limits: GCRA (the generic cell rate algorithm) for one stream and for one stream per key.

GCRA keeps one float per stream, the theoretical arrival time (TAT), which is why a keyed limiter stays
small with millions of hosts. Time comes from the running loop's clock (or an injected ``clock``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

from surge.aio._clock import SPIN_BELOW, LoopClock, clock_for, is_real

__all__ = ["KeyedRateLimiter", "RateLimiter"]


def _check(rate: float, burst: int) -> tuple[float, float]:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a positive finite number, got {rate!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
    interval = 1.0 / rate
    return interval, (burst - 1) * interval


class RateLimiter:
    """Admit at most ``rate`` operations per second on average, and at most ``burst`` at once.

    ``acquire()`` waits exactly as long as needed, first come first served; ``acquire_nowait()`` never
    waits and is cheap enough to call per request. Over any window of ``w`` seconds at most
    ``rate * w + burst`` acquisitions succeed. A cancelled ``acquire()`` takes no slot: a slot granted to a
    waiter that is cancelled before it resumes passes to the next waiter (or is given back).

    Time is read from the running loop's clock (so a virtual clock drives tests), or from ``clock``.
    Timers fire up to about a millisecond late; the last ~2 ms before a slot are waited by yielding to the
    loop instead. A late wake-up cannot be made up without exceeding ``burst``, so with ``burst=1`` the
    achieved rate is a few percent below ``rate``; a burst of about ``rate / 100`` absorbs that.

    >>> import asyncio
    >>> async def main() -> int:
    ...     limiter = RateLimiter(rate=1000, burst=10)
    ...     admitted = sum(limiter.acquire_nowait() for _ in range(50))
    ...     await limiter.acquire()          # waits about 1 ms for the next slot
    ...     return admitted
    >>> asyncio.run(main())
    10
    """

    __slots__ = (
        "_clock", "_interval", "_loop", "_read", "_slack", "_spin", "_tat", "_timer", "_waiters", "burst",
        "rate",
    )

    def __init__(self, rate: float, burst: int = 1, *, clock: Callable[[], float] | None = None) -> None:
        self._interval, self._slack = _check(rate, burst)
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tat = -math.inf  # no history: the first `burst` calls pass at once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._read: Callable[[], float] = time.monotonic
        self._spin = False
        self._waiters: deque[asyncio.Future[float]] = deque()
        self._timer: asyncio.Handle | None = None

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate!r}, burst={self.burst}, waiting={len(self._waiters)})"

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return time.monotonic()
        if loop is not self._loop:
            self._bind(loop)
        return self._read()

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._read = clock_for(loop)
        self._spin = is_real(loop)

    def acquire_nowait(self) -> bool:
        """Take a slot if one is free now and nobody is queued; return whether it did. Never waits.

        >>> limiter = RateLimiter(rate=1, burst=2, clock=lambda: 0.0)
        >>> [limiter.acquire_nowait() for _ in range(3)]
        [True, True, False]
        """
        # Hot path (once per request): the clock lookup is inlined, no helper calls.
        if self._waiters:
            return False
        clock = self._clock
        if clock is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                now = time.monotonic()
            else:
                if loop is not self._loop:
                    self._bind(loop)
                now = self._read()
        else:
            now = clock()
        tat = self._tat
        if tat - self._slack > now:
            return False
        self._tat = (tat if tat > now else now) + self._interval
        return True

    def wait_time(self) -> float:
        """Seconds until ``acquire_nowait()`` would succeed (counting queued waiters); 0.0 if now.

        >>> limiter = RateLimiter(rate=4, clock=lambda: 0.0)
        >>> limiter.acquire_nowait(), limiter.wait_time()
        (True, 0.25)
        """
        ready = self._tat - self._slack + len(self._waiters) * self._interval
        return max(0.0, ready - self._now())

    @property
    def waiting(self) -> int:
        """Number of tasks queued in ``acquire()``.

        >>> RateLimiter(rate=1).waiting
        0
        """
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a slot; waiters are served in arrival order.

        >>> import asyncio
        >>> async def main() -> None:
        ...     limiter = RateLimiter(rate=100)
        ...     for _ in range(3):
        ...         await limiter.acquire()    # the 2nd and 3rd wait 10 ms each
        >>> asyncio.run(main())
        """
        if not self._waiters and self.acquire_nowait():
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[float] = loop.create_future()
        self._waiters.append(fut)
        self._schedule(loop)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # Granted, then cancelled before resuming: the slot is real, pass it on.
                self._give_back(fut.result())
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass  # the wake-up already dropped it
                self._idle_check()
            raise

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None and self._waiters:
            delay = self._tat - self._slack - self._now()
            if delay <= 0.0 or (delay < SPIN_BELOW and self._spin and self._clock is None):
                self._timer = loop.call_soon(self._wake)
            else:
                self._timer = loop.call_later(delay, self._wake)

    def _idle_check(self) -> None:
        # Nobody waits any more: no timer may outlive the queue.
        if not self._waiters and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wake(self) -> None:
        self._timer = None
        now = self._now()
        waiters = self._waiters
        interval = self._interval
        while waiters:
            tat = self._tat
            if tat - self._slack > now:
                break  # timers may fire a little early; re-arm below
            fut = waiters.popleft()
            if fut.done():
                continue
            tat = (tat if tat > now else now) + interval
            self._tat = tat
            fut.set_result(tat)
        if waiters:
            self._schedule(asyncio.get_running_loop())

    def _give_back(self, granted_tat: float) -> None:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(granted_tat)
                self._idle_check()
                return
        self._idle_check()
        # Undo only if nothing was admitted after it; otherwise dropping the slot is the safe side.
        if self._tat == granted_tat:
            self._tat = granted_tat - self._interval


class KeyedRateLimiter:
    """One GCRA rate limit per key (e.g. per host), with idle keys forgotten so memory stays bounded.

    Each key costs one float (its theoretical arrival time). A key whose TAT is more than ``idle_ttl``
    seconds in the past behaves exactly like a new key, so it is dropped: a few of the oldest keys are
    checked whenever a new key arrives (amortized O(1), no pause to sweep millions).

    ``acquire(key)`` reserves the key's next slot at once and sleeps until it is due, so waiters on one key
    are served in order without a queue per key. A cancelled waiter gives its slot back when it holds the
    latest reservation; otherwise that one slot is left unused (the limit errs on the slow side).

    >>> limiter = KeyedRateLimiter(rate=1, burst=2, clock=lambda: 0.0)
    >>> [limiter.acquire_nowait("a.example") for _ in range(3)], limiter.acquire_nowait("b.example")
    ([True, True, False], True)
    >>> len(limiter)
    2
    """

    __slots__ = ("_clock", "_idle_ttl", "_interval", "_loop_clock", "_slack", "_tats", "burst", "rate")

    def __init__(
        self, rate: float, burst: int = 1, *, idle_ttl: float = 60.0, clock: Callable[[], float] | None = None
    ) -> None:
        self._interval, self._slack = _check(rate, burst)
        if not idle_ttl >= 0:
            raise ValueError(f"idle_ttl must be >= 0, got {idle_ttl!r}")
        self.rate = rate
        self.burst = burst
        self._idle_ttl = idle_ttl
        self._loop_clock: LoopClock | None = None
        if clock is None:
            clock = self._loop_clock = LoopClock()
        self._clock: Callable[[], float] = clock
        # Ordered by last use (move_to_end on each admission): the front holds the oldest keys.
        self._tats: OrderedDict[Hashable, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"KeyedRateLimiter(rate={self.rate!r}, burst={self.burst}, keys={len(self._tats)})"

    def __len__(self) -> int:
        """Number of keys remembered (expired ones are dropped first).

        >>> limiter = KeyedRateLimiter(rate=10, idle_ttl=1.0, clock=lambda: 0.0)
        >>> limiter.acquire_nowait("x"), len(limiter)
        (True, 1)
        """
        self._evict(self._clock(), -1)
        return len(self._tats)

    def _evict(self, now: float, budget: int) -> None:
        tats = self._tats
        horizon = now - self._idle_ttl
        while budget and tats:
            key = next(iter(tats))
            if tats[key] >= horizon:
                return
            del tats[key]
            budget -= 1

    def acquire_nowait(self, key: Hashable) -> bool:
        """Take a slot for ``key`` if one is free now; return whether it did. Never waits.

        >>> limiter = KeyedRateLimiter(rate=1, clock=lambda: 5.0)
        >>> limiter.acquire_nowait(("example.org", 443)), limiter.acquire_nowait(("example.org", 443))
        (True, False)
        """
        # Hot path (once per request).
        now = self._clock()
        tats = self._tats
        tat = tats.get(key)
        if tat is None:
            # A new key is the only thing that grows memory, so it pays for eviction.
            self._evict(now, 2)
            tats[key] = now + self._interval
            return True
        if tat - self._slack > now:
            return False
        tats[key] = (tat if tat > now else now) + self._interval
        tats.move_to_end(key)
        return True

    def wait_time(self, key: Hashable) -> float:
        """Seconds until ``acquire_nowait(key)`` would succeed; 0.0 if now.

        >>> limiter = KeyedRateLimiter(rate=2, clock=lambda: 0.0)
        >>> limiter.acquire_nowait("k"), limiter.wait_time("k"), limiter.wait_time("other")
        (True, 0.5, 0.0)
        """
        tat = self._tats.get(key)
        if tat is None:
            return 0.0
        return max(0.0, tat - self._slack - self._clock())

    async def acquire(self, key: Hashable) -> None:
        """Wait for a slot for ``key``; waiters on the same key are served in call order.

        >>> import asyncio
        >>> async def main() -> None:
        ...     limiter = KeyedRateLimiter(rate=100)
        ...     await limiter.acquire("a")
        ...     await limiter.acquire("a")     # about 10 ms later
        ...     await limiter.acquire("b")     # other key: at once
        >>> asyncio.run(main())
        """
        clock = self._clock
        now = clock()
        tats = self._tats
        tat = tats.get(key)
        if tat is None:
            self._evict(now, 2)
            tat = now
        elif tat < now:
            tat = now
        due = tat - self._slack
        reserved = tat + self._interval
        tats[key] = reserved
        tats.move_to_end(key)
        try:
            # Loop: timers may fire early, and the last millisecond or two is spun on a real clock.
            while (delay := due - clock()) > 0.0:
                spin = delay < SPIN_BELOW and self._loop_clock is not None and self._loop_clock.real
                await asyncio.sleep(0 if spin else delay)
        except asyncio.CancelledError:
            if tats.get(key) == reserved:
                tats[key] = reserved - self._interval
            raise

