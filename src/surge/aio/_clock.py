"""The clock the limits read: the running loop's time, at the finest resolution that agrees with it.

Tests drive it with a virtual loop clock (looptime); production code gets a monotonic clock in seconds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

__all__ = ["SPIN_BELOW", "Clock", "LoopClock", "clock_for", "is_real", "now"]

Clock = Callable[[], float]

try:
    import uvloop as _uvloop

    _UVLOOP_TIME: object = _uvloop.Loop.time
except ImportError:  # pragma: no cover - uvloop ships with surge where it builds
    _UVLOOP_TIME = None


def clock_for(loop: asyncio.AbstractEventLoop) -> Clock:
    """Return the function that reads ``loop``'s clock.

    uvloop's ``time()`` counts whole milliseconds (libuv's cached ``uv_now``); a rate limiter above 1000/s
    would admit in 1 ms lumps on it. Both are CLOCK_MONOTONIC, so ``time.monotonic`` agrees with it to within
    that millisecond and is used instead -- unless the class overrides ``time`` (a virtual test clock).
    """
    if _UVLOOP_TIME is not None and getattr(type(loop), "time", None) is _UVLOOP_TIME:
        return time.monotonic
    return loop.time


# Timers fire up to about a millisecond late (epoll and libuv count milliseconds). A waiter whose turn is
# closer than this yields to the loop (call_soon) instead of arming a timer, so rates above ~500/s are
# kept without an implicit burst. Only on real clocks: a virtual clock does not move while work is ready.
SPIN_BELOW = 0.002


def is_real(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop``'s clock is the stock one of asyncio, uvloop or rloop (not a virtual test clock)."""
    read = getattr(type(loop), "time", None)
    if read is asyncio.BaseEventLoop.time or (read is not None and read is _UVLOOP_TIME):
        return True
    rloop = sys.modules.get("rloop.loop")
    return rloop is not None and read is getattr(getattr(rloop, "RLoop", None), "time", None)


def now() -> float:
    """Read the running loop's clock, or ``time.monotonic()`` outside a loop (the loops' own base)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return time.monotonic()
    return clock_for(loop)()


class LoopClock:
    """A callable clock bound lazily to whichever loop is running when it is read.

    Rebinds when a different loop runs (a limiter that outlives one ``asyncio.run`` keeps working).
    """

    __slots__ = ("_loop", "_read", "real")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._read: Clock = time.monotonic
        self.real = False  # is the bound loop's clock a real one (see SPIN_BELOW)

    def __call__(self) -> float:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return time.monotonic()
        if loop is not self._loop:
            self._loop = loop
            self._read = clock_for(loop)
            self.real = is_real(loop)
        return self._read()
