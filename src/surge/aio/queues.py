"""``WatermarkQueue``: a FIFO queue whose producers pause at a high watermark until it drains to a low one.

Hysteresis keeps producers from flapping around a single limit; statistics show how often and how long.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from surge.errors import QueueClosed

__all__ = ["QueueStatistics", "WatermarkQueue"]

T = TypeVar("T")

# Values a waiting putter's future resolves to.
_GRANTED = True  # a slot is reserved for this putter: it may append
_WOKEN = False  # the queue was closed: the putter must fail


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """A snapshot of a :class:`WatermarkQueue`.

    ``pauses`` counts how often the queue reached its high watermark; ``time_paused`` is the loop time
    spent paused in total (the current pause included); ``max_depth`` is the deepest it has been.

    >>> q = WatermarkQueue(high=2)
    >>> q.put_nowait("a"); q.put_nowait("b")
    >>> s = q.statistics()
    >>> (s.depth, s.max_depth, s.pauses, s.paused)
    (2, 2, 1, True)
    >>> _ = q.get_nowait(), q.get_nowait()
    >>> (q.statistics().depth, q.statistics().paused)
    (0, False)
    """

    depth: int
    max_depth: int
    pauses: int
    time_paused: float
    paused: bool
    high: int
    low: int
    puts: int
    gets: int
    waiting_putters: int
    waiting_getters: int
    closed: bool


class WatermarkQueue(Generic[T]):
    """FIFO queue with back-pressure by watermarks.

    Producers put freely until the queue holds ``high`` items; from then on ``put()`` waits (and
    ``put_nowait()`` raises ``asyncio.QueueFull``) until consumers have drained it to ``low`` items
    (default ``high // 2``); then the waiting producers resume, first come first served.

    ``close()`` ends the queue: waiting and later putters get :class:`surge.errors.QueueClosed`; getters
    first drain what is left, then get ``QueueClosed`` too (``async for`` over the queue just ends).
    A ``put()`` or ``get()`` that is cancelled leaves nothing behind: the item was either put (``put``
    returned) or not (it raised), a getter that raised took nothing, and no waiter stays queued.
    Time is read from the running loop's clock (``clock=`` to override).

    >>> import asyncio
    >>> async def main() -> tuple[list[int], int]:
    ...     queue: WatermarkQueue[int] = WatermarkQueue(high=4, low=1)
    ...     async def produce() -> None:
    ...         for i in range(10):
    ...             await queue.put(i)          # waits while the queue is paused
    ...         queue.close()
    ...     async with asyncio.TaskGroup() as tg:
    ...         tg.create_task(produce())
    ...         items = [item async for item in queue]
    ...     return items, queue.statistics().max_depth
    >>> asyncio.run(main())
    ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 4)
    """

    def __init__(
        self, high: int, low: int | None = None, *, clock: Callable[[], float] | None = None
    ) -> None:
        if high < 1:
            raise ValueError(f"high watermark must be at least 1, got {high}")
        if low is None:
            low = high // 2
        if not 0 <= low < high:
            raise ValueError(f"low watermark must be in [0, high), got low={low} high={high}")
        self._high = high
        self._low = low
        self._clock = clock
        self._items: deque[T] = deque()
        self._putters: deque[asyncio.Future[bool]] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._granted = 0  # putters woken with a reserved slot that have not appended yet
        self._paused = False
        self._closed = False
        self._pauses = 0
        self._paused_since = 0.0
        self._time_paused = 0.0
        self._max_depth = 0
        self._puts = 0
        self._gets = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "paused" if self._paused else "open"
        return f"<WatermarkQueue {state} depth={len(self._items)} high={self._high} low={self._low}>"

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    # -- introspection ---------------------------------------------------------------------------

    @property
    def high(self) -> int:
        """The depth at which producers pause."""
        return self._high

    @property
    def low(self) -> int:
        """The depth producers wait for before they resume."""
        return self._low

    @property
    def paused(self) -> bool:
        """True while producers are held back (the queue reached ``high`` and has not drained to ``low``)."""
        return self._paused

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def qsize(self) -> int:
        """Number of items in the queue."""
        return len(self._items)

    __len__ = qsize

    def empty(self) -> bool:
        """True if there is no item to get."""
        return not self._items

    def statistics(self) -> QueueStatistics:
        """A frozen snapshot: depth, max depth, pauses, time paused, waiters."""
        time_paused = self._time_paused
        if self._paused:
            time_paused += self._now() - self._paused_since
        return QueueStatistics(
            depth=len(self._items),
            max_depth=self._max_depth,
            pauses=self._pauses,
            time_paused=time_paused,
            paused=self._paused,
            high=self._high,
            low=self._low,
            puts=self._puts,
            gets=self._gets,
            waiting_putters=sum(1 for f in self._putters if not f.done()),
            waiting_getters=sum(1 for f in self._getters if not f.done()),
            closed=self._closed,
        )

    # -- putting ---------------------------------------------------------------------------------

    def _append(self, item: T) -> None:
        items = self._items
        items.append(item)
        self._puts += 1
        depth = len(items)
        self._max_depth = max(self._max_depth, depth)
        if depth >= self._high and not self._paused:
            self._paused = True
            self._pauses += 1
            self._paused_since = self._now()
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(None)
                break

    def _grant(self) -> None:
        """Wake waiting putters, each with a slot reserved, as far as the queue has room."""
        if self._paused:
            return
        putters = self._putters
        while putters and len(self._items) + self._granted < self._high:
            putter = putters.popleft()
            if not putter.done():
                self._granted += 1
                putter.set_result(_GRANTED)

    def put_nowait(self, item: T) -> None:
        """Put ``item`` now, or raise ``asyncio.QueueFull`` if producers are paused (or others wait first).

        >>> q: WatermarkQueue[str] = WatermarkQueue(high=1)
        >>> q.put_nowait("a")
        >>> q.put_nowait("b")
        Traceback (most recent call last):
        asyncio.queues.QueueFull
        """
        if self._closed:
            raise QueueClosed("put on a closed queue")
        if self._paused or self._putters or len(self._items) + self._granted >= self._high:
            raise asyncio.QueueFull
        self._append(item)

    async def put(self, item: T) -> None:
        """Put ``item``, waiting while producers are paused. Raises ``QueueClosed`` once closed.

        If the call is cancelled, ``item`` was not put.

        >>> import asyncio
        >>> async def main() -> int:
        ...     q: WatermarkQueue[int] = WatermarkQueue(high=10)
        ...     await q.put(1)
        ...     return q.qsize()
        >>> asyncio.run(main())
        1
        """
        if self._closed:
            raise QueueClosed("put on a closed queue")
        if not self._paused and not self._putters and len(self._items) + self._granted < self._high:
            self._append(item)
            return
        putter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._putters.append(putter)
        try:
            granted = await putter
        except asyncio.CancelledError:
            if putter.done() and not putter.cancelled():
                # Woken, then cancelled before it could run: hand its reserved slot to the next putter.
                if putter.result() is _GRANTED:
                    self._granted -= 1
                    self._grant()
            else:
                try:
                    self._putters.remove(putter)
                except ValueError:
                    pass
            raise
        if granted:
            self._granted -= 1
        if self._closed:
            raise QueueClosed("queue closed while waiting to put")
        self._append(item)

    # -- getting ---------------------------------------------------------------------------------

    def _took(self) -> None:
        self._gets += 1
        if self._paused and len(self._items) <= self._low:
            self._paused = False
            self._time_paused += self._now() - self._paused_since
        if self._putters:
            self._grant()

    def get_nowait(self) -> T:
        """Take the first item now; ``asyncio.QueueEmpty`` if there is none (``QueueClosed`` once closed
        and drained)."""
        if self._items:
            item = self._items.popleft()
            self._took()
            return item
        if self._closed:
            raise QueueClosed("queue closed and drained")
        raise asyncio.QueueEmpty

    async def get(self) -> T:
        """Take the first item, waiting for one. After ``close()`` the rest drains, then ``QueueClosed``.

        If the call is cancelled, no item was taken.
        """
        items = self._items
        while not items:
            if self._closed:
                raise QueueClosed("queue closed and drained")
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and not getter.cancelled():
                    # Woken for an item it will not take: pass the wake-up on.
                    if items:
                        self._wake_getter()
                else:
                    try:
                        self._getters.remove(getter)
                    except ValueError:
                        pass
                raise
        item = items.popleft()
        self._took()
        return item

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the queue: putters fail with ``QueueClosed``; getters drain the rest, then fail.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(_WOKEN)
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    def __aiter__(self) -> WatermarkQueue[T]:
        return self

    async def __anext__(self) -> T:
        """Iterate items until the queue is closed and drained."""
        try:
            return await self.get()
        except QueueClosed:
            raise StopAsyncIteration from None
